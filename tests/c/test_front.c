/* test_front.c - the native gRPC front (src/front/front.c) under the sanitizers,
 * with no Python: its answer table, and real HTTP/2 calls through two
 * fronts chained (A relays what it cannot answer to B, B to a port where
 * nothing listens), spoken by an nghttp2 client here; TLS on the client
 * side (OpenSSL's client, certificates made here at run time in a
 * temporary directory), its ALPN and certificate reloads. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/front_checks.h"
#include "check.h"
#include "front/front.h"
#include "front/nghttp2_compat.h"

static const char *METHODS[] = {"/t.S/GetA", "/t.S/GetB"};
static const obj_kind KINDS[] = {OBJ_ENTITY, OBJ_FEATURE_VIEW};

static void table(void) {
    front_answers *a = front_answers_new(0);
    char name[32], msg[32];
    for (int i = 0; i < 5000; i++) { /* grows the table many times */
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(msg, sizeof(msg), "m%d", i);
        CHECK(front_answers_add(a, i % 2, "p", 1, name, strlen(name), msg, strlen(msg)) == 0);
    }
    CHECK(front_answers_count(a) == 5000);
    int all = 1;
    for (int i = 0; i < 5000; i++) {
        size_t mn = 0;
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(msg, sizeof(msg), "m%d", i);
        const uint8_t *m = front_answers_get(a, i % 2, "p", 1, name, strlen(name), &mn);
        all &= m && mn == strlen(msg) && memcmp(m, msg, mn) == 0;
        all &= front_answers_get(a, 1 - i % 2, "p", 1, name, strlen(name), &mn) == NULL;
    }
    CHECK(all);
    /* (project, name) pairs that concatenate alike are different keys. */
    CHECK(front_answers_add(a, 0, "ab", 2, "c", 1, "x", 1) == 0);
    size_t mn;
    CHECK(front_answers_get(a, 0, "a", 1, "bc", 2, &mn) == NULL);
    CHECK(front_answers_get(a, 0, "ab", 2, "c", 1, &mn) != NULL);
    /* A key added twice keeps its first value; empty messages are answers. */
    CHECK(front_answers_add(a, 0, "ab", 2, "c", 1, "yy", 2) == 0);
    CHECK(front_answers_get(a, 0, "ab", 2, "c", 1, &mn) && mn == 1);
    CHECK(front_answers_add(a, 1, "", 0, "", 0, "", 0) == 0);
    CHECK(front_answers_get(a, 1, "", 0, "", 0, &mn) != NULL && mn == 0);
    front_answers_free(a);
}

/* ---- a blocking HTTP/2 client -------------------------------------------- */

typedef struct {
    int fd;
    int32_t id;
    int closed;
    uint32_t code;
    char status[8], grpc_status[8], grpc_message[256];
    uint8_t body[1 << 16];
    size_t n;
} call;

static nghttp2_ssize send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                             void *u) {
    (void)s, (void)flags;
    call *c = u;
    return send(c->fd, data, len, MSG_NOSIGNAL);
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *u) {
    (void)s, (void)f, (void)flags;
    call *c = u;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0 && vlen < 8) memcpy(c->status, value, vlen);
    if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0 && vlen < 8)
        memcpy(c->grpc_status, value, vlen);
    if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0 && vlen < sizeof(c->grpc_message))
        memcpy(c->grpc_message, value, vlen);
    return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *u) {
    (void)s, (void)flags, (void)id;
    call *c = u;
    if (c->n + len <= sizeof(c->body)) memcpy(c->body + c->n, data, len);
    c->n += len;
    return 0;
}

static int close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *u) {
    (void)s, (void)id;
    call *c = u;
    c->closed = 1;
    c->code = code;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
} body;

static nghttp2_ssize body_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                               uint32_t *fl, nghttp2_data_source *src, void *u) {
    (void)s, (void)id, (void)u;
    body *b = src->ptr;
    size_t n = b->n - b->off < len ? b->n - b->off : len;
    memcpy(out, b->p + b->off, n);
    b->off += n;
    if (b->off == b->n) *fl |= NGHTTP2_DATA_FLAG_EOF;
    return (nghttp2_ssize)n;
}

/* The authorization headers unary() sends (none when NULL; a second one
 * too when unary_auth2 is set). */
static const char *unary_auth, *unary_auth2;

/* One unary call on a new connection: path, request message. */
static void unary(int port, const char *path, const uint8_t *msg, size_t mn, call *c) {
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(c->fd);
        return;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback2(cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, close_cb);
    nghttp2_session *s;
    nghttp2_session_client_new(&s, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    uint8_t framed[512] = {0, 0, 0, (uint8_t)(mn >> 8), (uint8_t)mn};
    memcpy(framed + 5, msg, mn);
    body b = {framed, mn + 5, 0};
    nghttp2_data_provider2 prd = {{.ptr = &b}, body_read};
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", path),
                        NV(":authority", "localhost"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers"),
                        NV("authorization", unary_auth ? unary_auth : ""),
                        NV("authorization", unary_auth2 ? unary_auth2 : "")};
    size_t nv = unary_auth ? (unary_auth2 ? 8 : 7) : 6;
    c->id = nghttp2_submit_request2(s, NULL, nva, nv, &prd, NULL);
    uint8_t in[65536];
    while (!c->closed && nghttp2_session_send(s) == 0) {
        ssize_t r = recv(c->fd, in, sizeof(in), 0);
        if (r <= 0 || nghttp2_session_mem_recv2(s, in, (size_t)r) < 0) break;
    }
    nghttp2_session_del(s);
    close(c->fd);
}

/* A Get request: name (1), project (2), allow_cache (3). */
static size_t get_request(uint8_t *out, const char *name, const char *project, int allow_cache) {
    size_t n = 0, nl = strlen(name), pl = strlen(project);
    out[n++] = 0x0a, out[n++] = (uint8_t)nl;
    memcpy(out + n, name, nl), n += nl;
    out[n++] = 0x12, out[n++] = (uint8_t)pl;
    memcpy(out + n, project, pl), n += pl;
    if (allow_cache) out[n++] = 0x18, out[n++] = 1;
    return n;
}

static int answered_with(const call *c, const char *msg) {
    size_t mn = strlen(msg);
    return c->closed && c->code == 0 && strcmp(c->status, "200") == 0 &&
           strcmp(c->grpc_status, "0") == 0 && c->n == mn + 5 && c->body[0] == 0 &&
           c->body[4] == mn && memcmp(c->body + 5, msg, mn) == 0;
}

/* Two fronts, plaintext, no store: A relays to B, B to backend_port. 0,
 * or -1 (counted as a failed check) when either did not start. */
static int chained(int backend_port, front **a, front **b) {
    char err[256];
    *b = front_start(0, backend_port, METHODS, KINDS, NULL, 2, NULL, 1, 0, NULL, err, sizeof(err));
    CHECK_CASE(*b != NULL, err);
    if (!*b) return -1;
    *a = front_start(0, front_port(*b), METHODS, KINDS, NULL, 2, NULL, 1, 0, NULL, err,
                     sizeof(err));
    CHECK_CASE(*a != NULL, err);
    if (!*a) front_stop(*b);
    return *a ? 0 : -1;
}

static void calls(void) {
    /* B: relays to a port where nothing listens. A: relays to B. */
    int dead_port;
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof(sa);
        bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        dead_port = ntohs(sa.sin_port);
        close(fd);
    }
    front *a, *b;
    if (chained(dead_port, &a, &b) != 0) return;
    front_answers *ta = front_answers_new(1), *tb = front_answers_new(1);
    front_answers_add(ta, 0, "proj", 4, "here", 4, "from A", 6);
    front_answers_add(tb, 0, "proj", 4, "there", 5, "from B", 6);
    front_answers_add(tb, 1, "proj", 4, "here", 4, "B's other method", 16);
    front_set_answers(a, ta);
    front_set_answers(b, tb);

    uint8_t req[128];
    call c;
    size_t n = get_request(req, "here", "proj", 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from A"));
    n = get_request(req, "there", "proj", 1); /* A relays, B answers */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    n = get_request(req, "here", "proj", 1); /* the other method: B's */
    unary(front_port(a), METHODS[1], req, n, &c);
    CHECK(answered_with(&c, "B's other method"));
    n = get_request(req, "here", "proj", 0); /* allow_cache unset: relayed to B, then
                                                to nobody: the call is refused */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM && c.n == 0);
    unary(front_port(a), "/t.S/Unknown", req, n, &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM);
    /* A field the parser does not know: not answered here. */
    req[n] = 0x20, req[n + 1] = 1;
    unary(front_port(a), METHODS[0], req, get_request(req, "there", "proj", 1) + 2, &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM);
    front_set_answers(a, NULL); /* withdrawn: A relays everything */
    n = get_request(req, "here", "proj", 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM);
    n = get_request(req, "there", "proj", 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    front_stats st;
    front_stats_get(a, &st);
    CHECK(st.answered == 1 && st.relayed == 7 && st.connections == 8);
    front_stop(a);
    front_stop(b);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Auth: A answers a cached Get only for a learned decision of its exact
 * authorization header, refuses with a learned denial's status and
 * percent-encoded message, and relays everything else to B. */
static void auths(void) {
    front *a, *b;
    if (chained(1, &a, &b) != 0) return; /* nothing listens on port 1 */
    front_set_auth(a, 1);
    front_answers *ta = front_answers_new(2), *tb = front_answers_new(2);
    front_answers_add(ta, 0, "proj", 4, "here", 4, "from A", 6);
    front_answers_add(ta, 0, "proj", 4, "secret", 6, "secret A", 8);
    front_answers_add(tb, 0, "proj", 4, "here", 4, "from B", 6);
    front_set_answers(a, ta);
    front_set_answers(b, tb);
    uint64_t gen = front_generation(a);
    static const char denial[] = "Permission error:\n100% no \xc3\xa9";
    front_decision d[] = {{0, "proj", "here", "", 4, 4, 0, 0},
                          {0, "proj", "secret", denial, 4, 6, sizeof(denial) - 1, 7}};
    uint8_t req[128];
    call c;
    size_t n = get_request(req, "here", "proj", 1);
    unary_auth = "Bearer t1";
    unary(front_port(a), METHODS[0], req, n, &c); /* nothing learned yet */
    CHECK(answered_with(&c, "from B"));
    CHECK(front_learn(a, gen, "Bearer t1", 9, now_s() + 60, d, 2) == 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from A"));
    size_t sn = get_request(req, "secret", "proj", 1);
    unary(front_port(a), METHODS[0], req, sn, &c);
    CHECK(c.closed && c.code == 0 && strcmp(c.grpc_status, "7") == 0 && c.n == 0);
    CHECK_CASE(strcmp(c.grpc_message, "Permission error:%0A100%25 no %C3%A9") == 0, c.grpc_message);
    n = get_request(req, "here", "proj", 1);
    unary(front_port(a), METHODS[1], req, n, &c); /* learned for method 0 only */
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM);
    unary_auth = "Bearer t2"; /* another header value */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    unary_auth = NULL; /* none */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    unary_auth = "Bearer t1", unary_auth2 = "Bearer t1"; /* two */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    unary_auth2 = NULL;
    n = get_request(req, "here", "proj", 0); /* uncached: relayed (B has no store) */
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM);
    /* Dropped: an older generation, a past until. */
    CHECK(front_learn(a, gen - 1, "Bearer t3", 9, now_s() + 60, d, 1) == 0);
    CHECK(front_learn(a, gen, "Bearer t3", 9, now_s() - 1, d, 1) == 0);
    /* Expiry: t4's decision is forgotten at its until. */
    CHECK(front_learn(a, gen, "Bearer t4", 9, now_s() + 0.3, d, 1) == 1);
    unary_auth = "Bearer t4";
    n = get_request(req, "here", "proj", 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from A"));
    usleep(400 * 1000);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    front_stats st;
    front_stats_get(a, &st);
    CHECK(st.answered == 2 && st.denied == 1 && st.decisions == 3);
    /* A table replaced keeping decisions: the same generation, still known. */
    front_answers *kept = front_answers_new(1);
    front_answers_add(kept, 0, "proj", 4, "here", 4, "from A, kept", 12);
    front_replace_answers(a, kept);
    CHECK(front_generation(a) == gen);
    unary_auth = "Bearer t1";
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from A, kept"));
    /* A new table forgets every decision. */
    front_answers *ta2 = front_answers_new(1);
    front_answers_add(ta2, 0, "proj", 4, "here", 4, "from A again", 12);
    front_set_answers(a, ta2);
    CHECK(front_generation(a) == gen + 1);
    unary_auth = "Bearer t1";
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from B"));
    CHECK(front_learn(a, gen, "Bearer t1", 9, now_s() + 60, d, 2) == 0);
    /* Bounded: past FRONT_TOKENS_MAX header values, all are forgotten. */
    char token[32];
    int learned = 0;
    for (int i = 0; i < FRONT_TOKENS_MAX + 10; i++) {
        int tn = snprintf(token, sizeof(token), "Bearer x%d", i);
        learned += front_learn(a, gen + 1, token, (size_t)tn, now_s() + 60, d, 1) == 1;
    }
    CHECK(learned == FRONT_TOKENS_MAX + 10);
    front_stats_get(a, &st);
    CHECK(st.decisions == 10);
    front_learn(a, gen + 1, "Bearer t1", 9, now_s() + 60, d, 1);
    unary(front_port(a), METHODS[0], req, n, &c);
    CHECK(answered_with(&c, "from A again"));
    unary_auth = NULL;
    front_stop(a);
    front_stop(b);
}

/* Uncached Gets, answered by the workers from a SQLite registry: the
 * stored bytes with the project stamp cleared; a missing row is relayed. */
static void fetches(void) {
    char path[64], url[96], err[256];
    snprintf(path, sizeof(path), "/tmp/test_front_%d.db", (int)getpid());
    snprintf(url, sizeof(url), "sqlite:///%s", path);
    unlink(path);
    db_err dberr;
    pool_opts opts = {2, 0, 5.0, -1.0, 1};
    store *st = store_open(url, NULL, &opts, &dberr);
    CHECK(st && store_create_schema(st, &dberr) == 0);
    if (!st) return;
    static const uint8_t fv[] = {0x0a, 0x04, 0x0a, 0x02, 'f', 'v'}; /* spec { name: "fv" } */
    write_ctx w = {.now = 100};
    int inserted = 0;
    sref proj = {"p", 1}, name = {"fv", 2}, proto = {(const char *)fv, sizeof(fv)};
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, proj, name, proto, &w, &inserted, NULL, &dberr) == 0);
    store_close(st);
    front *a = front_start(0, 1, METHODS, KINDS, NULL, 2, store_open(url, NULL, &opts, &dberr), 1,
                           2, NULL, err, sizeof(err));
    CHECK_CASE(a != NULL, err);
    if (!a) return;
    buf want = {0};
    buf_put(&want, fv, sizeof(fv));
    pb_project_stamp(OBJ_FEATURE_VIEW, "", 0, &want);
    uint8_t req[64];
    call c;
    int all = 1;
    for (int i = 0; i < 20; i++) { /* more calls than workers */
        unary(front_port(a), METHODS[1], req, get_request(req, "fv", "p", 0), &c);
        all &= c.closed && c.code == 0 && strcmp(c.grpc_status, "0") == 0 && c.n == want.n + 5 &&
               memcmp(c.body + 5, want.p, want.n) == 0;
    }
    CHECK(all);
    unary(front_port(a), METHODS[1], req, get_request(req, "gone", "p", 0), &c);
    CHECK(c.closed && c.code == NGHTTP2_REFUSED_STREAM); /* relayed: nobody at port 1 */
    front_stats fs;
    front_stats_get(a, &fs);
    CHECK(fs.fetched == 20 && fs.relayed == 0 && fs.answered == 0); /* port 1: refused */
    front_stop(a);
    buf_free(&want);
    unlink(path);
}

/* ---- back-pressure -------------------------------------------------------- */

/* A client that reads only when told to: its session credits nothing by
 * itself (default windows of 64 KB), so it receives that much and the rest
 * waits, as behind a slow reader. */
typedef struct {
    call c;
    nghttp2_session *s;
    int reading;      /* credit what arrives */
    size_t unread;    /* received, not credited */
    uint64_t sum;     /* of the body bytes received, for the content check */
    int other_closed; /* another call on the connection */
    uint32_t other_code;
} slow_reader;

static int slow_data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                        size_t len, void *u) {
    (void)flags;
    slow_reader *r = u;
    for (size_t i = 0; i < len; i++)
        r->sum += data[i];
    r->c.n += len;
    if (r->reading)
        nghttp2_session_consume(s, id, len);
    else
        r->unread += len;
    return 0;
}

/* Headers of the first call (r->c.id) only. */
static int slow_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                          size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *u) {
    slow_reader *r = u;
    if (f->hd.stream_id != r->c.id) return 0;
    return header_cb(s, f, name, nlen, value, vlen, flags, &r->c);
}

static int slow_close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *u) {
    slow_reader *r = u;
    if (id != r->c.id) {
        r->other_closed = 1;
        r->other_code = code;
        return 0;
    }
    return close_cb(s, id, code, &r->c);
}

static nghttp2_ssize slow_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                                  void *u) {
    return send_cb(s, data, len, flags, &((slow_reader *)u)->c);
}

/* Exchanges frames until the call closes or nothing comes for quiet_ms. */
static void slow_pump(slow_reader *r, int quiet_ms) {
    uint8_t in[65536];
    struct pollfd p = {r->c.fd, POLLIN, 0};
    while (!r->c.closed && nghttp2_session_send(r->s) == 0 && poll(&p, 1, quiet_ms) == 1) {
        ssize_t n = recv(r->c.fd, in, sizeof(in), 0);
        if (n <= 0 || nghttp2_session_mem_recv2(r->s, in, (size_t)n) < 0) break;
    }
}

static int64_t held_by(front *f) {
    front_stats st;
    front_stats_get(f, &st);
    return st.held;
}

/* A client that stops reading a big relayed answer stops its sender: the
 * front in between holds about one stream window of it (1 MB), not the
 * whole answer; once the client reads again, the answer arrives whole and
 * the front holds nothing. Other calls on the same connection go on
 * meanwhile (the connection's window is never the one that fills). */
static void backpressure(void) {
    char err[256];
    enum { BIG = 24 << 20 };
    uint8_t *big = malloc(BIG);
    uint64_t want_sum = 0;
    for (size_t i = 0; i < BIG; i++)
        want_sum += big[i] = (uint8_t)(i * 7 + 3);
    front *b = front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, NULL, err, sizeof(err));
    front *a = b ? front_start(0, front_port(b), METHODS, KINDS, NULL, 2, NULL, 1, 0, NULL, err,
                               sizeof(err))
                 : NULL;
    CHECK_CASE(a && b, err);
    front_answers *tb = front_answers_new(2);
    front_answers_add(tb, 0, "proj", 4, "big", 3, big, BIG);
    front_answers_add(tb, 0, "proj", 4, "small", 5, "tiny", 4);
    if (b)
        front_set_answers(b, tb);
    else
        front_answers_free(tb);
    free(big);
    if (!a) {
        front_stop(b);
        return;
    }

    slow_reader r = {0};
    r.c.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)front_port(a))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(r.c.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback2(cbs, slow_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, slow_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, slow_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, slow_close_cb);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&r.s, cbs, &r, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    /* A stream window of 64 KB and a connection window of 2 MB: the
     * stream's window is what stalls. */
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
    nghttp2_submit_settings(r.s, NGHTTP2_FLAG_NONE, &iv, 1);
    nghttp2_session_set_local_window_size(r.s, NGHTTP2_FLAG_NONE, 0, 2 << 20);

    uint8_t req[64], framed[80];
    size_t n = get_request(req, "big", "proj", 1); /* A has no table: relayed to B */
    framed[0] = 0, framed[1] = framed[2] = framed[3] = 0, framed[4] = (uint8_t)n;
    memcpy(framed + 5, req, n);
    body bd = {framed, n + 5, 0};
    nghttp2_data_provider2 prd = {{.ptr = &bd}, body_read};
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", METHODS[0]),
                        NV(":authority", "localhost"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers")};
    r.c.id = nghttp2_submit_request2(r.s, NULL, nva, 6, &prd, NULL);
    slow_pump(&r, 300);
    int64_t held = held_by(a);
    CHECK_CASE(!r.c.closed && r.c.n <= 65535, "the client got more than its window");
    /* The stream's window at the front (1 MB), one frame in flight, and the
     * client's 64 KB in the socket buffers, at most. */
    CHECK_CASE(held > 0 && held <= (1 << 20) + (64 << 10), "the front buffered past its window");

    /* The same connection serves another call meanwhile. */
    n = get_request(req, "small", "proj", 1);
    memcpy(framed + 5, req, n), framed[4] = (uint8_t)n;
    body bd2 = {framed, n + 5, 0};
    nghttp2_data_provider2 prd2 = {{.ptr = &bd2}, body_read};
    int32_t id2 = nghttp2_submit_request2(r.s, NULL, nva, 6, &prd2, NULL);
    size_t before = r.c.n;
    uint64_t sum_before = r.sum;
    r.reading = 1; /* credit the small call's bytes as they come */
    uint8_t in[65536];
    struct pollfd p = {r.c.fd, POLLIN, 0};
    while (!r.other_closed && nghttp2_session_send(r.s) == 0 && poll(&p, 1, 2000) == 1) {
        ssize_t got = recv(r.c.fd, in, sizeof(in), 0);
        if (got <= 0 || nghttp2_session_mem_recv2(r.s, in, (size_t)got) < 0) break;
    }
    CHECK_CASE(id2 > 0 && r.other_closed && r.other_code == 0,
               "a second call on the stalled connection did not finish");
    /* Its 9 bytes (framed "tiny") came; the big stream got none meanwhile
     * (its window is still spent), so the sums tell them apart. */
    CHECK(r.c.n - before == 9 && r.sum - sum_before == 't' + 'i' + 'n' + 'y' + 4);
    r.c.n = before, r.sum = sum_before;

    /* Reading again: everything comes, and the front lets go of it all. */
    nghttp2_session_consume(r.s, r.c.id, r.unread);
    slow_pump(&r, 5000);
    CHECK(r.c.closed && r.c.code == 0 && strcmp(r.c.grpc_status, "0") == 0);
    CHECK_CASE(r.c.n == (size_t)BIG + 5, "the big answer did not arrive whole");
    uint64_t prefix =
        0 + (uint8_t)(BIG >> 24) + (uint8_t)(BIG >> 16) + (uint8_t)(BIG >> 8) + (uint8_t)BIG;
    CHECK(r.sum == want_sum + prefix);
    CHECK(held_by(a) == 0);
    nghttp2_session_del(r.s);
    close(r.c.fd);
    front_stop(a);
    front_stop(b);
}

/* pb_strings_ok: what decides whether a stored row may be served without
 * Feast's parser. */
static void strings(void) {
#define OK(lit) pb_strings_ok((const uint8_t *)(lit), sizeof(lit) - 1)
    CHECK(OK("\x0a\x04\x0a\x02"
             "fv") == 1);                               /* spec { name: "fv" } */
    CHECK(OK("\x0a\x06\x0a\x04\xf0\x9f\x99\x82") == 1); /* a 4-byte character */
    CHECK(OK("\x0a\x04\x0a\x02\xc3\x28") == 0);         /* invalid UTF-8, nested */
    CHECK(OK("\x0a\x02\xc0\x80") == 0);                 /* overlong NUL */
    CHECK(OK("\x0a\x03\xed\xa0\x80") == 0);             /* a surrogate */
    CHECK(OK("\x0a\x04\xf4\x90\x80\x80") == 0);         /* past U+10FFFF */
    CHECK(OK("\x0a\x05\x0a\x02"
             "fv") == 0);                               /* truncated */
    CHECK(OK("\x10\x96\x01\x1d\x00\x00\x80\x3f") == 1); /* varint, fixed32 */
    CHECK(OK("\x0b\x0c") == 0);                         /* a group */
    CHECK(OK("") == 1);
#undef OK
}

/* ---- the request path without sockets (front_feed) ----------------------- */

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    uint8_t *p = malloc(1 << 16);
    if (p) *n = fread(p, 1, 1 << 16, f);
    fclose(f);
    return p;
}

/* What front_feed makes of a corpus input: calls answered from the table. */
static uint64_t answered_in(const char *name, size_t chunk) {
    char path[256];
    snprintf(path, sizeof(path), "tests/fuzz/corpus/front/%s.bin", name);
    size_t n;
    uint8_t *p = read_file(path, &n);
    front_stats st = {0};
    long sent = p ? front_feed(FUZZ_FRONT_METHODS, FUZZ_FRONT_KINDS, FUZZ_FRONT_FIELDS,
                               FUZZ_FRONT_NMETHODS, fuzz_front_table(), p, n, chunk, &st)
                  : -1;
    free(p);
    CHECK_CASE(sent > 0 && st.held == 0 && st.connections == 1, name);
    return st.answered;
}

/* The corpus of the front's fuzz target does what its names say, in one
 * piece and cut anywhere; the table answers by the field numbers given per
 * method (GetOther's are 7, 0, 5); every corpus input and kept finding
 * (tests/fuzz/regressions/front-*) holds fuzz_front's invariants. */
static void feeds(void) {
    static const struct {
        const char *name;
        uint64_t answered;
    } want[] = {
        {"get-entity-cached", 1},      {"get-feature-view-cached", 1},
        {"get-entity-uncached", 0},    {"get-entity-missing", 0},
        {"get-empty-message", 0},      {"get-only-allow-cache", 1},
        {"get-unknown-field", 0},      {"get-repeated-name", 1},
        {"get-other-fields", 1},       {"get-compressed", 0},
        {"list-relayed", 0},           {"two-calls", 1},
        {"split-data-ping-window", 1}, {"reset-after-request", 1},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        for (size_t chunk = 0; chunk < 40; chunk += 13)
            CHECK_CASE(answered_in(want[i].name, chunk) == want[i].answered, want[i].name);
    static const char *const dirs[] = {"tests/fuzz/corpus/front", "tests/fuzz/regressions"};
    size_t replayed = 0;
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        CHECK_CASE(dir != NULL, dirs[d]);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.' || (d == 1 && strncmp(e->d_name, "front-", 6) != 0)) continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", dirs[d], e->d_name);
            size_t n;
            uint8_t *p = read_file(path, &n);
            const char *bad = p ? fuzz_front(p, n) : "cannot read";
            CHECK_CASE(bad == NULL, path);
            if (bad) fprintf(stderr, "%s: %s\n", path, bad);
            free(p);
            replayed++;
        }
        if (dir) closedir(dir);
    }
    CHECK(replayed >= sizeof(want) / sizeof(*want));
    /* Without field numbers, every method reads Feast's (1, 2, 3): GetOther's
     * request, in 7 and 5, is no longer its own. */
    size_t n;
    uint8_t *p = read_file("tests/fuzz/corpus/front/get-other-fields.bin", &n);
    front_stats st = {0};
    CHECK(p &&
          front_feed(FUZZ_FRONT_METHODS, FUZZ_FRONT_KINDS, NULL, FUZZ_FRONT_NMETHODS,
                     fuzz_front_table(), p, n, 0, &st) > 0 &&
          st.answered == 0);
    free(p);
}

/* ---- TLS ------------------------------------------------------------------ */

/* A self-signed certificate (P-256: quick to make) for CN cn with serial
 * number serial, and its key. */
typedef struct {
    X509 *cert;
    EVP_PKEY *key;
} pair;

static pair make_pair(long serial, const char *cn) {
    pair p = {X509_new(), EVP_EC_gen("P-256")};
    X509_set_version(p.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(p.cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(p.cert), 3600);
    X509_set_pubkey(p.cert, p.key);
    X509_NAME *name = X509_get_subject_name(p.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(p.cert, name);
    X509_sign(p.cert, p.key, EVP_sha256());
    return p;
}

static void pair_free(pair *p) {
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
}

/* Writes the certificate (key NULL) or the key (cert NULL) in PEM to path,
 * through a temporary file renamed over it (as cert-manager and the
 * kubelet replace files: never half written); cut: only the first half of
 * the PEM text, written in place (a file caught half way). 0 on success. */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key, int cut) {
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    BIO *mem = BIO_new(BIO_s_mem());
    int ok = mem && (cert ? PEM_write_bio_X509(mem, cert)
                          : PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL));
    char *text = NULL;
    long n = ok ? BIO_get_mem_data(mem, &text) : 0;
    if (cut) n /= 2;
    FILE *f = ok ? fopen(cut ? path : tmp, "wb") : NULL;
    ok = f && fwrite(text, 1, (size_t)n, f) == (size_t)n;
    if (f) ok &= fclose(f) == 0;
    BIO_free(mem);
    return ok && (cut || rename(tmp, path) == 0) ? 0 : -1;
}

/* The serial number of the certificate the server presented, or -1. */
static long peer_serial(SSL *ssl) {
    X509 *x = SSL_get1_peer_certificate(ssl);
    long serial = x ? ASN1_INTEGER_get(X509_get_serialNumber(x)) : -1;
    X509_free(x);
    return serial;
}

/* A TLS client connection to the front and its HTTP/2 session (blocking,
 * with a receive timeout so that a test that waits in vain fails rather
 * than hangs). */
typedef struct {
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    call *c; /* the call in progress */
    int handshake_error; /* SSL_R_... of a refused handshake, or 0 */
} tls_conn;

static nghttp2_ssize tls_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                                 void *u) {
    (void)s, (void)flags;
    tls_conn *t = u;
    int w = SSL_write(t->ssl, data, (int)len);
    return w > 0 ? w : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int tls_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                         size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *u) {
    tls_conn *t = u;
    if (f->hd.stream_id != t->c->id) return 0;
    return header_cb(s, f, name, nlen, value, vlen, flags, t->c);
}

/* The body is summed as it comes too (c->n counts past c->body). */
static uint64_t tls_sum;

static int tls_data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *u) {
    tls_conn *t = u;
    if (id != t->c->id) return 0;
    for (size_t i = 0; i < len; i++)
        tls_sum += data[i];
    return data_cb(s, flags, id, data, len, t->c);
}

static int tls_close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *u) {
    tls_conn *t = u;
    if (id != t->c->id) return 0;
    return close_cb(s, id, code, t->c);
}

/* A client that reads slowly: the receive buffer of the next tls_open's
 * socket (0: the system's), and how long tls_unary waits before it reads
 * the answer (ms). */
static int tls_rcvbuf, tls_pause_ms;

/* Connects to port over TLS up to max_version (0: the newest; else any
 * version up to it), offering ALPN alpn (wire format; NULL: none). 0 when
 * the handshake succeeded; otherwise t->handshake_error says why. */
static int tls_open(tls_conn *t, int port, const char *alpn, size_t alpn_len, int max_version) {
    memset(t, 0, sizeof(*t));
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (tls_rcvbuf) setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &tls_rcvbuf, sizeof(tls_rcvbuf));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) return -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (max_version) {
        SSL_CTX_set_security_level(ctx, 0); /* so that TLS 1.1 is offered at all */
        SSL_CTX_set_min_proto_version(ctx, 0);
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    t->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds it */
    SSL_set_fd(t->ssl, t->fd);
    if (alpn) SSL_set_alpn_protos(t->ssl, (const unsigned char *)alpn, (unsigned)alpn_len);
    ERR_clear_error();
    if (SSL_connect(t->ssl) != 1) {
        t->handshake_error = ERR_GET_REASON(ERR_peek_error());
        ERR_clear_error();
        return -1;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback2(cbs, tls_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, tls_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, tls_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, tls_close_cb);
    nghttp2_session_client_new(&t->h2, cbs, t);
    nghttp2_session_callbacks_del(cbs);
    /* Windows of 16 MB: a big answer comes as fast as the front sends. */
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20};
    nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, &iv, 1);
    nghttp2_session_set_local_window_size(t->h2, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    return 0;
}

static void tls_close(tls_conn *t) {
    if (t->h2) nghttp2_session_del(t->h2);
    if (t->ssl) SSL_free(t->ssl);
    if (t->fd >= 0) close(t->fd);
    memset(t, 0, sizeof(*t));
    t->fd = -1;
}

/* A unary call on an open TLS connection, as unary() makes one. */
static void tls_unary(tls_conn *t, const char *path, const uint8_t *msg, size_t mn, call *c) {
    memset(c, 0, sizeof(*c));
    c->fd = t->fd;
    t->c = c;
    if (!t->h2) return;
    uint8_t framed[512] = {0, 0, 0, (uint8_t)(mn >> 8), (uint8_t)mn};
    memcpy(framed + 5, msg, mn);
    body b = {framed, mn + 5, 0};
    nghttp2_data_provider2 prd = {{.ptr = &b}, body_read};
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "https"),
                        NV(":path", path),
                        NV(":authority", "localhost"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers")};
    c->id = nghttp2_submit_request2(t->h2, NULL, nva, 6, &prd, NULL);
    uint8_t in[65536];
    int paused = 0;
    while (!c->closed && nghttp2_session_send(t->h2) == 0) {
        if (!paused++ && tls_pause_ms) usleep((useconds_t)tls_pause_ms * 1000);
        int r = SSL_read(t->ssl, in, sizeof(in));
        if (r <= 0 || nghttp2_session_mem_recv2(t->h2, in, (size_t)r) < 0) break;
    }
    ERR_clear_error();
}

/* Waits up to 5 s for what *(counter) of f's stats must reach. */
static int stat_reaches(front *f, size_t field, uint64_t want) {
    for (int i = 0; i < 500; i++) {
        front_stats st;
        front_stats_get(f, &st);
        if (*(uint64_t *)((char *)&st + field) >= want) return 1;
        usleep(10000);
    }
    return 0;
}

static char tls_dir[64];

static void tls_paths(char *cert, char *key, size_t len, const char *sub) {
    snprintf(cert, len, "%s/%scert.pem", tls_dir, sub);
    snprintf(key, len, "%s/%skey.pem", tls_dir, sub);
}

static int make_tls_dir(void) {
    if (tls_dir[0]) return 0;
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/test_front_tls_XXXXXX");
    return mkdtemp(tls_dir) ? 0 : -1;
}

/* front_start with files that do not load: NULL, and a message naming the
 * file and OpenSSL's reason. */
static void tls_start_errors(void) {
    CHECK(make_tls_dir() == 0);
    char cert[256], key[256], other_key[256], err[512], want[600];
    tls_paths(cert, key, sizeof(cert), "start-");
    snprintf(other_key, sizeof(other_key), "%s/start-other-key.pem", tls_dir);
    pair p = make_pair(1, "start"), q = make_pair(2, "other");
    CHECK(write_pem(cert, p.cert, NULL, 0) == 0 && write_pem(key, NULL, p.key, 0) == 0 &&
          write_pem(other_key, NULL, q.key, 0) == 0);
    struct {
        const char *cert, *key, *says;
    } bad[] = {
        {"/nonexistent/cert.pem", key, "cannot load the TLS certificate chain from "
                                       "/nonexistent/cert.pem: "},
        {cert, "/nonexistent/key.pem", "cannot load the TLS private key from "
                                       "/nonexistent/key.pem: "},
        {key, key, "cannot load the TLS certificate chain from "}, /* a key, not a certificate */
        {cert, cert, "cannot load the TLS private key from "},
        {cert, other_key, "the TLS private key in "},
        {"", key, "TLS needs both"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        front_tls tls = {bad[i].cert, bad[i].key};
        err[0] = 0;
        front *f = front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, &tls, err, sizeof(err));
        CHECK_CASE(f == NULL && strstr(err, bad[i].says) == err, err);
        front_stop(f);
    }
    /* The reasons are OpenSSL's, named. */
    front_tls missing = {"/nonexistent/cert.pem", key};
    front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, &missing, err, sizeof(err));
    CHECK_CASE(strstr(err, "No such file or directory") != NULL, err);
    front_tls mismatched = {cert, other_key};
    front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, &mismatched, err, sizeof(err));
    snprintf(want, sizeof(want), "the TLS private key in %s does not match the certificate in %s: ",
             other_key, cert);
    CHECK_CASE(strstr(err, want) == err && strstr(err, "key values mismatch"), err);
    front_tls good = {cert, key};
    front *f = front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, &good, err, sizeof(err));
    CHECK_CASE(f != NULL, err);
    front_stop(f);
    pair_free(&p);
    pair_free(&q);
}

/* Calls over TLS: the handshake (ALPN h2; none offered; TLS 1.2 and 1.3),
 * an answer from the table, a call relayed to a plaintext front behind,
 * several calls on one connection, an answer of megabytes (the front's
 * writes wait for the socket on the way); refused: ALPN without h2, TLS
 * 1.1, a plaintext client. */
static void tls_calls(void) {
    CHECK(make_tls_dir() == 0);
    char cert[256], key[256], err[512];
    tls_paths(cert, key, sizeof(cert), "calls-");
    pair p = make_pair(7, "calls");
    CHECK(write_pem(cert, p.cert, NULL, 0) == 0 && write_pem(key, NULL, p.key, 0) == 0);
    pair_free(&p);
    front *b = front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, NULL, err, sizeof(err));
    front_tls tls = {cert, key};
    front *a = b ? front_start(0, front_port(b), METHODS, KINDS, NULL, 2, NULL, 1, 0, &tls, err,
                               sizeof(err))
                 : NULL;
    CHECK_CASE(a && b, err);
    if (!a) {
        front_stop(b);
        return;
    }
    enum { BIG = 12 << 20 };
    uint8_t *big = malloc(BIG);
    uint64_t big_sum = 0;
    for (size_t i = 0; i < BIG; i++)
        big_sum += big[i] = (uint8_t)(i * 13 + 5);
    big_sum += (uint8_t)(BIG >> 24) + (uint8_t)(BIG >> 16) + (uint8_t)(BIG >> 8) + (uint8_t)BIG;
    front_answers *ta = front_answers_new(2), *tb = front_answers_new(1);
    front_answers_add(ta, 0, "proj", 4, "here", 4, "from A", 6);
    front_answers_add(ta, 0, "proj", 4, "big", 3, big, BIG);
    front_answers_add(tb, 0, "proj", 4, "there", 5, "from B", 6);
    free(big);
    front_set_answers(a, ta);
    front_set_answers(b, tb);

    uint8_t req[128];
    call c;
    tls_conn t;
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0);
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    SSL_get0_alpn_selected(t.ssl, &proto, &proto_len);
    CHECK(proto_len == 2 && memcmp(proto, "h2", 2) == 0);
    CHECK(SSL_version(t.ssl) == TLS1_3_VERSION && peer_serial(t.ssl) == 7);
    tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_unary(&t, METHODS[0], req, get_request(req, "there", "proj", 1), &c); /* relayed */
    CHECK(answered_with(&c, "from B"));
    for (int i = 0; i < 3; i++) { /* the same connection goes on */
        tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
        CHECK(answered_with(&c, "from A"));
    }
    /* A big answer to a client that reads late, through a small receive
     * buffer: the front's writes wait for the socket (SSL_write wants to
     * write, and is retried with the same bytes), and all of it arrives. */
    tls_conn bt; /* ALPN with h2 among others */
    tls_rcvbuf = 16 << 10;
    CHECK(tls_open(&bt, front_port(a), "\x08http/1.1\x02h2", 12, 0) == 0);
    tls_rcvbuf = 0;
    tls_sum = 0;
    tls_pause_ms = 300;
    tls_unary(&bt, METHODS[0], req, get_request(req, "big", "proj", 1), &c);
    tls_pause_ms = 0;
    CHECK(c.closed && c.code == 0 && strcmp(c.grpc_status, "0") == 0);
    CHECK_CASE(c.n == (size_t)BIG + 5 && tls_sum == big_sum, "the big answer over TLS");
    tls_close(&bt);
    /* A client that asks for it and goes away without reading: the front's
     * write fails (EPIPE, no SIGPIPE to kill this process) and it goes on. */
    for (int i = 0; i < 3; i++) {
        tls_rcvbuf = 16 << 10;
        CHECK(tls_open(&bt, front_port(a), "\x02h2", 3, 0) == 0);
        tls_rcvbuf = 0;
        uint8_t framed[64] = {0, 0, 0, 0, (uint8_t)get_request(framed + 5, "big", "proj", 1)};
        body bb = {framed, framed[4] + 5u, 0};
        nghttp2_data_provider2 prd = {{.ptr = &bb}, body_read};
        nghttp2_nv nva[] = {NV(":method", "POST"),
                            NV(":scheme", "https"),
                            NV(":path", METHODS[0]),
                            NV(":authority", "localhost"),
                            NV("content-type", "application/grpc"),
                            NV("te", "trailers")};
        bt.c = &c;
        memset(&c, 0, sizeof(c));
        c.id = nghttp2_submit_request2(bt.h2, NULL, nva, 6, &prd, NULL);
        CHECK(nghttp2_session_send(bt.h2) == 0);
        usleep(100 * 1000); /* the front is writing, and blocked */
        tls_close(&bt);
    }
    usleep(100 * 1000);
    tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    /* TLS 1.2, and a client that offers no ALPN (HTTP/2 by prior knowledge). */
    tls_conn t12;
    CHECK(tls_open(&t12, front_port(a), NULL, 0, TLS1_2_VERSION) == 0);
    CHECK(SSL_version(t12.ssl) == TLS1_2_VERSION);
    SSL_get0_alpn_selected(t12.ssl, &proto, &proto_len);
    CHECK(proto_len == 0);
    tls_unary(&t12, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_close(&t12);
    front_stats st;
    front_stats_get(a, &st);
    CHECK(st.tls_handshakes == 6 && st.tls_handshake_failures == 0 && st.answered == 10 &&
          st.relayed == 1);

    /* Refused: ALPN without h2, TLS 1.1, a plaintext HTTP/2 client. */
    tls_conn bad;
    CHECK(tls_open(&bad, front_port(a), "\x08http/1.1", 9, 0) != 0);
    CHECK_CASE(bad.handshake_error == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL,
               ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, bad.handshake_error)));
    tls_close(&bad);
    CHECK(tls_open(&bad, front_port(a), "\x02h2", 3, TLS1_1_VERSION) != 0);
    CHECK_CASE(bad.handshake_error == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION,
               ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, bad.handshake_error)));
    tls_close(&bad);
    unary(front_port(a), METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(!c.closed && c.n == 0);
    CHECK(stat_reaches(a, offsetof(front_stats, tls_handshake_failures), 3));
    front_stats_get(a, &st);
    CHECK(st.tls_handshakes == 6 && st.tls_handshake_failures == 3 && st.answered == 10);
    /* The open connection still works after all that. */
    tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_close(&t);
    front_stop(a);
    front_stop(b);
}

/* Rotation: the files replaced (by a symlink swap, as the kubelet updates a
 * mounted secret; then in place) are picked up for new connections within
 * about a second; open connections keep theirs; a pair that does not
 * load or match is not used, counted, and tried again. */
static void tls_reload(void) {
    CHECK(make_tls_dir() == 0);
    char cert[256], key[256], v1[256], v2[256], link[256], err[512], path[300];
    /* cert.pem -> data/cert.pem, data -> v1 (then v2) */
    snprintf(v1, sizeof(v1), "%s/v1", tls_dir);
    snprintf(v2, sizeof(v2), "%s/v2", tls_dir);
    snprintf(link, sizeof(link), "%s/data", tls_dir);
    CHECK(mkdir(v1, 0700) == 0 && mkdir(v2, 0700) == 0 && symlink("v1", link) == 0);
    tls_paths(cert, key, sizeof(cert), "");
    CHECK(symlink("data/cert.pem", cert) == 0 && symlink("data/key.pem", key) == 0);
    pair p1 = make_pair(101, "first"), p2 = make_pair(102, "second"), p3 = make_pair(103, "third");
    snprintf(path, sizeof(path), "%s/cert.pem", v1);
    CHECK(write_pem(path, p1.cert, NULL, 0) == 0);
    snprintf(path, sizeof(path), "%s/key.pem", v1);
    CHECK(write_pem(path, NULL, p1.key, 0) == 0);
    front_tls tls = {cert, key};
    front *a = front_start(0, 1, METHODS, KINDS, NULL, 2, NULL, 1, 0, &tls, err, sizeof(err));
    CHECK_CASE(a != NULL, err);
    if (!a) return;
    front_answers *ta = front_answers_new(1);
    front_answers_add(ta, 0, "proj", 4, "here", 4, "from A", 6);
    front_set_answers(a, ta);
    uint8_t req[128];
    call c;
    tls_conn old;
    CHECK(tls_open(&old, front_port(a), "\x02h2", 3, 0) == 0 && peer_serial(old.ssl) == 101);
    tls_unary(&old, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));

    /* The symlink swap: v2 holds the new pair, data points there. */
    snprintf(path, sizeof(path), "%s/cert.pem", v2);
    CHECK(write_pem(path, p2.cert, NULL, 0) == 0);
    snprintf(path, sizeof(path), "%s/key.pem", v2);
    CHECK(write_pem(path, NULL, p2.key, 0) == 0);
    snprintf(path, sizeof(path), "%s/data.tmp", tls_dir);
    CHECK(symlink("v2", path) == 0 && rename(path, link) == 0);
    usleep(1100 * 1000); /* past the once-a-second look */
    tls_conn t;
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0);
    CHECK_CASE(peer_serial(t.ssl) == 102, "the new certificate after the swap");
    X509 *x = SSL_get1_peer_certificate(t.ssl);
    char cn[64] = "";
    if (x) X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    X509_free(x);
    CHECK(strcmp(cn, "second") == 0);
    tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_close(&t);
    /* The connection from before goes on, with the first certificate. */
    tls_unary(&old, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A") && peer_serial(old.ssl) == 101);
    front_stats st;
    front_stats_get(a, &st);
    CHECK(st.tls_reloads == 1 && st.tls_reload_failures == 0);

    /* A certificate whose key is not there yet (v2's key does not match):
     * the second pair goes on serving; the failure is counted. */
    snprintf(path, sizeof(path), "%s/cert.pem", v2);
    CHECK(write_pem(path, p3.cert, NULL, 0) == 0);
    usleep(1100 * 1000);
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0);
    CHECK_CASE(peer_serial(t.ssl) == 102, "the old certificate kept after a broken rewrite");
    tls_unary(&t, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_close(&t);
    front_stats_get(a, &st);
    CHECK(st.tls_reloads == 1 && st.tls_reload_failures == 1);
    /* Unchanged since, the pair is tried again on the next look. */
    usleep(1100 * 1000);
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0 && peer_serial(t.ssl) == 102);
    tls_close(&t);
    front_stats_get(a, &st);
    CHECK(st.tls_reloads == 1 && st.tls_reload_failures == 2);
    /* A key written half way, in place: still the second pair. */
    snprintf(path, sizeof(path), "%s/key.pem", v2);
    CHECK(write_pem(path, NULL, p3.key, 1) == 0);
    usleep(1100 * 1000);
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0 && peer_serial(t.ssl) == 102);
    tls_close(&t);
    front_stats_get(a, &st);
    CHECK(st.tls_reloads == 1 && st.tls_reload_failures == 3);
    /* The key written whole: the third pair, on the next look. */
    CHECK(write_pem(path, NULL, p3.key, 0) == 0);
    usleep(1100 * 1000);
    CHECK(tls_open(&t, front_port(a), "\x02h2", 3, 0) == 0);
    CHECK_CASE(peer_serial(t.ssl) == 103, "the third pair once its key is whole");
    tls_close(&t);
    front_stats_get(a, &st);
    CHECK(st.tls_reloads == 2 && st.tls_reload_failures == 3);
    tls_unary(&old, METHODS[0], req, get_request(req, "here", "proj", 1), &c);
    CHECK(answered_with(&c, "from A"));
    tls_close(&old);
    front_stop(a);
    pair_free(&p1);
    pair_free(&p2);
    pair_free(&p3);
}

/* Removes what the TLS tests wrote (keys included). */
static void tls_cleanup(void) {
    if (!tls_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    feeds();
    strings();
    table();
    calls();
    auths();
    fetches();
    backpressure();
    tls_start_errors();
    tls_calls();
    tls_reload();
    tls_cleanup();
    return check_report("front");
}
