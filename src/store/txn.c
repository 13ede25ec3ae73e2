/* txn.c - the transaction runner: run() takes a pooled connection, runs a
 * function in a transaction, and retries what can safely be retried. */
#include "store/store_internal.h"

#include <stdint.h>
#include <stdlib.h>
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

enum { WRITE_ATTEMPTS = 8 };

/* Runs fn on a pooled connection, in a transaction unless mode is NO_TXN.
 * A write that lost a deadlock or a lock wait is rolled back by the server
 * and retried here, after a jittered backoff (up to WRITE_ATTEMPTS in all:
 * InnoDB deadlocks writers racing to create one row, by design); nothing
 * else is retried, so a write is never applied twice. */
int run(store *st, txn_mode mode, txn_fn fn, void *ctx, db_err *err) {
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
            atomic_fetch_add(&st->reconnects, 1);
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
            atomic_fetch_add(&st->replans, 1);
            pool_drain(p);
            replanned = 1;
            attempt--;
            continue;
        }
        /* SQLite reports BUSY only after its busy handler waited `timeout`. */
        if (err->kind != DB_ERR_BUSY || mode != WRITE_TXN || !st->dialect->retry_busy ||
            attempt >= WRITE_ATTEMPTS)
            return -1;
        atomic_fetch_add(&st->conflict_retries, 1);
        backoff(attempt);
    }
}

int exec(const db_driver *d, db_conn *c, const char *sql, const db_value *params, int n,
         rowset *out, int64_t *affected, db_err *err) {
    return d->exec(c, sql, params, n, out ? rowset_add : NULL, out, affected, err);
}
