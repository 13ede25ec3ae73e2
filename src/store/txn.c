/* txn.c - the transaction runner: run() takes a pooled connection, runs a
 * function in a transaction, and retries what can safely be retried. */
#include "store/store_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A connection error leaves the connection unusable: close it, do not pool
 * it again. */
int is_broken(const db_err *err) {
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

/* A write that keeps losing is given up after this long: with many writers
 * on one row on a Galera cluster (each certification conflict aborts all
 * but one of the writers, at COMMIT), a count of attempts runs out while
 * the writers still make progress; time does not. */
#define WRITE_RETRY_SECONDS 20.0
/* A lock wait that timed out (PostgreSQL's lock_timeout, 55P03; MySQL's
 * innodb_lock_wait_timeout, 1205, or NOWAIT, 3572) means a transaction
 * holds the row for longer than the caller's setting allows: a few
 * attempts, not WRITE_RETRY_SECONDS of them. */
enum { LOCK_WAIT_ATTEMPTS = 8 };

static int lock_wait_timed_out(const db_err *err) {
    return strcmp(err->sqlstate, "55P03") == 0 || err->code == 1205 || err->code == 3572;
}

static double since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* With several servers in the URL (?host=A&host=B: a primary and its
 * standbys, a Galera cluster) a call that finds none to connect to keeps
 * trying for this long: a failover (Patroni promotes a standby within its
 * 30 s leader TTL) is then a pause, not an error. */
#define FAILOVER_WAIT_SECONDS 30.0

static int several_hosts(pool *p) {
    const db_url *u = pool_url(p);
    int n = 0;
    for (int i = 0; i < u->nquery; i++)
        n += strcmp(u->qkey[i], "host") == 0;
    return n > 1;
}

/* Runs fn on a pooled connection, in a transaction unless mode is NO_TXN.
 * A write that lost a deadlock, a lock wait or a Galera certification is
 * rolled back by the server and retried here, after a jittered backoff,
 * for up to WRITE_RETRY_SECONDS (InnoDB deadlocks writers racing to create
 * one row, by design). With several servers in the URL, a transaction whose
 * connection was lost before its COMMIT was sent (rolled back by the
 * server) is run again on a new connection, and a call that finds no
 * server waits up to FAILOVER_WAIT_SECONDS for one. Nothing else is retried:
 * a lost COMMIT's outcome is unknown, and a write is never applied twice. */
int run(store *st, txn_mode mode, txn_fn fn, void *ctx, db_err *err) {
    pool *p = mode == WRITE_TXN || mode == PRIMARY_READ ? st->wpool : st->rpool;
    const db_driver *d = pool_driver(p);
    int always_ping = 0, replanned = 0;
    int check_replica = p != st->wpool && tracks_replica(st);
    struct timespec first;
    clock_gettime(CLOCK_MONOTONIC, &first);
    int failover = -1; /* several_hosts(p), once needed */
    int lost = 0;      /* transactions run again after their connection went */
    int waited = 0;    /* rounds of the hosts that found no server */
    for (int attempt = 1;; attempt++) {
        db_err_clear(err);
        int unpinged = 0;
        db_conn *c = pool_checkout(p, always_ping, &unpinged, err);
        if (!c) {
            if (err->kind != DB_ERR_CONNECT) return -1;
            if (failover < 0) failover = several_hosts(p);
            if (!failover || since(&first) >= FAILOVER_WAIT_SECONDS) return -1;
            if (!waited++) atomic_fetch_add(&st->failovers, 1);
            struct timespec nap = {0, 100000000L}; /* 0.1 s between rounds of the hosts */
            nanosleep(&nap, NULL);
            attempt--;
            continue;
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rv = 0, at_begin = 0, at_commit = 0;
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
        if (rv == 0 && txn) {
            at_commit = 1;
            rv = d->commit(c, err);
        }
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
        double took = since(&t0);
        if (unpinged && !always_ping && err->kind == DB_ERR_CONNECT && took < 0.5 &&
            (at_begin || mode == NO_TXN || mode == READ_TXN)) {
            atomic_fetch_add(&st->reconnects, 1);
            always_ping = 1;
            attempt--;
            continue;
        }
        /* The connection went inside a transaction, before its COMMIT:
         * the server rolled it back. With several servers in the URL (a
         * failover), the transaction runs again on one that answers. With
         * one server, the caller is told: a server that restarted after a
         * crash may still be rolling back the transactions it recovered
         * (MariaDB does so in the background, and a write at once can
         * collide with their rows). */
        if (err->kind == DB_ERR_CONNECT && txn && !at_commit &&
            (failover < 0 ? (failover = several_hosts(p)) : failover) &&
            since(&first) < WRITE_RETRY_SECONDS) {
            always_ping = 1;
            atomic_fetch_add(&st->failovers, 1);
            backoff(++lost);
            attempt--;
            continue;
        }
        /* A statement this connection prepared before someone altered its
         * table: the statement failed and its transaction rolled back, so
         * nothing was applied. Every pooled connection may hold such plans:
         * the pool retires them all, and the call runs once more on a new
         * connection. */
        if (err->kind == DB_ERR_STALE_PLAN && !replanned) {
            atomic_fetch_add(&st->replans, 1);
            pool_drain(p);
            replanned = 1;
            attempt--;
            continue;
        }
        /* SQLite reports BUSY only after its busy handler waited `timeout`. */
        if (err->kind != DB_ERR_BUSY || mode != WRITE_TXN || !st->dialect->retry_busy ||
            since(&first) >= WRITE_RETRY_SECONDS ||
            (lock_wait_timed_out(err) && attempt >= LOCK_WAIT_ATTEMPTS))
            return -1;
        atomic_fetch_add(&st->conflict_retries, 1);
        backoff(attempt);
    }
}

int exec(const db_driver *d, db_conn *c, const char *sql, const db_value *params, int n,
         rowset *out, int64_t *affected, db_err *err) {
    return d->exec(c, sql, params, n, out ? rowset_add : NULL, out, affected, err);
}
