/* db.h - the one backend interface over the database client libraries.
 *
 * Each client library (sqlite3, libpq, libmysqlclient) is called from exactly
 * one file, db_<name>.c, which fills a db_driver table; db.c keeps the
 * registry of drivers (the PostgreSQL and MySQL ones are loaded on demand),
 * db_util.c the helpers they share. Everything above this
 * interface (pool.c, src/store/) is dialect-neutral C that never sees a client
 * library type. Nothing here knows Python exists.
 *
 * SQL text is written with '?' placeholders; a driver that needs another
 * style ($1 for libpq) rewrites it when it prepares the statement. Statements
 * are prepared once per connection and reused: drivers cache them keyed by
 * the SQL text.
 */
#ifndef FEAST_SQLREG_DB_H
#define FEAST_SQLREG_DB_H

#include <stddef.h>
#include <stdint.h>

#include "db/url.h"

typedef enum { DB_UNKNOWN = 0, DB_SQLITE = 1, DB_POSTGRES = 2, DB_MYSQL = 3 } db_dialect;

/* What kind of failure, so the Python layer can pick an exception class. */
typedef enum {
    DB_ERR_NONE = 0,
    DB_ERR_CONNECT,     /* could not reach or log into the server */
    DB_ERR_INTEGRITY,   /* not-null, foreign key or check violation */
    DB_ERR_DUPLICATE,   /* unique or primary key violation: the row exists */
    DB_ERR_BUSY,        /* lock wait timed out, deadlock, serialization */
    DB_ERR_PROGRAMMING, /* bad SQL, missing table or column */
    DB_ERR_OPERATIONAL, /* server-side or I/O failure */
    DB_ERR_DATA,        /* a stored value was not what we expect */
    DB_ERR_INTERFACE,   /* misuse of this library */
    DB_ERR_NOMEM,       /* out of memory: MemoryError */
    DB_ERR_CONFIG,      /* a bad URL or option: the user's configuration */
    DB_ERR_TIMEOUT,     /* the server cancelled the statement (statement_timeout,
                           max_statement_time): not retried, and the connection
                           stays usable */
    DB_ERR_STALE_PLAN,  /* a statement prepared on this connection no longer
                           matches its table (a column's type changed): the
                           connection is dropped and the call retried once */
} db_errkind;

/* Error state, read from the driver while the connection is still held and
 * kept as plain C data so it can be raised after the GIL is back. Never holds
 * a password. */
typedef struct {
    db_errkind kind;
    int code;         /* native code: SQLite result code, MySQL errno */
    char sqlstate[6]; /* SQLSTATE where the backend has one, else "" */
    char msg[512];
} db_err;

void db_err_set(db_err *err, db_errkind kind, int code, const char *sqlstate, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
void db_err_clear(db_err *err);

typedef enum { DB_NULL = 0, DB_INT = 1, DB_TEXT = 2, DB_BLOB = 3 } db_type;

/* A parameter or a column value. For TEXT and BLOB, p/n point into memory that
 * stays valid only for the duration of the call (parameters) or of the row
 * callback (columns). */
typedef struct {
    db_type type;
    int64_t i;
    const void *p;
    size_t n;
} db_value;

static inline db_value db_int(int64_t i) {
    db_value v = {DB_INT, i, NULL, 0};
    return v;
}
static inline db_value db_text(const char *s, size_t n) {
    db_value v = {DB_TEXT, 0, s, n};
    return v;
}
static inline db_value db_blob(const void *p, size_t n) {
    db_value v = {DB_BLOB, 0, p, n};
    return v;
}
static inline db_value db_null(void) {
    db_value v = {DB_NULL, 0, NULL, 0};
    return v;
}

/* Called once per result row; return 0 to go on, non-zero to stop with an
 * error (the callback fills err). */
typedef int (*db_row_fn)(void *ctx, const db_value *cols, int ncols, db_err *err);

typedef struct db_conn db_conn;

/* Prepared statements of one connection, keyed by their SQL text (copied:
 * callers may build SQL in buffers). When full, the oldest is released:
 * only one-off statements such as DDL ever get that far. */
#define DB_STMT_CACHE 64
typedef struct {
    int n;
    char *sql[DB_STMT_CACHE];
    void *stmt[DB_STMT_CACHE];
    void (*release)(void *stmt); /* finalize / close one statement */
} db_stmt_cache;

/* The statement cached for sql, or NULL. */
void *db_stmt_cache_find(const db_stmt_cache *c, const char *sql);
/* Caches stmt for sql; returns 0, or -1 when out of memory (stmt is then
 * released and err filled). */
int db_stmt_cache_add(db_stmt_cache *c, const char *sql, void *stmt, db_err *err);
/* Releases and drops one cached statement (after the server invalidated it). */
void db_stmt_cache_forget(db_stmt_cache *c, void *stmt);
/* Releases every cached statement. */
void db_stmt_cache_clear(db_stmt_cache *c);

/* How a dialect spells what plain SQL cannot say the same way everywhere.
 * src/store/store.c builds its statements from these and never tests the dialect. */
typedef struct {
    /* Appended to a SELECT to lock the rows it reads until commit; "" where
     * the write transaction already holds the lock (SQLite). */
    const char *lock_suffix;
    /* "Insert unless the key exists", reporting a lost race as 0 rows
     * inserted: prefix and suffix around "table (cols) VALUES (...)". NULL
     * prefix: the dialect has no such form that keeps other errors visible
     * (MySQL's INSERT IGNORE also hides truncation); the store then runs a
     * plain INSERT and takes DB_ERR_DUPLICATE as the lost race, which
     * such a dialect must roll back by statement, not by transaction. */
    const char *insert_missing_prefix;
    const char *insert_missing_suffix;
    const char *blob_type; /* column type of serialized protos (64 KB+) */
    /* 1: CREATE INDEX IF NOT EXISTS is missing; declare indexes inside
     * CREATE TABLE instead. */
    int index_in_table;
    int ddl_in_transaction; /* DDL is transactional (PostgreSQL) */
    /* 1: a write that failed with DB_ERR_BUSY is worth retrying (deadlock
     * victims); 0: BUSY already means the driver waited its full timeout. */
    int retry_busy;
    /* One column: the names of the tables in the current schema. */
    const char *tables_query;
    /* One column: the names of the indexes in the current schema; NULL
     * where indexes are declared with their tables (index_in_table). Lets
     * the schema step skip CREATE INDEX IF NOT EXISTS, which on PostgreSQL
     * waits for every open write transaction on the table even when the
     * index exists. */
    const char *indexes_query;
    /* The change log (store_install_change_log): CREATE TABLE IF NOT
     * EXISTS feast_sqlreg_changes (id, an auto-increment key; table_name,
     * project_id, object_name; changed_at, seconds), and one column: the
     * names of the triggers and functions already in the schema. */
    const char *changes_table;
    const char *triggers_query;
    /* Step i (0, 1, ...) of making every insert, update and delete of a
     * row of table add (table, project_id, <keycol>) to the change log:
     * fills name (what the step creates, as triggers_query lists it) and
     * sql, and returns 1; returns 0 when there is no step i. */
    int (*change_trigger)(int i, const char *table, const char *keycol, char *name, size_t namelen,
                          char *sql, size_t sqllen);
    /* Read-your-writes on a replica read database; NULL where the dialect
     * has no way to tell. One row, one integer column each: the position in
     * the write-ahead log just written, asked on the write database after a
     * commit, NULL when it keeps no log (nothing to wait for); and the
     * position a replica has replayed up to, NULL when the database is not a
     * replica. Positions only grow. */
    const char *write_position_query;
    const char *replay_position_query;
    /* Two columns (table, column): the columns of the current database
     * whose type caps a serialized proto (MySQL's 64 KB BLOB, left by
     * registries created before Feast moved to LONGBLOB); NULL where no
     * type does. */
    const char *narrow_blob_query;
} db_sql_dialect;

/* The change-log triggers' (and PostgreSQL's trigger function's) names
 * begin with this. */
#define DB_CHANGE_TRIGGER_PREFIX "feast_sqlreg_"

/* change_trigger for a dialect with one AFTER trigger per operation (i:
 * INSERT, UPDATE, DELETE), named feast_sqlreg_<table>_<ins|upd|del>. fmt
 * takes, in order: the trigger's name, the operation, the table, the table
 * again (the logged name), the row (NEW/OLD) twice and the key column. */
int db_change_trigger_per_op(const char *fmt, int i, const char *table, const char *keycol,
                             char *name, size_t namelen, char *sql, size_t sqllen);

typedef struct {
    const char *name;
    db_dialect dialect;
    const db_sql_dialect *sql;
    /* Opens a connection. Returns NULL with err filled on failure. */
    db_conn *(*connect)(const db_url *url, db_err *err);
    void (*close)(db_conn *c);
    /* Runs sql with params; calls row for each result row (row may be NULL).
     * *affected gets the number of rows changed by INSERT/UPDATE/DELETE when
     * not NULL. Returns 0, or -1 with err filled. */
    int (*exec)(db_conn *c, const char *sql, const db_value *params, int nparams, db_row_fn row,
                void *ctx, int64_t *affected, db_err *err);
    /* Transactions. begin_write takes the write lock up front where the
     * dialect has no row locks (SQLite: BEGIN IMMEDIATE). */
    int (*begin)(db_conn *c, int write, db_err *err);
    int (*commit)(db_conn *c, db_err *err);
    int (*rollback)(db_conn *c, db_err *err);
    /* Cheap liveness check before reuse (pre-ping); 0 if usable. */
    int (*ping)(db_conn *c, db_err *err);
    /* 0: the connection reported a failure that leaves it unfit to be
     * pooled again (pool_checkin closes it) (MySQL on Galera: a damaged trigger cache, db_mysql.c);
     * NULL: every connection that is not broken is reusable. */
    int (*reusable)(db_conn *c);
} db_driver;

/* The drivers. db_sqlite.c is compiled into the core; db_pg.c and db_mysql.c
 * into the backend modules (python/pg_module.c, python/mysql_module.c), or linked into C
 * test programs, which register them with db_register_driver. */
extern const db_driver db_sqlite_driver;
extern const db_driver db_pg_driver;
extern const db_driver db_mysql_driver;
/* Where the client library looks for its authentication plugins
 * (caching_sha2_password, client_ed25519, ...) instead of the directory it
 * was built with: a binary wheel carries its own copies. Call before the
 * first connection; the first directory set stays. 0, or -1 when out of
 * memory. */
int db_mysql_set_plugin_dir(const char *dir);
/* The kind of a MySQL/MariaDB error, by its number and, on a Galera node
 * (wsrep), its message: there a conflict abort inside one of the
 * registry's own triggers (1064 "error in its body", named or "Unknown
 * trigger"; 1146 on the change log) is DB_ERR_BUSY, and retried. */
db_errkind db_mysql_error_kind(unsigned int code, const char *msg, int wsrep);

/* The dialect a URL scheme ("postgresql", "mariadb", ...) or a whole URL
 * names; DB_UNKNOWN for any other, or for a URL that does not parse. */
db_dialect db_dialect_of_scheme(const char *scheme);
db_dialect db_dialect_of_url(const char *text);

/* Makes drv the driver of its dialect (not SQLite's, which is built in).
 * Thread-safe and idempotent: 0 when drv is, or now is, the dialect's
 * driver; -1 when another driver already is, or drv is not a driver. */
int db_register_driver(const db_driver *drv);
/* The driver of dialect d, or NULL while none is registered. */
const db_driver *db_driver_registered(db_dialect d);

/* The driver for a parsed URL, or NULL with err filled (DB_ERR_CONFIG,
 * "no backend for ...") when none is registered for its dialect. */
const db_driver *db_driver_for(const db_url *url, db_err *err);

/* What the core hands the backend modules: the struct behind the capsule
 * feast_sqlreg._sqlregistry._C_API. A backend module checks abi against its
 * own DB_DRIVER_ABI and refuses to load into a core of another shape. Bump
 * DB_DRIVER_ABI whenever db_driver, db_sql_dialect, db_err, db_value or
 * db_url change. */
#define DB_DRIVER_ABI         2
#define DB_DRIVER_API_CAPSULE "feast_sqlreg._sqlregistry._C_API"
typedef struct {
    int abi;
    int (*register_driver)(const db_driver *drv);
} db_driver_api;

#endif
