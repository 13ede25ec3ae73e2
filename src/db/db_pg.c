/* db_pg.c - the PostgreSQL backend: the only file that calls libpq.
 *
 * Statements are cached per connection by their SQL text, with '?'
 * placeholders rewritten to $1..$n, and prepared on the server under
 * generated names (s1, s2, ...) once they have run prepare_threshold times
 * (a query key, psycopg 3's: 0, the default, prepares at once; None never
 * prepares, for a pooler such as PgBouncer in transaction mode, which hands
 * each transaction to any server connection, where a named statement may be
 * missing or taken). An unprepared statement runs as PQexecParams (the
 * unnamed statement, parsed every time). Parameters go out as text (INT, TEXT) or binary (BLOB);
 * results come back in binary when every column has a binary form we read directly (integers,
 * bytea, text types), else in text. The first execution of a statement, which tells us its column
 * types, uses text.
 *
 * Timeouts: connect_timeout defaults to 10 s (libpq's default waits forever
 * on a server that accepts TCP and never answers). The query key
 * read_timeout (seconds, ours, not libpq's) bounds every round trip: the
 * command is sent on a non-blocking connection and its answer awaited with
 * poll() until the deadline; a connection that missed it is dead for good.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"

#define STMT_CACHE   256 /* more than the store's distinct statements */
#define STACK_PARAMS 16
#define STACK_COLS   16

#define DEFAULT_CONNECT_TIMEOUT "10" /* seconds */

/* Type OIDs (pg_type.h), fixed since PostgreSQL 7. */
#define OID_BYTEA   17
#define OID_NAME    19
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_BPCHAR  1042
#define OID_VARCHAR 1043

enum { FMT_UNKNOWN = -1, FMT_TEXT = 0, FMT_BINARY = 1 };

typedef struct {
    char *sql; /* owned copy: callers may build SQL in buffers */
    uint64_t hash;
    uint64_t used; /* LRU clock */
    int nparams;
    int fmt; /* result format to ask for */
    unsigned runs;
    char *text;    /* the $n form */
    char name[16]; /* "" until prepared */
    int replan;    /* due to be prepared again, once the session is idle */
} stmt_entry;

struct db_conn {
    PGconn *pg;
    double read_timeout;    /* seconds per round trip; 0: no limit */
    long prepare_threshold; /* runs before a statement is prepared; -1: never */
    int stalled;            /* missed read_timeout: never used again */
    int replan_marked;      /* some statement's replan waits for idle */
    int nstmt;
    unsigned next_id;
    uint64_t clock;
    char *scratch; /* parameter text */
    size_t scratch_cap;
    stmt_entry stmt[STMT_CACHE];
};

static const char APP_NAME[] = "feast_sqlreg";

/* ---- errors -------------------------------------------------------------- */

/* Copies a libpq message without its trailing newline, joining lines. */
static void tidy(char *out, size_t outlen, const char *msg) {
    size_t j = 0;
    if (!msg) msg = "";
    for (size_t i = 0; msg[i] && j + 1 < outlen; i++) {
        char ch = msg[i];
        if (ch == '\n') {
            while (msg[i + 1] == ' ' || msg[i + 1] == '\t' || msg[i + 1] == '\n')
                i++;
            if (msg[i + 1] == '\0') break;
            if (j + 2 < outlen) {
                out[j++] = ';';
                out[j++] = ' ';
            }
            continue;
        }
        out[j++] = ch;
    }
    out[j] = '\0';
}

static db_errkind kind_for(PGconn *pg, const char *st) {
    /* A dead connection must be discarded whatever the server said. */
    if (PQstatus(pg) == CONNECTION_BAD) return DB_ERR_CONNECT;
    if (!st || strlen(st) != 5) return DB_ERR_OPERATIONAL;
    if (strcmp(st, "23505") == 0) return DB_ERR_DUPLICATE;
    if (strncmp(st, "23", 2) == 0) return DB_ERR_INTEGRITY;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
        return DB_ERR_BUSY;
    /* query_canceled: statement_timeout (or a cancel request). Retrying
     * would only wait as long again; the session itself is fine. */
    if (strcmp(st, "57014") == 0) return DB_ERR_TIMEOUT;
    if (strncmp(st, "42", 2) == 0) return DB_ERR_PROGRAMMING;
    if (strncmp(st, "08", 2) == 0) return DB_ERR_CONNECT;
    if (strncmp(st, "22", 2) == 0) return DB_ERR_DATA;
    return DB_ERR_OPERATIONAL;
}

/* Fills err from a failed result (res may be NULL: out of memory or no
 * connection, then the connection's message is used). Clears res. */
static int fail(db_conn *c, PGresult *res, db_err *err) {
    if (c->stalled) {
        PQclear(res);
        db_err_set(err, DB_ERR_OPERATIONAL, 0, NULL,
                   "postgresql: no answer from PostgreSQL within %.1f s (read_timeout); the "
                   "connection was dropped and the statement's outcome is unknown",
                   c->read_timeout);
        return -1;
    }
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[480];
    if (primary) {
        tidy(msg, sizeof(msg), primary);
    } else {
        const char *m = res ? PQresultErrorMessage(res) : "";
        tidy(msg, sizeof(msg), m && m[0] ? m : PQerrorMessage(c->pg));
    }
    if (!msg[0]) snprintf(msg, sizeof(msg), "unknown error");
    /* A named statement this session prepared is missing, or its name is
     * taken: the session is not ours alone, as behind a pooler that hands
     * each transaction to any server connection. */
    const char *hint = st && (strcmp(st, "26000") == 0 || strcmp(st, "42P05") == 0)
                           ? " (a connection pooler such as PgBouncer in transaction mode "
                             "shares server sessions: set prepare_threshold to None in "
                             "sqlalchemy_config_kwargs.connect_args, or ?prepare_threshold=None "
                             "in the registry URL)"
                           : "";
    db_errkind kind = kind_for(c->pg, st);
    /* libpq's own failure to allocate (a result too big for the memory
     * left) has no SQLSTATE; a NULL result is one too. In a translated
     * libpq the message differs, and it stays an OperationalError. */
    if (!st && PQstatus(c->pg) == CONNECTION_OK && (!res || strstr(msg, "out of memory")))
        kind = DB_ERR_NOMEM;
    db_err_set(err, kind, 0, st, "postgresql: %s%s", msg, hint);
    PQclear(res);
    return -1;
}

static int oom(db_err *err) {
    db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory");
    return -1;
}

/* ---- connect / close ----------------------------------------------------- */

static void quiet(void *arg, const char *message) {
    /* Notices ("relation already exists, skipping") are not errors; libpq
     * would print them to stderr. */
    (void)arg;
    (void)message;
}

static void pg_close(db_conn *c) {
    if (!c) return;
    for (int i = 0; i < c->nstmt; i++) {
        free(c->stmt[i].sql);
        free(c->stmt[i].text);
    }
    if (c->pg) PQfinish(c->pg);
    free(c->scratch);
    free(c);
}

static int is_utf8(const char *v) {
    const char *names[] = {"utf8", "utf-8", "unicode"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *a = v, *b = names[i];
        while (*a && *b && (*a | 0x20) == *b)
            a++, b++;
        if (!*a && !*b) return 1;
    }
    return 0;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Appends s[0..n) to the comma-separated list *out (of capacity cap). */
static void list_add(char *out, size_t cap, size_t *len, const char *s, size_t n, int first) {
    if (!first && *len + 1 < cap) out[(*len)++] = ',';
    if (*len + n >= cap) n = cap - *len - 1;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

/* SQLAlchemy's multi-host form, ?host=HostA:PortA&host=HostB, becomes
 * libpq's host=HostA,HostB port=PortA,<default>. A socket directory or a
 * bare IPv6 address is taken whole; "[v6]:port" is split. Fills *hosts and
 * *ports (NULL when no value names a port); returns -1 out of memory. */
static int join_hosts(const db_url *url, const char *default_port, char **hosts, char **ports) {
    size_t cap = 1;
    for (int i = 0; i < url->nquery; i++)
        if (strcmp(url->qkey[i], "host") == 0) cap += strlen(url->qval[i]) + 1;
    size_t pcap = cap + (size_t)url->nquery * (strlen(default_port) + 1);
    *hosts = malloc(cap);
    *ports = malloc(pcap);
    if (!*hosts || !*ports) {
        free(*hosts);
        free(*ports);
        *hosts = *ports = NULL;
        return -1;
    }
    (*hosts)[0] = (*ports)[0] = '\0';
    size_t hl = 0, pl = 0;
    int n = 0, any_port = 0;
    for (int i = 0; i < url->nquery; i++) {
        if (strcmp(url->qkey[i], "host") != 0) continue;
        const char *v = url->qval[i];
        size_t vn = strlen(v), hn = vn;
        const char *h = v, *p = NULL;
        size_t pn = 0;
        const char *colon = strrchr(v, ':');
        if (v[0] == '[') {
            const char *close = strchr(v, ']');
            if (close) {
                h = v + 1;
                hn = (size_t)(close - v - 1);
                if (close[1] == ':' && all_digits(close + 2, strlen(close + 2))) {
                    p = close + 2;
                    pn = strlen(p);
                }
            }
        } else if (v[0] != '/' && colon && strchr(v, ':') == colon &&
                   all_digits(colon + 1, strlen(colon + 1))) {
            hn = (size_t)(colon - v);
            p = colon + 1;
            pn = strlen(p);
        }
        if (p) {
            any_port = 1;
        } else {
            p = default_port;
            pn = strlen(default_port);
        }
        list_add(*hosts, cap, &hl, h, hn, n == 0);
        list_add(*ports, pcap, &pl, p, pn, n == 0);
        n++;
    }
    if (!any_port) {
        free(*ports);
        *ports = NULL;
    }
    return 0;
}

/* Connects with the keyword arrays and checks what the session needs. */
static db_conn *open_session(const char *const *kw, const char *const *val, db_err *err) {
    db_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        oom(err);
        return NULL;
    }
    /* expand_dbname = 0: a database name is never parsed as a conninfo. */
    c->pg = PQconnectdbParams(kw, val, 0);
    if (!c->pg) {
        oom(err);
    } else if (PQstatus(c->pg) != CONNECTION_OK) {
        char msg[480];
        tidy(msg, sizeof(msg), PQerrorMessage(c->pg));
        db_err_set(err, DB_ERR_CONNECT, 0, NULL, "postgresql: %s", msg);
    } else if (PQserverVersion(c->pg) < 90500) {
        /* INSERT ... ON CONFLICT DO NOTHING arrived in 9.5. */
        db_err_set(err, DB_ERR_CONNECT, 0, NULL,
                   "postgresql: server version %d is too old: feast_sqlreg needs 9.5 or newer",
                   PQserverVersion(c->pg));
    } else {
        const char *enc = PQparameterStatus(c->pg, "client_encoding");
        if (enc && strcmp(enc, "UTF8") == 0) {
            PQsetNoticeProcessor(c->pg, quiet, NULL);
            return c;
        }
        db_err_set(err, DB_ERR_CONNECT, 0, NULL,
                   "postgresql: the server did not accept client_encoding UTF8 (got %s)",
                   enc ? enc : "none");
    }
    pg_close(c);
    return NULL;
}

/* prepare_threshold from the URL query into *out: 0 when absent, -1 for
 * None (psycopg 3 reads None as "never prepare"; connect_args written as
 * YAML null arrive as the text None). */
static int prepare_threshold_opt(const db_url *url, long *out, db_err *err) {
    const char *v = url_query(url, "prepare_threshold");
    *out = 0;
    if (!v) return 0;
    if (!v[0] || strcmp(v, "None") == 0 || strcmp(v, "none") == 0 || strcmp(v, "null") == 0) {
        *out = -1;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < 0) {
        db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                   "PostgreSQL option prepare_threshold in the registry URL must be a number of "
                   "runs (0: prepare at once) or None (never prepare, for PgBouncer in "
                   "transaction mode), not '%s'",
                   v);
        return -1;
    }
    *out = n;
    return 0;
}

/* read_timeout from the URL query into *out (0 when absent). */
static int read_timeout_opt(const db_url *url, double *out, db_err *err) {
    const char *v = url_query(url, "read_timeout");
    *out = 0;
    if (!v) return 0;
    char *end = NULL;
    double t = strtod(v, &end);
    if (end == v || *end || !isfinite(t) || t < 0) {
        db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                   "PostgreSQL option read_timeout in the registry URL must be a number of "
                   "seconds (0: no limit), not '%s'",
                   v);
        return -1;
    }
    *out = t;
    return 0;
}

static db_conn *pg_connect(const db_url *url, db_err *err) {
    enum { MAXKW = URL_MAX_QUERY + 12 };
    const char *kw[MAXKW + 1], *val[MAXKW + 1];
    int n = 0, nhost = 0;
    char port[16] = "";
    char *hosts = NULL, *ports = NULL;

    /* Every query key is a libpq keyword: check them against libpq's own
     * list so a typo is a configuration error, not a silent default. */
    PQconninfoOption *opts = PQconndefaults();
    if (!opts) {
        oom(err);
        return NULL;
    }
    int has_connect_timeout = 0;
    for (int i = 0; i < url->nquery; i++) {
        const char *k = url->qkey[i];
        int known = /* ours, not libpq's */
            strcmp(k, "read_timeout") == 0 || strcmp(k, "prepare_threshold") == 0;
        has_connect_timeout |= strcmp(k, "connect_timeout") == 0;
        for (PQconninfoOption *o = opts; o->keyword && !known; o++)
            known = strcmp(o->keyword, k) == 0;
        if (!known) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "unknown PostgreSQL connection option '%s' in the registry URL "
                       "(query keys must be libpq keywords such as sslmode, connect_timeout, "
                       "application_name, options, host, or feast_sqlreg's read_timeout and "
                       "prepare_threshold)",
                       k);
            PQconninfoFree(opts);
            return NULL;
        }
        if (strcmp(k, "host") == 0) {
            nhost++;
            continue;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(url->qkey[j], k) == 0) {
                db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                           "PostgreSQL connection option '%s' is given more than once in the "
                           "registry URL",
                           k);
                PQconninfoFree(opts);
                return NULL;
            }
        if (strcmp(k, "client_encoding") == 0 && !is_utf8(url->qval[i])) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "client_encoding '%s' in the registry URL: feast_sqlreg talks UTF8 to "
                       "PostgreSQL",
                       url->qval[i]);
            PQconninfoFree(opts);
            return NULL;
        }
    }
    PQconninfoFree(opts);
    double read_timeout;
    long prepare_threshold;
    if (read_timeout_opt(url, &read_timeout, err) != 0 ||
        prepare_threshold_opt(url, &prepare_threshold, err) != 0)
        return NULL;

    /* URL parts first; query keys after them win (libpq keeps the last). */
    if (url->host) kw[n] = "host", val[n++] = url->host;
    if (url->port) {
        snprintf(port, sizeof(port), "%d", url->port);
        kw[n] = "port", val[n++] = port;
    }
    if (url->user) kw[n] = "user", val[n++] = url->user;
    if (url->password) kw[n] = "password", val[n++] = url->password;
    if (url->database) kw[n] = "dbname", val[n++] = url->database;
    /* application_name when neither the URL nor PGAPPNAME sets one. */
    kw[n] = "fallback_application_name", val[n++] = APP_NAME;
    const char *qport = port;
    for (int i = 0; i < url->nquery; i++) {
        const char *k = url->qkey[i];
        if (strcmp(k, "host") == 0 || strcmp(k, "client_encoding") == 0 ||
            strcmp(k, "read_timeout") == 0 || strcmp(k, "prepare_threshold") == 0)
            continue;
        if (strcmp(k, "port") == 0) qport = url->qval[i];
        kw[n] = k, val[n++] = url->qval[i];
    }
    if (nhost > 0) {
        if (join_hosts(url, qport, &hosts, &ports) != 0) {
            oom(err);
            return NULL;
        }
        kw[n] = "host", val[n++] = hosts;
        if (ports) kw[n] = "port", val[n++] = ports;
    }
    kw[n] = "client_encoding", val[n++] = "UTF8";
    /* libpq waits forever by default; PGCONNECT_TIMEOUT still wins over ours. */
    const char *env_timeout = getenv("PGCONNECT_TIMEOUT");
    if (!has_connect_timeout && !(env_timeout && env_timeout[0]))
        kw[n] = "connect_timeout", val[n++] = DEFAULT_CONNECT_TIMEOUT;
    kw[n] = NULL, val[n] = NULL;

    db_conn *c = open_session(kw, val, err);
    free(hosts);
    free(ports);
    if (c) c->prepare_threshold = prepare_threshold;
    if (c && read_timeout > 0) {
        /* Non-blocking, so that sending a large value to a server that
         * stopped reading cannot block past the deadline either. */
        if (PQsetnonblocking(c->pg, 1) != 0) {
            char msg[480];
            tidy(msg, sizeof(msg), PQerrorMessage(c->pg));
            db_err_set(err, DB_ERR_CONNECT, 0, NULL, "postgresql: %s", msg);
            pg_close(c);
            return NULL;
        }
        c->read_timeout = read_timeout;
    }
    return c;
}

/* ---- round trips --------------------------------------------------------- */

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for events on the connection's socket until deadline. Returns the
 * events that happened, 0 when the deadline passed, -1 on error. */
static int wait_socket(db_conn *c, short events, double deadline) {
    struct pollfd pfd = {PQsocket(c->pg), events, 0};
    if (pfd.fd < 0) return -1;
    for (;;) {
        double left = deadline - now_mono();
        if (left <= 0) return 0;
        double ms = left * 1000 + 1; /* rounded up: never early */
        int rc = poll(&pfd, 1, ms < 1e9 ? (int)ms : 1000000000);
        if (rc > 0) return pfd.revents ? pfd.revents : events;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

/* Completes a command sent with PQsend* (sent: its return value) as the
 * blocking PQexec family would, but within read_timeout: flushes it, then
 * collects its results (the first error, else the last result). Returns
 * NULL when the send failed or the connection broke (PQerrorMessage says
 * why), or when the deadline passed: then c is stalled for good (the
 * session is mid-command: nothing else can be sent on it). */
static PGresult *await_result(db_conn *c, int sent) {
    if (!sent) return NULL;
    PGconn *pg = c->pg;
    double deadline = now_mono() + c->read_timeout;
    int rc;
    while ((rc = PQflush(pg)) > 0) {
        int ev = wait_socket(c, POLLIN | POLLOUT, deadline);
        if (ev == 0) goto stalled;
        if (ev < 0 || ((ev & POLLIN) && !PQconsumeInput(pg))) return NULL;
    }
    if (rc < 0) return NULL;
    PGresult *kept = NULL;
    for (;;) {
        while (PQisBusy(pg)) {
            int ev = wait_socket(c, POLLIN, deadline);
            if (ev == 0) {
                PQclear(kept);
                goto stalled;
            }
            if (ev < 0 || !PQconsumeInput(pg)) {
                /* Broken: PQgetResult reports it without waiting. */
                if (PQstatus(pg) != CONNECTION_BAD) {
                    PQclear(kept);
                    goto stalled;
                }
                break;
            }
        }
        PGresult *res = PQgetResult(pg);
        if (!res) break;
        if (kept && PQresultStatus(kept) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(kept);
            kept = res;
        }
        if (PQstatus(pg) == CONNECTION_BAD) break;
    }
    return kept;
stalled:
    c->stalled = 1;
    return NULL;
}

/* PQexec, PQexecParams, PQprepare and PQexecPrepared,
 * bounded by read_timeout when there is one. A stalled connection returns
 * NULL at once (fail() then says why). */
static PGresult *q_exec(db_conn *c, const char *sql) {
    if (c->stalled) return NULL;
    if (c->read_timeout <= 0) return PQexec(c->pg, sql);
    return await_result(c, PQsendQuery(c->pg, sql));
}

static PGresult *q_exec_text(db_conn *c, const char *sql) {
    if (c->stalled) return NULL;
    if (c->read_timeout <= 0) return PQexecParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, FMT_TEXT);
    return await_result(c, PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, FMT_TEXT));
}

static PGresult *q_prepare(db_conn *c, const char *name, const char *sql, int nparams) {
    if (c->stalled) return NULL;
    if (c->read_timeout <= 0) return PQprepare(c->pg, name, sql, nparams, NULL);
    return await_result(c, PQsendPrepare(c->pg, name, sql, nparams, NULL));
}

static PGresult *q_exec_params(db_conn *c, const char *sql, int nparams, const char *const *vals,
                               const int *lens, const int *fmts, int fmt) {
    if (c->stalled) return NULL;
    if (c->read_timeout <= 0) return PQexecParams(c->pg, sql, nparams, NULL, vals, lens, fmts, fmt);
    return await_result(c, PQsendQueryParams(c->pg, sql, nparams, NULL, vals, lens, fmts, fmt));
}

static PGresult *q_exec_prepared(db_conn *c, const char *name, int nparams, const char *const *vals,
                                 const int *lens, const int *fmts, int fmt) {
    if (c->stalled) return NULL;
    if (c->read_timeout <= 0) return PQexecPrepared(c->pg, name, nparams, vals, lens, fmts, fmt);
    return await_result(c, PQsendQueryPrepared(c->pg, name, nparams, vals, lens, fmts, fmt));
}

/* ---- statements ---------------------------------------------------------- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Appends ch at *out unless out is NULL (counting only). */
static void put(char **out, char ch) {
    if (*out) *(*out)++ = ch;
}

/* Counts the '?' placeholders of sql outside quotes and comments and, when
 * out is not NULL, writes sql with them numbered $1..$n (out must hold
 * strlen(sql) + 6 * count + 1 bytes). E'' strings with \' are not
 * understood; the store never writes them. */
static int placeholders(const char *sql, char *out) {
    int n = 0;
    char quote = 0;
    const char *s = sql;
    while (*s) {
        char ch = *s;
        if (quote) {
            if (ch == quote) quote = 0; /* a doubled quote re-enters at once */
            put(&out, ch);
            s++;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
            put(&out, ch);
            s++;
        } else if (ch == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                put(&out, *s++);
        } else if (ch == '/' && s[1] == '*') {
            put(&out, *s++);
            put(&out, *s++);
            while (*s && !(s[0] == '*' && s[1] == '/'))
                put(&out, *s++);
            if (*s) {
                put(&out, *s++);
                put(&out, *s++);
            }
        } else if (ch == '?') {
            n++;
            if (out) out += sprintf(out, "$%d", n);
            s++;
        } else {
            put(&out, ch);
            s++;
        }
    }
    if (out) *out = '\0';
    return n;
}

/* Statements worth preparing: those with parameters and the queries and
 * writes the store repeats. DDL and transaction control run unprepared. */
static int worth_preparing(const char *sql, int nparams) {
    if (nparams > 0) return 1;
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '(')
        sql++;
    const char *verbs[] = {"select", "insert", "update", "delete", "with"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        size_t k = 0;
        while (verbs[i][k] && (sql[k] | 0x20) == verbs[i][k])
            k++;
        if (!verbs[i][k] && !((sql[k] | 0x20) >= 'a' && (sql[k] | 0x20) <= 'z')) return 1;
    }
    return 0;
}

/* Prepares e on the server under a new name. A failure leaves it
 * unprepared (it still runs unnamed). */
static int server_prepare(db_conn *c, stmt_entry *e, db_err *err) {
    char name[16];
    snprintf(name, sizeof(name), "s%u", ++c->next_id);
    PGresult *res = q_prepare(c, name, e->text, e->nparams);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return fail(c, res, err);
    PQclear(res);
    memcpy(e->name, name, sizeof(name));
    return 0;
}

/* Whether a prepared statement is due to be prepared again before run
 * number `runs` (64, 256, 1024, ... then every 65536th). PostgreSQL keeps
 * a statement's generic plan until its tables are altered or analyzed; a
 * plan made while the registry's tables were empty (a fresh registry, never
 * analyzed yet) scans them whole, and a registry that grew under it (a
 * first feast apply of a large repository) would pay that on every read
 * until autovacuum analyzes them. Preparing again lets the planner see the
 * tables' current size; the cost is one round trip, ever rarer. */
static int replan_due(unsigned runs) {
    if (runs < 64) return 0;
    if (runs >= 65536) return runs % 65536 == 0;
    return (runs & (runs - 1)) == 0 && (runs & 0x15540) != 0; /* 4^k, k >= 3 */
}

/* Prepares e again under a new name and frees the old one (see
 * replan_due). Never fails the call: on any error e keeps its plan. Only
 * between transactions: a failed Parse inside one would abort it, so a
 * statement due there is marked and prepared again at the next idle
 * moment (replan_marked). */
static void server_replan(db_conn *c, stmt_entry *e) {
    if (c->stalled) return;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        e->replan = c->replan_marked = 1;
        return;
    }
    e->replan = 0;
    char old[16];
    memcpy(old, e->name, sizeof(old));
    db_err ignored;
    if (server_prepare(c, e, &ignored) != 0) return; /* e->name is still old */
    char sqltext[32];
    snprintf(sqltext, sizeof(sqltext), "DEALLOCATE %s", old);
    PQclear(q_exec(c, sqltext)); /* a failure here only leaks it */
}

/* Prepares again the statements marked while in a transaction; the
 * session is idle. */
static void replan_marked(db_conn *c) {
    if (!c->replan_marked) return;
    c->replan_marked = 0;
    for (int i = 0; i < c->nstmt; i++)
        if (c->stmt[i].replan && c->stmt[i].name[0]) server_replan(c, &c->stmt[i]);
}

/* The cached statement for sql, made on a miss (prepared on the server
 * when prepare_threshold is 0). */
static stmt_entry *statement(db_conn *c, const char *sql, int nparams, db_err *err) {
    uint64_t h = fnv1a(sql);
    for (int i = 0; i < c->nstmt; i++) {
        stmt_entry *e = &c->stmt[i];
        if (e->hash == h && strcmp(e->sql, sql) == 0) {
            if (e->nparams != nparams) break; /* reported below */
            e->used = ++c->clock;
            return e;
        }
    }
    int count = placeholders(sql, NULL);
    if (count != nparams) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL,
                   "statement has %d placeholders but %d parameters were given", count, nparams);
        return NULL;
    }
    size_t len = strlen(sql);
    char *copy = strdup(sql);
    char *text = malloc(len + 6 * (size_t)count + 1);
    if (!copy || !text) {
        free(copy);
        free(text);
        oom(err);
        return NULL;
    }
    placeholders(sql, text);

    stmt_entry *e;
    if (c->nstmt < STMT_CACHE) {
        e = &c->stmt[c->nstmt++];
    } else {
        e = &c->stmt[0];
        for (int i = 1; i < STMT_CACHE; i++)
            if (c->stmt[i].used < e->used) e = &c->stmt[i];
        if (e->name[0]) {
            /* The server keeps prepared statements for the session: free
             * the least recently used one. A failure here only leaks it. */
            char sqltext[32];
            snprintf(sqltext, sizeof(sqltext), "DEALLOCATE %s", e->name);
            PQclear(q_exec(c, sqltext));
        }
        free(e->sql);
        free(e->text);
    }
    *e = (stmt_entry){.sql = copy,
                      .hash = h,
                      .used = ++c->clock,
                      .nparams = nparams,
                      .fmt = FMT_UNKNOWN,
                      .text = text};
    if (c->prepare_threshold == 0 && server_prepare(c, e, err) != 0) return NULL;
    return e;
}

/* Whether every column of res has a binary form decoded below. */
static int binary_ok(const PGresult *res) {
    int n = PQnfields(res);
    if (n == 0) return 0;
    for (int i = 0; i < n; i++) {
        switch (PQftype(res, i)) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_BYTEA:
        case OID_TEXT:
        case OID_VARCHAR:
        case OID_BPCHAR:
        case OID_NAME:
            break;
        default:
            return 0;
        }
    }
    return 1;
}

static int bad_value(const PGresult *res, int col, db_err *err) {
    db_err_set(err, DB_ERR_DATA, 0, NULL, "postgresql: unexpected value in column '%s'",
               PQfname(res, col));
    return -1;
}

/* Decodes one column of one row. *owned gets memory to free after the row
 * (text-format bytea), else stays NULL. */
static int column(const PGresult *res, int r, int col, db_value *out, unsigned char **owned,
                  db_err *err) {
    *owned = NULL;
    if (PQgetisnull(res, r, col)) {
        *out = db_null();
        return 0;
    }
    const char *v = PQgetvalue(res, r, col);
    size_t n = (size_t)PQgetlength(res, r, col);
    unsigned type = PQftype(res, col);
    int is_int = type == OID_INT2 || type == OID_INT4 || type == OID_INT8;
    if (PQfformat(res, col) == FMT_BINARY) {
        if (is_int) {
            size_t want = type == OID_INT2 ? 2 : type == OID_INT4 ? 4 : 8;
            if (n != want) return bad_value(res, col, err);
            uint64_t u = 0;
            for (size_t i = 0; i < n; i++)
                u = (u << 8) | (unsigned char)v[i];
            int64_t x = n == 2 ? (int16_t)u : n == 4 ? (int32_t)u : (int64_t)u;
            *out = db_int(x);
        } else if (type == OID_BYTEA) {
            *out = db_blob(v, n);
        } else {
            *out = db_text(v, n);
        }
        return 0;
    }
    if (is_int) {
        char *end = NULL;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end) return bad_value(res, col, err);
        *out = db_int(x);
    } else if (type == OID_BYTEA) {
        size_t len = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)v, &len);
        if (!b) return oom(err);
        *owned = b;
        *out = db_blob(b, len);
    } else {
        *out = db_text(v, n);
    }
    return 0;
}

/* Checks res, hands its rows to row, reads the row count; clears res. */
static int consume(db_conn *c, PGresult *res, db_row_fn row, void *ctx, int64_t *affected,
                   db_err *err) {
    ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY)
        return fail(c, res, err);
    int rv = 0;
    int ncols = PQnfields(res);
    int nrows = PQntuples(res);
    if (row && nrows > 0 && ncols > 0) {
        db_value scols[STACK_COLS];
        unsigned char *sowned[STACK_COLS];
        db_value *cols = scols;
        unsigned char **owned = sowned;
        if (ncols > STACK_COLS) {
            cols = malloc((size_t)ncols * sizeof(*cols));
            owned = calloc((size_t)ncols, sizeof(*owned));
            if (!cols || !owned) {
                if (cols != scols) free(cols);
                if (owned != sowned) free(owned);
                PQclear(res);
                return oom(err);
            }
        }
        for (int r = 0; r < nrows && rv == 0; r++) {
            int i = 0;
            for (; i < ncols && rv == 0; i++)
                rv = column(res, r, i, &cols[i], &owned[i], err);
            if (rv == 0) rv = row(ctx, cols, ncols, err);
            for (int j = 0; j < i; j++)
                if (owned[j]) PQfreemem(owned[j]);
        }
        if (cols != scols) free(cols);
        if (owned != sowned) free(owned);
    }
    if (rv == 0 && affected) {
        const char *t = PQcmdTuples(res);
        *affected = t && t[0] ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(res);
    return rv == 0 ? 0 : -1;
}

static int pg_exec(db_conn *c, const char *sql, const db_value *params, int nparams, db_row_fn row,
                   void *ctx, int64_t *affected, db_err *err) {
    if (nparams < 0) nparams = 0;
    if (!worth_preparing(sql, nparams)) {
        if (placeholders(sql, NULL) != 0) {
            db_err_set(err, DB_ERR_INTERFACE, 0, NULL,
                       "statement has placeholders but no parameters were given");
            return -1;
        }
        return consume(c, q_exec_text(c, sql), row, ctx, affected, err);
    }
    stmt_entry *e = statement(c, sql, nparams, err);
    if (!e) return -1;
    if (!e->name[0] && c->prepare_threshold > 0 && e->runs >= (unsigned long)c->prepare_threshold &&
        server_prepare(c, e, err) != 0)
        return -1;
    if (e->name[0] && replan_due(e->runs)) server_replan(c, e);
    if (c->replan_marked && PQtransactionStatus(c->pg) == PQTRANS_IDLE) replan_marked(c);

    /* Parameter text: INT as decimal, TEXT copied to end in '\0'. */
    size_t need = 0;
    for (int i = 0; i < nparams; i++) {
        if (params[i].type == DB_INT) {
            need += 24;
        } else if (params[i].type == DB_TEXT) {
            if (params[i].n && memchr(params[i].p, '\0', params[i].n)) {
                db_err_set(err, DB_ERR_DATA, 0, NULL,
                           "postgresql: text values cannot contain NUL (0x00) characters");
                return -1;
            }
            need += params[i].n + 1;
        }
    }
    if (need > c->scratch_cap) {
        char *p = realloc(c->scratch, need);
        if (!p) return oom(err);
        c->scratch = p;
        c->scratch_cap = need;
    }
    const char *svals[STACK_PARAMS];
    int slens[STACK_PARAMS], sfmts[STACK_PARAMS];
    const char **vals = svals;
    int *lens = slens, *fmts = sfmts;
    if (nparams > STACK_PARAMS) {
        vals = malloc((size_t)nparams * sizeof(*vals));
        lens = malloc((size_t)nparams * sizeof(*lens));
        fmts = malloc((size_t)nparams * sizeof(*fmts));
        if (!vals || !lens || !fmts) {
            free(vals);
            free(lens);
            free(fmts);
            return oom(err);
        }
    }
    int rv = 0;
    size_t off = 0;
    for (int i = 0; i < nparams && rv == 0; i++) {
        const db_value *v = &params[i];
        fmts[i] = FMT_TEXT;
        lens[i] = 0;
        switch (v->type) {
        case DB_INT:
            vals[i] = c->scratch + off;
            off += (size_t)snprintf(c->scratch + off, 24, "%lld", (long long)v->i) + 1;
            break;
        case DB_TEXT:
            vals[i] = c->scratch + off;
            if (v->n) memcpy(c->scratch + off, v->p, v->n);
            c->scratch[off + v->n] = '\0';
            off += v->n + 1;
            break;
        case DB_BLOB:
            if (v->n > INT32_MAX) {
                db_err_set(err, DB_ERR_DATA, 0, NULL, "postgresql: value of %zu bytes is too big",
                           v->n);
                rv = -1;
                break;
            }
            /* Never NULL: a NULL pointer would send SQL NULL, not b''. */
            vals[i] = v->n ? (const char *)v->p : "";
            lens[i] = (int)v->n;
            fmts[i] = FMT_BINARY;
            break;
        default:
            vals[i] = NULL;
        }
    }
    if (rv == 0) {
        int fmt = e->fmt == FMT_BINARY ? FMT_BINARY : FMT_TEXT;
        PGresult *res = e->name[0] ? q_exec_prepared(c, e->name, nparams, vals, lens, fmts, fmt)
                                   : q_exec_params(c, e->text, nparams, vals, lens, fmts, fmt);
        e->runs++;
        if (e->fmt == FMT_UNKNOWN && res && PQresultStatus(res) == PGRES_TUPLES_OK)
            e->fmt = binary_ok(res) ? FMT_BINARY : FMT_TEXT;
        rv = consume(c, res, row, ctx, affected, err);
        /* "cached plan must not change result type": the table changed
         * under a statement prepared here. Only a new session re-plans it
         * with certainty (the transaction is aborted, so DEALLOCATE cannot
         * run now); run() drops this connection and retries the call. */
        if (rv != 0 && e->name[0] && strcmp(err->sqlstate, "0A000") == 0)
            err->kind = DB_ERR_STALE_PLAN;
    }
    if (vals != svals) {
        free(vals);
        free(lens);
        free(fmts);
    }
    return rv;
}

/* ---- transactions -------------------------------------------------------- */

static int simple(db_conn *c, const char *sql, db_err *err) {
    PGresult *res = q_exec(c, sql);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return fail(c, res, err);
    PQclear(res);
    return 0;
}

static int pg_begin(db_conn *c, int write, db_err *err) {
    /* Row locks come from SELECT ... FOR UPDATE: a plain BEGIN either way. */
    (void)write;
    if (c->stalled) return fail(c, NULL, err);
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        db_err_set(err, PQstatus(c->pg) == CONNECTION_BAD ? DB_ERR_CONNECT : DB_ERR_OPERATIONAL, 0,
                   NULL, "postgresql: connection is not idle at BEGIN");
        return -1;
    }
    replan_marked(c);
    return simple(c, "BEGIN", err);
}

static int pg_commit(db_conn *c, db_err *err) {
    if (c->stalled) return fail(c, NULL, err);
    /* COMMIT of a failed transaction "succeeds" by rolling back. */
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        db_err_set(err, DB_ERR_OPERATIONAL, 0, "25P02",
                   "postgresql: the transaction was aborted and cannot be committed");
        return -1;
    }
    PGresult *res = q_exec(c, "COMMIT");
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail(c, res, err);
        /* The connection went at COMMIT (a failover, the server killed or
         * restarted): the server may have committed before the answer was
         * lost, so the caller is told that, not that the write failed. */
        size_t k = strlen(err->msg);
        if (err->kind == DB_ERR_CONNECT && !c->stalled && k < sizeof(err->msg) - 1)
            snprintf(err->msg + k, sizeof(err->msg) - k,
                     "; the connection was lost at COMMIT, so the transaction's outcome is "
                     "unknown: it may have been committed");
        return -1;
    }
    int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        db_err_set(err, DB_ERR_OPERATIONAL, 0, "25P02",
                   "postgresql: the transaction was rolled back instead of committed");
        return -1;
    }
    return 0;
}

static int pg_rollback(db_conn *c, db_err *err) {
    if (c->stalled) return fail(c, NULL, err);
    switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE:
        return 0; /* nothing open */
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return simple(c, "ROLLBACK", err);
    default:
        db_err_set(err, DB_ERR_CONNECT, 0, NULL, "postgresql: connection lost");
        return -1;
    }
}

static int pg_ping(db_conn *c, db_err *err) {
    if (c->stalled) return fail(c, NULL, err);
    if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        db_err_set(err, DB_ERR_CONNECT, 0, NULL, "postgresql: connection lost");
        return -1;
    }
    /* An empty query: one round trip, no parsing, no snapshot. */
    PGresult *res = q_exec(c, "");
    if (!res || PQresultStatus(res) != PGRES_EMPTY_QUERY) {
        fail(c, res, err);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* A function per table (its key column is spelled out, so no row is
 * converted to find it), then one row trigger for all three operations. */
static int pg_change_trigger(int i, const char *table, const char *keycol, char *name,
                             size_t namelen, char *sql, size_t sqllen) {
    static const char insert[] =
        "INSERT INTO feast_sqlreg_changes (table_name, project_id, object_name, changed_at) "
        "VALUES (TG_TABLE_NAME, %s.project_id, %s.%s, "
        "EXTRACT(EPOCH FROM clock_timestamp())::bigint);";
    char on_new[256], on_old[256];
    switch (i) {
    case 0:
        snprintf(on_new, sizeof(on_new), insert, "NEW", "NEW", keycol);
        snprintf(on_old, sizeof(on_old), insert, "OLD", "OLD", keycol);
        snprintf(name, namelen, "feast_sqlreg_note_%s", table);
        snprintf(sql, sqllen,
                 "CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ "
                 "BEGIN IF TG_OP = 'DELETE' THEN %s ELSE %s END IF; RETURN NULL; END $$",
                 name, on_old, on_new);
        return 1;
    case 1:
        snprintf(name, namelen, DB_CHANGE_TRIGGER_PREFIX "%s", table);
        snprintf(sql, sqllen,
                 "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
                 "FOR EACH ROW EXECUTE PROCEDURE feast_sqlreg_note_%s()",
                 name, table, table);
        return 1;
    default:
        return 0;
    }
}

static const db_sql_dialect pg_sql = {
    .lock_suffix = " FOR UPDATE",
    .insert_missing_prefix = "INSERT INTO",
    .insert_missing_suffix = " ON CONFLICT DO NOTHING",
    .blob_type = "BYTEA",
    .index_in_table = 0,
    .ddl_in_transaction = 1,
    .retry_busy = 1,
    .tables_query = "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()",
    .indexes_query = "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()",
    .changes_table = "CREATE TABLE IF NOT EXISTS feast_sqlreg_changes ("
                     "id BIGSERIAL PRIMARY KEY, table_name VARCHAR(64) NOT NULL, "
                     "project_id VARCHAR(255) NOT NULL, object_name VARCHAR(255) NOT NULL, "
                     "changed_at BIGINT NOT NULL)",
    .triggers_query =
        "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid "
        "WHERE r.relnamespace = current_schema()::regnamespace "
        "UNION ALL SELECT proname::text FROM pg_proc "
        "WHERE pronamespace = current_schema()::regnamespace",
    .change_trigger = pg_change_trigger,
    /* What a hot standby has replayed; NULL (not a replica: nothing to wait
     * for) on a primary. pg_last_wal_replay_lsn() alone is not NULL on a
     * primary that went through crash recovery: it keeps the last position
     * that recovery replayed, and every read after a write would wait for
     * it in vain, then go to the primary. */
    .write_position_query = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
    .replay_position_query = "SELECT CASE WHEN pg_is_in_recovery() THEN "
                             "(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END",
};

const db_driver db_pg_driver = {
    .name = "postgresql",
    .dialect = DB_POSTGRES,
    .sql = &pg_sql,
    .connect = pg_connect,
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .ping = pg_ping,
};
