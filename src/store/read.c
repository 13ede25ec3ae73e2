/* read.c - reads: objects, projects, metadata, version history. */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

static int query_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)st;
    query_ctx *q = ctx;
    return exec(d, c, q->sql, q->params, q->n, q->out, NULL, err);
}

int query(store *st, int primary, query_ctx *q, db_err *err) {
    memset(q->out, 0, sizeof(*q->out));
    int rv = run(st, primary ? PRIMARY_READ : NO_TXN, query_fn, q, err);
    if (rv != 0) rowset_free(q->out);
    return rv;
}

int store_get(store *st, obj_kind k, sref project, sref name, int primary, rowset *out,
              db_err *err) {
    query_ctx q = {st->sql[k].get, {txt(name), txt(project)}, 2, out};
    if (query(st, primary, &q, err) != 0) return -1;
    exact_key key = {name, project};
    keep_rows(out, is_exact, &key);
    if (out->nrows == 0) return 0;
    char why[256];
    if (check_proto(k, rowset_get(out, 0, 0), why, sizeof(why)) == 0) return 0;
    bad_row_err(err, k, txt(project), txt(name), why);
    rowset_free(out);
    return -1;
}

int store_list(store *st, obj_kind k, sref project, int64_t since, int primary, rowset *out,
               rowset *bad, db_err *err) {
    query_ctx q = {since < 0 ? st->sql[k].list : st->sql[k].list_since,
                   {txt(project), db_int(since)},
                   since < 0 ? 1 : 2,
                   out};
    memset(bad, 0, sizeof(*bad));
    if (query(st, primary, &q, err) != 0) return -1;
    row_filter f = {k, 2, 0, 1, &project, bad, err, 0};
    return filtered(out, bad, &f);
}

int store_inspect(store *st, int primary, const char *sql, rowset *out, db_err *err) {
    query_ctx q = {sql, {{0}}, 0, out};
    return query(st, primary, &q, err);
}

int store_list_projects(store *st, rowset *out, rowset *bad, db_err *err) {
    query_ctx q = {"SELECT project_id, project_proto FROM projects", {{0}}, 0, out};
    memset(bad, 0, sizeof(*bad));
    if (query(st, 0, &q, err) != 0) return -1;
    row_filter f = {OBJ_PROJECT, 0, 0, 1, NULL, bad, err, 0};
    return filtered(out, bad, &f);
}

int store_get_user_metadata(store *st, obj_kind k, sref project, sref name, rowset *out,
                            db_err *err) {
    if (!kind_of(k)->user_meta) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "%s have no user metadata", kind_of(k)->table);
        return -1;
    }
    query_ctx q = {st->sql[k].get_um, {txt(name), txt(project)}, 2, out};
    return query(st, 0, &q, err);
}

int store_meta_get(store *st, sref project, sref key, rowset *out, db_err *err) {
    query_ctx q = {"SELECT metadata_value, last_updated_timestamp FROM feast_metadata "
                   "WHERE project_id = ? AND metadata_key = ?",
                   {txt(project), txt(key)},
                   2,
                   out};
    return query(st, 0, &q, err);
}

int store_meta_list(store *st, sref project, rowset *out, db_err *err) {
    query_ctx q = {"SELECT metadata_key, metadata_value, last_updated_timestamp "
                   "FROM feast_metadata WHERE project_id = ?",
                   {txt(project)},
                   1,
                   out};
    return query(st, 0, &q, err);
}

int store_meta_by_key(store *st, sref key, rowset *out, db_err *err) {
    query_ctx q = {"SELECT project_id, last_updated_timestamp FROM feast_metadata "
                   "WHERE metadata_key = ?",
                   {txt(key)},
                   1,
                   out};
    return query(st, 0, &q, err);
}

int store_version_get(store *st, sref project, sref name, int64_t number, rowset *out,
                      db_err *err) {
    query_ctx q = {"SELECT feature_view_type, feature_view_proto FROM feature_view_version_history "
                   "WHERE feature_view_name = ? AND project_id = ? AND version_number = ?",
                   {txt(name), txt(project), db_int(number)},
                   3,
                   out};
    return query(st, 0, &q, err);
}

int store_version_list(store *st, sref project, sref name, rowset *out, db_err *err) {
    query_ctx q = {"SELECT version_number, feature_view_type, created_timestamp, version_id "
                   "FROM feature_view_version_history "
                   "WHERE feature_view_name = ? AND project_id = ? ORDER BY version_number",
                   {txt(name), txt(project)},
                   2,
                   out};
    return query(st, 0, &q, err);
}

int store_version_next(store *st, sref project, sref name, int64_t *next, db_err *err) {
    rowset rs;
    /* On the write database: a replica may lag behind a version just saved. */
    query_ctx q = {"SELECT COALESCE(MAX(version_number) + 1, 0) FROM feature_view_version_history "
                   "WHERE feature_view_name = ? AND project_id = ?",
                   {txt(name), txt(project)},
                   2,
                   &rs};
    if (query(st, 1, &q, err) != 0) return -1;
    db_value v = rs.nrows ? rowset_get(&rs, 0, 0) : db_int(0);
    rowset_free(&rs);
    if (v.type != DB_INT) {
        /* Every driver returns integer columns as DB_INT. */
        db_err_set(err, DB_ERR_DATA, 0, NULL, "the next version number is not an integer");
        return -1;
    }
    *next = v.i;
    return 0;
}

static int same_row(const rowset *rs, size_t r, const void *arg) {
    (void)rs;
    return r == *(const size_t *)arg;
}

/* One statement, so that an apply decides on one round trip: the object's
 * own row (tag 0), a row of the same name in each of the other tables
 * (tag 1 + its index in others), and the highest version number in the
 * feature view history plus one (tag -1; 0 without history), and whether
 * the project row (tag -2) and its project_uuid (tag -3) exist. Columns are (proto, name, project_id, tag,
 * number) so that is_exact reads the key where it reads any row's. */
int store_read_for_apply(store *st, obj_kind k, sref project, sref name, const obj_kind *others,
                         int nothers, int versions, rowset *out, int *taken, int64_t *next_version,
                         int *has_project, db_err *err) {
    char sql[6 * SQL_LEN];
    const kind_info *t = kind_of(k);
    query_ctx q = {sql, {txt(name), txt(project)}, 2, out};
    *has_project = 0;
    if (nothers < 0 || nothers > 3) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "read_for_apply: at most 3 other kinds");
        return -1;
    }
    int len = snprintf(sql, sizeof(sql),
                       "SELECT %s, %s, project_id, 0, 0 FROM %s WHERE %s = ? AND project_id = ?",
                       t->proto_col, t->name_col, t->table, t->name_col);
    for (int i = 0; i < nothers; i++) {
        const kind_info *o = kind_of(others[i]);
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        " UNION ALL SELECT NULL, %s, project_id, %d, 0 FROM %s "
                        "WHERE %s = ? AND project_id = ?",
                        o->name_col, i + 1, o->table, o->name_col);
        q.params[q.n++] = txt(name);
        q.params[q.n++] = txt(project);
    }
    if (versions) {
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        " UNION ALL SELECT NULL, NULL, NULL, -1, COALESCE(MAX(version_number) + 1, 0) "
                        "FROM feature_view_version_history "
                        "WHERE feature_view_name = ? AND project_id = ?");
        q.params[q.n++] = txt(name);
        q.params[q.n++] = txt(project);
    }
    if (k != OBJ_PROJECT) {
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        " UNION ALL SELECT NULL, NULL, NULL, -2, COUNT(*) FROM projects "
                        "WHERE project_id = ? UNION ALL SELECT NULL, NULL, NULL, -3, COUNT(*) "
                        "FROM feast_metadata WHERE project_id = ? AND metadata_key = 'project_uuid'");
        q.params[q.n++] = txt(project);
        q.params[q.n++] = txt(project);
    }
    /* On the write database: what is decided here is written there. */
    if (query(st, 1, &q, err) != 0) return -1;
    *taken = -1;
    *next_version = 0;
    *has_project = 0;
    exact_key key = {name, project};
    size_t keep = 0;
    for (size_t r = 0; r < out->nrows; r++) {
        db_value tag = rowset_get(out, r, 3);
        long long tg = tag.type == DB_INT ? tag.i : -2;
        if (tg < 0) {
            db_value v = rowset_get(out, r, 4);
            long long n = v.type == DB_INT ? v.i : 0;
            if (tg == -1) *next_version = n;
            if (tg == -2 && n > 0) *has_project |= 1;
            if (tg == -3 && n > 0) *has_project |= 2;
            continue;
        }
        if (!is_exact(out, r, &key)) continue;
        if (tg == 0) {
            keep = r + 1;
        } else if (tg > 0 && tg <= nothers && (*taken < 0 || tg - 1 < *taken)) {
            *taken = (int)tg - 1;
        }
    }
    /* The object's own row, first, alone. */
    if (keep == 0) {
        rowset_free(out);
        return 0;
    }
    db_value stored = rowset_get(out, keep - 1, 0);
    char why[256];
    if (check_proto(k, stored, why, sizeof(why)) != 0) {
        bad_row_err(err, k, txt(project), txt(name), why);
        rowset_free(out);
        return -1;
    }
    size_t row = keep - 1;
    keep_rows(out, same_row, &row);
    return 0;
}
