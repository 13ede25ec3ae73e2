/* changes.c - the change log: feast_sqlreg_changes and the triggers that
 * fill it, read and pruned (see store.h). */
#include "store/store_internal.h"

#include <string.h>

/* The key column a table's change log rows name its objects by: the first
 * column that is not project_id (projects: project_id itself). */
static const char *change_key(const tabledef *t) {
    if (strcmp(t->table, "projects") == 0) return "project_id";
    return strcmp(t->cols[0].name, "project_id") == 0 ? t->cols[1].name : t->cols[0].name;
}

/* Calls part(ctx, name, sql) for each part of the change log that c's
 * database lacks: the table, then each trigger (and function) of each
 * registry table, with the DDL that creates it. */
typedef int (*part_fn)(const db_driver *d, db_conn *c, void *ctx, const char *name,
                       const char *sql, db_err *err);

static int missing_parts(store *st, const db_driver *d, db_conn *c, part_fn part, void *ctx,
                         db_err *err) {
    const db_sql_dialect *dl = st->dialect;
    rowset have = {0};
    int rv = exec(d, c, dl->tables_query, NULL, 0, &have, NULL, err);
    if (rv == 0 && !has_name(&have, "feast_sqlreg_changes")) /* as create_schema_fn: no idle DDL */
        rv = part(d, c, ctx, "feast_sqlreg_changes", dl->changes_table, err);
    rowset_free(&have);
    if (rv != 0 || exec(d, c, dl->triggers_query, NULL, 0, &have, NULL, err) != 0) {
        rowset_free(&have);
        return -1;
    }
    char name[128], sql[2048];
    for (size_t t = 0; t < NSCHEMA && rv == 0; t++)
        for (int i = 0; rv == 0 && dl->change_trigger(i, SCHEMA[t].table, change_key(&SCHEMA[t]),
                                                      name, sizeof(name), sql, sizeof(sql));
             i++)
            if (!has_name(&have, name)) rv = part(d, c, ctx, name, sql, err);
    rowset_free(&have);
    return rv;
}

static int create_part(const db_driver *d, db_conn *c, void *ctx, const char *name,
                       const char *sql, db_err *err) {
    (void)name;
    ++*(int *)ctx; /* one more part made */
    return exec(d, c, sql, NULL, 0, NULL, NULL, err);
}

static int name_part(const db_driver *d, db_conn *c, void *ctx, const char *name,
                     const char *sql, db_err *err) {
    (void)d;
    (void)c;
    (void)sql;
    db_value v = txtz(name);
    return rowset_add(ctx, &v, 1, err);
}

/* Creates the change log table and whatever trigger (and function) of
 * each registry table is missing; what exists is left alone, so a registry
 * that starts again takes no table lock. */
static int change_log_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)ctx;
    int made = 0;
    int rv = missing_parts(st, d, c, create_part, &made, err);
    if (rv == 0 && made) note_ddl(st, d, c);
    return rv;
}

/* The change log's parts that are missing, by name. */
static int missing_change_log_fn(store *st, const db_driver *d, db_conn *c, void *ctx,
                                 db_err *err) {
    return missing_parts(st, d, c, name_part, ctx, err);
}

int store_missing_change_log(store *st, rowset *out, db_err *err) {
    memset(out, 0, sizeof(*out));
    int rv = run(st, PRIMARY_READ, missing_change_log_fn, out, err);
    if (rv != 0) rowset_free(out);
    return rv;
}

int store_install_change_log(store *st, db_err *err) {
    return run(st, st->dialect->ddl_in_transaction ? WRITE_TXN : PRIMARY_READ, change_log_fn, NULL,
               err);
}

int store_changes(store *st, int64_t after, int64_t limit, rowset *out, db_err *err) {
    query_ctx q = {"SELECT id, table_name, project_id, object_name FROM feast_sqlreg_changes "
                   "WHERE id > ? ORDER BY id LIMIT ?",
                   {db_int(after), db_int(limit)},
                   2,
                   out};
    return query(st, 0, &q, err);
}

int store_changes_head(store *st, rowset *out, db_err *err) {
    query_ctx q = {"SELECT COALESCE(MAX(id), 0) FROM feast_sqlreg_changes", {{0}}, 0, out};
    return query(st, 0, &q, err);
}

int store_changes_count(store *st, int64_t after, int64_t upto, rowset *out, db_err *err) {
    query_ctx q = {"SELECT COUNT(*) FROM feast_sqlreg_changes WHERE id > ? AND id <= ?",
                   {db_int(after), db_int(upto)},
                   2,
                   out};
    return query(st, 0, &q, err);
}

int store_prune_changes(store *st, int64_t before, int64_t *deleted, db_err *err) {
    write_one_ctx w = {
        "DELETE FROM feast_sqlreg_changes WHERE changed_at < ?", {db_int(before)}, 1, 0};
    int rv = run(st, WRITE_TXN, write_one_fn, &w, err);
    *deleted = w.affected;
    return rv;
}
