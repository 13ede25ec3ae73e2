/* front.h - a native gRPC front for `feast serve_registry`.
 *
 * grpcio's Python server costs about 0.37 ms of CPU per call on these
 * machines even for an empty answer, more than a cached Get of the native
 * registry costs all told. The front listens on the registry server's
 * port, speaks HTTP/2 itself (nghttp2) on one thread of its own, and
 * answers cached Get calls from a table of serialized messages without
 * Python; every other call (lists, writes, misses, uncached reads, health,
 * reflection, anything compressed or unknown) is relayed frame by frame to
 * Feast's own grpcio server, which listens on a loopback port behind it.
 * So an answer is either the table's (which the registry keeps equal to
 * its cached registry) or the grpcio server's.
 *
 * Uncached Gets (allow_cache unset) are answered from the database by a
 * few worker threads of the front's own, when the caller gives it a store:
 * the stored bytes with the project stamp cleared (as the registry server's
 * fast path answers), or, when the row is missing or bad, relayed, so that
 * Feast's server raises its own error. The event loop never waits on them.
 *
 * With TLS (front_tls), the front terminates it on the client side, with
 * the certificate chain and key files Feast's own TLS server reads; the
 * connections to the backend stay plaintext HTTP/2 on the loopback. The
 * files are watched: a rotated pair is used for new connections without a
 * restart.
 *
 * Pure C: no Python. The table is built by the caller and handed over
 * whole.
 */
#ifndef FEAST_SQLREG_FRONT_H
#define FEAST_SQLREG_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct front front;

/* Answers, keyed by (method, project, name): method is an index into the
 * front's method paths; the value is the serialized response message. */
typedef struct front_answers front_answers;
front_answers *front_answers_new(size_t expected);
/* 0, or -1 when out of memory. A key added twice keeps its first value. */
int front_answers_add(front_answers *a, int method, const char *project, size_t pn,
                      const char *name, size_t nn, const void *msg, size_t mn);
size_t front_answers_count(const front_answers *a);
/* The message stored for a key, or NULL; *mn gets its length. */
const uint8_t *front_answers_get(const front_answers *a, int method, const char *project, size_t pn,
                                 const char *name, size_t nn, size_t *mn);
void front_answers_free(front_answers *a);

/* The field numbers of an answerable method's request message: its name
 * and project (strings) and allow_cache (a bool); 0 when the message has
 * no such field (then the front takes the field's default). A request that
 * carries any other field is relayed, never answered here: the backend's
 * parser knows what it means. Distinct, below 2^29. */
typedef struct {
    uint32_t name, project, allow_cache;
} front_fields;

/* TLS on the client side: the PEM files Feast's start_server reads
 * (--cert, --key of `feast serve_registry`): cert_path, the certificate
 * chain (the server's certificate first); key_path, its private key
 * (unencrypted, as grpcio takes it). TLS 1.2 or 1.3; ALPN "h2" is selected,
 * and a client that offers ALPN without "h2" is refused in the handshake
 * (no_application_protocol), as gRPC servers do; a client that offers no
 * ALPN is taken (HTTP/2 with prior knowledge). No client certificate is
 * asked for: Feast's server asks for none.
 *
 * Rotation (cert-manager, service-ca: files replaced in place, often by a
 * symlink swap): when a connection is accepted, at most once a second, both
 * files are stat()ed (following symlinks; device, inode, size, mtime,
 * ctime); when either changed, a new context is loaded from both and used
 * for new connections (tls_reloads); connections already open keep the
 * certificate they started with. A pair that does not load or match (say
 * written half way) is not used: the old one goes on serving, the attempt
 * counts in tls_reload_failures, and the next check tries again. */
typedef struct {
    const char *cert_path, *key_path;
} front_tls;

/* Starts the front on [::]:port (0.0.0.0 without IPv6; port 0: any free
 * port) relaying to 127.0.0.1:backend_port. methods[i] is the :path of
 * answerable method i, a unary method whose request message has the
 * fields fields[i] (fields NULL: name 1, project 2, allow_cache 3 for every
 * method), and whose answer is the stored object of kind kinds[i]. Calls
 * with allow_cache set are answered from the table; the others from st, by
 * `workers` threads, when st is not NULL. With own_store the front owns st
 * from now on and closes it (on failure too); without, st is borrowed and
 * must outlive front_stop. tls: TLS on the client side (above; NULL:
 * plaintext); its paths are copied. NULL with err filled on failure (a TLS
 * file that does not load: which file, and OpenSSL's reason). */
front *front_start(int port, int backend_port, const char *const *methods, const obj_kind *kinds,
                   const front_fields *fields, int nmethods, store *st, int own_store, int workers,
                   const front_tls *tls, char *err, size_t errlen);
int front_port(const front *f);
/* Replaces the table (the front owns a from now on); NULL: answer nothing,
 * relay every call. */
void front_set_answers(front *f, front_answers *a);
/* front_set_answers, keeping what was learned (and the generation): for a
 * new table whose changes cannot change a decision (the caller knows: the
 * same permissions, the same objects' classes). Not with a NULL. */
void front_replace_answers(front *f, front_answers *a);
/* Auth (a registry server with `auth:` configured). With auth on, a
 * cached Get is answered here only when the front has learned the decision
 * for its exact `authorization` header value, method, project and name:
 * the caller (Python) decides a call the front relayed, with Feast's auth
 * manager and permissions, and tells the front with front_learn (for that
 * call's object and, as it likes, others); the next such call is answered
 * (allowed) or refused (denied, with the status and message Feast's server
 * gives) here. Decisions belong to one answer table: front_set_answers
 * forgets them all (a changed permission or object is decided again;
 * front_replace_answers keeps them, for changes that decide nothing); a
 * header's decisions are forgotten at the time learned with them (the
 * identity's expiry). A request with no, or more than one, authorization
 * header, and every uncached Get, is relayed. At most FRONT_TOKENS_MAX
 * header values and FRONT_DECISIONS_MAX decisions are kept (past either,
 * all are forgotten). */
enum { FRONT_TOKENS_MAX = 4096, FRONT_DECISIONS_MAX = 1 << 18 };
void front_set_auth(front *f, int on);
/* Counts answer tables: front_learn takes the generation the caller read
 * before it decided, and drops decisions made for an older table. */
uint64_t front_generation(front *f);
typedef struct {
    int method;
    const char *project, *name, *message;
    size_t pn, nn, mn;
    int status; /* 0: answer; another gRPC status: refuse with message */
} front_decision;
/* Learns n decisions for calls with authorization header value auth,
 * until Unix time until (later calls for that header take the new until).
 * 1 learned, 0 dropped (another generation, or until passed), -1 out of
 * memory. */
int front_learn(front *f, uint64_t generation, const char *auth, size_t an, double until,
                const front_decision *d, size_t n);

typedef struct {
    uint64_t answered; /* from the table */
    uint64_t denied;   /* refused by a learned decision */
    uint64_t decisions; /* learned decisions held now */
    uint64_t fetched;  /* from the database */
    uint64_t relayed, connections;
    int64_t held; /* bytes waiting in the front's buffers, now */
    /* TLS (0 without): handshakes completed; connections whose handshake
     * failed (refused, not TLS, or closed before its end); certificate
     * pairs loaded after the start; attempts that failed to load one. */
    uint64_t tls_handshakes, tls_handshake_failures, tls_reloads, tls_reload_failures;
} front_stats;
void front_stats_get(front *f, front_stats *out);
/* Stops the thread, closes every connection, frees f. */
void front_stop(front *f);

/* The seam the fuzzer (tests/fuzz/fuzz_front.c) and tests drive the front
 * through, with no socket, no thread and no backend: data[0..n) is what a
 * client sends on one connection (plaintext HTTP/2: no TLS here), fed to
 * the client session of a front like front_start's (methods, kinds, fields
 * as there; answers, borrowed, its table) in pieces of at most `chunk`
 * bytes (0: at once), each followed by what the event loop does next: the
 * front's bytes for the client are produced and dropped. A call the front
 * would relay is reset (no backend), an uncached Get too (no store). Then
 * the connection is closed and everything freed. Fills *stats (as
 * front_stats_get would; NULL: not) and returns the number of bytes the
 * front would have sent, or -1 when out of memory. */
long front_feed(const char *const *methods, const obj_kind *kinds, const front_fields *fields,
                int nmethods, const front_answers *answers, const uint8_t *data, size_t n,
                size_t chunk, front_stats *stats);

#endif
