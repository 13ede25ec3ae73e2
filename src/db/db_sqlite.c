/* db_sqlite.c - the SQLite backend: the only file that calls sqlite3. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

struct db_conn {
    sqlite3 *db;
    db_stmt_cache stmts;
};

static db_errkind kind_for(int rc) {
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return DB_ERR_DUPLICATE;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return DB_ERR_INTEGRITY;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_ERR_BUSY;
    case SQLITE_ERROR:
        return DB_ERR_PROGRAMMING;
    case SQLITE_CANTOPEN:
    case SQLITE_AUTH:
    case SQLITE_PERM:
        return DB_ERR_CONNECT;
    case SQLITE_NOMEM:
        return DB_ERR_NOMEM;
    case SQLITE_MISUSE:
        return DB_ERR_INTERFACE;
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
        return DB_ERR_DATA;
    default:
        return DB_ERR_OPERATIONAL;
    }
}

static int fail(db_conn *c, int rc, db_err *err) {
    int ext = sqlite3_extended_errcode(c->db);
    /* The extended code tells a duplicate key from other constraints. */
    db_err_set(err, kind_for((ext & 0xff) == (rc & 0xff) ? ext : rc), ext, NULL, "sqlite: %s",
               sqlite3_errmsg(c->db));
    return -1;
}

static void finalize(void *st) {
    sqlite3_finalize(st);
}

static void sq_close(db_conn *c) {
    if (!c) return;
    db_stmt_cache_clear(&c->stmts);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Python sqlite3's `timeout` (seconds) as SQLite's busy timeout
 * (milliseconds, an int). NaN, infinities and negative values are refused:
 * converting them, or anything from 2147483.648 s up, to int is undefined
 * and in practice gave a negative timeout, which turns lock waiting off.
 * Larger finite values (also those too big for a double) wait the longest
 * SQLite can: INT_MAX ms, about 24.8 days. Returns 0, or -1 with err filled. */
static int sq_timeout_ms(const char *v, int *ms, db_err *err) {
    char *end = NULL;
    errno = 0;
    double t = strtod(v, &end);
    int overflow = errno == ERANGE && isinf(t);
    if (end == v || *end || (isinf(t) && !overflow) || isnan(t) || t < 0) {
        db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                   "sqlite URL: timeout must be a finite number of seconds, 0 or more, not '%.40s'",
                   v);
        return -1;
    }
    *ms = overflow || t * 1000.0 >= (double)INT_MAX ? INT_MAX : (int)(t * 1000.0);
    return 0;
}

/* Query keys of sqlite URLs: Python sqlite3's `timeout` (seconds) and
 * SQLite's `mode` (ro, rw, rwc); `check_same_thread` and `uri` mean nothing
 * here (the pool gives a connection to one thread at a time). */
static int sq_options(const db_url *url, int *flags, int *timeout_ms, db_err *err) {
    *flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    *timeout_ms = 30000;
    for (int i = 0; i < url->nquery; i++) {
        const char *k = url->qkey[i], *v = url->qval[i];
        if (strcmp(k, "timeout") == 0) {
            if (sq_timeout_ms(v, timeout_ms, err) != 0) return -1;
        } else if (strcmp(k, "mode") == 0) {
            if (strcmp(v, "ro") == 0)
                *flags = SQLITE_OPEN_READONLY;
            else if (strcmp(v, "rw") == 0)
                *flags = SQLITE_OPEN_READWRITE;
            else if (strcmp(v, "rwc") != 0) {
                db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                           "sqlite URL: mode must be ro, rw or rwc, not '%.40s'", v);
                return -1;
            }
        } else if (strcmp(k, "check_same_thread") != 0 && strcmp(k, "uri") != 0) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "sqlite URL: unknown option '%.64s' (known: timeout, mode)", k);
            return -1;
        }
    }
    return 0;
}

static db_conn *sq_connect(const db_url *url, db_err *err) {
    int flags, timeout_ms;
    if (sq_options(url, &flags, &timeout_ms, err) != 0) return NULL;
    db_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        db_err_set(err, DB_ERR_NOMEM, SQLITE_NOMEM, NULL, "out of memory");
        return NULL;
    }
    c->stmts.release = finalize;
    const char *path = url_is_sqlite_memory(url) ? ":memory:" : url->database;
    /* NOMUTEX: the pool guarantees one thread per connection at a time. */
    int rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        db_err_set(err, DB_ERR_CONNECT, rc, NULL, "sqlite: cannot open '%s': %s", path,
                   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sq_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    /* Writers queue on the database lock instead of failing at once: several
     * `feast materialize` processes commonly write one registry file. */
    sqlite3_busy_timeout(c->db, timeout_ms);
    return c;
}

static sqlite3_stmt *prepare(db_conn *c, const char *sql, db_err *err) {
    sqlite3_stmt *st = db_stmt_cache_find(&c->stmts, sql);
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        fail(c, rc, err);
        return NULL;
    }
    return db_stmt_cache_add(&c->stmts, sql, st, err) == 0 ? st : NULL;
}

static int sq_exec(db_conn *c, const char *sql, const db_value *params, int nparams, db_row_fn row,
                   void *ctx, int64_t *affected, db_err *err) {
    sqlite3_stmt *st = prepare(c, sql, err);
    if (!st) return -1;
    int rc = SQLITE_OK;
    for (int i = 0; i < nparams && rc == SQLITE_OK; i++) {
        const db_value *v = &params[i];
        switch (v->type) {
        case DB_INT:
            rc = sqlite3_bind_int64(st, i + 1, v->i);
            break;
        case DB_TEXT:
            rc = sqlite3_bind_text64(st, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case DB_BLOB:
            /* A zero-length blob must stay a blob, not become NULL. */
            rc = v->n ? sqlite3_bind_blob64(st, i + 1, v->p, v->n, SQLITE_STATIC)
                      : sqlite3_bind_zeroblob(st, i + 1, 0);
            break;
        default:
            rc = sqlite3_bind_null(st, i + 1);
        }
    }
    if (rc != SQLITE_OK) return fail(c, rc, err);

    db_value cols[16];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!row) continue;
        int n = sqlite3_column_count(st);
        if (n > 16) n = 16;
        for (int i = 0; i < n; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                cols[i] = db_int(sqlite3_column_int64(st, i));
                break;
            case SQLITE_NULL:
                cols[i] = db_null();
                break;
            case SQLITE_TEXT: {
                const unsigned char *p = sqlite3_column_text(st, i);
                cols[i] = db_text((const char *)p, (size_t)sqlite3_column_bytes(st, i));
                break;
            }
            default: {
                /* Blob (or float, which we never store): bytes. */
                const void *p = sqlite3_column_blob(st, i);
                cols[i] = db_blob(p ? p : "", (size_t)sqlite3_column_bytes(st, i));
            }
            }
        }
        if (row(ctx, cols, n, err) != 0) {
            sqlite3_reset(st);
            return -1;
        }
    }
    if (rc != SQLITE_DONE) {
        fail(c, rc, err);
        sqlite3_reset(st);
        return -1;
    }
#if SQLITE_VERSION_NUMBER >= 3037000
    if (affected) *affected = sqlite3_changes64(c->db);
#else /* SQLite before 3.37 (Debian 11 has 3.34): an int count, enough here */
    if (affected) *affected = sqlite3_changes(c->db);
#endif
    sqlite3_reset(st);
    return 0;
}

static int simple(db_conn *c, const char *sql, db_err *err) {
    return sq_exec(c, sql, NULL, 0, NULL, NULL, NULL, err);
}

static int sq_begin(db_conn *c, int write, db_err *err) {
    /* SQLite has no row locks: a read-modify-write takes the database write
     * lock up front so two writers cannot both read the old row. */
    return simple(c, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

static int sq_commit(db_conn *c, db_err *err) {
    return simple(c, "COMMIT", err);
}

static int sq_rollback(db_conn *c, db_err *err) {
    if (sqlite3_get_autocommit(c->db)) return 0; /* nothing open */
    return simple(c, "ROLLBACK", err);
}

static int sq_ping(db_conn *c, db_err *err) {
    (void)c;
    (void)err;
    return 0; /* an embedded database cannot drop the connection */
}

/* One AFTER trigger per operation, adding the row's key to the change log. */
static int sq_change_trigger(int i, const char *table, const char *keycol, char *name,
                             size_t namelen, char *sql, size_t sqllen) {
    return db_change_trigger_per_op(
        "CREATE TRIGGER IF NOT EXISTS %s AFTER %s ON %s BEGIN "
        "INSERT INTO feast_sqlreg_changes (table_name, project_id, object_name, changed_at) "
        "VALUES ('%s', %s.project_id, %s.%s, CAST(strftime('%%s', 'now') AS INTEGER)); END",
        i, table, keycol, name, namelen, sql, sqllen);
}

static const db_sql_dialect sq_sql = {
    .lock_suffix = "",
    .insert_missing_prefix = "INSERT OR IGNORE INTO",
    .insert_missing_suffix = "",
    .blob_type = "BLOB",
    .index_in_table = 0,
    .ddl_in_transaction = 0,
    .retry_busy = 0, /* the busy handler already waited `timeout` */
    .tables_query = "SELECT name FROM sqlite_master WHERE type = 'table'",
    .indexes_query = "SELECT name FROM sqlite_master WHERE type = 'index'",
    /* AUTOINCREMENT: a rolled-back id is never handed out again. */
    .changes_table = "CREATE TABLE IF NOT EXISTS feast_sqlreg_changes ("
                     "id INTEGER PRIMARY KEY AUTOINCREMENT, table_name VARCHAR(64) NOT NULL, "
                     "project_id VARCHAR(255) NOT NULL, object_name VARCHAR(255) NOT NULL, "
                     "changed_at BIGINT NOT NULL)",
    .triggers_query = "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    .change_trigger = sq_change_trigger,
};

const db_driver db_sqlite_driver = {
    .name = "sqlite",
    .dialect = DB_SQLITE,
    .sql = &sq_sql,
    .connect = sq_connect,
    .close = sq_close,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .ping = sq_ping,
};
