/* store.c - see store.h: opening and closing a store, its pools, and the
 * SQL text of each table spelled for its dialect. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "db/url.h"

/* "INSERT INTO <rest>", spelled so that an existing key inserts nothing
 * (0 rows) when the dialect can say so, else plain (see db_sql_dialect). */
static void insert_sql(const db_sql_dialect *d, char *out, const char *rest, int missing) {
    if (missing && d->insert_missing_prefix)
        snprintf(out, SQL_LEN, "%s %s%s", d->insert_missing_prefix, rest, d->insert_missing_suffix);
    else
        snprintf(out, SQL_LEN, "INSERT INTO %s", rest);
}

static void build_sql(store *st) {
    const db_sql_dialect *d = st->dialect;
    char rest[SQL_LEN];
    for (int k = 0; k < OBJ_KINDS; k++) {
        const kind_info *t = kind_of(k);
        table_sql *s = &st->sql[k];
#define GET_SQL  "SELECT %s, %s, project_id FROM %s WHERE %s = ? AND project_id = ?"
#define LIST_SQL "SELECT %s, %s, project_id FROM %s WHERE project_id = ?"
        snprintf(s->get, SQL_LEN, GET_SQL, t->proto_col, t->name_col, t->table, t->name_col);
        snprintf(s->get_lock, SQL_LEN, GET_SQL "%s", t->proto_col, t->name_col, t->table,
                 t->name_col, d->lock_suffix);
        snprintf(s->list, SQL_LEN, LIST_SQL, t->name_col, t->proto_col, t->table);
        snprintf(s->list_since, SQL_LEN, LIST_SQL " AND last_updated_timestamp >= ?", t->name_col,
                 t->proto_col, t->table);
#undef GET_SQL
#undef LIST_SQL
        snprintf(s->list_all, SQL_LEN, "SELECT project_id, %s, %s FROM %s", t->name_col,
                 t->proto_col, t->table);
        snprintf(rest, SQL_LEN,
                 "%s (%s, project_id, last_updated_timestamp, %s) VALUES (?, ?, ?, ?)", t->table,
                 t->name_col, t->proto_col);
        insert_sql(d, s->insert_missing, rest, 1);
        snprintf(s->update, SQL_LEN,
                 "UPDATE %s SET %s = ?, last_updated_timestamp = ? WHERE %s = ? AND project_id = ?",
                 t->table, t->proto_col, t->name_col);
        snprintf(s->update_expect, SQL_LEN,
                 "UPDATE %s SET %s = ?, last_updated_timestamp = ? WHERE %s = ? AND project_id = ? "
                 "AND %s = ?",
                 t->table, t->proto_col, t->name_col, t->proto_col);
        snprintf(s->del, SQL_LEN, "DELETE FROM %s WHERE %s = ? AND project_id = ?", t->table,
                 t->name_col);
        snprintf(s->del_project, SQL_LEN, "DELETE FROM %s WHERE project_id = ?", t->table);
        snprintf(s->del_all, SQL_LEN, "DELETE FROM %s", t->table);
        if (t->user_meta) {
            snprintf(s->set_um, SQL_LEN,
                     "UPDATE %s SET user_metadata = ?, last_updated_timestamp = ? "
                     "WHERE feature_view_name = ? AND project_id = ?",
                     t->table);
            snprintf(s->get_um, SQL_LEN,
                     "SELECT user_metadata FROM %s WHERE feature_view_name = ? AND project_id = ?",
                     t->table);
        }
    }
    insert_sql(d, st->project_insert_missing,
               "projects (project_id, project_name, last_updated_timestamp, project_proto) "
               "VALUES (?, ?, ?, ?)",
               1);
    snprintf(rest, SQL_LEN,
             "feast_metadata (project_id, metadata_key, metadata_value, "
             "last_updated_timestamp) VALUES (?, ?, ?, ?)");
    insert_sql(d, st->meta_insert_missing, rest, 1);
    insert_sql(d, st->version_save,
               "feature_view_version_history (feature_view_name, project_id, "
               "version_number, feature_view_type, feature_view_proto, created_timestamp, "
               "description, version_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               0);
}

static pool *open_pool(const char *text, const pool_opts *opts, db_err *err) {
    db_url url;
    char msg[256];
    if (url_parse(text, &url, msg, sizeof(msg)) != 0) {
        db_err_set(err, DB_ERR_CONFIG, 0, NULL, "%s", msg);
        return NULL;
    }
    return pool_new(&url, opts, err);
}

store *store_open(const char *url, const char *read_url, const pool_opts *opts, db_err *err) {
    store *st = calloc(1, sizeof(*st));
    if (!st) {
        db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory");
        return NULL;
    }
    st->wpool = open_pool(url, opts, err);
    if (!st->wpool) goto fail;
    st->rpool = st->wpool;
    if (read_url && read_url[0]) {
        st->rpool = open_pool(read_url, opts, err);
        if (!st->rpool) goto fail;
        if (pool_driver(st->rpool)->dialect != pool_driver(st->wpool)->dialect) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "read_path and path must name the same kind of database");
            goto fail;
        }
    }
    st->dialect = pool_driver(st->wpool)->sql;
    st->replica_wait = STORE_REPLICA_WAIT;
    build_sql(st);
    return st;
fail:
    store_close(st);
    return NULL;
}

void store_close(store *st) {
    if (!st) return;
    if (st->rpool != st->wpool) pool_free(st->rpool);
    pool_free(st->wpool);
    free(st);
}

void store_release_idle(store *st) {
    pool_drain(st->wpool);
    if (st->rpool != st->wpool) pool_drain(st->rpool);
}

void store_stats_get(store *st, store_stats *out) {
    out->conflict_retries = atomic_load(&st->conflict_retries);
    out->replans = atomic_load(&st->replans);
    out->reconnects = atomic_load(&st->reconnects);
    out->failovers = atomic_load(&st->failovers);
    pool_stats_get(st->wpool, &out->write_pool);
    out->has_read_pool = st->rpool != st->wpool;
    if (out->has_read_pool)
        pool_stats_get(st->rpool, &out->read_pool);
    else
        out->read_pool = out->write_pool;
}

db_dialect store_dialect(const store *st) {
    return pool_driver(st->wpool)->dialect;
}

void store_describe(const store *st, int read, char *out, size_t outlen) {
    url_redacted(pool_url(read ? st->rpool : st->wpool), out, outlen);
}
