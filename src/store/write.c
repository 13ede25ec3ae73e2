/* write.c - writes, each one transaction with its bookkeeping (the
 * project row, project_uuid, last-updated metadata), locking the stored
 * row first where the write depends on it. */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/kinds.h"
#include "pb/pb.h"

#define FV_KINDS 4
static const obj_kind FEATURE_VIEW_KINDS[FV_KINDS] = {OBJ_FEATURE_VIEW, OBJ_ON_DEMAND_FEATURE_VIEW,
                                                      OBJ_STREAM_FEATURE_VIEW, OBJ_LABEL_VIEW};

/* Runs an insert built by insert_sql(..., 1) (store.c) in the caller's transaction;
 * *lost = 1 when the key existed (another writer inserted it first) and
 * nothing was written. Dialects with an insert-missing form say so with 0
 * rows inserted; the others (MySQL) with a duplicate-key error, which rolls
 * back only that statement there. */
static int insert_missing(store *st, const db_driver *d, db_conn *c, const char *sql,
                          const db_value *params, int n, int *lost, db_err *err) {
    int64_t affected = 0;
    if (exec(d, c, sql, params, n, NULL, &affected, err) != 0) {
        if (st->dialect->insert_missing_prefix || err->kind != DB_ERR_DUPLICATE) return -1;
        db_err_clear(err);
        *lost = 1;
        return 0;
    }
    *lost = affected == 0;
    return 0;
}

/* Sets a feast_metadata key in the caller's transaction: update, else
 * insert, else (another writer inserted it meanwhile) update theirs. */
static int meta_upsert(store *st, const db_driver *d, db_conn *c, sref project, sref key,
                       sref value, int64_t now, db_err *err) {
    static const char *update =
        "UPDATE feast_metadata SET metadata_value = ?, "
        "last_updated_timestamp = ? WHERE project_id = ? AND metadata_key = ?";
    db_value up[4] = {txt(value), db_int(now), txt(project), txt(key)};
    int64_t n = 0;
    if (exec(d, c, update, up, 4, NULL, &n, err) != 0) return -1;
    if (n > 0) return 0; /* matched rows: MySQL is asked for found rows */
    db_value ins[4] = {txt(project), txt(key), txt(value), db_int(now)};
    int lost = 0;
    if (insert_missing(st, d, c, st->meta_insert_missing, ins, 4, &lost, err) != 0) return -1;
    if (!lost) return 0;
    return exec(d, c, update, up, 4, NULL, NULL, err);
}

/* The project row, project_uuid and last-updated metadata that go with every
 * object write, in the object's transaction. */
static int bookkeeping(store *st, const db_driver *d, db_conn *c, sref project, const write_ctx *w,
                       db_err *err) {
    if (w->project_proto.p) {
        db_value p[4] = {txt(project), txt(project), db_int(w->now),
                         db_blob(w->project_proto.p, w->project_proto.n)};
        int lost;
        if (insert_missing(st, d, c, st->project_insert_missing, p, 4, &lost, err) != 0) return -1;
    }
    if (w->project_uuid.p) {
        db_value p[4] = {txt(project), txtz("project_uuid"), txt(w->project_uuid), db_int(w->now)};
        int lost;
        if (insert_missing(st, d, c, st->meta_insert_missing, p, 4, &lost, err) != 0) return -1;
    }
    if (w->touch_metadata) {
        char value[32];
        int n = snprintf(value, sizeof(value), "%lld", (long long)w->now);
        sref key = {"last_updated_timestamp", 22};
        sref val = {value, (size_t)n};
        if (meta_upsert(st, d, c, project, key, val, w->now, err) != 0) return -1;
    }
    return 0;
}

/* Reads and locks the stored row (proto, name, project_id) of one object in
 * the caller's write transaction. A row the database matched only through
 * its collation ('Driver' for 'driver', 'a ' for 'a') is DB_ERR_DUPLICATE:
 * updating it would overwrite another object. */
static int locked_row(store *st, const db_driver *d, db_conn *c, obj_kind k, sref project,
                      sref name, rowset *out, db_err *err) {
    db_value key[2] = {txt(name), txt(project)};
    rowset_free(out);
    if (exec(d, c, st->sql[k].get_lock, key, 2, out, NULL, err) != 0) return -1;
    exact_key want = {name, project};
    for (size_t r = 0; r < out->nrows; r++) {
        if (is_exact(out, r, &want)) continue;
        db_value sn = rowset_get(out, r, 1), sp = rowset_get(out, r, 2);
        db_err_set(err, DB_ERR_DUPLICATE, 0, NULL,
                   "%s '%.*s' in project '%.*s' collides with the stored '%.*s' in project "
                   "'%.*s': the database's collation compares these names as equal (case, "
                   "accents or trailing spaces); store the registry under a binary collation "
                   "such as utf8mb4_bin",
                   kind_of(k)->table, (int)name.n, name.p, (int)project.n, project.p, (int)sn.n,
                   vstr(sn), (int)sp.n, vstr(sp));
        return -1;
    }
    return 0;
}

typedef struct {
    obj_kind k;
    sref project, name, proto;
    const write_ctx *w;
    int inserted;
    int raced;         /* expect_set and the stored row was not expect */
    int version_taken; /* a version number was taken meanwhile */
} apply_ctx;

/* Records one version of the feature view in the caller's transaction
 * (DB_ERR_INTEGRITY when the number is taken). */
static int save_version(store *st, const db_driver *d, db_conn *c, const apply_ctx *a,
                        int64_t number, db_value data, sref version_id, db_err *err) {
    db_value v[8] = {txt(a->name),     txt(a->project),      db_int(number), txt(a->w->version_type),
                     db_blob(data.p, data.n), db_int(a->w->now), txtz(""),       txt(version_id)};
    return exec(d, c, st->version_save, v, 8, NULL, NULL, err);
}

/* Whether the locked row is what the caller decided on. */
static int as_expected(const write_ctx *w, const rowset *old) {
    if (old->nrows == 0) return w->expect.p == NULL;
    db_value stored = rowset_get(old, 0, 0);
    return w->expect.p && stored.n == w->expect.n &&
           (stored.n == 0 || memcmp(stored.p, w->expect.p, stored.n) == 0);
}

static int apply_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    apply_ctx *a = ctx;
    const write_ctx *w = a->w;
    const table_sql *s = &st->sql[a->k];
    rowset old = {0};
    buf merged = {0};
    int rv = -1;
    db_value written = db_blob(a->proto.p, a->proto.n);
    a->raced = 0;
    a->inserted = 0;
    if (w->expect_set && w->expect.p && !w->versions_only) {
        /* An update of the row the caller read: no locking read first. The
         * update matches only while the row still holds those bytes (an
         * exact key too: a row only the collation matches holds another
         * object's bytes), so the merge can start from them. */
        char msg[256];
        if (pb_merge_for_update(a->k, (const uint8_t *)a->proto.p, a->proto.n,
                                (const uint8_t *)w->expect.p, w->expect.n, &merged, msg,
                                sizeof(msg)) != 0) {
            db_err_set(err, DB_ERR_DATA, 0, NULL, "%s '%.*s' in project '%.*s': %s",
                       kind_of(a->k)->table, (int)a->name.n, a->name.p, (int)a->project.n,
                       a->project.p, msg);
            goto done;
        }
        int64_t matched = 0;
        db_value p[5] = {db_blob(merged.p, merged.n), db_int(w->now), txt(a->name),
                         txt(a->project), db_blob(w->expect.p, w->expect.n)};
        if (exec(d, c, s->update_expect, p, 5, NULL, &matched, err) != 0) goto done;
        if (matched == 0) {
            a->raced = 1;
            rv = 0;
            goto done;
        }
        written = db_blob(merged.p, merged.n);
        if (bookkeeping(st, d, c, a->project, w, err) != 0) goto done;
        if (w->version_type.p && w->old_version_id.p &&
            save_version(st, d, c, a, 0, db_blob(w->expect.p, w->expect.n), w->old_version_id,
                         err) != 0)
            goto taken;
        rv = w->version_type.p
                 ? save_version(st, d, c, a, w->version_number, written, w->version_id, err)
                 : 0;
        goto taken;
    }
    /* An insert the caller decided on a missing row needs no locking read:
     * the insert itself finds a row that appeared meanwhile (lost). */
    int expect_missing = w->expect_set && !w->expect.p && !w->versions_only;
    if (!expect_missing) {
        if (locked_row(st, d, c, a->k, a->project, a->name, &old, err) != 0) goto done;
        if (w->expect_set && !as_expected(w, &old)) {
            a->raced = 1;
            rv = 0;
            goto done;
        }
    }
    if (w->versions_only) {
        if (old.nrows == 0) { /* nothing stored to version: the caller saw a row */
            a->raced = 1;
            rv = 0;
            goto done;
        }
        goto versions;
    }
    if (old.nrows == 0) {
        /* No row to lock yet: two writers can both get here. The loser of
         * the insert race locks the winner's row and merges into it (or,
         * when it decided on a missing row, decides again). */
        int lost = 0;
        db_value p[4] = {txt(a->name), txt(a->project), db_int(w->now),
                         db_blob(a->proto.p, a->proto.n)};
        if (insert_missing(st, d, c, s->insert_missing, p, 4, &lost, err) != 0) goto done;
        if (lost && w->expect_set) {
            a->raced = 1;
            rv = 0;
            goto done;
        }
        if (lost && locked_row(st, d, c, a->k, a->project, a->name, &old, err) != 0) goto done;
        a->inserted = !lost;
    }
    if (!a->inserted && old.nrows > 0) {
        db_value stored = rowset_get(&old, 0, 0);
        char msg[256];
        if (pb_merge_for_update(a->k, (const uint8_t *)a->proto.p, a->proto.n, stored.p, stored.n,
                                &merged, msg, sizeof(msg)) != 0) {
            db_err_set(err, DB_ERR_DATA, 0, NULL, "%s '%.*s' in project '%.*s': %s",
                       kind_of(a->k)->table, (int)a->name.n, a->name.p, (int)a->project.n,
                       a->project.p, msg);
            goto done;
        }
        db_value p[4] = {db_blob(merged.p, merged.n), db_int(w->now), txt(a->name),
                         txt(a->project)};
        if (exec(d, c, s->update, p, 4, NULL, NULL, err) != 0) goto done;
        written = db_blob(merged.p, merged.n);
    }
    if (bookkeeping(st, d, c, a->project, w, err) != 0) goto done;
versions:
    rv = 0;
    if (!w->version_type.p) goto done;
    /* Without expect_set only the writer that created the view records its
     * first version; one that lost the insert race merged into the
     * winner's row instead. */
    if (!w->expect_set && !a->inserted) goto done;
    if (w->old_version_id.p && old.nrows > 0 &&
        save_version(st, d, c, a, 0, rowset_get(&old, 0, 0), w->old_version_id, err) != 0) {
        rv = -1;
    } else {
        rv = save_version(st, d, c, a, w->version_number, written, w->version_id, err);
    }
taken:
    /* Another writer saved that number (not under this row's lock: a
     * pinned version): the transaction rolls back and, with expect_set,
     * the caller decides again on a fresh read. */
    a->version_taken = rv != 0 && err->kind == DB_ERR_DUPLICATE;
done:
    rowset_free(&old);
    buf_free(&merged);
    return rv;
}

int store_apply(store *st, obj_kind k, sref project, sref name, sref proto, const write_ctx *w,
                int *inserted, int *raced, db_err *err) {
    apply_ctx a = {k, project, name, proto, w, 0, 0, 0};
    if (run(st, WRITE_TXN, apply_fn, &a, err) != 0) {
        if (!(a.version_taken && w->expect_set && raced)) return -1;
        db_err_clear(err);
        a.inserted = 0;
        a.raced = 1;
    }
    *inserted = a.inserted;
    if (raced) *raced = a.raced;
    return 0;
}

typedef struct {
    const store_batch_item *items;
    size_t n;
    int raced;
} batch_ctx;

/* Every item's apply_fn in the caller's transaction; the first race rolls
 * all of it back. */
static int batch_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    batch_ctx *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        const store_batch_item *it = &b->items[i];
        apply_ctx a = {it->k, it->project, it->name, it->proto, &it->w, 0, 0, 0};
        int rv = apply_fn(st, d, c, &a, err);
        if (rv != 0 && !a.version_taken) return -1;
        if (rv != 0 || a.raced) {
            b->raced = 1;
            db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "apply_batch: item %zu raced", i);
            return -1;
        }
    }
    return 0;
}

int store_apply_batch(store *st, const store_batch_item *items, size_t n, int *raced,
                      db_err *err) {
    batch_ctx b = {items, n, 0};
    *raced = 0;
    if (run(st, WRITE_TXN, batch_fn, &b, err) == 0) return 0;
    if (!b.raced) return -1;
    db_err_clear(err);
    *raced = 1;
    return 0;
}

typedef struct {
    const obj_kind *kinds;
    int nkinds;
    sref project, name;
    const write_ctx *w;
    int with_history;
    int64_t deleted;
} delete_ctx;

static int delete_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    delete_ctx *x = ctx;
    db_value key[2] = {txt(x->name), txt(x->project)};
    x->deleted = 0;
    for (int i = 0; i < x->nkinds; i++) {
        /* Lock first, so that a row only the collation matches is never
         * deleted in place of the one asked for. */
        rowset rs = {0};
        int rv = locked_row(st, d, c, x->kinds[i], x->project, x->name, &rs, err);
        int present = rs.nrows > 0;
        rowset_free(&rs);
        if (rv != 0 && err->kind != DB_ERR_DUPLICATE) return -1;
        if (rv != 0) { /* another object's row: nothing of this name to delete */
            db_err_clear(err);
            continue;
        }
        int64_t n = 0;
        if (present && exec(d, c, st->sql[x->kinds[i]].del, key, 2, NULL, &n, err) != 0) return -1;
        x->deleted += n;
    }
    if (x->deleted == 0) return 0; /* nothing to record */
    if (x->with_history && exec(d, c,
                                "DELETE FROM feature_view_version_history "
                                "WHERE feature_view_name = ? AND project_id = ?",
                                key, 2, NULL, NULL, err) != 0)
        return -1;
    return bookkeeping(st, d, c, x->project, x->w, err);
}

int store_delete(store *st, obj_kind k, sref project, sref name, const write_ctx *w,
                 int64_t *deleted, db_err *err) {
    delete_ctx x = {&k, 1, project, name, w, 0, 0};
    if (run(st, WRITE_TXN, delete_fn, &x, err) != 0) return -1;
    *deleted = x.deleted;
    return 0;
}

int store_delete_feature_view(store *st, sref project, sref name, const write_ctx *w,
                              int64_t *deleted, db_err *err) {
    delete_ctx x = {FEATURE_VIEW_KINDS, FV_KINDS, project, name, w, 1, 0};
    if (run(st, WRITE_TXN, delete_fn, &x, err) != 0) return -1;
    *deleted = x.deleted;
    return 0;
}

typedef struct {
    obj_kind k;
    sref project, name;
    pb_ts start, end, now;
    const write_ctx *w;
    int found;
} mat_ctx;

static int materialize_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    mat_ctx *m = ctx;
    const table_sql *s = &st->sql[m->k];
    rowset old = {0};
    buf edited = {0};
    int rv = -1;
    if (locked_row(st, d, c, m->k, m->project, m->name, &old, err) != 0) goto done;
    m->found = old.nrows > 0;
    if (!m->found) {
        rv = 0;
        goto done;
    }
    db_value stored = rowset_get(&old, 0, 0);
    char msg[256];
    if (pb_append_interval(m->k, stored.p, stored.n, m->start, m->end, m->now, &edited, msg,
                           sizeof(msg)) != 0) {
        db_err_set(err, DB_ERR_DATA, 0, NULL, "%s '%.*s' in project '%.*s': %s",
                   kind_of(m->k)->table, (int)m->name.n, m->name.p, (int)m->project.n, m->project.p,
                   msg);
        goto done;
    }
    db_value p[4] = {db_blob(edited.p, edited.n), db_int(m->w->now), txt(m->name), txt(m->project)};
    if (exec(d, c, s->update, p, 4, NULL, NULL, err) != 0) goto done;
    rv = bookkeeping(st, d, c, m->project, m->w, err);
done:
    rowset_free(&old);
    buf_free(&edited);
    return rv;
}

int store_apply_materialization(store *st, obj_kind k, sref project, sref name, pb_ts start,
                                pb_ts end, pb_ts now, const write_ctx *w, int *found, db_err *err) {
    if (!pb_has_intervals(k)) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "%s have no materialization intervals",
                   kind_of(k)->table);
        return -1;
    }
    mat_ctx m = {k, project, name, start, end, now, w, 0};
    if (run(st, WRITE_TXN, materialize_fn, &m, err) != 0) return -1;
    *found = m.found;
    return 0;
}

int write_one_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)st;
    write_one_ctx *w = ctx;
    return exec(d, c, w->sql, w->params, w->n, NULL, &w->affected, err);
}

typedef struct {
    obj_kind k;
    sref project, name;
    const sref *data;
    int64_t now;
    int found;
} um_ctx;

static int user_metadata_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    um_ctx *u = ctx;
    rowset rs = {0};
    int rv = locked_row(st, d, c, u->k, u->project, u->name, &rs, err);
    u->found = rv == 0 && rs.nrows > 0;
    rowset_free(&rs);
    if (rv != 0 || !u->found) return rv;
    db_value p[4] = {u->data ? db_blob(u->data->p, u->data->n) : db_null(), db_int(u->now),
                     txt(u->name), txt(u->project)};
    return exec(d, c, st->sql[u->k].set_um, p, 4, NULL, NULL, err);
}

int store_set_user_metadata(store *st, obj_kind k, sref project, sref name, const sref *data,
                            int64_t now, int *found, db_err *err) {
    if (!kind_of(k)->user_meta) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "%s have no user metadata", kind_of(k)->table);
        return -1;
    }
    um_ctx u = {k, project, name, data, now, 0};
    if (run(st, WRITE_TXN, user_metadata_fn, &u, err) != 0) return -1;
    *found = u.found;
    return 0;
}

typedef struct {
    sref project, key, value;
    int64_t now;
} meta_set_ctx;

static int meta_set_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    meta_set_ctx *m = ctx;
    return meta_upsert(st, d, c, m->project, m->key, m->value, m->now, err);
}

int store_meta_set(store *st, sref project, sref key, sref value, int64_t now, db_err *err) {
    meta_set_ctx m = {project, key, value, now};
    return run(st, WRITE_TXN, meta_set_fn, &m, err);
}

static int meta_init_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    meta_set_ctx *m = ctx;
    db_value p[4] = {txt(m->project), txt(m->key), txt(m->value), db_int(m->now)};
    int lost;
    return insert_missing(st, d, c, st->meta_insert_missing, p, 4, &lost, err);
}

int store_meta_init(store *st, sref project, sref key, sref value, int64_t now, db_err *err) {
    meta_set_ctx m = {project, key, value, now};
    return run(st, WRITE_TXN, meta_init_fn, &m, err);
}

int store_meta_delete_project(store *st, sref project, db_err *err) {
    write_one_ctx w = {"DELETE FROM feast_metadata WHERE project_id = ?", {txt(project)}, 1, 0};
    return run(st, WRITE_TXN, write_one_fn, &w, err);
}

int store_version_save(store *st, sref project, sref name, int64_t number, sref type, sref proto,
                       int64_t created, sref version_id, db_err *err) {
    write_one_ctx w = {st->version_save,
                       {txt(name), txt(project), db_int(number), txt(type),
                        db_blob(proto.p, proto.n), db_int(created), txtz(""), txt(version_id)},
                       8,
                       0};
    return run(st, WRITE_TXN, write_one_fn, &w, err);
}

typedef struct {
    sref project;
    int all; /* teardown: every project's objects */
} wipe_ctx;

static int wipe_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    wipe_ctx *x = ctx;
    db_value p[1] = {txt(x->project)};
    for (int k = 0; k < OBJ_KINDS; k++) {
        if (x->all && (k == OBJ_PROJECT || k == OBJ_INFRA)) continue;
        if (exec(d, c, x->all ? st->sql[k].del_all : st->sql[k].del_project, p, x->all ? 0 : 1,
                 NULL, NULL, err) != 0)
            return -1;
    }
    if (x->all)
        return exec(d, c, "DELETE FROM feature_view_version_history", NULL, 0, NULL, NULL, err);
    /* Stock leaves a deleted project's version history behind, where a new
     * project of the same name would find it; it goes with the project. */
    if (exec(d, c, "DELETE FROM feature_view_version_history WHERE project_id = ?", p, 1, NULL,
             NULL, err) != 0)
        return -1;
    return exec(d, c, "DELETE FROM feast_metadata WHERE project_id = ?", p, 1, NULL, NULL, err);
}

int store_delete_project(store *st, sref project, db_err *err) {
    wipe_ctx x = {project, 0};
    return run(st, WRITE_TXN, wipe_fn, &x, err);
}

int store_teardown(store *st, db_err *err) {
    wipe_ctx x = {{"", 0}, 1};
    return run(st, WRITE_TXN, wipe_fn, &x, err);
}
