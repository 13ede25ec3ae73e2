/* pool.c - see pool.h. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    db_conn *conn;
    double opened; /* when it was connected: pool_recycle counts from here */
} pooled_conn;

struct pool {
    db_url url;
    const db_driver *drv;
    pool_opts opts;
    int capacity; /* size + max_overflow */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    int nopen; /* checked out + idle */
    int nidle;
    pooled_conn *idle;
    pooled_conn *out; /* checked out, so checkin knows each one's age */
    int nout;
    pid_t pid;
};

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

pool *pool_new(db_url *url, const pool_opts *opts, db_err *err) {
    const db_driver *drv = db_driver_for(url, err);
    if (!drv) {
        url_free(url);
        return NULL;
    }
    pool *p = calloc(1, sizeof(*p));
    if (!p) {
        url_free(url);
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "out of memory");
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
    if (!p->idle || !p->out) {
        free(p->idle);
        free(p->out);
        url_free(&p->url);
        free(p);
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->pid = getpid();
    return p;
}

void pool_free(pool *p) {
    if (!p) return;
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

/* Called with mu held: forget what a forked child inherited. Closing those
 * connections would end the parent's sessions on the server. */
static void after_fork_locked(pool *p) {
    pid_t pid = getpid();
    if (pid == p->pid) return;
    p->pid = pid;
    p->nidle = 0;
    p->nopen = 0;
    p->nout = 0;
}

/* Called with mu held. */
static void mark_out(pool *p, db_conn *c, double opened) {
    if (p->nout < p->capacity) {
        p->out[p->nout].conn = c;
        p->out[p->nout].opened = opened;
        p->nout++;
    }
}

/* Called with mu held: when c was opened (now if unknown). */
static double take_out(pool *p, db_conn *c) {
    for (int i = 0; i < p->nout; i++)
        if (p->out[i].conn == c) {
            double opened = p->out[i].opened;
            p->out[i] = p->out[--p->nout];
            return opened;
        }
    return now_mono();
}

db_conn *pool_checkout(pool *p, db_err *err) {
    double deadline = now_mono() + (p->opts.timeout > 0 ? p->opts.timeout : 30.0);
    pthread_mutex_lock(&p->mu);
    after_fork_locked(p);
    for (;;) {
        while (p->nidle > 0) {
            pooled_conn ic = p->idle[--p->nidle];
            double age = now_mono() - ic.opened;
            int stale = p->opts.recycle >= 0 && age > p->opts.recycle;
            if (!stale && p->opts.pre_ping) {
                /* Ping outside the lock: it is a network round trip. */
                pthread_mutex_unlock(&p->mu);
                db_err perr;
                stale = p->drv->ping(ic.conn, &perr) != 0;
                pthread_mutex_lock(&p->mu);
            }
            if (!stale) {
                mark_out(p, ic.conn, ic.opened);
                pthread_mutex_unlock(&p->mu);
                return ic.conn;
            }
            p->drv->close(ic.conn);
            p->nopen--;
        }
        if (p->nopen < p->capacity) {
            p->nopen++;
            pthread_mutex_unlock(&p->mu);
            double opened = now_mono();
            db_conn *c = p->drv->connect(&p->url, err);
            pthread_mutex_lock(&p->mu);
            if (c) {
                mark_out(p, c, opened);
            } else {
                p->nopen--;
                pthread_cond_signal(&p->freed);
            }
            pthread_mutex_unlock(&p->mu);
            return c;
        }
        double left = deadline - now_mono();
        if (left <= 0) {
            pthread_mutex_unlock(&p->mu);
            db_err_set(err, DB_ERR_BUSY, 0, NULL,
                       "timed out after %.1f s waiting for a free registry connection "
                       "(%d in use; raise pool_size or max_overflow)",
                       p->opts.timeout, p->capacity);
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double when = (double)ts.tv_sec + ts.tv_nsec / 1e9 + left;
        ts.tv_sec = (time_t)when;
        ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&p->freed, &p->mu, &ts);
        after_fork_locked(p);
    }
}

void pool_checkin(pool *p, db_conn *c, int broken) {
    if (!c) return;
    pthread_mutex_lock(&p->mu);
    if (p->pid != getpid()) {
        /* Checked out before a fork in another process image: not ours. */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    double opened = take_out(p, c);
    if (broken || p->nidle >= p->opts.size) {
        p->nopen--;
        pthread_mutex_unlock(&p->mu);
        p->drv->close(c);
        pthread_mutex_lock(&p->mu);
    } else {
        p->idle[p->nidle].conn = c;
        p->idle[p->nidle].opened = opened;
        p->nidle++;
    }
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}
