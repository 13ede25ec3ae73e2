/* store_internal.h - what the files of the C core (src/store/) share: the
 * store itself, the transaction runner and the helpers more than one of
 * them calls. Only the files of src/store/ include it; everything else uses
 * store.h.
 */
#ifndef FEAST_SQLREG_STORE_INTERNAL_H
#define FEAST_SQLREG_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "db/db.h"
#include "db/pool.h"
#include "store/store.h"

/* Internal to the core: never exported, not even from a test program that
 * links the core in, so these short names cannot interpose on a library's. */
#pragma GCC visibility push(hidden)

/* ---- the store (store.c) ------------------------------------------------- */

enum { SQL_LEN = 320 };

typedef struct {
    char get[SQL_LEN];      /* (proto, name, project_id) by (name, project) */
    char get_lock[SQL_LEN]; /* the same, locking the row */
    char list[SQL_LEN];     /* (name, proto, project_id) of a project */
    char list_since[SQL_LEN];
    char list_all[SQL_LEN];       /* (project_id, name, proto) of every project */
    char insert_missing[SQL_LEN]; /* insert unless the key exists */
    char update[SQL_LEN];
    char update_expect[SQL_LEN]; /* update, only while the stored proto is the expected one */
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
    /* What run() ran again (store_stats in store.h). */
    _Atomic uint64_t conflict_retries, replans, reconnects, failovers;
};

/* ---- the schema (schema.c) ----------------------------------------------- */

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

/* The registry's tables, as Feast's SQLAlchemy metadata declares them. */
extern const tabledef SCHEMA[];
extern const size_t NSCHEMA;

/* ---- rowsets (rowset.c) -------------------------------------------------- */

/* A db_row_fn: appends one row to the rowset ctx. */
int rowset_add(void *ctx, const db_value *cols, int ncols, db_err *err);
/* Whether column 0 of some row of names holds exactly name. */
int has_name(const rowset *names, const char *name);

/* ---- transactions (txn.c) ------------------------------------------------ */

/* NO_TXN reads from the read database; PRIMARY_READ runs without a
 * transaction on the write database (reads that a read-modify-write
 * decides on must not lag behind, and DDL where it is not transactional). */
typedef enum { NO_TXN, PRIMARY_READ, READ_TXN, WRITE_TXN } txn_mode;
typedef int (*txn_fn)(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err);

int is_broken(const db_err *err);
int run(store *st, txn_mode mode, txn_fn fn, void *ctx, db_err *err);
/* One statement on c, its rows appended to out (NULL: none wanted). */
int exec(const db_driver *d, db_conn *c, const char *sql, const db_value *params, int n,
         rowset *out, int64_t *affected, db_err *err);

static inline db_value txt(sref s) {
    return db_text(s.p, s.n);
}
static inline db_value txtz(const char *s) {
    return db_text(s, strlen(s));
}

/* ---- read-your-writes on a replica (replica.c) --------------------------- */

int tracks_replica(const store *st);
int note_write(store *st, const db_driver *d, db_conn *c);
void note_ddl(store *st, const db_driver *d, db_conn *c);
int replica_ready(store *st, const db_driver *d, db_conn *c, db_err *err);

/* ---- stored rows (rowcheck.c) -------------------------------------------- */

const char *vstr(db_value v);
int check_proto(obj_kind k, db_value v, char *why, size_t len);
void bad_row_err(db_err *err, obj_kind k, db_value project, db_value name, const char *why);
void keep_rows(rowset *rs, int (*keep)(const rowset *, size_t, const void *), const void *arg);

typedef struct {
    sref name, project;
} exact_key;
int is_exact(const rowset *rs, size_t r, const void *arg);

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
int row_ok(const rowset *rs, size_t r, const void *arg);
int filtered(rowset *out, rowset *bad, row_filter *f);

/* ---- reads (read.c) ------------------------------------------------------ */

typedef struct {
    const char *sql;
    db_value params[12];
    int n;
    rowset *out;
} query_ctx;
/* Runs q on the read database (primary != 0: the write database). */
int query(store *st, int primary, query_ctx *q, db_err *err);

/* ---- writes (write.c) ---------------------------------------------------- */

typedef struct {
    const char *sql;
    db_value params[8];
    int n;
    int64_t affected;
} write_one_ctx;
int write_one_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err);

#pragma GCC visibility pop

#endif
