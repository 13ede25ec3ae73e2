/* front.c - see front.h.
 *
 * One thread runs an epoll loop over the listening socket, the client
 * connections, and one connection to the backend per client connection.
 * Each client connection has an nghttp2 server session; each backend
 * connection an nghttp2 client session. A client stream is either answered
 * here (when its request has ended and the table has the answer) or relayed:
 * its headers and data go to a backend stream as they arrive, and the
 * backend's headers, data and trailers come back the same way. Resets and
 * closed connections cross over in both directions.
 *
 * With TLS, a client connection's bytes go through OpenSSL (an SSL per
 * connection, non-blocking, straight on the socket): the handshake first,
 * then SSL_read into the client session and SSL_write of what it sends,
 * each WANT_READ/WANT_WRITE turned into what the connection waits for in
 * epoll. The backend side stays plaintext.
 */
#define _GNU_SOURCE /* accept4 */
#include "front/front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "front/nghttp2_compat.h"
#include "pb/pb.h"

/* ---- the answer table ----------------------------------------------------- */

typedef struct {
    uint64_t hash;
    int method;
    size_t pn, nn, mn;
    uint8_t *mem; /* project, name, message, one allocation */
} answer;

struct front_answers {
    size_t n, cap; /* cap: a power of two, at most half full */
    answer *slots;
};

static uint64_t key_hash(int method, const char *p, size_t pn, const char *n, size_t nn) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)method;
    for (size_t i = 0; i < pn; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* (ab, c) and (a, bc) differ */
    for (size_t i = 0; i < nn; i++)
        h = (h ^ (uint8_t)n[i]) * 1099511628211ULL;
    return h;
}

front_answers *front_answers_new(size_t expected) {
    front_answers *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->cap = 16;
    while (a->cap < expected * 2 + 2)
        a->cap *= 2;
    a->slots = calloc(a->cap, sizeof(answer));
    if (!a->slots) {
        free(a);
        return NULL;
    }
    return a;
}

static answer *find_slot(const front_answers *a, uint64_t h, int method, const char *p, size_t pn,
                         const char *n, size_t nn) {
    for (size_t i = h & (a->cap - 1);; i = (i + 1) & (a->cap - 1)) {
        answer *s = &a->slots[i];
        if (!s->mem) return s;
        if (s->hash == h && s->method == method && s->pn == pn && s->nn == nn &&
            memcmp(s->mem, p, pn) == 0 && memcmp(s->mem + pn, n, nn) == 0)
            return s;
    }
}

/* Adds a key's value; one already there is kept, or with replace,
 * replaced. */
static int answers_put(front_answers *a, int method, const char *project, size_t pn,
                       const char *name, size_t nn, const void *msg, size_t mn, int replace) {
    if ((a->n + 1) * 2 > a->cap) {
        front_answers grown = {0, a->cap * 2, calloc(a->cap * 2, sizeof(answer))};
        if (!grown.slots) return -1;
        for (size_t i = 0; i < a->cap; i++)
            if (a->slots[i].mem)
                *find_slot(&grown, a->slots[i].hash, -1, NULL, 0, NULL, 0) = a->slots[i];
        free(a->slots);
        a->slots = grown.slots;
        a->cap = grown.cap;
    }
    uint64_t h = key_hash(method, project, pn, name, nn);
    answer *s = find_slot(a, h, method, project, pn, name, nn);
    if (s->mem && !replace) return 0;
    uint8_t *mem = malloc(pn + nn + mn + 1);
    if (!mem) return -1;
    memcpy(mem, project, pn);
    memcpy(mem + pn, name, nn);
    if (mn) memcpy(mem + pn + nn, msg, mn);
    if (s->mem)
        free(s->mem);
    else
        a->n++;
    *s = (answer){h, method, pn, nn, mn, mem};
    return 0;
}

int front_answers_add(front_answers *a, int method, const char *project, size_t pn,
                      const char *name, size_t nn, const void *msg, size_t mn) {
    return answers_put(a, method, project, pn, name, nn, msg, mn, 0);
}

const uint8_t *front_answers_get(const front_answers *a, int method, const char *project, size_t pn,
                                 const char *name, size_t nn, size_t *mn) {
    const answer *s =
        find_slot(a, key_hash(method, project, pn, name, nn), method, project, pn, name, nn);
    if (!s->mem) return NULL;
    *mn = s->mn;
    return s->mem + s->pn + s->nn;
}

size_t front_answers_count(const front_answers *a) {
    return a ? a->n : 0;
}

void front_answers_free(front_answers *a) {
    if (!a) return;
    for (size_t i = 0; i < a->cap; i++)
        free(a->slots[i].mem);
    free(a->slots);
    free(a);
}

/* ---- connections and streams ---------------------------------------------- */

typedef struct {
    char *name, *value;
    size_t nlen, vlen;
} header;

typedef struct {
    header *v;
    size_t n, cap;
} headers;

typedef struct conn conn;

typedef struct strm {
    struct strm *next, *prev;
    conn *c;
    int32_t id;     /* client stream */
    int32_t up_id;  /* backend stream: 0 not yet, -1 closed */
    int method;     /* answerable method, or -1 */
    headers req_h;  /* request headers, in order */
    buf req;        /* request body received */
    size_t req_off; /* sent on to the backend */
    int req_ended;
    headers resp_h, trailers;
    buf resp; /* response body to send to the client */
    size_t resp_off;
    /* Request bytes credited to the client as they arrived (see
     * RELAY_WINDOW: the front meant to answer the call) and not passed on
     * to the backend yet: passing them on credits nothing more. */
    size_t req_precredited;
    int resp_ended, responding;
    int fetching; /* a worker is reading the answer from the database */
} strm;

typedef struct {
    int fd;
    nghttp2_session *h2;
    buf out; /* bytes nghttp2 produced that the socket did not take yet */
    size_t out_off;
    int want_out; /* EPOLLOUT is registered */
    /* TLS (the client side of a TLS front): the connection's SSL; the
     * handshake is not done yet; the last handshake step or SSL_read waits
     * for the socket to take bytes (EPOLLOUT, whatever sd->out holds); a
     * fatal error happened (no close_notify then). */
    SSL *ssl;
    int handshaking, io_out, tls_fatal;
} side;

typedef struct {
    int kind; /* 0 listener, 1 client side, 2 backend side, 3 stop, 4 fetched */
    conn *c;
} ep_tag;

/* An uncached Get handed to the workers, and its answer. */
typedef struct job {
    struct job *next;
    uint64_t conn_id;
    int32_t stream_id;
    obj_kind kind;
    buf key; /* project, then name */
    size_t pn;
    buf answer; /* a framed response message, when answered */
    int answered;
} job;

struct conn {
    front *f;
    uint64_t id;
    side cl, up;
    ep_tag cl_tag, up_tag;
    strm *streams;
    int dead;
    size_t dropped; /* bytes for a client with no socket (front_feed) */
    conn *next, *prev;
};

struct front {
    int lfd, efd, wfd, dfd, port, backend_port;
    pthread_t thread;
    char **methods;
    obj_kind *kinds;
    front_fields *fields;
    int nmethods;
    /* Uncached answers: the store, its workers, jobs to do and done. */
    store *st;
    int own_store; /* else borrowed: the caller closes it after front_stop */
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_cond;
    job *todo, **todo_tail, *done;
    int stopping;
    uint64_t next_conn_id;
    ep_tag d_tag;
    pthread_mutex_t lock; /* answers, decisions, generation */
    front_answers *answers;
    /* Learned auth: tokens, keyed (0, authorization header value, ""),
     * values: id (uint64), until (double); decisions, keyed (method, token
     * id then project, name), values: status (int32), message. */
    front_answers *tokens, *decisions;
    uint64_t generation, next_token;
    buf key; /* a decision's key, composed by the loop's thread */
    _Atomic int auth;
    ep_tag l_tag, w_tag;
    conn *conns;
    conn *closed; /* freed after the events that may still name them */
    _Atomic uint64_t answered, denied, fetched, relayed, connections;
    _Atomic int64_t held; /* bytes in the streams' buffers */
    /* TLS: the files, the context new connections get (the loop's alone
     * after the start) and what the files were when it was loaded; the
     * last look at them (CLOCK_MONOTONIC). */
    char *cert_path, *key_path;
    SSL_CTX *tls_ctx;
    struct file_id {
        int found;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtim, ctim;
    } cert_id, key_id;
    struct timespec tls_checked;
    _Atomic uint64_t tls_handshakes, tls_handshake_failures, tls_reloads, tls_reload_failures;
};

static void set_err(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int headers_add(headers *h, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        header *v = realloc(h->v, cap * sizeof(*v));
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    char *mem = malloc(nlen + vlen + 2);
    if (!mem) return -1;
    memcpy(mem, name, nlen);
    mem[nlen] = 0;
    memcpy(mem + nlen + 1, value, vlen);
    mem[nlen + 1 + vlen] = 0;
    h->v[h->n++] = (header){mem, mem + nlen + 1, nlen, vlen};
    return 0;
}

static void headers_free(headers *h) {
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].name);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

/* nghttp2 name/value pairs over h (nghttp2 copies them on submit). */
static nghttp2_nv *nva_of(const headers *h) {
    nghttp2_nv *nva = calloc(h->n ? h->n : 1, sizeof(*nva));
    if (!nva) return NULL;
    for (size_t i = 0; i < h->n; i++)
        nva[i] = (nghttp2_nv){(uint8_t *)h->v[i].name, (uint8_t *)h->v[i].value, h->v[i].nlen,
                              h->v[i].vlen, NGHTTP2_NV_FLAG_NONE};
    return nva;
}

static void strm_free(strm *s) {
    atomic_fetch_sub(&s->c->f->held, (int64_t)(s->req.n - s->req_off + s->resp.n - s->resp_off));
    headers_free(&s->req_h);
    headers_free(&s->resp_h);
    headers_free(&s->trailers);
    buf_free(&s->req);
    buf_free(&s->resp);
    free(s);
}

static void strm_unlink(strm *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        s->c->streams = s->next;
    if (s->next) s->next->prev = s->prev;
}

/* ---- TLS ------------------------------------------------------------------ */

/* OpenSSL's reason for what just failed ("PEM routines: no start line")
 * into out: the earliest error in the thread's queue, the cause (the later
 * ones say what failed because of it). The queue is cleared. */
static void tls_reason(char *out, size_t len) {
    unsigned long e = ERR_get_error();
    const char *lib = e ? ERR_lib_error_string(e) : NULL;
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SYS) /* an errno: "No such file or directory" */
        snprintf(out, len, "%s", strerror(ERR_GET_REASON(e)));
    else if (why)
        snprintf(out, len, "%s%s%s", lib ? lib : "", lib ? ": " : "", why);
    else if (e)
        ERR_error_string_n(e, out, len);
    else
        snprintf(out, len, "no reason given");
    ERR_clear_error();
}

/* An encrypted key gets no passphrase (OpenSSL would otherwise ask for one
 * on the terminal): it does not load, as grpcio does not take it either.
 * *user is set: the key is encrypted. */
static int no_passphrase(char *pw, int size, int rwflag, void *user) {
    (void)pw, (void)size, (void)rwflag;
    if (user) *(int *)user = 1;
    return -1;
}

/* ALPN: "h2" when the client offers it; a client that offers others only
 * is refused with a no_application_protocol alert, as gRPC servers refuse
 * it. (A client that offers none never gets here, and speaks HTTP/2 with
 * prior knowledge.) */
static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl, (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (n > inlen - i - 1) break;
        if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* A server context for the PEM certificate chain at cert and the private
 * key at key; NULL with err filled (which file, OpenSSL's reason). */
static SSL_CTX *tls_load(const char *cert, const char *key, char *err, size_t errlen) {
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_reason(why, sizeof(why));
        set_err(err, errlen, "cannot set up TLS: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); /* and up to 1.3 */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* SSL_write returns after each record it wrote (flush_side keeps its
     * place in sd->out); idle connections give their buffers back; a recv
     * takes what the socket has, not one record header at a time (pump_in
     * reads until SSL_read wants more, so nothing stays inside SSL). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Resumption by tickets only: no session cache growing with clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    int encrypted = 0;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &encrypted);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_h2, NULL);
    /* No client certificate is asked for: Feast's start_server makes its
     * credentials with grpc.ssl_server_credentials(((key, chain),)), no
     * root certificates and no client auth, so its server asks for none
     * either, and clients that present none are its clients. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_reason(why, sizeof(why));
        set_err(err, errlen, "cannot load the TLS certificate chain from %s: %s", cert, why);
    } else {
        /* OpenSSL checks the key against the certificate as it loads it;
         * SSL_CTX_check_private_key once more. */
        int loaded = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1;
        unsigned long e = ERR_peek_error();
        int mismatch = loaded || (ERR_GET_LIB(e) == ERR_LIB_X509 &&
                                  ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH);
        if (loaded && SSL_CTX_check_private_key(ctx) == 1) {
            SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL); /* not to point at this frame */
            return ctx;
        }
        tls_reason(why, sizeof(why));
        if (encrypted)
            set_err(err, errlen,
                    "cannot load the TLS private key from %s: it is encrypted (a passphrase is "
                    "not supported)",
                    key);
        else if (mismatch)
            set_err(err, errlen,
                    "the TLS private key in %s does not match the certificate in %s: %s", key,
                    cert, why);
        else
            set_err(err, errlen, "cannot load the TLS private key from %s: %s", key, why);
    }
    SSL_CTX_free(ctx);
    return NULL;
}

/* What a file is now (stat, symlinks followed): found, device, inode,
 * size, mtime, ctime. */
static struct file_id file_id_of(const char *path) {
    struct file_id id;
    struct stat st;
    memset(&id, 0, sizeof(id));
    if (stat(path, &st) == 0)
        id = (struct file_id){1, st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
    return id;
}

static int same_file(const struct file_id *a, const struct file_id *b) {
    return a->found == b->found && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* Looks at the files at most once per TLS_CHECK_NS; when either is not
 * what the context was loaded from, loads the pair again. The files are
 * stat()ed before they are read, so a change made while they are read is
 * seen on the next look. A pair that fails to load leaves the context as
 * it was and the ids too: the next look tries again. */
enum { TLS_CHECK_NS = 1000000000 };

static void tls_check(front *f) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t since = (int64_t)(now.tv_sec - f->tls_checked.tv_sec) * 1000000000 +
                    (now.tv_nsec - f->tls_checked.tv_nsec);
    if (since < TLS_CHECK_NS) return;
    f->tls_checked = now;
    struct file_id cert = file_id_of(f->cert_path), key = file_id_of(f->key_path);
    if (same_file(&cert, &f->cert_id) && same_file(&key, &f->key_id)) return;
    char err[512];
    SSL_CTX *ctx = tls_load(f->cert_path, f->key_path, err, sizeof(err));
    if (!ctx) {
        atomic_fetch_add(&f->tls_reload_failures, 1);
        return;
    }
    SSL_CTX_free(f->tls_ctx); /* each open connection's SSL holds a reference */
    f->tls_ctx = ctx;
    f->cert_id = cert;
    f->key_id = key;
    atomic_fetch_add(&f->tls_reloads, 1);
}

/* ---- sockets -------------------------------------------------------------- */

static int nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void watch(front *f, side *sd, ep_tag *tag, int out) {
    struct epoll_event ev = {EPOLLIN | (out ? EPOLLOUT : 0), {.ptr = tag}};
    epoll_ctl(f->efd, EPOLL_CTL_MOD, sd->fd, &ev);
    sd->want_out = out;
}

/* Watches sd's socket for writability too, or not (EPOLLIN is always on). */
static void want_out(conn *c, side *sd, ep_tag *tag, int out) {
    if (sd->want_out != out) watch(c->f, sd, tag, out);
}

/* Writes from sd->out through TLS: the bytes written, 0 when the write
 * waits (for the socket, in epoll; or for a record from the peer, which
 * EPOLLIN brings: serve_event reads it, then flushes again), -1 on a
 * failure. After a wait, the next call is with the same bytes (flush_side
 * adds none before these are out), as SSL_write requires. */
static ssize_t tls_write(conn *c, side *sd, ep_tag *tag) {
    size_t n = sd->out.n - sd->out_off;
    ERR_clear_error();
    int w = SSL_write(sd->ssl, sd->out.p + sd->out_off, n > INT_MAX ? INT_MAX : (int)n);
    if (w > 0) return w;
    switch (SSL_get_error(sd->ssl, w)) {
    case SSL_ERROR_WANT_WRITE:
        want_out(c, sd, tag, 1);
        return 0;
    case SSL_ERROR_WANT_READ:
        want_out(c, sd, tag, sd->io_out);
        return 0;
    default:
        sd->tls_fatal = 1;
        ERR_clear_error();
        return -1;
    }
}

/* Up to OUT_BATCH bytes of what nghttp2 has to send are gathered before a
 * write: one send() for a small answer's HEADERS, DATA and trailers, not
 * one per frame. */
enum { OUT_BATCH = 16384 };

/* Writes what nghttp2 has to send on one side. -1: the socket failed. A
 * side with no socket (front_feed's) counts its bytes in c->dropped. New
 * bytes go into sd->out only once it is empty: a write that would block is
 * retried with the same bytes at the same place. */
static int flush_side(conn *c, side *sd, ep_tag *tag) {
    if (!sd->h2) return 0;
    if (sd->ssl && sd->handshaking) { /* nghttp2's SETTINGS wait for it */
        want_out(c, sd, tag, sd->io_out);
        return 0;
    }
    for (;;) {
        if (sd->out_off == sd->out.n) {
            sd->out.n = sd->out_off = 0;
            while (sd->out.n < OUT_BATCH) {
                const uint8_t *data;
                nghttp2_ssize n = nghttp2_session_mem_send2(sd->h2, &data);
                if (n < 0) return -1;
                if (n == 0) break;
                if (buf_put(&sd->out, data, (size_t)n) != 0) return -1;
            }
            if (sd->out.n == 0) break;
        }
        if (sd->fd < 0) {
            c->dropped += sd->out.n - sd->out_off;
            sd->out_off = sd->out.n;
            continue;
        }
        if (sd->ssl) {
            ssize_t w = tls_write(c, sd, tag);
            if (w <= 0) return (int)w;
            sd->out_off += (size_t)w;
            continue;
        }
        ssize_t w = send(sd->fd, sd->out.p + sd->out_off, sd->out.n - sd->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                want_out(c, sd, tag, 1);
                return 0;
            }
            return -1;
        }
        sd->out_off += (size_t)w;
    }
    want_out(c, sd, tag, sd->io_out);
    return 0;
}

/* ---- flow control ---------------------------------------------------------- */

/* Both sessions leave WINDOW_UPDATE to us (NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE),
 * so a relayed call is back-pressured end to end: a client that reads slowly
 * (or a backend that does) stops the other side once RELAY_WINDOW bytes of
 * its stream wait here. A stream's window is credited as its bytes leave
 * here: when they are passed on to the other side (or, for a request the
 * front answers itself, at once; such a request that grows past
 * ANSWERABLE_MAX is relayed instead). The connection's window is credited
 * as bytes arrive, as a gRPC peer does, so that one stalled stream never
 * stops the others on its connection. So the front holds at most
 * RELAY_WINDOW per stream, and MAX_STREAMS streams per client connection
 * (a gRPC client queues calls past that). */
enum { RELAY_WINDOW = 1 << 20, CONN_WINDOW = 1 << 26, ANSWERABLE_MAX = 1 << 16, MAX_STREAMS = 100 };

/* A session for one side of a connection (the client's when server, the
 * backend's otherwise) with the flow control above: RELAY_WINDOW per
 * stream, CONN_WINDOW for the connection, windows credited by us; extra is
 * one more setting to send. NULL on failure. */
static nghttp2_session *new_session(const nghttp2_session_callbacks *cbs, conn *c, int server,
                                    nghttp2_settings_entry extra) {
    nghttp2_option *opt = NULL;
    nghttp2_session *h2 = NULL;
    if (nghttp2_option_new(&opt) != 0) return NULL;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = server ? nghttp2_session_server_new2(&h2, cbs, c, opt)
                    : nghttp2_session_client_new2(&h2, cbs, c, opt);
    nghttp2_option_del(opt);
    if (rv != 0) return NULL;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RELAY_WINDOW}, extra};
    if (nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        nghttp2_session_del(h2);
        return NULL;
    }
    return h2;
}

/* The stream of ours that len bytes of DATA on stream id of h2 are for,
 * the connection's window credited for them; NULL, and the stream's window
 * credited too, when there is none any more (it is being reset). */
static strm *data_arrived(nghttp2_session *h2, int32_t id, size_t len) {
    nghttp2_session_consume_connection(h2, len);
    strm *s = nghttp2_session_get_stream_user_data(h2, id);
    if (!s) nghttp2_session_consume_stream(h2, id, len);
    return s;
}

/* Keeps len bytes that arrived on one side in b, counting them as held. */
static int hold(front *f, buf *b, const uint8_t *data, size_t len) {
    if (buf_put(b, data, len) != 0) return -1;
    atomic_fetch_add(&f->held, (int64_t)len);
    return 0;
}

/* Copies up to len bytes of b from *off to out (what nghttp2 asks for to
 * send on the other side); the buffer starts over once all was taken. */
static size_t pass_on(front *f, buf *b, size_t *off, uint8_t *out, size_t len) {
    size_t avail = b->n - *off;
    size_t n = avail < len ? avail : len;
    if (n) memcpy(out, b->p + *off, n);
    *off += n;
    if (*off == b->n) b->n = *off = 0;
    atomic_fetch_sub(&f->held, (int64_t)n);
    return n;
}

/* ---- relaying to the backend ---------------------------------------------- */

static nghttp2_ssize req_read(nghttp2_session *h2, int32_t id, uint8_t *out, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *user) {
    (void)h2, (void)id, (void)user;
    strm *s = src->ptr;
    if (s->req.n == s->req_off && !s->req_ended) return NGHTTP2_ERR_DEFERRED;
    size_t n = pass_on(s->c->f, &s->req, &s->req_off, out, len);
    size_t pre = n < s->req_precredited ? n : s->req_precredited;
    s->req_precredited -= pre;
    if (n > pre) nghttp2_session_consume_stream(s->c->cl.h2, s->id, n - pre);
    if (s->req_off == s->req.n && s->req_ended) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (nghttp2_ssize)n;
}

static int up_connect(conn *c);

/* Sends stream s on to the backend: its headers now, its body as it comes. */
static void up_drop(conn *c);

static int relay(conn *c, strm *s) {
    if (!c->up.h2 && up_connect(c) != 0) return -1;
    nghttp2_nv *nva = nva_of(&s->req_h);
    if (!nva) return -1;
    nghttp2_data_provider2 prd = {{.ptr = s}, req_read};
    int32_t id = nghttp2_submit_request2(c->up.h2, NULL, nva, s->req_h.n, &prd, s);
    if (id == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED || id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        /* The backend said GOAWAY (shutting down) or the connection ran out
         * of stream ids: a new connection for this call and the next. */
        up_drop(c);
        id = up_connect(c) != 0 ? -1
                                : nghttp2_submit_request2(c->up.h2, NULL, nva, s->req_h.n, &prd, s);
    }
    free(nva);
    if (id < 0) return -1;
    s->up_id = id;
    s->method = -1;
    atomic_fetch_add(&c->f->relayed, 1);
    return 0;
}

static nghttp2_ssize resp_read(nghttp2_session *h2, int32_t id, uint8_t *out, size_t len,
                               uint32_t *flags, nghttp2_data_source *src, void *user) {
    (void)user;
    strm *s = src->ptr;
    if (s->resp.n == s->resp_off && !s->resp_ended) return NGHTTP2_ERR_DEFERRED;
    size_t n = pass_on(s->c->f, &s->resp, &s->resp_off, out, len);
    if (n && s->up_id > 0 && s->c->up.h2) nghttp2_session_consume_stream(s->c->up.h2, s->up_id, n);
    if (s->resp_off == s->resp.n && s->resp_ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->trailers.n) {
            nghttp2_nv *nva = nva_of(&s->trailers);
            if (nva && nghttp2_submit_trailer(h2, id, nva, s->trailers.n) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            free(nva);
        }
    }
    return (nghttp2_ssize)n;
}

/* Starts the response on the client stream: headers, then the body as it
 * comes (or no body: a trailers-only answer). */
static int respond(conn *c, strm *s, int has_body) {
    nghttp2_nv *nva = nva_of(&s->resp_h);
    if (!nva) return -1;
    nghttp2_data_provider2 prd = {{.ptr = s}, resp_read};
    int rv = nghttp2_submit_response2(c->cl.h2, s->id, nva, s->resp_h.n, has_body ? &prd : NULL);
    free(nva);
    s->responding = 1;
    return rv;
}

/* ---- answering from the table --------------------------------------------- */

/* name, project and allow_cache of a Get request message for method m,
 * read by pb/pb.c's wire reader with the fields the caller named; -1 when it
 * is not one this code can read with certainty (then the backend
 * answers). */
static int parse_get(const front *f, int m, const uint8_t *p, size_t n, const uint8_t **name,
                     size_t *nn, const uint8_t **proj, size_t *pn, int *allow_cache) {
    const front_fields *ff = &f->fields[m];
    pb_req_field fields[3] = {{ff->name, PB_REQ_STRING, 0, NULL, 0, 0},
                              {ff->project, PB_REQ_STRING, 0, NULL, 0, 0},
                              {ff->allow_cache, PB_REQ_BOOL, 0, NULL, 0, 0}};
    if (pb_read_request(p, n, fields, 3) != 0) return -1;
    *name = fields[0].p, *nn = fields[0].n;
    *proj = fields[1].p, *pn = fields[1].n;
    *allow_cache = fields[2].value;
    return 0;
}

static const uint8_t STATUS_200[] = ":status", OK_200[] = "200", CT[] = "content-type",
                     GRPC[] = "application/grpc", GRPC_STATUS[] = "grpc-status", ZERO[] = "0";

/* Answers stream s with the framed message in s->resp (grpc-status 0),
 * counting it in *counter. */
static int send_answer(conn *c, strm *s, _Atomic uint64_t *counter) {
    if (headers_add(&s->resp_h, STATUS_200, 7, OK_200, 3) != 0 ||
        headers_add(&s->resp_h, CT, 12, GRPC, 16) != 0 ||
        headers_add(&s->trailers, GRPC_STATUS, 11, ZERO, 1) != 0)
        return -1;
    s->resp_ended = 1;
    atomic_fetch_add(counter, 1);
    return respond(c, s, 1);
}

static const uint8_t GRPC_MESSAGE[] = "grpc-message";

/* Refuses stream s as a learned decision v (status, message) says:
 * a trailers-only response, as a gRPC server answers a call it aborts;
 * grpc-message percent-encoded as gRPC's wire format wants (every byte
 * outside 0x20..0x7e, and '%'). Called under f->lock (v is the table's). */
static int send_denial(conn *c, strm *s, const uint8_t *v, size_t vn) {
    int32_t status;
    memcpy(&status, v, 4);
    const uint8_t *m = v + 4;
    size_t mn = vn - 4;
    char code[12];
    int cn = snprintf(code, sizeof(code), "%d", (int)status);
    buf enc = {0};
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < mn; i++) {
        uint8_t ch = m[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            if (buf_put(&enc, &ch, 1) != 0) goto fail;
        } else {
            uint8_t esc[3] = {'%', (uint8_t)hex[ch >> 4], (uint8_t)hex[ch & 15]};
            if (buf_put(&enc, esc, 3) != 0) goto fail;
        }
    }
    if (headers_add(&s->resp_h, STATUS_200, 7, OK_200, 3) != 0 ||
        headers_add(&s->resp_h, CT, 12, GRPC, 16) != 0 ||
        headers_add(&s->resp_h, GRPC_STATUS, 11, (const uint8_t *)code, (size_t)cn) != 0 ||
        (mn && headers_add(&s->resp_h, GRPC_MESSAGE, 12, enc.p, enc.n) != 0))
        goto fail;
    buf_free(&enc);
    s->resp_ended = 1;
    atomic_fetch_add(&c->f->denied, 1);
    return respond(c, s, 0);
fail:
    buf_free(&enc);
    return -1;
}

/* Resets stream s after a failure here: refused when the call never reached
 * the backend (a client may retry it), an internal error when it did. */
static void reset_failed(conn *c, strm *s) {
    nghttp2_submit_rst_stream(c->cl.h2, NGHTTP2_FLAG_NONE, s->id,
                              s->up_id == 0 ? NGHTTP2_REFUSED_STREAM : NGHTTP2_INTERNAL_ERROR);
}

/* Hands an uncached Get to the workers: 2 (the answer comes later), 0 when
 * there are none (the backend answers), -1 on failure. */
static int fetch(conn *c, strm *s, const uint8_t *proj, size_t pn, const uint8_t *name, size_t nn) {
    front *f = c->f;
    if (!f->st) return 0;
    job *j = calloc(1, sizeof(*j));
    if (!j || buf_put(&j->key, proj, pn) != 0 || buf_put(&j->key, name, nn) != 0) {
        if (j) buf_free(&j->key);
        free(j);
        return -1;
    }
    j->conn_id = c->id;
    j->stream_id = s->id;
    j->kind = f->kinds[s->method];
    j->pn = pn;
    s->fetching = 1;
    pthread_mutex_lock(&f->jobs_lock);
    *f->todo_tail = j;
    f->todo_tail = &j->next;
    pthread_cond_signal(&f->jobs_cond);
    pthread_mutex_unlock(&f->jobs_lock);
    return 2;
}

/* The value of stream s's one authorization header, or NULL when it has
 * none or more than one. */
static const header *authorization(const strm *s) {
    const header *found = NULL;
    for (size_t i = 0; i < s->req_h.n; i++)
        if (s->req_h.v[i].nlen == 13 && memcmp(s->req_h.v[i].name, "authorization", 13) == 0) {
            if (found) return NULL;
            found = &s->req_h.v[i];
        }
    return found;
}

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The decision value for (method, auth, project, name), under f->lock; NULL
 * when none was learned or the header's have expired. */
static const uint8_t *decision(front *f, int method, const header *auth, const uint8_t *proj,
                               size_t pn, const uint8_t *name, size_t nn, size_t *vn) {
    if (!f->tokens || !f->decisions) return NULL;
    size_t tn = 0;
    const uint8_t *t =
        front_answers_get(f->tokens, 0, (const char *)auth->value, auth->vlen, "", 0, &tn);
    double until;
    if (!t || tn != 8 + sizeof(double)) return NULL;
    memcpy(&until, t + 8, sizeof(until));
    if (!(unix_now() < until)) return NULL;
    f->key.n = 0;
    if (buf_put(&f->key, t, 8) != 0 || buf_put(&f->key, proj, pn) != 0) return NULL;
    const uint8_t *v = front_answers_get(f->decisions, method, (const char *)f->key.p, f->key.n,
                                         (const char *)name, nn, vn);
    return v && *vn >= 4 ? v : NULL;
}

static int send_denial(conn *c, strm *s, const uint8_t *v, size_t vn);

/* 1 when the table answered stream s (its request complete), 2 when a
 * worker will, 0 when the backend must, -1 on failure. With auth, only
 * cached Gets whose decision is known are answered (or refused). */
static int try_answer(conn *c, strm *s) {
    front *f = c->f;
    if (s->req.n < 5 || s->req.p[0] != 0) return 0; /* compressed, or no message */
    size_t len = ((size_t)s->req.p[1] << 24) | ((size_t)s->req.p[2] << 16) |
                 ((size_t)s->req.p[3] << 8) | s->req.p[4];
    if (len != s->req.n - 5) return 0;
    const uint8_t *name, *proj;
    size_t nn, pn;
    int allow_cache;
    if (parse_get(f, s->method, s->req.p + 5, len, &name, &nn, &proj, &pn, &allow_cache) != 0)
        return 0;
    const header *auth = NULL;
    if (atomic_load(&f->auth)) {
        if (!allow_cache || !(auth = authorization(s))) return 0;
    } else if (!allow_cache) {
        return fetch(c, s, proj, pn, name, nn);
    }
    int found = 0;
    const uint8_t *verdict = NULL;
    size_t vn = 0;
    pthread_mutex_lock(&f->lock);
    size_t mn = 0;
    const uint8_t *msg = f->answers ? front_answers_get(f->answers, s->method, (const char *)proj,
                                                        pn, (const char *)name, nn, &mn)
                                    : NULL;
    if (msg && auth) {
        verdict = decision(f, s->method, auth, proj, pn, name, nn, &vn);
        int32_t status = 0;
        if (verdict) memcpy(&status, verdict, 4);
        if (!verdict) {
            msg = NULL;
        } else if (status != 0) {
            found = send_denial(c, s, verdict, vn) == 0 ? 3 : -1;
            msg = NULL;
        }
    }
    if (msg) {
        uint8_t prefix[5] = {0, (uint8_t)(mn >> 24), (uint8_t)(mn >> 16), (uint8_t)(mn >> 8),
                             (uint8_t)mn};
        found = hold(f, &s->resp, prefix, 5) == 0 && hold(f, &s->resp, msg, mn) == 0 ? 1 : -1;
    }
    pthread_mutex_unlock(&f->lock);
    if (found == 3) return 1;
    if (found <= 0) return found;
    return send_answer(c, s, &f->answered) == 0 ? 1 : -1;
}

/* The client finished sending stream s's request. */
static int request_ended(conn *c, strm *s) {
    s->req_ended = 1;
    if (s->method >= 0) {
        int rv = try_answer(c, s);
        if (rv != 0) return rv < 0 ? -1 : 0; /* answered, or being fetched */
        return relay(c, s);
    }
    if (s->up_id > 0 && c->up.h2) nghttp2_session_resume_data(c->up.h2, s->up_id);
    return 0;
}

/* ---- the client's session ------------------------------------------------- */

static int cl_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *user) {
    conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    strm *s = calloc(1, sizeof(*s));
    if (!s) return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->c = c;
    s->id = frame->hd.stream_id;
    s->method = -1;
    s->next = c->streams;
    if (c->streams) c->streams->prev = s;
    c->streams = s;
    nghttp2_session_set_stream_user_data(h2, s->id, s);
    return 0;
}

static int cl_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
    (void)flags;
    conn *c = user;
    strm *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* client trailers: none in gRPC */
    if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
        for (int i = 0; i < c->f->nmethods; i++)
            if (strlen(c->f->methods[i]) == vlen && memcmp(c->f->methods[i], value, vlen) == 0)
                s->method = i;
    }
    return headers_add(&s->req_h, name, nlen, value, vlen) == 0
               ? 0
               : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int cl_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user) {
    conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    strm *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s) return 0;
    int rv = 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        s->method < 0)
        rv = relay(c, s); /* not answerable: to the backend at once, body to follow */
    if (rv == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) rv = request_ended(c, s);
    if (rv != 0) reset_failed(c, s);
    return 0;
}

static int cl_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user) {
    (void)flags;
    conn *c = user;
    strm *s = data_arrived(h2, id, len);
    if (!s) return 0;
    if (hold(c->f, &s->req, data, len) != 0) {
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if (s->method >= 0 && s->up_id == 0) {
        /* A request the front may answer itself: taken whole (credited at
         * once), unless it grows too big for a Get, which Feast's server
         * then answers. */
        nghttp2_session_consume_stream(h2, id, len);
        s->req_precredited += len;
        if (s->req.n > ANSWERABLE_MAX && !s->fetching && relay(c, s) != 0) reset_failed(c, s);
        return 0;
    }
    if (s->up_id > 0 && c->up.h2) nghttp2_session_resume_data(c->up.h2, s->up_id);
    return 0;
}

static int cl_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user) {
    (void)code;
    conn *c = user;
    strm *s = nghttp2_session_get_stream_user_data(h2, id);
    if (!s) return 0;
    if (s->up_id > 0 && c->up.h2) { /* the client went away: cancel the backend call */
        nghttp2_session_set_stream_user_data(c->up.h2, s->up_id, NULL);
        nghttp2_submit_rst_stream(c->up.h2, NGHTTP2_FLAG_NONE, s->up_id, NGHTTP2_CANCEL);
    }
    strm_unlink(s);
    strm_free(s);
    return 0;
}

/* ---- the backend's session ------------------------------------------------ */

static int up_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
    (void)flags, (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    strm *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s) return 0;
    headers *h = frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? &s->resp_h : &s->trailers;
    return headers_add(h, name, nlen, value, vlen) == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int up_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user) {
    conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    strm *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s) return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        s->resp_ended = end;
        if (respond(c, s, !end) != 0)
            nghttp2_submit_rst_stream(c->cl.h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if (end) {
        s->resp_ended = 1;
        if (s->responding) nghttp2_session_resume_data(c->cl.h2, s->id);
    }
    return 0;
}

static int up_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user) {
    (void)flags;
    conn *c = user;
    strm *s = data_arrived(h2, id, len); /* NULL: the client went away */
    if (!s) return 0;
    if (hold(c->f, &s->resp, data, len) != 0) {
        nghttp2_submit_rst_stream(c->cl.h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if (s->responding) nghttp2_session_resume_data(c->cl.h2, s->id);
    return 0;
}

static int up_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user) {
    conn *c = user;
    strm *s = nghttp2_session_get_stream_user_data(h2, id);
    if (!s) return 0;
    s->up_id = -1;
    if (code != NGHTTP2_NO_ERROR || !s->resp_ended) /* reset, or ended without an answer */
        nghttp2_submit_rst_stream(c->cl.h2, NGHTTP2_FLAG_NONE, s->id,
                                  code != NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
    return 0;
}

static int up_connect(conn *c) {
    front *f = c->f;
    if (f->backend_port <= 0) return -1; /* front_feed's: no backend */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->backend_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || nonblocking(fd) != 0) {
        close(fd);
        return -1;
    }
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        close(fd);
        return -1;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, up_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, up_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, up_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, up_close);
    c->up.h2 = new_session(cbs, c, 0, (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
    nghttp2_session_callbacks_del(cbs);
    if (!c->up.h2) {
        close(fd);
        return -1;
    }
    c->up.fd = fd;
    struct epoll_event ev = {EPOLLIN, {.ptr = &c->up_tag}};
    epoll_ctl(f->efd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* The backend connection failed: every call relayed on it is reset. */
static void up_drop(conn *c) {
    if (!c->up.h2) return;
    for (strm *s = c->streams; s; s = s->next) {
        if (s->up_id != 0 && !s->resp_ended)
            nghttp2_submit_rst_stream(c->cl.h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
        if (s->up_id != 0) s->up_id = -1;
    }
    nghttp2_session_del(c->up.h2);
    c->up.h2 = NULL;
    epoll_ctl(c->f->efd, EPOLL_CTL_DEL, c->up.fd, NULL);
    close(c->up.fd);
    c->up.fd = -1;
    buf_free(&c->up.out);
    c->up.out_off = 0;
    c->up.want_out = 0;
}

/* ---- the workers (uncached Gets) ------------------------------------------ */

/* The answer to an uncached Get of j: the stored object with its project
 * stamp cleared, framed; 0 (the backend answers) for a missing or bad row
 * or any error, so that Feast's server says what is wrong. */
static int fetch_answer(store *st, job *j) {
    rowset rs = {0};
    db_err err;
    sref project = {(const char *)j->key.p, j->pn};
    sref name = {(const char *)j->key.p + j->pn, j->key.n - j->pn};
    int ok = 0;
    if (store_get(st, j->kind, project, name, 0, &rs, &err) == 0 && rs.nrows == 1) {
        db_value proto = rowset_get(&rs, 0, 0);
        buf stamp = {0};
        uint8_t prefix[5] = {0};
        /* A string Feast's parser would reject: its server says so. */
        if (proto.type == DB_BLOB && pb_strings_ok(proto.p, proto.n) &&
            pb_project_stamp(j->kind, "", 0, &stamp) == 0) {
            size_t n = proto.n + stamp.n;
            prefix[1] = (uint8_t)(n >> 24), prefix[2] = (uint8_t)(n >> 16);
            prefix[3] = (uint8_t)(n >> 8), prefix[4] = (uint8_t)n;
            ok = n <= 0xffffffffu && buf_put(&j->answer, prefix, 5) == 0 &&
                 buf_put(&j->answer, proto.p, proto.n) == 0 &&
                 buf_put(&j->answer, stamp.p, stamp.n) == 0;
        }
        buf_free(&stamp);
    }
    rowset_free(&rs);
    return ok;
}

static void *worker(void *arg) {
    front *f = arg;
    pthread_mutex_lock(&f->jobs_lock);
    for (;;) {
        while (!f->todo && !f->stopping)
            pthread_cond_wait(&f->jobs_cond, &f->jobs_lock);
        if (f->stopping) break;
        job *j = f->todo;
        f->todo = j->next;
        if (!f->todo) f->todo_tail = &f->todo;
        pthread_mutex_unlock(&f->jobs_lock);
        j->answered = fetch_answer(f->st, j);
        pthread_mutex_lock(&f->jobs_lock);
        j->next = f->done;
        f->done = j;
        uint64_t one = 1;
        ssize_t w = write(f->dfd, &one, sizeof(one));
        (void)w;
    }
    pthread_mutex_unlock(&f->jobs_lock);
    return NULL;
}

static void job_free(job *j) {
    buf_free(&j->key);
    buf_free(&j->answer);
    free(j);
}

static void conn_close(conn *c);

/* Writes what both sessions have to send. Passing bytes on in one session
 * credits the window of the other (a WINDOW_UPDATE to send there), so a
 * few rounds, until neither has more. -1: the client's socket failed (the
 * backend's only drops the backend connection). */
static int flush_sides(conn *c) {
    for (int round = 0; round < 3; round++) {
        if (c->up.h2 && flush_side(c, &c->up, &c->up_tag) != 0) up_drop(c);
        if (flush_side(c, &c->cl, &c->cl_tag) != 0) return -1;
        if (!(c->up.h2 && nghttp2_session_want_write(c->up.h2)) &&
            !nghttp2_session_want_write(c->cl.h2))
            break;
    }
    return 0;
}

static void flush_conn(conn *c) {
    if (flush_sides(c) != 0) conn_close(c);
}

/* Answers (or relays) the streams whose fetch finished. */
static void fetched(front *f) {
    uint64_t count;
    ssize_t r = read(f->dfd, &count, sizeof(count));
    (void)r;
    pthread_mutex_lock(&f->jobs_lock);
    job *done = f->done;
    f->done = NULL;
    pthread_mutex_unlock(&f->jobs_lock);
    while (done) {
        job *j = done;
        done = j->next;
        conn *c = f->conns;
        while (c && c->id != j->conn_id)
            c = c->next;
        strm *s =
            c && !c->dead ? nghttp2_session_get_stream_user_data(c->cl.h2, j->stream_id) : NULL;
        if (s && s->fetching) { /* the client may have gone meanwhile */
            s->fetching = 0;
            int rv;
            if (j->answered) {
                atomic_fetch_add(&f->held,
                                 (int64_t)j->answer.n - (int64_t)(s->resp.n - s->resp_off));
                buf_free(&s->resp);
                s->resp = j->answer;
                s->resp_off = 0;
                memset(&j->answer, 0, sizeof(j->answer));
                rv = send_answer(c, s, &f->fetched);
            } else {
                rv = relay(c, s);
            }
            if (rv != 0) reset_failed(c, s);
            flush_conn(c);
        }
        job_free(j);
    }
}

/* ---- the loop ------------------------------------------------------------- */

static void conn_close(conn *c) {
    front *f = c->f;
    if (c->dead) return;
    c->dead = 1;
    up_drop(c);
    if (c->cl.ssl) {
        /* close_notify, when the connection ends in good order (whether the
         * socket takes it or not). */
        if (!c->cl.handshaking && !c->cl.tls_fatal) SSL_shutdown(c->cl.ssl);
        SSL_free(c->cl.ssl);
        c->cl.ssl = NULL;
        ERR_clear_error();
    }
    if (c->cl.fd >= 0) {
        epoll_ctl(f->efd, EPOLL_CTL_DEL, c->cl.fd, NULL);
        close(c->cl.fd);
    }
    nghttp2_session_del(c->cl.h2); /* calls no stream callbacks */
    while (c->streams) {
        strm *s = c->streams;
        c->streams = s->next;
        strm_free(s);
    }
    buf_free(&c->cl.out);
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = f->closed;
    f->closed = c;
}

static void free_closed(front *f) {
    while (f->closed) {
        conn *c = f->closed;
        f->closed = c->next;
        free(c);
    }
}

/* A client connection on fd (-1: none, for front_feed) with its server
 * session, listed in f; NULL when out of memory. */
static conn *conn_new(front *f, int fd) {
    conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cbs = NULL;
    if (!c || nghttp2_session_callbacks_new(&cbs) != 0) {
        free(c);
        return NULL;
    }
    c->f = f;
    c->id = ++f->next_conn_id;
    c->cl.fd = fd;
    c->up.fd = -1;
    c->cl_tag = (ep_tag){1, c};
    c->up_tag = (ep_tag){2, c};
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cl_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cl_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cl_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cl_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cl_close);
    c->cl.h2 = new_session(
        cbs, c, 1, (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS});
    nghttp2_session_callbacks_del(cbs);
    if (!c->cl.h2) {
        free(c);
        return NULL;
    }
    c->next = f->conns;
    if (f->conns) f->conns->prev = c;
    f->conns = c;
    atomic_fetch_add(&f->connections, 1);
    return c;
}

static void accept_all(front *f) {
    if (f->tls_ctx) tls_check(f); /* a rotated certificate, for these connections */
    for (;;) {
        int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *c = conn_new(f, fd);
        if (!c) {
            close(fd);
            continue;
        }
        if (f->tls_ctx) { /* the handshake starts when the client's hello comes */
            c->cl.ssl = SSL_new(f->tls_ctx);
            if (!c->cl.ssl || SSL_set_fd(c->cl.ssl, fd) != 1) {
                ERR_clear_error();
                conn_close(c);
                continue;
            }
            SSL_set_accept_state(c->cl.ssl);
            c->cl.handshaking = 1;
        }
        struct epoll_event ev = {EPOLLIN, {.ptr = &c->cl_tag}};
        epoll_ctl(f->efd, EPOLL_CTL_ADD, fd, &ev);
        if (flush_side(c, &c->cl, &c->cl_tag) != 0) conn_close(c);
    }
}

/* The TLS handshake of a client side, one step: 1 done (now or before),
 * 0 waiting (for what, in sd->io_out), -1 failed (counted). */
static int tls_handshake(conn *c, side *sd) {
    if (!sd->handshaking) return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(sd->ssl);
    if (r == 1) {
        sd->handshaking = 0;
        sd->io_out = 0;
        atomic_fetch_add(&c->f->tls_handshakes, 1);
        return 1;
    }
    int e = SSL_get_error(sd->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        sd->io_out = e == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    sd->tls_fatal = 1;
    ERR_clear_error();
    atomic_fetch_add(&c->f->tls_handshake_failures, 1);
    return -1;
}

/* Reads what a TLS client side has into its session: the handshake first,
 * then records until SSL_read wants more from the socket, so that nothing
 * decrypted or read ahead stays inside SSL (SSL_pending, and what epoll
 * cannot see): a record read along with the handshake's last is taken at
 * once. 0: open; -1: closed or failed. */
static int tls_pump_in(conn *c, side *sd) {
    uint8_t chunk[65536];
    int hs = tls_handshake(c, sd);
    if (hs <= 0) return hs;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(sd->ssl, chunk, sizeof(chunk));
        if (r > 0) {
            if (nghttp2_session_mem_recv2(sd->h2, chunk, (size_t)r) < 0) return -1;
            continue;
        }
        switch (SSL_get_error(sd->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            sd->io_out = 0;
            return 0;
        case SSL_ERROR_WANT_WRITE: /* retried when the socket takes bytes */
            sd->io_out = 1;
            return 0;
        case SSL_ERROR_ZERO_RETURN: /* close_notify */
            return -1;
        default:
            sd->tls_fatal = 1;
            ERR_clear_error();
            return -1;
        }
    }
}

/* Reads what a socket has into its session. 0: open; -1: closed or failed. */
static int pump_in(conn *c, side *sd) {
    uint8_t chunk[65536];
    if (sd->ssl) return tls_pump_in(c, sd);
    for (;;) {
        ssize_t r = recv(sd->fd, chunk, sizeof(chunk), 0);
        if (r == 0) return -1;
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        if (nghttp2_session_mem_recv2(sd->h2, chunk, (size_t)r) < 0) return -1;
    }
}

static void serve_event(front *f, ep_tag *tag, uint32_t events) {
    conn *c = tag->c;
    if (c->dead) return;
    side *sd = tag->kind == 1 ? &c->cl : &c->up;
    int failed = 0;
    /* io_out: a TLS read or handshake step waits for the socket to take
     * bytes; it is tried again on any event. */
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || sd->io_out) failed = pump_in(c, sd) != 0;
    if (failed && tag->kind == 2) {
        up_drop(c);
        failed = 0;
    }
    if (!failed) failed = flush_sides(c) != 0;
    if (!failed && !nghttp2_session_want_read(c->cl.h2) && !nghttp2_session_want_write(c->cl.h2))
        failed = 1;
    if (failed) conn_close(c);
    (void)f;
}

static void *loop(void *arg) {
    front *f = arg;
    struct epoll_event evs[64];
    /* OpenSSL writes to a client's socket with write(), not send() with
     * MSG_NOSIGNAL: a client gone away would raise SIGPIPE, which this
     * thread blocks (the write then fails with EPIPE; the signal, directed
     * at this thread, stays pending and is never delivered). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    for (;;) {
        int n = epoll_wait(f->efd, evs, 64, -1);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            ep_tag *tag = evs[i].data.ptr;
            if (tag->kind == 3) goto done;
            if (tag->kind == 0)
                accept_all(f);
            else if (tag->kind == 4)
                fetched(f);
            else
                serve_event(f, tag, evs[i].events);
        }
        free_closed(f);
    }
done:
    while (f->conns)
        conn_close(f->conns);
    free_closed(f);
    return NULL;
}

static int listen_on(int port, char *err, size_t errlen) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        sa.sin6_addr = in6addr_any;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1024) == 0) return fd;
        close(fd);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(err, errlen, "cannot open a socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        set_err(err, errlen, "cannot listen on port %d: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Stops and joins the workers; drops the jobs they did not get to. */
static void stop_workers(front *f) {
    pthread_mutex_lock(&f->jobs_lock);
    f->stopping = 1;
    pthread_cond_broadcast(&f->jobs_cond);
    pthread_mutex_unlock(&f->jobs_lock);
    for (int i = 0; i < f->nworkers; i++)
        pthread_join(f->workers[i], NULL);
    f->nworkers = 0;
    for (job *lists[2] = {f->todo, f->done}, **l = lists; l < lists + 2; l++)
        while (*l) {
            job *j = *l;
            *l = j->next;
            job_free(j);
        }
    f->todo = f->done = NULL;
    f->todo_tail = &f->todo;
}

static void free_front(front *f) {
    for (int i = 0; f->methods && i < f->nmethods; i++)
        free(f->methods[i]);
    free(f->methods);
    free(f->kinds);
    free(f->fields);
    free(f->workers);
    front_answers_free(f->answers);
    front_answers_free(f->tokens);
    front_answers_free(f->decisions);
    buf_free(&f->key);
    SSL_CTX_free(f->tls_ctx);
    free(f->cert_path);
    free(f->key_path);
    if (f->own_store) store_close(f->st);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->jobs_lock);
    pthread_cond_destroy(&f->jobs_cond);
    free(f);
}

/* A front with no socket and no thread yet: its methods, the store and
 * workers' state; NULL when out of memory (st is not closed). */
static front *new_front(int backend_port, const char *const *methods, const obj_kind *kinds,
                        const front_fields *fields, int nmethods, store *st, int own_store,
                        int workers) {
    front *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->lfd = f->efd = f->wfd = f->dfd = -1;
    f->backend_port = backend_port;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->jobs_lock, NULL);
    pthread_cond_init(&f->jobs_cond, NULL);
    f->todo_tail = &f->todo;
    size_t nm = (size_t)(nmethods > 0 ? nmethods : 1);
    f->methods = calloc(nm, sizeof(char *));
    f->kinds = calloc(nm, sizeof(obj_kind));
    f->fields = calloc(nm, sizeof(front_fields));
    f->workers = calloc((size_t)(workers > 0 ? workers : 1), sizeof(pthread_t));
    int ok = f->methods && f->kinds && f->fields && f->workers;
    f->nmethods = ok ? nmethods : 0;
    for (int i = 0; ok && i < nmethods; i++) {
        ok = (f->methods[i] = strdup(methods[i])) != NULL;
        f->kinds[i] = kinds[i];
        f->fields[i] = fields ? fields[i] : (front_fields){1, 2, 3};
    }
    if (!ok) {
        free_front(f);
        return NULL;
    }
    f->st = st;
    f->own_store = own_store;
    return f;
}

front *front_start(int port, int backend_port, const char *const *methods, const obj_kind *kinds,
                   const front_fields *fields, int nmethods, store *st, int own_store, int workers,
                   const front_tls *tls, char *err, size_t errlen) {
    front *f = new_front(backend_port, methods, kinds, fields, nmethods, st, own_store, workers);
    if (!f) {
        if (own_store) store_close(st);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (tls) {
        if (!tls->cert_path || !tls->key_path || !*tls->cert_path || !*tls->key_path) {
            set_err(err, errlen, "TLS needs both a certificate chain file and a key file");
            goto fail;
        }
        f->cert_path = strdup(tls->cert_path);
        f->key_path = strdup(tls->key_path);
        if (!f->cert_path || !f->key_path) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
        /* What the files are, before they are read (see tls_check). */
        f->cert_id = file_id_of(f->cert_path);
        f->key_id = file_id_of(f->key_path);
        clock_gettime(CLOCK_MONOTONIC, &f->tls_checked);
        if (!(f->tls_ctx = tls_load(f->cert_path, f->key_path, err, errlen))) goto fail;
    }
    f->lfd = listen_on(port, err, errlen);
    if (f->lfd < 0) goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(f->lfd, (struct sockaddr *)&ss, &sl);
    f->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    f->efd = epoll_create1(EPOLL_CLOEXEC);
    f->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    f->dfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->efd < 0 || f->wfd < 0 || f->dfd < 0) {
        set_err(err, errlen, "cannot set up epoll: %s", strerror(errno));
        goto fail;
    }
    f->l_tag = (ep_tag){0, NULL};
    f->w_tag = (ep_tag){3, NULL};
    f->d_tag = (ep_tag){4, NULL};
    struct epoll_event ev = {EPOLLIN, {.ptr = &f->l_tag}};
    struct epoll_event wev = {EPOLLIN, {.ptr = &f->w_tag}};
    struct epoll_event dev = {EPOLLIN, {.ptr = &f->d_tag}};
    if (epoll_ctl(f->efd, EPOLL_CTL_ADD, f->lfd, &ev) != 0 ||
        epoll_ctl(f->efd, EPOLL_CTL_ADD, f->wfd, &wev) != 0 ||
        epoll_ctl(f->efd, EPOLL_CTL_ADD, f->dfd, &dev) != 0) {
        set_err(err, errlen, "cannot set up epoll: %s", strerror(errno));
        goto fail;
    }
    for (; st && f->nworkers < workers; f->nworkers++)
        if (pthread_create(&f->workers[f->nworkers], NULL, worker, f) != 0) break;
    if ((st && f->nworkers == 0) || pthread_create(&f->thread, NULL, loop, f) != 0) {
        set_err(err, errlen, "cannot start the front's threads: %s", strerror(errno));
        goto fail;
    }
    return f;
fail:
    stop_workers(f);
    if (f->lfd >= 0) close(f->lfd);
    if (f->efd >= 0) close(f->efd);
    if (f->wfd >= 0) close(f->wfd);
    if (f->dfd >= 0) close(f->dfd);
    free_front(f);
    return NULL;
}

int front_port(const front *f) {
    return f->port;
}

void front_set_answers(front *f, front_answers *a) {
    pthread_mutex_lock(&f->lock);
    front_answers *old = f->answers, *tokens = f->tokens, *decided = f->decisions;
    f->answers = a;
    f->tokens = f->decisions = NULL;
    f->generation++;
    pthread_mutex_unlock(&f->lock);
    front_answers_free(old);
    front_answers_free(tokens);
    front_answers_free(decided);
}

void front_replace_answers(front *f, front_answers *a) {
    pthread_mutex_lock(&f->lock);
    front_answers *old = f->answers;
    f->answers = a;
    pthread_mutex_unlock(&f->lock);
    front_answers_free(old);
}

void front_set_auth(front *f, int on) {
    atomic_store(&f->auth, on ? 1 : 0);
}

uint64_t front_generation(front *f) {
    pthread_mutex_lock(&f->lock);
    uint64_t g = f->generation;
    pthread_mutex_unlock(&f->lock);
    return g;
}

/* The id of authorization header auth in f->tokens, its until set; 0 when
 * out of memory. Under f->lock. */
static uint64_t token_id(front *f, const char *auth, size_t an, double until) {
    size_t tn = 0;
    const uint8_t *t = f->tokens ? front_answers_get(f->tokens, 0, auth, an, "", 0, &tn) : NULL;
    uint8_t value[8 + sizeof(double)];
    uint64_t id;
    if (t && tn == sizeof(value)) {
        memcpy(&id, t, 8);
    } else {
        if (!f->tokens && !(f->tokens = front_answers_new(16))) return 0;
        id = ++f->next_token;
    }
    memcpy(value, &id, 8);
    memcpy(value + 8, &until, sizeof(until));
    return answers_put(f->tokens, 0, auth, an, "", 0, value, sizeof(value), 1) == 0 ? id : 0;
}

int front_learn(front *f, uint64_t generation, const char *auth, size_t an, double until,
                const front_decision *d, size_t n) {
    if (!(until > unix_now())) return 0;
    buf key = {0}, value = {0};
    int rv = 1;
    front_answers *tokens = NULL, *decided = NULL;
    pthread_mutex_lock(&f->lock);
    if (generation != f->generation) {
        rv = 0;
        goto done;
    }
    if (front_answers_count(f->tokens) >= FRONT_TOKENS_MAX ||
        front_answers_count(f->decisions) + n > FRONT_DECISIONS_MAX) {
        tokens = f->tokens, decided = f->decisions; /* freed after the lock */
        f->tokens = f->decisions = NULL;
    }
    uint64_t id = token_id(f, auth, an, until);
    if (!id || (!f->decisions && !(f->decisions = front_answers_new(n)))) {
        rv = -1;
        goto done;
    }
    for (size_t i = 0; i < n && rv == 1; i++) {
        int32_t st = d[i].status;
        key.n = value.n = 0;
        if (buf_put(&key, &id, 8) != 0 || buf_put(&key, d[i].project, d[i].pn) != 0 ||
            buf_put(&value, &st, 4) != 0 || buf_put(&value, d[i].message, d[i].mn) != 0 ||
            answers_put(f->decisions, d[i].method, (const char *)key.p, key.n, d[i].name,
                        d[i].nn, value.p, value.n, 1) != 0)
            rv = -1;
    }
done:
    pthread_mutex_unlock(&f->lock);
    front_answers_free(tokens);
    front_answers_free(decided);
    buf_free(&key);
    buf_free(&value);
    return rv;
}

void front_stats_get(front *f, front_stats *out) {
    out->answered = atomic_load(&f->answered);
    out->denied = atomic_load(&f->denied);
    pthread_mutex_lock(&f->lock);
    out->decisions = front_answers_count(f->decisions);
    pthread_mutex_unlock(&f->lock);
    out->fetched = atomic_load(&f->fetched);
    out->relayed = atomic_load(&f->relayed);
    out->connections = atomic_load(&f->connections);
    out->held = atomic_load(&f->held);
    out->tls_handshakes = atomic_load(&f->tls_handshakes);
    out->tls_handshake_failures = atomic_load(&f->tls_handshake_failures);
    out->tls_reloads = atomic_load(&f->tls_reloads);
    out->tls_reload_failures = atomic_load(&f->tls_reload_failures);
}

void front_stop(front *f) {
    if (!f) return;
    uint64_t one = 1;
    ssize_t w = write(f->wfd, &one, sizeof(one));
    (void)w;
    pthread_join(f->thread, NULL);
    stop_workers(f);
    close(f->lfd);
    close(f->efd);
    close(f->wfd);
    close(f->dfd);
    free_front(f);
}

long front_feed(const char *const *methods, const obj_kind *kinds, const front_fields *fields,
                int nmethods, const front_answers *answers, const uint8_t *data, size_t n,
                size_t chunk, front_stats *stats) {
    front *f = new_front(0, methods, kinds, fields, nmethods, NULL, 0, 0);
    if (!f) return -1;
    /* Borrowed: only read, under f->lock, and handed back before the free. */
    f->answers = (front_answers *)answers;
    conn *c = conn_new(f, -1);
    long sent = -1;
    if (c) {
        /* What serve_event does with bytes from the client's socket. */
        int failed = flush_sides(c) != 0;
        for (size_t off = 0; !failed && off < n;) {
            size_t len = chunk && n - off > chunk ? chunk : n - off;
            failed = nghttp2_session_mem_recv2(c->cl.h2, data + off, len) < 0;
            off += len;
            if (!failed) failed = flush_sides(c) != 0;
            if (!failed && !nghttp2_session_want_read(c->cl.h2) &&
                !nghttp2_session_want_write(c->cl.h2))
                failed = 1;
        }
        sent = (long)c->dropped;
        conn_close(c);
    }
    free_closed(f);
    if (stats) front_stats_get(f, stats);
    f->answers = NULL;
    free_front(f);
    return sent;
}
