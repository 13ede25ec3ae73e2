/* pool.c - see pool.h. */
#include "db/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    db_conn *conn;
    double opened; /* when it was connected: pool_recycle counts from here */
    unsigned gen;  /* p->gen when it was opened: pool_drain retires older ones */
    double used;   /* when it last came back (or was opened) */
} pooled_conn;

/* pre_ping skips a connection that came back this recently: it answered a
 * moment ago, and the ping (a round trip, 40-80 us on a local server) would
 * be most of a small read. A caller that finds it dead after all is told
 * it was not pinged (pool_checkout's *unpinged) and may retry. */
#define PING_AFTER_SECONDS 1.0

struct pool {
    db_url url;
    const db_driver *drv;
    pool_opts opts;
    int capacity; /* size + max_overflow */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    int nopen; /* checked out + idle + being pinged, connected or closed */
    int nidle;
    pooled_conn *idle;
    pooled_conn *out; /* checked out, so checkin knows each one's age */
    int nout;
    unsigned gen;
    pid_t pid;
    pool *prev, *next; /* every live pool, for the fork handlers */
    /* pool_stats' counts, under mu. */
    uint64_t connects, connect_failures, waits, timeouts;
    double wait_seconds;
};

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- fork ---------------------------------------------------------------- */

/* Every live pool. fork() copies only the calling thread: a pool mutex that
 * another thread held at that moment would stay locked forever in the child.
 * The prepare handler therefore takes every pool mutex (so no other thread
 * holds one across the fork), the parent handler gives them back, and the
 * child handler unlocks them (the forking thread owns them in the child
 * too), re-initialises the condition variables (their waiters do not exist
 * in the child) and forgets the inherited connections. Lock order: live_mu,
 * then a pool's mu. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pool *live;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_rc;

static void fork_prepare(void) {
    pthread_mutex_lock(&live_mu);
    for (pool *p = live; p; p = p->next)
        pthread_mutex_lock(&p->mu);
}

static void fork_parent(void) {
    for (pool *p = live; p; p = p->next)
        pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&live_mu);
}

/* Waits on freed use the monotonic clock: a wall-clock step (NTP, a VM
 * resumed) must not stretch or cut short pool_timeout. */
static int init_cond(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

/* Called with mu held: forget what a forked child inherited. Closing those
 * connections would end the parent's sessions on the server (libpq and the
 * MySQL library say goodbye on close), and their statement caches and
 * transactions are the parent's. Their memory and sockets are left to the
 * child's exit. */
static void forget_inherited(pool *p) {
    p->pid = getpid();
    p->nidle = 0;
    p->nopen = 0;
    p->nout = 0;
    p->gen++;
}

static void fork_child(void) {
    for (pool *p = live; p; p = p->next) {
        pthread_mutex_unlock(&p->mu);
        /* Not destroyed: glibc's destroy would wait for the vanished
         * waiters. A failure leaves the old one, with no waiters in this
         * process: still usable. */
        init_cond(&p->freed);
        forget_inherited(p);
    }
    pthread_mutex_unlock(&live_mu);
}

static void atfork_init(void) {
    atfork_rc = pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Called with mu held: the pid check still catches a child made without
 * the fork handlers (a raw clone or vfork-like spawn). */
static void after_fork_locked(pool *p) {
    if (getpid() != p->pid) forget_inherited(p);
}

/* ---- life cycle ---------------------------------------------------------- */

pool *pool_new(db_url *url, const pool_opts *opts, db_err *err) {
    pthread_once(&atfork_once, atfork_init);
    if (atfork_rc != 0) {
        url_free(url);
        db_err_set(err, DB_ERR_INTERFACE, atfork_rc, NULL,
                   "could not register the connection pool's fork handlers");
        return NULL;
    }
    const db_driver *drv = db_driver_for(url, err);
    if (!drv) {
        url_free(url);
        return NULL;
    }
    pool *p = calloc(1, sizeof(*p));
    if (!p) {
        url_free(url);
        db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory");
        return NULL;
    }
    p->url = *url;
    memset(url, 0, sizeof(*url));
    p->drv = drv;
    p->opts = *opts;
    if (p->opts.size < 1) p->opts.size = 1;
    if (p->opts.max_overflow < 0) p->opts.max_overflow = 0;
    p->capacity = p->opts.size + p->opts.max_overflow;
    /* Each connection to ":memory:" is a database of its own: keep exactly
     * one, forever, as SQLAlchemy's pool for SQLite memory databases does. */
    if (url_is_sqlite_memory(&p->url)) {
        p->capacity = p->opts.size = 1;
        p->opts.recycle = -1;
    }
    p->idle = calloc((size_t)p->capacity, sizeof(pooled_conn));
    p->out = calloc((size_t)p->capacity, sizeof(pooled_conn));
    int have_mu = 0, have_cond = 0;
    if (p->idle && p->out) have_mu = pthread_mutex_init(&p->mu, NULL) == 0;
    if (have_mu) have_cond = init_cond(&p->freed) == 0;
    if (!have_cond) {
        if (have_mu) pthread_mutex_destroy(&p->mu);
        free(p->idle);
        free(p->out);
        url_free(&p->url);
        free(p);
        db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory");
        return NULL;
    }
    p->pid = getpid();
    pthread_mutex_lock(&live_mu);
    p->next = live;
    if (live) live->prev = p;
    live = p;
    pthread_mutex_unlock(&live_mu);
    return p;
}

void pool_free(pool *p) {
    if (!p) return;
    pthread_mutex_lock(&live_mu);
    if (p->prev)
        p->prev->next = p->next;
    else
        live = p->next;
    if (p->next) p->next->prev = p->prev;
    pthread_mutex_unlock(&live_mu);
    /* No other thread uses p any more: the caller owns it. */
    if (p->pid == getpid())
        for (int i = 0; i < p->nidle; i++)
            p->drv->close(p->idle[i].conn);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    free(p->idle);
    free(p->out);
    url_free(&p->url);
    free(p);
}

const db_driver *pool_driver(const pool *p) {
    return p->drv;
}
const db_url *pool_url(const pool *p) {
    return &p->url;
}

/* ---- checkout / checkin -------------------------------------------------- */

/* Called with mu held. */
static void mark_out(pool *p, const pooled_conn *pc) {
    if (p->nout < p->capacity) p->out[p->nout++] = *pc;
}

/* Called with mu held: removes c from the checked-out list into *pc.
 * Returns 0 when c is not there: a connection this process image did not
 * open (checked out before a fork). */
static int take_out(pool *p, db_conn *c, pooled_conn *pc) {
    for (int i = 0; i < p->nout; i++)
        if (p->out[i].conn == c) {
            *pc = p->out[i];
            p->out[i] = p->out[--p->nout];
            return 1;
        }
    return 0;
}

/* Called with mu held; returns with it held. Closes c with the lock
 * released (closing talks to the server, which may be slow or gone), then
 * frees its slot. */
static void close_unlocked(pool *p, db_conn *c) {
    pthread_mutex_unlock(&p->mu);
    p->drv->close(c);
    pthread_mutex_lock(&p->mu);
    p->nopen--;
    pthread_cond_signal(&p->freed);
}

/* Called with mu held: a checkout that waited since `since` (0: it did
 * not wait) is done waiting. */
static void waited_until_now(pool *p, double since) {
    if (since > 0) p->wait_seconds += now_mono() - since;
}

db_conn *pool_checkout(pool *p, int always_ping, int *unpinged, db_err *err) {
    if (unpinged) *unpinged = 0;
    double deadline = now_mono() + (p->opts.timeout > 0 ? p->opts.timeout : 30.0);
    double waiting_since = 0; /* when this checkout began to wait, if it did */
    pthread_mutex_lock(&p->mu);
    after_fork_locked(p);
    for (;;) {
        while (p->nidle > 0) {
            /* Taken off the idle list but still counted in nopen: no other
             * thread can see it while it is pinged or closed. */
            pooled_conn ic = p->idle[--p->nidle];
            double age = now_mono() - ic.opened;
            int stale = ic.gen != p->gen || (p->opts.recycle >= 0 && age > p->opts.recycle);
            int recent = !always_ping && now_mono() - ic.used < PING_AFTER_SECONDS;
            if (!stale && p->opts.pre_ping && recent && unpinged) {
                *unpinged = 1;
            } else if (!stale && p->opts.pre_ping) {
                /* Ping outside the lock: it is a network round trip. */
                pthread_mutex_unlock(&p->mu);
                db_err perr;
                stale = p->drv->ping(ic.conn, &perr) != 0;
                pthread_mutex_lock(&p->mu);
            }
            if (!stale) {
                mark_out(p, &ic);
                waited_until_now(p, waiting_since);
                pthread_mutex_unlock(&p->mu);
                return ic.conn;
            }
            close_unlocked(p, ic.conn);
        }
        if (p->nopen < p->capacity) {
            p->nopen++;
            unsigned gen = p->gen;
            pthread_mutex_unlock(&p->mu);
            pooled_conn pc = {NULL, now_mono(), gen, now_mono()};
            pc.conn = p->drv->connect(&p->url, err);
            pthread_mutex_lock(&p->mu);
            if (pc.conn) {
                mark_out(p, &pc);
                p->connects++;
            } else {
                p->nopen--;
                p->connect_failures++;
                pthread_cond_signal(&p->freed);
            }
            waited_until_now(p, waiting_since);
            pthread_mutex_unlock(&p->mu);
            return pc.conn;
        }
        double left = deadline - now_mono();
        if (waiting_since == 0) {
            waiting_since = now_mono();
            p->waits++;
        }
        if (left <= 0) {
            p->timeouts++;
            waited_until_now(p, waiting_since);
            pthread_mutex_unlock(&p->mu);
            db_err_set(err, DB_ERR_BUSY, 0, NULL,
                       "timed out after %.1f s waiting for a free registry connection "
                       "(%d in use; raise pool_size or max_overflow)",
                       p->opts.timeout, p->capacity);
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double when = (double)ts.tv_sec + ts.tv_nsec / 1e9 + left;
        ts.tv_sec = (time_t)when;
        ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->freed, &p->mu, &ts);
        after_fork_locked(p);
    }
}

void pool_checkin(pool *p, db_conn *c, int broken) {
    if (!c) return;
    pthread_mutex_lock(&p->mu);
    after_fork_locked(p);
    pooled_conn pc;
    if (!take_out(p, c, &pc)) {
        /* Checked out before a fork, in another process image: not ours to
         * close or pool. */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (broken || pc.gen != p->gen || p->nidle >= p->opts.size ||
        (p->drv->reusable && !p->drv->reusable(c))) {
        close_unlocked(p, c);
    } else {
        pc.used = now_mono();
        p->idle[p->nidle++] = pc;
        pthread_cond_signal(&p->freed);
    }
    pthread_mutex_unlock(&p->mu);
}

void pool_drain(pool *p) {
    pthread_mutex_lock(&p->mu);
    after_fork_locked(p);
    /* Connections checked out now are closed when they come back. */
    p->gen++;
    /* At most the connections idle now: checkins meanwhile are not older
     * than this call and are retired by the generation anyway. */
    for (int n = p->nidle; n > 0 && p->nidle > 0; n--) {
        db_conn *c = p->idle[--p->nidle].conn;
        close_unlocked(p, c);
    }
    pthread_mutex_unlock(&p->mu);
}

void pool_stats_get(pool *p, pool_stats *out) {
    pthread_mutex_lock(&p->mu);
    after_fork_locked(p);
    out->capacity = p->capacity;
    out->open = p->nopen;
    out->in_use = p->nout;
    out->idle = p->nidle;
    out->connects = p->connects;
    out->connect_failures = p->connect_failures;
    out->waits = p->waits;
    out->timeouts = p->timeouts;
    out->wait_seconds = p->wait_seconds;
    pthread_mutex_unlock(&p->mu);
}
