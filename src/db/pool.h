/* pool.h - a thread-safe pool of connections to one database URL.
 *
 * A connection is handed to one thread at a time (checkout/checkin), so no
 * two threads ever share a client handle. Idle connections are pinged before
 * reuse when pre_ping is on and closed after `recycle` seconds. No lock is
 * held across network I/O (connect, ping, close).
 *
 * After fork() the child drops (without closing: the parent still uses them)
 * every connection inherited from the parent and opens its own; fork
 * handlers make sure no pool lock is held across the fork, so a child of a
 * busy multi-threaded parent (gunicorn, multiprocessing) cannot deadlock.
 */
#ifndef FEAST_SQLREG_POOL_H
#define FEAST_SQLREG_POOL_H

#include <stdint.h>

#include "db/db.h"

typedef struct pool pool;

/* What SQLAlchemy's "no limit" (pool_size 0, max_overflow -1) becomes. */
#define POOL_NO_LIMIT 1024

typedef struct {
    int size;         /* connections kept open when idle (pool_size) */
    int max_overflow; /* extra connections allowed under load */
    double timeout;   /* seconds to wait for a free connection */
    double recycle;   /* close connections older than this; <0 never */
    int pre_ping;
} pool_opts;

/* Takes ownership of *url (on success and failure alike). Returns NULL with
 * err filled when there is no driver for the URL. No connection is opened
 * yet. */
pool *pool_new(db_url *url, const pool_opts *opts, db_err *err);
void pool_free(pool *p);
const db_driver *pool_driver(const pool *p);
const db_url *pool_url(const pool *p);

/* A connection for the calling thread, or NULL with err filled (connect
 * failure, or timed out waiting for a free connection). With pre_ping on,
 * a connection back for less than a second is not pinged when unpinged is
 * not NULL (*unpinged is then set to 1: a caller that finds it dead may
 * retry with always_ping); always_ping pings every reused connection. */
db_conn *pool_checkout(pool *p, int always_ping, int *unpinged, db_err *err);
/* Gives c back. broken != 0 closes it instead (after a connection error). */
void pool_checkin(pool *p, db_conn *c, int broken);
/* Closes every idle connection now, and each connection checked out now
 * when it comes back. The pool stays usable: later checkouts open new
 * connections on demand. */
void pool_drain(pool *p);

/* What a pool holds now, and what its checkouts met so far (for metrics).
 * The counts run from pool_new, across a fork() too; the connections are
 * this process's own. */
typedef struct {
    int capacity; /* size + max_overflow */
    int open;     /* connections counted against capacity: in use, idle, being opened */
    int in_use;   /* checked out now */
    int idle;
    uint64_t connects, connect_failures;
    uint64_t waits;      /* checkouts that found every connection in use and waited */
    uint64_t timeouts;   /* of those, the ones that gave up after pool_timeout */
    double wait_seconds; /* time those checkouts spent waiting */
} pool_stats;
void pool_stats_get(pool *p, pool_stats *out);

#endif
