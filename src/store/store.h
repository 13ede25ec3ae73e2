/* store.h - registry operations as transactions over the backend interface.
 *
 * Pure C: no Python, no client library. Every function returns 0, or -1 with
 * err filled. Reads return a rowset (a copy of the result rows) that the
 * caller frees with rowset_free. Writes that depend on a stored row lock it
 * first (SELECT ... FOR UPDATE, or SQLite's BEGIN IMMEDIATE), so concurrent
 * writers in any number of processes never lose each other's updates.
 */
#ifndef FEAST_SQLREG_STORE_H
#define FEAST_SQLREG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "db/db.h"
#include "db/pool.h"
#include "pb/pb.h"

/* A string with its length (Python strings may hold NUL). */
typedef struct {
    const char *p;
    size_t n;
} sref;

/* Result rows, copied out of the driver. */
typedef struct {
    int ncols;
    size_t nrows, cap;
    db_value *v; /* nrows * ncols; TEXT/BLOB values keep their arena offset in .i */
    buf arena;
} rowset;

void rowset_free(rowset *rs);
/* Column c of row r, with TEXT/BLOB pointers resolved into the arena. */
db_value rowset_get(const rowset *rs, size_t r, int c);

typedef struct store store;

/* Opens a store on url (writes, locking reads) and read_url (plain reads;
 * NULL for the same database). No connection is made yet. */
store *store_open(const char *url, const char *read_url, const pool_opts *opts, db_err *err);
void store_close(store *st);
/* Closes the idle pooled connections now; the store stays usable and opens
 * new ones on demand. */
void store_release_idle(store *st);
db_dialect store_dialect(const store *st);

/* Read-your-writes when read_url names a replica (PostgreSQL: a hot
 * standby). After each commit the store notes the write's log position; a
 * later read waits up to `seconds` for the replica to replay it, then reads
 * the write database instead. So a process always reads its own writes,
 * whatever the replica's lag. seconds < 0 turns this off (reads always go
 * to read_url); the default is STORE_REPLICA_WAIT. */
#define STORE_REPLICA_WAIT 1.0
void store_set_replica_wait(store *st, double seconds);
typedef struct {
    int64_t written;    /* largest log position this store's commits reached */
    int64_t replayed;   /* largest the replica was seen to have replayed */
    uint64_t waits;     /* reads that waited for the replica, then read it */
    uint64_t fallbacks; /* reads that gave up waiting and read the primary */
} store_replica_stats;
void store_replica_stats_get(store *st, store_replica_stats *out);
/* What the store ran again, and its pools (for metrics): writes retried
 * after a deadlock, a lock wait or a busy SQLite file (each retry counts);
 * calls run again on a new connection after a stale prepared plan; calls
 * run again on a pinged connection after an unpinged one turned out
 * closed. read_pool is write_pool's copy without a read_url. */
typedef struct {
    uint64_t conflict_retries, replans, reconnects, failovers;
    int has_read_pool;
    pool_stats write_pool, read_pool;
} store_stats;
void store_stats_get(store *st, store_stats *out);
/* The URL with its password masked, for messages and reprs. */
void store_describe(const store *st, int read, char *out, size_t outlen);

/* Schema: the same tables, columns, keys and indexes as Feast's SQLAlchemy
 * metadata; CREATE ... IF NOT EXISTS, so safe to run concurrently. */
int store_create_schema(store *st, db_err *err);
/* The change log: feast_sqlreg_changes, and triggers on every registry
 * table that add (id, table_name, project_id, object_name, changed_at) to
 * it for each row any writer (stock Feast too) inserts, updates or
 * deletes. Idempotent; needs the privilege to create triggers. */
int store_install_change_log(store *st, db_err *err);
/* One row (name) per part of the change log missing on the write database:
 * feast_sqlreg_changes, then each missing trigger. */
int store_missing_change_log(store *st, rowset *out, db_err *err);
/* Rows of (id, table_name, project_id, object_name) with id > after, in id
 * order, at most limit, from the read database. */
int store_changes(store *st, int64_t after, int64_t limit, rowset *out, db_err *err);
/* One row: the largest id in the change log (0 when empty). */
int store_changes_head(store *st, rowset *out, db_err *err);
/* One row: how many change log rows have after < id <= upto. */
int store_changes_count(store *st, int64_t after, int64_t upto, rowset *out, db_err *err);
/* Deletes change log rows older than before (seconds since the epoch). */
int store_prune_changes(store *st, int64_t before, int64_t *deleted, db_err *err);
/* One row (table name) per registry table missing on the write (read=0) or
 * read (read=1) database. */
int store_missing_tables(store *st, int read, rowset *out, db_err *err);

/* Bookkeeping done in the same transaction as an object write. */
typedef struct {
    int64_t now;        /* seconds since the epoch, stored in last_updated_timestamp */
    sref project_proto; /* when p != NULL: create the project with this proto if missing */
    sref project_uuid;  /* when p != NULL: record project_uuid if missing */
    int touch_metadata; /* update feast_metadata.last_updated_timestamp */
    /* When version_type.p != NULL (store_apply only) and the object is
     * inserted: also record the applied proto as version version_number of
     * the feature view, in the same transaction (DB_ERR_INTEGRITY, nothing
     * written, if that number is taken). */
    sref version_type, version_id;
    int64_t version_number;
    /* store_apply only. expect_set: apply only if the stored row is still
     * exactly expect (expect.p == NULL: still missing), else nothing is
     * written and *raced = 1: the caller decided on what it read, and
     * decides again (also when a version number it records was taken
     * meanwhile: the transaction is rolled back). With expect_set the version above is recorded
     * whether the row was inserted or updated (the bytes written, merged),
     * and old_version_id.p != NULL also records the stored bytes as version
     * 0 first. versions_only: record the versions, leave the row as it is. */
    int expect_set;
    sref expect;
    sref old_version_id;
    int versions_only;
} write_ctx;

/* One row (table, column) per serialized-proto column of a registry table
 * that is still of a type too narrow for large protos (MySQL BLOB), on the
 * write (read=0) or read (read=1) database; none where the dialect has no
 * such type. Other tables' columns are not reported. */
int store_narrow_blob_columns(store *st, int read, rowset *out, db_err *err);

/* Stored rows are checked before they are returned: a row whose proto is
 * NULL, not bytes, or not a parseable object of its kind is a "bad row".
 * Keys are compared byte for byte, whatever the database's collation. */

/* 0 or 1 rows of (proto, name, project_id). A bad row is DB_ERR_DATA naming
 * the table, project and object. primary != 0 reads from the write
 * database, for read-modify-write decisions that must not see a lagging
 * replica. */
int store_get(store *st, obj_kind k, sref project, sref name, int primary, rowset *out,
              db_err *err);
/* What an apply decides on, read from the write database in one statement:
 * the object's stored row as store_get gives it (0 or 1 rows, proto in
 * column 0), *taken = the index in others of the first other kind holding
 * an object of the same name in the project (-1: none), and, when versions
 * != 0, *next_version = the feature view's next version number (0 when it
 * has no history), and *has_project: 1 when the project's row exists, | 2
 * when its project_uuid metadata does (not read for OBJ_PROJECT). At most 3
 * others. */
int store_read_for_apply(store *st, obj_kind k, sref project, sref name, const obj_kind *others,
                         int nothers, int versions, rowset *out, int *taken, int64_t *next_version,
                         int *has_project, db_err *err);
/* Rows of (name, proto, project_id); bad rows are left out and listed in
 * *bad as (table, project, name, reason). since < 0: no lower bound on
 * last_updated_timestamp. primary: from the write database, never a
 * replica (what an apply decides on). */
int store_list(store *st, obj_kind k, sref project, int64_t since, int primary, rowset *out,
               rowset *bad, db_err *err);
/* Rows of (project_id, proto); bad rows are left out and listed in *bad. */
int store_list_projects(store *st, rowset *out, rowset *bad, db_err *err);
/* The rows of one read-only statement of the caller's (no parameters), on
 * the read database, or with primary on the write database: what
 * `python -m feast_sqlreg doctor` asks the server (catalog tables, server
 * settings). */
int store_inspect(store *st, int primary, const char *sql, rowset *out, db_err *err);

/* Inserts the object, or updates it keeping the stored created_timestamp
 * (and intervals, see pb_merge_for_update). *inserted tells which. A stored
 * key that only the database's collation equates with this one (stored
 * 'Driver', applied 'driver') is DB_ERR_DUPLICATE, never overwritten. */
int store_apply(store *st, obj_kind k, sref project, sref name, sref proto, const write_ctx *w,
                int *inserted, int *raced, db_err *err);
/* Several store_apply calls, each with expect_set, in one transaction:
 * all are written, or (*raced = 1: one of the rows was not as expected, or
 * a version number was taken) none. */
typedef struct {
    obj_kind k;
    sref project, name, proto;
    write_ctx w;
} store_batch_item;
int store_apply_batch(store *st, const store_batch_item *items, size_t n, int *raced,
                      db_err *err);
int store_delete(store *st, obj_kind k, sref project, sref name, const write_ctx *w,
                 int64_t *deleted, db_err *err);
/* Deletes a feature view of any kind and its version history. */
int store_delete_feature_view(store *st, sref project, sref name, const write_ctx *w,
                              int64_t *deleted, db_err *err);
/* Appends a materialization interval under a row lock. *found = 0 when the
 * feature view does not exist. */
int store_apply_materialization(store *st, obj_kind k, sref project, sref name, pb_ts start,
                                pb_ts end, pb_ts now, const write_ctx *w, int *found, db_err *err);
int store_set_user_metadata(store *st, obj_kind k, sref project, sref name, const sref *data,
                            int64_t now, int *found, db_err *err);
/* 0 rows: no such feature view; 1 row: (user_metadata or NULL). */
int store_get_user_metadata(store *st, obj_kind k, sref project, sref name, rowset *out,
                            db_err *err);

int store_delete_project(store *st, sref project, db_err *err);
/* Deletes every object of every project (projects and metadata stay), as
 * Feast's teardown does. */
int store_teardown(store *st, db_err *err);

/* feast_metadata. get: (value, last_updated); list: (key, value, last_updated). */
int store_meta_get(store *st, sref project, sref key, rowset *out, db_err *err);
int store_meta_list(store *st, sref project, rowset *out, db_err *err);
/* All (project_id, last_updated_timestamp) rows of one key. */
int store_meta_by_key(store *st, sref key, rowset *out, db_err *err);
int store_meta_set(store *st, sref project, sref key, sref value, int64_t now, db_err *err);
/* Records key = value unless the project already has the key. */
int store_meta_init(store *st, sref project, sref key, sref value, int64_t now, db_err *err);
int store_meta_delete_project(store *st, sref project, db_err *err);

/* Feature view version history. save fails with DB_ERR_INTEGRITY when the
 * version number is taken. get: (type, proto); list: (number, type,
 * created, version_id). */
int store_version_next(store *st, sref project, sref name, int64_t *next, db_err *err);
int store_version_save(store *st, sref project, sref name, int64_t number, sref type, sref proto,
                       int64_t created, sref version_id, db_err *err);
int store_version_get(store *st, sref project, sref name, int64_t number, rowset *out, db_err *err);
int store_version_list(store *st, sref project, sref name, rowset *out, db_err *err);

/* The whole registry as one serialized feast.core.Registry, assembled from
 * the stored bytes in one read transaction. Bad rows (and every object of a
 * project whose own row is bad) are left out and listed in *bad as
 * (table, project, name, reason): one bad row does not stop the rest of
 * the registry from being served. */
int store_registry(store *st, buf *out, rowset *bad, db_err *err);

#endif
