/* read.c - reads: objects, projects, metadata, version history. */
#include "store/store_internal.h"

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

int store_list(store *st, obj_kind k, sref project, int64_t since, rowset *out, rowset *bad,
               db_err *err) {
    query_ctx q = {since < 0 ? st->sql[k].list : st->sql[k].list_since,
                   {txt(project), db_int(since)},
                   since < 0 ? 1 : 2,
                   out};
    memset(bad, 0, sizeof(*bad));
    if (query(st, 0, &q, err) != 0) return -1;
    row_filter f = {k, 2, 0, 1, &project, bad, err, 0};
    return filtered(out, bad, &f);
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
