/* store.c - see store.h. */
#include "store/store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- tables -------------------------------------------------------------- */

/* The order in which Feast's SqlRegistry.proto() adds each project's objects;
 * kept so repeated fields come out in the same order as stock. */
static const obj_kind REGISTRY_ORDER[] = {
    OBJ_ENTITY,
    OBJ_FEATURE_VIEW,
    OBJ_DATA_SOURCE,
    OBJ_ON_DEMAND_FEATURE_VIEW,
    OBJ_STREAM_FEATURE_VIEW,
    OBJ_FEATURE_SERVICE,
    OBJ_SAVED_DATASET,
    OBJ_VALIDATION_REFERENCE,
    OBJ_PERMISSION,
    OBJ_LABEL_VIEW,
};
#define NREG (sizeof(REGISTRY_ORDER) / sizeof(REGISTRY_ORDER[0]))

#define FV_KINDS 4
static const obj_kind FEATURE_VIEW_KINDS[FV_KINDS] = {OBJ_FEATURE_VIEW, OBJ_ON_DEMAND_FEATURE_VIEW,
                                                      OBJ_STREAM_FEATURE_VIEW, OBJ_LABEL_VIEW};

/* ---- schema -------------------------------------------------------------- */

/* Column types, spelled per dialect by ddl_type(). */
enum { T_NAME, T_KEY50, T_BIGINT, T_INT, T_TEXT, T_BLOB, T_UUID };

typedef struct {
    const char *name;
    int type;
    int notnull;
} coldef;

typedef struct {
    const char *table;
    const char *index;
    const char *pk;
    coldef cols[9];
} tabledef;

#define OBJECT_TABLE(t, namecol, protocol)                                                         \
    {                                                                                              \
        t, "idx_" t "_project_id", namecol ", project_id", {                                       \
            {namecol, T_NAME, 1}, {"project_id", T_NAME, 1},                                       \
                {"last_updated_timestamp", T_BIGINT, 1}, {                                         \
                protocol, T_BLOB, 1                                                                \
            }                                                                                      \
        }                                                                                          \
    }
#define VIEW_TABLE(t)                                                                              \
    {                                                                                              \
        t, "idx_" t "_project_id", "feature_view_name, project_id", {                              \
            {"feature_view_name", T_NAME, 1}, {"project_id", T_NAME, 1},                           \
                {"last_updated_timestamp", T_BIGINT, 1}, {"feature_view_proto", T_BLOB, 1}, {      \
                "user_metadata", T_BLOB, 0                                                         \
            }                                                                                      \
        }                                                                                          \
    }

static const tabledef SCHEMA[] = {
    {"projects",
     "idx_projects_project_id",
     "project_id",
     {{"project_id", T_NAME, 1},
      {"project_name", T_NAME, 1},
      {"last_updated_timestamp", T_BIGINT, 1},
      {"project_proto", T_BLOB, 1}}},
    OBJECT_TABLE("entities", "entity_name", "entity_proto"),
    OBJECT_TABLE("data_sources", "data_source_name", "data_source_proto"),
    {"feature_views",
     "idx_feature_views_project_id",
     "feature_view_name, project_id",
     {{"feature_view_name", T_NAME, 1},
      {"project_id", T_NAME, 1},
      {"last_updated_timestamp", T_BIGINT, 1},
      {"materialized_intervals", T_BLOB, 0},
      {"feature_view_proto", T_BLOB, 1},
      {"user_metadata", T_BLOB, 0}}},
    VIEW_TABLE("stream_feature_views"),
    VIEW_TABLE("on_demand_feature_views"),
    VIEW_TABLE("label_views"),
    OBJECT_TABLE("feature_services", "feature_service_name", "feature_service_proto"),
    OBJECT_TABLE("saved_datasets", "saved_dataset_name", "saved_dataset_proto"),
    OBJECT_TABLE("validation_references", "validation_reference_name",
                 "validation_reference_proto"),
    OBJECT_TABLE("managed_infra", "infra_name", "infra_proto"),
    OBJECT_TABLE("permissions", "permission_name", "permission_proto"),
    {"feature_view_version_history",
     "idx_fv_version_history_project_id",
     "feature_view_name, project_id, version_number",
     {{"feature_view_name", T_NAME, 1},
      {"project_id", T_NAME, 1},
      {"version_number", T_INT, 1},
      {"feature_view_type", T_KEY50, 1},
      {"feature_view_proto", T_BLOB, 1},
      {"created_timestamp", T_BIGINT, 1},
      {"description", T_TEXT, 0},
      {"version_id", T_UUID, 1}}},
    {"feast_metadata",
     "idx_feast_metadata_project_id",
     "project_id, metadata_key",
     {{"project_id", T_NAME, 1},
      {"metadata_key", T_KEY50, 1},
      {"metadata_value", T_TEXT, 1},
      {"last_updated_timestamp", T_BIGINT, 1}}},
};
#define NSCHEMA (sizeof(SCHEMA) / sizeof(SCHEMA[0]))

static const char *ddl_type(const db_sql_dialect *d, int type) {
    switch (type) {
    case T_NAME:
        return "VARCHAR(255)";
    case T_KEY50:
        return "VARCHAR(50)";
    case T_UUID:
        return "VARCHAR(36)";
    case T_BIGINT:
        return "BIGINT";
    case T_INT:
        return "INTEGER";
    case T_TEXT:
        return "TEXT";
    default:
        return d->blob_type;
    }
}

/* ---- the store ----------------------------------------------------------- */

enum { SQL_LEN = 320 };

typedef struct {
    char get[SQL_LEN];      /* (proto, name, project_id) by (name, project) */
    char get_lock[SQL_LEN]; /* the same, locking the row */
    char list[SQL_LEN];     /* (name, proto, project_id) of a project */
    char list_since[SQL_LEN];
    char list_all[SQL_LEN];       /* (project_id, name, proto) of every project */
    char insert_missing[SQL_LEN]; /* insert unless the key exists */
    char update[SQL_LEN];
    char del[SQL_LEN];
    char del_project[SQL_LEN];
    char del_all[SQL_LEN];
    char set_um[SQL_LEN];
    char get_um[SQL_LEN];
} table_sql;

struct store {
    pool *wpool, *rpool; /* rpool == wpool without a read_path */
    const db_sql_dialect *dialect;
    table_sql sql[OBJ_KINDS];
    char project_insert_missing[SQL_LEN];
    char meta_insert_missing[SQL_LEN];
    char version_save[SQL_LEN];
    /* Read-your-writes (store_set_replica_wait): log positions written and
     * seen replayed; until primary_until (CLOCK_MONOTONIC ns), after a
     * commit whose position could not be read, reads go to the primary. */
    double replica_wait;
    _Atomic int64_t written_pos, replayed_pos, primary_until;
    _Atomic uint64_t replica_waits, replica_fallbacks;
};

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

void store_set_replica_wait(store *st, double seconds) {
    st->replica_wait = seconds;
}

void store_replica_stats_get(store *st, store_replica_stats *out) {
    out->written = atomic_load(&st->written_pos);
    out->replayed = atomic_load(&st->replayed_pos);
    out->waits = atomic_load(&st->replica_waits);
    out->fallbacks = atomic_load(&st->replica_fallbacks);
}

db_dialect store_dialect(const store *st) {
    return pool_driver(st->wpool)->dialect;
}

void store_describe(const store *st, int read, char *out, size_t outlen) {
    url_redacted(pool_url(read ? st->rpool : st->wpool), out, outlen);
}

/* ---- rowsets ------------------------------------------------------------- */

void rowset_free(rowset *rs) {
    free(rs->v);
    buf_free(&rs->arena);
    memset(rs, 0, sizeof(*rs));
}

db_value rowset_get(const rowset *rs, size_t r, int c) {
    db_value v = rs->v[r * (size_t)rs->ncols + (size_t)c];
    if (v.type == DB_TEXT || v.type == DB_BLOB) v.p = rs->arena.p + v.i;
    return v;
}

static int rowset_add(void *ctx, const db_value *cols, int ncols, db_err *err) {
    rowset *rs = ctx;
    if (rs->nrows == 0 && rs->cap == 0) rs->ncols = ncols;
    if (ncols != rs->ncols) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "rows of different widths");
        return -1;
    }
    if (rs->nrows == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 8;
        db_value *v = realloc(rs->v, cap * (size_t)ncols * sizeof(*v));
        if (!v) goto oom;
        rs->v = v;
        rs->cap = cap;
    }
    db_value *row = rs->v + rs->nrows * (size_t)ncols;
    for (int i = 0; i < ncols; i++) {
        row[i] = cols[i];
        if (cols[i].type == DB_TEXT || cols[i].type == DB_BLOB) {
            row[i].i = (int64_t)rs->arena.n;
            row[i].p = NULL;
            if (buf_put(&rs->arena, cols[i].p, cols[i].n) != 0) goto oom;
        }
    }
    rs->nrows++;
    return 0;
oom:
    db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory reading registry rows");
    return -1;
}

/* ---- transactions -------------------------------------------------------- */

/* NO_TXN reads from the read database; PRIMARY_READ runs without a
 * transaction on the write database (reads that a read-modify-write
 * decides on must not lag behind, and DDL where it is not transactional). */
typedef enum { NO_TXN, PRIMARY_READ, READ_TXN, WRITE_TXN } txn_mode;
typedef int (*txn_fn)(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err);

/* A connection error leaves the connection unusable: close it, do not pool
 * it again. */
static int is_broken(const db_err *err) {
    /* Out of memory: the client library may have dropped part of an
     * answer, so the connection is not trusted again. */
    return err->kind == DB_ERR_CONNECT || err->kind == DB_ERR_OPERATIONAL ||
           err->kind == DB_ERR_STALE_PLAN || err->kind == DB_ERR_NOMEM;
}

/* Sleeps before retry number `attempt` (1, 2, ...): about 1, 2, 4 ... 64 ms,
 * jittered so that writers that deadlocked together do not collide again. */
static void backoff(int attempt) {
    static _Thread_local unsigned seed;
    if (!seed) seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    long ms = 1L << (attempt < 7 ? attempt - 1 : 6);
    long ns = ms * 500000L + (long)(rand_r(&seed) % (int)(ms * 1000)) * 1000L;
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

enum { WRITE_ATTEMPTS = 8 };

static int exec(const db_driver *d, db_conn *c, const char *sql, const db_value *params, int n,
                rowset *out, int64_t *affected, db_err *err);

/* ---- read-your-writes on a replica --------------------------------------- */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void atomic_max(_Atomic int64_t *a, int64_t v) {
    int64_t cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

static int tracks_replica(const store *st) {
    return st->rpool != st->wpool && st->replica_wait >= 0 && st->dialect->write_position_query;
}

/* One integer from a one-row query on c; *isnull when it is NULL. */
static int query_int(const db_driver *d, db_conn *c, const char *sql, int64_t *out, int *isnull,
                     db_err *err) {
    rowset rs = {0};
    int rv = exec(d, c, sql, NULL, 0, &rs, NULL, err);
    if (rv == 0) {
        db_value v = rs.nrows == 1 && rs.ncols == 1 ? rowset_get(&rs, 0, 0) : db_null();
        *isnull = v.type != DB_INT;
        *out = v.i;
    }
    rowset_free(&rs);
    return rv;
}

/* After a commit on c (the write database): notes the log position the
 * replica must reach before this process reads it again. Returns 1 when c
 * broke doing so. The write itself is committed either way: when the
 * position cannot be read, reads go to the primary for a while instead. */
static int note_write(store *st, const db_driver *d, db_conn *c) {
    int64_t pos;
    int isnull = 0;
    db_err e;
    if (query_int(d, c, st->dialect->write_position_query, &pos, &isnull, &e) == 0) {
        if (!isnull) atomic_max(&st->written_pos, pos); /* NULL: no log, no replica */
        return 0;
    }
    double hold = st->replica_wait > 1.0 ? st->replica_wait : 1.0;
    atomic_store(&st->primary_until, now_ns() + (int64_t)(hold * 1e9));
    return is_broken(&e);
}

/* Before a read on c (the read database): 1 when the replica has replayed
 * every write this store committed, waiting up to replica_wait seconds for
 * it; 0 when it has not (the caller reads the primary); -1 on error. A read
 * database that is not a replica (NULL position) has nothing to wait for. */
static int replica_ready(store *st, const db_driver *d, db_conn *c, db_err *err) {
    int64_t want = atomic_load(&st->written_pos);
    int64_t until = atomic_load(&st->primary_until);
    if (until && now_ns() < until) {
        atomic_fetch_add(&st->replica_fallbacks, 1);
        return 0;
    }
    if (want <= atomic_load(&st->replayed_pos)) return 1;
    int64_t deadline = now_ns() + (int64_t)(st->replica_wait * 1e9);
    long nap = 200000; /* ns: 0.2 ms, doubling up to 10 ms */
    for (int waited = 0;; waited = 1) {
        int64_t pos;
        int isnull = 0;
        if (query_int(d, c, st->dialect->replay_position_query, &pos, &isnull, err) != 0) return -1;
        if (isnull) pos = want;
        atomic_max(&st->replayed_pos, pos);
        if (pos >= want) {
            if (waited) atomic_fetch_add(&st->replica_waits, 1);
            return 1;
        }
        int64_t left = deadline - now_ns();
        if (left <= 0) {
            atomic_fetch_add(&st->replica_fallbacks, 1);
            return 0;
        }
        long ns = left < nap ? (long)left : nap;
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        nanosleep(&ts, NULL);
        if (nap < 10000000L) nap *= 2;
    }
}

/* Runs fn on a pooled connection, in a transaction unless mode is NO_TXN.
 * A write that lost a deadlock or a lock wait is rolled back by the server
 * and retried here, after a jittered backoff (up to WRITE_ATTEMPTS in all:
 * InnoDB deadlocks writers racing to create one row, by design); nothing
 * else is retried, so a write is never applied twice. */
static int run(store *st, txn_mode mode, txn_fn fn, void *ctx, db_err *err) {
    pool *p = mode == WRITE_TXN || mode == PRIMARY_READ ? st->wpool : st->rpool;
    const db_driver *d = pool_driver(p);
    int always_ping = 0, replanned = 0;
    int check_replica = p != st->wpool && tracks_replica(st);
    for (int attempt = 1;; attempt++) {
        db_err_clear(err);
        int unpinged = 0;
        db_conn *c = pool_checkout(p, always_ping, &unpinged, err);
        if (!c) return -1;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rv = 0, at_begin = 0;
        int txn = mode == READ_TXN || mode == WRITE_TXN;
        if (check_replica) {
            int ready = replica_ready(st, d, c, err);
            if (ready == 0) { /* the replica lags this process's writes */
                pool_checkin(p, c, 0);
                p = st->wpool;
                d = pool_driver(p);
                check_replica = 0;
                attempt--;
                continue;
            }
            if (ready < 0) at_begin = rv = -1;
        }
        if (txn && rv == 0) at_begin = rv = d->begin(c, mode == WRITE_TXN, err);
        if (rv == 0) rv = fn(st, d, c, ctx, err);
        if (rv == 0 && txn) rv = d->commit(c, err);
        if (rv == 0) {
            int broken = mode == WRITE_TXN && tracks_replica(st) && note_write(st, d, c);
            pool_checkin(p, c, broken);
            return 0;
        }
        db_err rb;
        int broken = is_broken(err) || (txn && d->rollback(c, &rb) != 0);
        pool_checkin(p, c, broken);
        /* A connection reused without its ping (db/pool.c: back for under a
         * second) that turned out closed, at once rather than after a
         * stall: what the ping would have caught. Retried once, pinging,
         * where nothing can have been applied: a read, or a BEGIN. */
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (unpinged && !always_ping && err->kind == DB_ERR_CONNECT && took < 0.5 &&
            (at_begin || mode == NO_TXN || mode == READ_TXN)) {
            always_ping = 1;
            attempt--;
            continue;
        }
        /* A statement this connection prepared before someone altered its
         * table: the statement failed and its transaction rolled back, so
         * nothing was applied. Every pooled connection may hold such plans:
         * the pool retires them all, and the call runs once more on a new
         * connection. */
        if (err->kind == DB_ERR_STALE_PLAN && !replanned) {
            pool_drain(p);
            replanned = 1;
            attempt--;
            continue;
        }
        /* SQLite reports BUSY only after its busy handler waited `timeout`. */
        if (err->kind != DB_ERR_BUSY || mode != WRITE_TXN || !st->dialect->retry_busy ||
            attempt >= WRITE_ATTEMPTS)
            return -1;
        backoff(attempt);
    }
}

static int exec(const db_driver *d, db_conn *c, const char *sql, const db_value *params, int n,
                rowset *out, int64_t *affected, db_err *err) {
    return d->exec(c, sql, params, n, out ? rowset_add : NULL, out, affected, err);
}

static db_value txt(sref s) {
    return db_text(s.p, s.n);
}
static db_value txtz(const char *s) {
    return db_text(s, strlen(s));
}

/* ---- schema -------------------------------------------------------------- */

static int has_name(const rowset *names, const char *name);

/* CREATE TABLE IF NOT EXISTS t, with its index where the dialect declares
 * indexes inside the table. */
static int create_table(store *st, const db_driver *d, db_conn *c, const tabledef *t, db_err *err) {
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s (", t->table);
    for (int j = 0; t->cols[j].name; j++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s %s%s, ", t->cols[j].name,
                              ddl_type(st->dialect, t->cols[j].type),
                              t->cols[j].notnull ? " NOT NULL" : "");
    n += (size_t)snprintf(sql + n, sizeof(sql) - n, "PRIMARY KEY (%s)", t->pk);
    /* No CREATE INDEX IF NOT EXISTS there: declare it with the table. */
    if (st->dialect->index_in_table)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", INDEX %s (project_id)", t->index);
    snprintf(sql + n, sizeof(sql) - n, ")");
    return exec(d, c, sql, NULL, 0, NULL, NULL, err);
}

/* Creates what is missing, and only that: on a registry that has its
 * schema, no DDL runs at all, so a registry starting up (schema_mode: auto,
 * every replica) never queues behind other processes' open writes for the
 * locks DDL takes even when it turns out to have nothing to do. */
static int create_schema_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)ctx;
    char sql[2048];
    rowset tables = {0}, indexes = {0};
    int rv = exec(d, c, st->dialect->tables_query, NULL, 0, &tables, NULL, err);
    if (rv == 0 && st->dialect->indexes_query)
        rv = exec(d, c, st->dialect->indexes_query, NULL, 0, &indexes, NULL, err);
    for (size_t i = 0; rv == 0 && i < NSCHEMA; i++) {
        const tabledef *t = &SCHEMA[i];
        int have_table = has_name(&tables, t->table);
        int have_index = st->dialect->index_in_table  ? have_table
                         : st->dialect->indexes_query ? has_name(&indexes, t->index)
                                                      : 0;
        if (have_table && have_index) continue;
        if (!have_table) rv = create_table(st, d, c, t, err);
        if (rv == 0 && !st->dialect->index_in_table) {
            snprintf(sql, sizeof(sql), "CREATE INDEX IF NOT EXISTS %s ON %s (project_id)", t->index,
                     t->table);
            rv = exec(d, c, sql, NULL, 0, NULL, NULL, err);
        }
    }
    rowset_free(&tables);
    rowset_free(&indexes);
    return rv;
}

int store_create_schema(store *st, db_err *err) {
    /* PostgreSQL runs DDL in transactions; the others commit it implicitly. */
    return run(st, st->dialect->ddl_in_transaction ? WRITE_TXN : PRIMARY_READ, create_schema_fn,
               NULL, err);
}

static int tables_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    return exec(d, c, st->dialect->tables_query, NULL, 0, ctx, NULL, err);
}

int store_missing_tables(store *st, int read, rowset *out, db_err *err) {
    rowset have = {0};
    int rv = run(st, read ? NO_TXN : PRIMARY_READ, tables_fn, &have, err);
    if (rv != 0) {
        rowset_free(&have);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < NSCHEMA && rv == 0; i++) {
        int found = 0;
        for (size_t r = 0; r < have.nrows && !found; r++) {
            db_value v = rowset_get(&have, r, 0);
            found = v.n == strlen(SCHEMA[i].table) && memcmp(v.p, SCHEMA[i].table, v.n) == 0;
        }
        if (!found) {
            db_value name = txtz(SCHEMA[i].table);
            rv = rowset_add(out, &name, 1, err);
        }
    }
    rowset_free(&have);
    return rv;
}

static int narrow_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    return exec(d, c, st->dialect->narrow_blob_query, NULL, 0, ctx, NULL, err);
}

/* Whether (table, column) is a proto column of the registry's schema. */
static int is_blob_column(db_value table, db_value column) {
    for (size_t i = 0; i < NSCHEMA; i++) {
        if (table.n != strlen(SCHEMA[i].table) || memcmp(table.p, SCHEMA[i].table, table.n))
            continue;
        for (const coldef *col = SCHEMA[i].cols; col->name; col++)
            if (col->type == T_BLOB && column.n == strlen(col->name) &&
                memcmp(column.p, col->name, column.n) == 0)
                return 1;
    }
    return 0;
}

int store_narrow_blob_columns(store *st, int read, rowset *out, db_err *err) {
    memset(out, 0, sizeof(*out));
    if (!st->dialect->narrow_blob_query) return 0;
    rowset all = {0};
    int rv = run(st, read ? NO_TXN : PRIMARY_READ, narrow_fn, &all, err);
    for (size_t r = 0; rv == 0 && r < all.nrows; r++) {
        db_value cols[2] = {rowset_get(&all, r, 0), rowset_get(&all, r, 1)};
        if (cols[0].type == DB_TEXT && cols[1].type == DB_TEXT && is_blob_column(cols[0], cols[1]))
            rv = rowset_add(out, cols, 2, err);
    }
    rowset_free(&all);
    return rv;
}

/* ---- stored rows --------------------------------------------------------- */

/* The bytes of a TEXT/BLOB value for "%.*s" (never NULL). */
static const char *vstr(db_value v) {
    return (v.type == DB_TEXT || v.type == DB_BLOB) && v.p ? (const char *)v.p : "";
}

static int same_bytes(db_value v, sref s) {
    return (v.type == DB_TEXT || v.type == DB_BLOB) && v.n == s.n && memcmp(v.p, s.p, s.n) == 0;
}

/* 0 when a stored proto value can enter the registry, else -1 with why
 * filled: NULL, a value of another type (SQLite keeps whatever it is given),
 * or bytes Feast could not parse. Without this, the registry's project
 * stamp could complete a truncated row into an object with no name. */
static int check_proto(obj_kind k, db_value v, char *why, size_t len) {
    if (v.type == DB_NULL) {
        snprintf(why, len, "the stored proto is NULL");
        return -1;
    }
    if (v.type != DB_BLOB) {
        snprintf(why, len, "the stored proto is %s, not bytes",
                 v.type == DB_INT ? "an integer" : "text");
        return -1;
    }
    if (k == OBJ_INFRA && v.n == 0) return 0; /* an empty Infra serializes to nothing */
    return pb_validate(k, v.p, v.n, why, len);
}

/* Names a bad row in err: "<table> row '<name>' in project '<project>': why". */
static void bad_row_err(db_err *err, obj_kind k, db_value project, db_value name, const char *why) {
    db_err_set(err, DB_ERR_DATA, 0, NULL, "%s row '%.*s' in project '%.*s': %s", kind_of(k)->table,
               (int)name.n, vstr(name), (int)project.n, vstr(project), why);
}

/* Appends (table, project, name, why) to bad, the rows left out of a list
 * or of the registry so that the caller can say so. */
static int add_bad(rowset *bad, obj_kind k, db_value project, db_value name, const char *why,
                   db_err *err) {
    if (!bad) return 0;
    db_value row[4] = {txtz(kind_of(k)->table), project, name, txtz(why)};
    for (int i = 1; i < 3; i++)
        if (row[i].type != DB_TEXT && row[i].type != DB_BLOB) row[i] = db_text("", 0);
    return rowset_add(bad, row, 4, err);
}

/* Keeps the rows of rs whose key columns hold exactly these bytes: a
 * case- or accent-insensitive collation (MariaDB's utf8mb4_general_ci)
 * matches 'Driver' for 'driver', and that row is not the one asked for. */
static void keep_rows(rowset *rs, int (*keep)(const rowset *, size_t, const void *),
                      const void *arg) {
    size_t n = 0;
    for (size_t r = 0; r < rs->nrows; r++)
        if (keep(rs, r, arg)) {
            if (n != r)
                memmove(rs->v + n * (size_t)rs->ncols, rs->v + r * (size_t)rs->ncols,
                        sizeof(db_value) * (size_t)rs->ncols);
            n++;
        }
    rs->nrows = n;
}

typedef struct {
    sref name, project;
} exact_key;

/* Rows of (proto, name, project_id). */
static int is_exact(const rowset *rs, size_t r, const void *arg) {
    const exact_key *key = arg;
    return same_bytes(rowset_get(rs, r, 1), key->name) &&
           same_bytes(rowset_get(rs, r, 2), key->project);
}

/* Which stored rows may enter a result: those of the project asked for (a
 * collation may match others) whose proto passes check_proto. The others
 * are recorded in bad as (table, project, name, reason). */
typedef struct {
    obj_kind k;
    int project_col, name_col, proto_col;
    const sref *project; /* NULL: rows of any project */
    rowset *bad;
    db_err *err;
    int failed; /* out of memory recording a bad row (err filled) */
} row_filter;

static int row_ok(const rowset *rs, size_t r, const void *arg) {
    row_filter *f = (row_filter *)arg;
    db_value project = rowset_get(rs, r, f->project_col);
    char why[256];
    if (f->project && !same_bytes(project, *f->project)) return 0;
    if (check_proto(f->k, rowset_get(rs, r, f->proto_col), why, sizeof(why)) == 0) return 1;
    if (add_bad(f->bad, f->k, project, rowset_get(rs, r, f->name_col), why, f->err) != 0)
        f->failed = 1;
    return 0;
}

/* Keeps the rows of out that pass f; returns -1 (both freed) when
 * recording a bad row ran out of memory. */
static int filtered(rowset *out, rowset *bad, row_filter *f) {
    keep_rows(out, row_ok, f);
    if (!f->failed) return 0;
    rowset_free(out);
    rowset_free(bad);
    return -1;
}

/* ---- reads --------------------------------------------------------------- */

typedef struct {
    const char *sql;
    db_value params[4];
    int n;
    rowset *out;
} query_ctx;

static int query_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)st;
    query_ctx *q = ctx;
    return exec(d, c, q->sql, q->params, q->n, q->out, NULL, err);
}

static int query(store *st, int primary, query_ctx *q, db_err *err) {
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

/* ---- writes -------------------------------------------------------------- */

/* Runs an insert built by insert_sql(..., 1) in the caller's transaction;
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
    int update_only; /* a missing row stays missing */
    int inserted;
} apply_ctx;

static int apply_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    apply_ctx *a = ctx;
    const table_sql *s = &st->sql[a->k];
    rowset old = {0};
    buf merged = {0};
    int rv = -1;
    if (locked_row(st, d, c, a->k, a->project, a->name, &old, err) != 0) goto done;
    if (old.nrows == 0 && a->update_only) {
        rv = 0;
        goto done;
    }
    if (old.nrows == 0) {
        /* No row to lock yet: two writers can both get here. The loser of
         * the insert race locks the winner's row and merges into it. */
        int lost = 0;
        db_value p[4] = {txt(a->name), txt(a->project), db_int(a->w->now),
                         db_blob(a->proto.p, a->proto.n)};
        if (insert_missing(st, d, c, s->insert_missing, p, 4, &lost, err) != 0) goto done;
        if (lost && locked_row(st, d, c, a->k, a->project, a->name, &old, err) != 0) goto done;
        a->inserted = !lost;
    }
    if (old.nrows > 0) {
        db_value stored = rowset_get(&old, 0, 0);
        char msg[256];
        if (pb_merge_for_update(a->k, (const uint8_t *)a->proto.p, a->proto.n, stored.p, stored.n,
                                &merged, msg, sizeof(msg)) != 0) {
            db_err_set(err, DB_ERR_DATA, 0, NULL, "%s '%.*s' in project '%.*s': %s",
                       kind_of(a->k)->table, (int)a->name.n, a->name.p, (int)a->project.n,
                       a->project.p, msg);
            goto done;
        }
        db_value p[4] = {db_blob(merged.p, merged.n), db_int(a->w->now), txt(a->name),
                         txt(a->project)};
        if (exec(d, c, s->update, p, 4, NULL, NULL, err) != 0) goto done;
        a->inserted = 0;
    }
    rv = bookkeeping(st, d, c, a->project, a->w, err);
    /* Only the writer that created the view records its first version; one
     * that lost the insert race merged into the winner's row instead. */
    if (rv == 0 && a->w->version_type.p && a->inserted) {
        db_value v[8] = {txt(a->name),
                         txt(a->project),
                         db_int(a->w->version_number),
                         txt(a->w->version_type),
                         db_blob(a->proto.p, a->proto.n),
                         db_int(a->w->now),
                         txtz(""),
                         txt(a->w->version_id)};
        rv = exec(d, c, st->version_save, v, 8, NULL, NULL, err);
    }
done:
    rowset_free(&old);
    buf_free(&merged);
    return rv;
}

int store_apply(store *st, obj_kind k, sref project, sref name, sref proto, const write_ctx *w,
                int *inserted, db_err *err) {
    apply_ctx a = {k, project, name, proto, w, 0, 0};
    if (run(st, WRITE_TXN, apply_fn, &a, err) != 0) return -1;
    *inserted = a.inserted;
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

typedef struct {
    const char *sql;
    db_value params[8];
    int n;
    int64_t affected;
} write_one_ctx;

static int write_one_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)st;
    write_one_ctx *w = ctx;
    return exec(d, c, w->sql, w->params, w->n, NULL, &w->affected, err);
}

int store_replace_proto(store *st, obj_kind k, sref project, sref name, sref proto, int64_t now,
                        db_err *err) {
    /* Merged like any update, so intervals recorded meanwhile survive. */
    write_ctx w = {now, {NULL, 0}, {NULL, 0}, 0, {NULL, 0}, {NULL, 0}, 0};
    apply_ctx a = {k, project, name, proto, &w, 1, 0};
    return run(st, WRITE_TXN, apply_fn, &a, err);
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

/* ---- whole registry ------------------------------------------------------ */

typedef struct {
    buf *out;
    rowset projects;  /* (project_id, proto) */
    buf *per_project; /* one buffer per project, for the table being read */
    rowset *bad;
} registry_ctx;

static long project_index(const rowset *projects, db_value id) {
    for (size_t i = 0; i < projects->nrows; i++) {
        db_value v = rowset_get(projects, i, 0);
        if (v.n == id.n && memcmp(v.p, id.p, v.n) == 0) return (long)i;
    }
    return -1;
}

static int registry_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    registry_ctx *r = ctx;
    if (exec(d, c, "SELECT project_id, project_proto FROM projects", NULL, 0, &r->projects, NULL,
             err) != 0)
        return -1;
    /* A project whose own row is bad is left out, and so are its objects. */
    row_filter pf = {OBJ_PROJECT, 0, 0, 1, NULL, r->bad, err, 0};
    keep_rows(&r->projects, row_ok, &pf);
    if (pf.failed) return -1;
    size_t np = r->projects.nrows;
    if (np == 0) return 0;
    pb_ts latest = {0, 0};
    int have_latest = 0;
    for (size_t i = 0; i < np; i++) {
        db_value proto = rowset_get(&r->projects, i, 1);
        if (buf_ld_field(r->out, kind_of(OBJ_PROJECT)->reg_field, proto.p, proto.n) != 0) goto oom;
        pb_ts ts;
        char msg[256];
        if (pb_project_last_updated(proto.p, proto.n, &ts, msg, sizeof(msg)) != 0) {
            bad_row_err(err, OBJ_PROJECT, rowset_get(&r->projects, i, 0),
                        rowset_get(&r->projects, i, 0), msg);
            return -1;
        }
        if (!have_latest || ts.seconds > latest.seconds ||
            (ts.seconds == latest.seconds && ts.nanos > latest.nanos))
            latest = ts;
        have_latest = 1;
    }
    r->per_project = calloc(np, sizeof(buf));
    if (!r->per_project) goto oom;

    for (size_t t = 0; t < NREG; t++) {
        obj_kind k = REGISTRY_ORDER[t];
        rowset rows = {0};
        if (exec(d, c, st->sql[k].list_all, NULL, 0, &rows, NULL, err) != 0) {
            rowset_free(&rows);
            return -1;
        }
        row_filter f = {k, 0, 1, 2, NULL, r->bad, err, 0};
        for (size_t i = 0; i < rows.nrows && !f.failed; i++) {
            db_value id = rowset_get(&rows, i, 0);
            long pi = project_index(&r->projects, id);
            if (pi < 0) continue; /* an object of no listed project: stock skips it too */
            db_value proto = rowset_get(&rows, i, 2);
            if (!row_ok(&rows, i, &f)) continue;
            buf stamp = {0};
            int rv = pb_project_stamp(k, id.p, id.n, &stamp);
            /* tag, length (row + stamp), row bytes, stamp */
            if (rv == 0)
                rv = buf_varint(&r->per_project[pi], ((uint64_t)kind_of(k)->reg_field << 3) | 2);
            if (rv == 0) rv = buf_varint(&r->per_project[pi], proto.n + stamp.n);
            if (rv == 0) rv = buf_put(&r->per_project[pi], proto.p, proto.n);
            if (rv == 0) rv = buf_put(&r->per_project[pi], stamp.p, stamp.n);
            buf_free(&stamp);
            if (rv != 0) {
                rowset_free(&rows);
                goto oom;
            }
        }
        rowset_free(&rows);
        if (f.failed) return -1;
        for (size_t i = 0; i < np; i++) {
            if (buf_put(r->out, r->per_project[i].p, r->per_project[i].n) != 0) goto oom;
            r->per_project[i].n = 0;
        }
    }

    /* Feast keeps one infra field: stock sets it from each project in turn,
     * so the last project's infra (or an empty one) is what remains. */
    db_value last = rowset_get(&r->projects, np - 1, 0);
    rowset infra = {0};
    db_value key[2] = {txtz("infra_obj"), last};
    if (exec(d, c, st->sql[OBJ_INFRA].get, key, 2, &infra, NULL, err) != 0) {
        rowset_free(&infra);
        return -1;
    }
    /* (proto, name, project_id) */
    row_filter inf = {OBJ_INFRA, 2, 1, 0, NULL, r->bad, err, 0};
    db_value iv =
        infra.nrows && row_ok(&infra, 0, &inf) ? rowset_get(&infra, 0, 0) : db_blob("", 0);
    if (inf.failed) {
        rowset_free(&infra);
        return -1;
    }
    int rv = buf_ld_field(r->out, kind_of(OBJ_INFRA)->reg_field, iv.p, iv.n);
    rowset_free(&infra);
    if (rv != 0) goto oom;

    /* last_updated: the latest project update (google.protobuf.Timestamp). */
    buf ts = {0};
    rv = 0;
    if (latest.seconds) rv = buf_varint(&ts, 1 << 3) || buf_varint(&ts, (uint64_t)latest.seconds);
    if (rv == 0 && latest.nanos)
        rv = buf_varint(&ts, 2 << 3) || buf_varint(&ts, (uint64_t)latest.nanos);
    if (rv == 0) rv = buf_ld_field(r->out, 5, ts.p ? ts.p : (const uint8_t *)"", ts.n);
    buf_free(&ts);
    if (rv != 0) goto oom;
    return 0;
oom:
    db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory assembling the registry");
    return -1;
}

int store_registry(store *st, buf *out, rowset *bad, db_err *err) {
    registry_ctx r = {out, {0}, NULL, bad};
    out->n = 0;
    memset(bad, 0, sizeof(*bad));
    int rv = run(st, READ_TXN, registry_fn, &r, err);
    if (rv != 0) rowset_free(bad);
    if (r.per_project)
        for (size_t i = 0; i < r.projects.nrows; i++)
            buf_free(&r.per_project[i]);
    free(r.per_project);
    rowset_free(&r.projects);
    return rv;
}

/* ---- change log ---------------------------------------------------------- */

/* The key column a table's change log rows name its objects by: the first
 * column that is not project_id (projects: project_id itself). */
static const char *change_key(const tabledef *t) {
    if (strcmp(t->table, "projects") == 0) return "project_id";
    return strcmp(t->cols[0].name, "project_id") == 0 ? t->cols[1].name : t->cols[0].name;
}

static int has_name(const rowset *names, const char *name) {
    for (size_t r = 0; r < names->nrows; r++) {
        db_value v = rowset_get(names, r, 0);
        if ((v.type == DB_TEXT || v.type == DB_BLOB) && v.n == strlen(name) &&
            memcmp(v.p, name, v.n) == 0)
            return 1;
    }
    return 0;
}

/* Creates the change log table and whatever trigger (and function) of
 * each registry table is missing; what exists is left alone, so a registry
 * that starts again takes no table lock. */
static int change_log_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)ctx;
    const db_sql_dialect *dl = st->dialect;
    rowset have = {0};
    int rv = exec(d, c, dl->tables_query, NULL, 0, &have, NULL, err);
    if (rv == 0 && !has_name(&have, "feast_sqlreg_changes")) /* as create_schema_fn: no idle DDL */
        rv = exec(d, c, dl->changes_table, NULL, 0, NULL, NULL, err);
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
            if (!has_name(&have, name)) rv = exec(d, c, sql, NULL, 0, NULL, NULL, err);
    rowset_free(&have);
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

int store_prune_changes(store *st, int64_t before, int64_t *deleted, db_err *err) {
    write_one_ctx w = {
        "DELETE FROM feast_sqlreg_changes WHERE changed_at < ?", {db_int(before)}, 1, 0};
    int rv = run(st, WRITE_TXN, write_one_fn, &w, err);
    *deleted = w.affected;
    return rv;
}
