/* replica.c - read-your-writes when read_path names a replica: the log
 * positions this store's commits reach, and waiting for the replica to
 * replay them before reading it (store_set_replica_wait in store.h). */
#include "store/store_internal.h"

#include <stdatomic.h>
#include <time.h>

void store_set_replica_wait(store *st, double seconds) {
    st->replica_wait = seconds;
}

void store_replica_stats_get(store *st, store_replica_stats *out) {
    out->written = atomic_load(&st->written_pos);
    out->replayed = atomic_load(&st->replayed_pos);
    out->waits = atomic_load(&st->replica_waits);
    out->fallbacks = atomic_load(&st->replica_fallbacks);
}

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

int tracks_replica(const store *st) {
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
int note_write(store *st, const db_driver *d, db_conn *c) {
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

/* After DDL on c that committed outside any transaction (MySQL commits
 * each DDL statement by itself, not through run()'s WRITE_TXN commit): its
 * position is noted as a write's, so the first reads of a brand-new
 * registry wait for the replica to have the tables (or read the primary)
 * instead of failing there. Where DDL runs in a write transaction
 * (PostgreSQL), its commit noted the position already. */
void note_ddl(store *st, const db_driver *d, db_conn *c) {
    if (!st->dialect->ddl_in_transaction && tracks_replica(st))
        (void)note_write(st, d, c); /* a broken c fails its next use, and is replaced */
}

/* Before a read on c (the read database): 1 when the replica has replayed
 * every write this store committed, waiting up to replica_wait seconds for
 * it; 0 when it has not (the caller reads the primary); -1 on error. A read
 * database that is not a replica (NULL position) has nothing to wait for. */
int replica_ready(store *st, const db_driver *d, db_conn *c, db_err *err) {
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
