/* test_pool.c - the connection pool on SQLite, without Python: bounds and
 * timeouts, pool_drain, and fork() while other threads hammer the pool lock
 * (a child must never inherit it locked). Last line: "pool: N passed, N
 * failed".
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "db/pool.h"
#include "db/url.h"

static char dbpath[64];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static pool *make_pool(int size, int overflow, double timeout, int pre_ping) {
    char text[128], uerr[256];
    snprintf(text, sizeof(text), "sqlite:///%s", dbpath);
    db_url u;
    if (url_parse(text, &u, uerr, sizeof(uerr)) != 0) {
        fprintf(stderr, "url_parse: %s\n", uerr);
        return NULL;
    }
    pool_opts o = {size, overflow, timeout, -1, pre_ping};
    db_err err;
    pool *p = pool_new(&u, &o, &err);
    if (!p) fprintf(stderr, "pool_new: %s\n", err.msg);
    return p;
}

/* One statement on a checked-out connection; 0 on success. */
static int select_one(pool *p) {
    db_err err;
    db_conn *c = pool_checkout(p, 0, NULL, &err);
    if (!c) return -1;
    int rv = pool_driver(p)->exec(c, "SELECT 1", NULL, 0, NULL, NULL, NULL, &err);
    pool_checkin(p, c, rv != 0);
    return rv;
}

static void test_bounds(void) {
    pool *p = make_pool(1, 0, 0.2, 1);
    CHECK(p != NULL);
    if (!p) return;
    db_err err;
    db_conn *c = pool_checkout(p, 0, NULL, &err);
    CHECK(c != NULL);
    double t0 = now();
    db_conn *c2 = pool_checkout(p, 0, NULL, &err);
    double waited = now() - t0;
    CHECK(c2 == NULL && err.kind == DB_ERR_BUSY);
    CHECK(waited >= 0.19 && waited < 1.0);
    pool_checkin(p, c, 0);
    c2 = pool_checkout(p, 0, NULL, &err);
    CHECK(c2 == c); /* the idle one, reused */
    pool_checkin(p, c2, 0);
    pool_free(p);
}

static void test_drain(void) {
    pool *p = make_pool(1, 0, 0.2, 0);
    CHECK(p != NULL);
    if (!p) return;
    db_err err;
    /* Idle connections are closed now; the pool opens a new one on demand
     * (a leaked slot would make the next checkout time out: capacity 1). */
    CHECK(select_one(p) == 0);
    pool_drain(p);
    CHECK(select_one(p) == 0);
    /* A connection checked out during the drain is closed when it comes
     * back, and its slot is freed. */
    db_conn *c = pool_checkout(p, 0, NULL, &err);
    CHECK(c != NULL);
    pool_drain(p);
    pool_checkin(p, c, 0);
    CHECK(select_one(p) == 0);
    pool_drain(p);
    pool_drain(p); /* nothing idle: a no-op */
    CHECK(select_one(p) == 0);
    pool_free(p);
}

/* pool_stats: connections in use and idle now, connects, and the
 * checkouts that waited for a connection (and timed out). */
static void test_stats(void) {
    pool *p = make_pool(1, 0, 0.1, 0);
    CHECK(p != NULL);
    if (!p) return;
    pool_stats s;
    pool_stats_get(p, &s);
    CHECK(s.capacity == 1 && s.open == 0 && s.in_use == 0 && s.idle == 0);
    CHECK(s.connects == 0 && s.waits == 0 && s.timeouts == 0 && s.wait_seconds == 0);
    db_err err;
    db_conn *c = pool_checkout(p, 0, NULL, &err);
    CHECK(c != NULL);
    pool_stats_get(p, &s);
    CHECK(s.open == 1 && s.in_use == 1 && s.idle == 0 && s.connects == 1);
    CHECK(pool_checkout(p, 0, NULL, &err) == NULL); /* waits 0.1 s, then times out */
    pool_stats_get(p, &s);
    CHECK(s.waits == 1 && s.timeouts == 1);
    CHECK(s.wait_seconds >= 0.09 && s.wait_seconds < 1.0);
    pool_checkin(p, c, 0);
    pool_stats_get(p, &s);
    CHECK(s.open == 1 && s.in_use == 0 && s.idle == 1);
    CHECK(select_one(p) == 0); /* the idle one: no wait, no connect */
    pool_stats_get(p, &s);
    CHECK(s.connects == 1 && s.waits == 1 && s.timeouts == 1);
    pool_drain(p);
    pool_stats_get(p, &s);
    CHECK(s.open == 0 && s.idle == 0);
    pool_free(p);
}

/* A waiter woken by a checkin in another thread. */
static void *hold_then_checkin(void *arg) {
    void **a = arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pool_checkin(a[0], a[1], 0);
    return NULL;
}

/* pre_ping skips a connection that came back under a second ago, and says
 * so; an older one, or always_ping, is pinged. */
static void test_recent_connections_skip_the_ping(void) {
    pool *p = make_pool(1, 0, 1.0, 1);
    CHECK(p != NULL);
    if (!p) return;
    db_err err;
    int unpinged = -1;
    db_conn *c = pool_checkout(p, 0, &unpinged, &err);
    CHECK(c != NULL && unpinged == 0); /* a new connection */
    pool_checkin(p, c, 0);
    c = pool_checkout(p, 0, &unpinged, &err);
    CHECK(c != NULL && unpinged == 1); /* back a moment ago: not pinged */
    pool_checkin(p, c, 0);
    c = pool_checkout(p, 1, &unpinged, &err);
    CHECK(c != NULL && unpinged == 0); /* always_ping */
    pool_checkin(p, c, 0);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    c = pool_checkout(p, 0, &unpinged, &err);
    CHECK(c != NULL && unpinged == 0); /* idle for over a second: pinged */
    pool_checkin(p, c, 0);
    pool_free(p);
}

static void test_waiter_is_woken(void) {
    pool *p = make_pool(1, 0, 5.0, 0);
    CHECK(p != NULL);
    if (!p) return;
    db_err err;
    db_conn *c = pool_checkout(p, 0, NULL, &err);
    void *args[2] = {p, c};
    pthread_t th;
    pthread_create(&th, NULL, hold_then_checkin, args);
    double t0 = now();
    db_conn *c2 = pool_checkout(p, 0, NULL, &err);
    CHECK(c2 == c && now() - t0 < 2.0);
    pthread_join(th, NULL);
    /* It waited about 0.1 s and got the connection: a wait, no timeout. */
    pool_stats s;
    pool_stats_get(p, &s);
    CHECK(s.waits == 1 && s.timeouts == 0 && s.in_use == 1);
    CHECK(s.wait_seconds >= 0.05 && s.wait_seconds < 2.0);
    pool_checkin(p, c2, 0);
    pool_free(p);
}

static _Atomic int hammering;

static void *hammer(void *arg) {
    pool *p = arg;
    db_err err;
    while (hammering) {
        db_conn *c = pool_checkout(p, 0, NULL, &err);
        if (c) pool_checkin(p, c, 0);
    }
    return NULL;
}

/* The child of a fork made while other threads take and give back the pool
 * lock in a tight loop: without fork handlers it often inherits the lock
 * held and hangs on its first checkout. */
static void test_fork_under_load(void) {
    pool *p = make_pool(2, 2, 5.0, 0);
    CHECK(p != NULL);
    if (!p) return;
    /* Both hammer threads' connections are opened before they start: they
     * then only take and give back the pool lock, never SQLite's own global
     * mutexes (which have no fork handlers: a child forked while another
     * thread is inside sqlite3_open can inherit one held, the limit the
     * README states). */
    db_err err;
    db_conn *warm[2];
    for (int i = 0; i < 2; i++)
        warm[i] = pool_checkout(p, 0, NULL, &err);
    CHECK(warm[0] && warm[1]);
    for (int i = 0; i < 2; i++)
        if (warm[i]) pool_checkin(p, warm[i], 0);
    CHECK(select_one(p) == 0);
    hammering = 1;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, hammer, p);
    int ok = 0, hung = 0, bad = 0;
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* Only this thread exists here; its own connections only. */
            int rc = select_one(p) == 0 && select_one(p) == 0 ? 0 : 1;
            _exit(rc);
        }
        if (pid < 0) {
            bad++;
            continue;
        }
        double deadline = now() + 10.0;
        int status = 0;
        pid_t got = 0;
        while ((got = waitpid(pid, &status, WNOHANG)) == 0 && now() < deadline) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (got == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            hung++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else {
            bad++;
        }
    }
    hammering = 0;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (hung || bad) fprintf(stderr, "fork under load: %d ok, %d hung, %d failed\n", ok, hung, bad);
    CHECK(hung == 0);
    CHECK(bad == 0 && ok == 100);
    /* The parent's pool is intact. */
    CHECK(select_one(p) == 0);
    pool_free(p);
}

int main(void) {
    snprintf(dbpath, sizeof(dbpath), "/tmp/fsr-pool-XXXXXX");
    int fd = mkstemp(dbpath);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    test_bounds();
    test_drain();
    test_stats();
    test_waiter_is_woken();
    test_recent_connections_skip_the_ping();
    test_fork_under_load();
    unlink(dbpath);
    return check_report("pool");
}
