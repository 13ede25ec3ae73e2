/* url.c - see url.h.
 *
 * The URL is split the way SQLAlchemy's make_url() splits it (the regular
 * expression in sqlalchemy/engine/url.py, _parse_url), so a URL means the
 * same thing to both registries. Its facts, restated here because the
 * password's safety depends on them:
 *
 *   scheme     [A-Za-z0-9_+]+ before the first "://"
 *   user       the text up to the first ':' or '/'; when that is a ':' and
 *              an '@' follows anywhere later, the password runs from the
 *              ':' to that first '@' (so it may hold '/', '?', '#', ':').
 *              Otherwise the user runs up to the last '@' before the first
 *              ':' or '/', with no password; no '@' there: no user at all.
 *   host       "[...]" up to the last ']' before the first '/' or '?', or
 *              the text up to the first ':', '/' or '?'
 *   port       after ':', up to the first '/' or '?'
 *   database   after '/', up to the first '?'
 *   query      after '?': '&'-separated k=v; entries without '=' or with an
 *              empty value are dropped (parse_qsl), '+' is a space.
 *
 * Where SQLAlchemy silently accepts nonsense we refuse it with a message:
 * bad or NUL percent-escapes (SQLAlchemy keeps them verbatim), text that is
 * not UTF-8 once decoded, a port that is not 1-65535, text after "[v6]" that
 * SQLAlchemy ignores, a line break in the query (SQLAlchemy drops the rest),
 * and an unescaped '@' anywhere after a password: that is how a password
 * with a raw '@' looks once split, and its tail would otherwise become the
 * host or database and be shown by the server's error messages. Unlike SQLAlchemy
 * the host is percent-decoded too (a socket directory as %2Fvar%2Frun).
 *
 * No message here ever quotes the user name, the password, the host, the
 * database or a query value: only which part was wrong (and a query key).
 */
#include "db/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned int cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

typedef enum { DEC_OK = 0, DEC_BAD_ESCAPE, DEC_NUL, DEC_NOT_UTF8, DEC_NOMEM } dec_status;

/* Copies s[0..n) into a new string in *out with percent-escapes decoded
 * ('+' as a space too when plus_space, as in query strings). On anything but
 * DEC_OK, *out is NULL: a bad escape, an escaped NUL (it would cut the C
 * string short), a result that is not UTF-8, or out of memory. */
static dec_status decode(const char *s, size_t n, int plus_space, char **out) {
    char *d = malloc(n + 1);
    size_t j = 0;
    *out = NULL;
    if (!d) return DEC_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int a = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0 || a * 16 + b == 0) {
                free(d);
                return a < 0 || b < 0 ? DEC_BAD_ESCAPE : DEC_NUL;
            }
            d[j++] = (char)(a * 16 + b);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            d[j++] = ' ';
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    if (!valid_utf8((const unsigned char *)d, j)) {
        /* It may be (part of) a password: do not leave it in freed memory. */
        memset(d, 0, j);
        free(d);
        return DEC_NOT_UTF8;
    }
    *out = d;
    return DEC_OK;
}

static void wipe_free(char *s) {
    if (!s) return;
    /* Do not leave a secret lying in freed memory. */
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}

void url_free(db_url *u) {
    free(u->scheme);
    free(u->driver);
    free(u->user);
    wipe_free(u->password);
    free(u->host);
    free(u->database);
    for (int i = 0; i < u->nquery; i++) {
        free(u->qkey[i]);
        wipe_free(u->qval[i]); /* sslpassword=..., password=... */
    }
    memset(u, 0, sizeof(*u));
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(db_url *u, char *errbuf, size_t errlen, const char *fmt, ...) {
    url_free(u);
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Decodes one part of the URL into *out; on failure, fails the whole parse
 * with a message naming the part (never its text). */
static int decode_part(db_url *u, char *errbuf, size_t errlen, const char *part, const char *s,
                       size_t n, char **out) {
    switch (decode(s, n, 0, out)) {
    case DEC_OK:
        return 0;
    case DEC_BAD_ESCAPE:
        return fail(u, errbuf, errlen, "bad percent-escape in the %s of the registry URL", part);
    case DEC_NUL:
        return fail(u, errbuf, errlen,
                    "percent-escape %%00 (a NUL byte) in the %s of the registry URL", part);
    case DEC_NOT_UTF8:
        return fail(u, errbuf, errlen,
                    "the %s of the registry URL is not UTF-8 once percent-decoded", part);
    default:
        return fail(u, errbuf, errlen, "out of memory");
    }
}

/* Writes a query key as it was written, for a message: at most 64
 * characters, anything unprintable as '?'. */
static void show_key(char *dst, size_t dstlen, const char *k, size_t klen) {
    size_t j = 0;
    for (size_t i = 0; i < klen && i < 64 && j + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)k[i];
        dst[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (j < dstlen) dst[j] = '\0';
}

static const char *dec_problem(dec_status st) {
    switch (st) {
    case DEC_BAD_ESCAPE:
        return "a bad percent-escape";
    case DEC_NUL:
        return "percent-escape %00 (a NUL byte)";
    default:
        return "text that is not UTF-8 once percent-decoded";
    }
}

/* The query string q[0..n), split as Python's parse_qsl does by default.
 * Returns 0, or -1 with the whole parse failed. Messages name the key,
 * never a value: values may be secrets (password=, sslpassword=). */
static int parse_query(db_url *u, const char *q, size_t n, char *errbuf, size_t errlen) {
    const char *end = q + n;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t len = amp ? (size_t)(amp - q) : (size_t)(end - q);
        const char *eq = memchr(q, '=', len);
        /* parse_qsl drops "k" and "k=" (keep_blank_values is off). */
        if (eq && eq + 1 < q + len) {
            size_t klen = (size_t)(eq - q);
            char *k = NULL, *v = NULL;
            char shown[80];
            if (u->nquery >= URL_MAX_QUERY)
                return fail(u, errbuf, errlen, "the registry URL has more than %d query options",
                            URL_MAX_QUERY);
            dec_status st = decode(q, klen, 1, &k);
            if (st == DEC_NOMEM) return fail(u, errbuf, errlen, "out of memory");
            if (st != DEC_OK) {
                show_key(shown, sizeof(shown), q, klen);
                return fail(u, errbuf, errlen, "%s in the query key '%s' of the registry URL",
                            dec_problem(st), shown);
            }
            st = decode(eq + 1, len - klen - 1, 1, &v);
            if (st != DEC_OK) {
                show_key(shown, sizeof(shown), k, strlen(k));
                free(k);
                if (st == DEC_NOMEM) return fail(u, errbuf, errlen, "out of memory");
                return fail(u, errbuf, errlen,
                            "%s in the value of query option '%s' of the registry URL",
                            dec_problem(st), shown);
            }
            u->qkey[u->nquery] = k;
            u->qval[u->nquery] = v;
            u->nquery++;
        }
        q += len;
        if (q < end) q++; /* the '&' */
    }
    return 0;
}

static int scheme_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+';
}

int url_parse(const char *text, db_url *u, char *errbuf, size_t errlen) {
    memset(u, 0, sizeof(*u));
    if (errlen > 0) errbuf[0] = '\0';
    const char *sep = strstr(text, "://");
    int scheme_ok = sep && sep != text;
    for (const char *c = text; scheme_ok && c < sep; c++)
        scheme_ok = scheme_char(*c);
    if (!scheme_ok || *text == '+')
        return fail(u, errbuf, errlen,
                    "registry path is not a database URL of the form "
                    "dialect[+driver]://...");
    const char *plus = memchr(text, '+', (size_t)(sep - text));
    size_t slen = plus ? (size_t)(plus - text) : (size_t)(sep - text);
    u->scheme = strndup(text, slen);
    if (plus) u->driver = strndup(plus + 1, (size_t)(sep - plus - 1));
    if (!u->scheme || (plus && !u->driver)) return fail(u, errbuf, errlen, "out of memory");
    for (char *c = u->scheme; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');

    /* Credentials (see the top of this file). */
    const char *rest = sep + 3;
    size_t k = strcspn(rest, ":/");
    const char *user_end = NULL, *pw = NULL, *pw_end = NULL, *h = rest;
    if (rest[k] == ':') {
        const char *at = strchr(rest + k + 1, '@');
        if (at) user_end = rest + k, pw = rest + k + 1, pw_end = at, h = at + 1;
    }
    for (size_t i = k; !user_end && i > 0; i--)
        if (rest[i - 1] == '@') user_end = rest + i - 1, h = rest + i;

    /* Host, port, database, query. */
    const char *host = NULL, *host_end = NULL, *port = NULL, *port_end = NULL;
    const char *db = NULL, *db_end = NULL, *query = NULL, *p;
    int v6 = 0;
    if (*h == '[') {
        size_t lim = strcspn(h, "/?");
        const char *close = NULL;
        for (size_t i = lim; i > 2 && !close; i--)
            if (h[i - 1] == ']') close = h + i - 1;
        if (!close)
            return fail(u, errbuf, errlen, "unterminated or empty [IPv6] host in the registry URL");
        host = h + 1, host_end = close, p = close + 1, v6 = 1;
    } else {
        size_t hl = strcspn(h, "/:?");
        if (hl) host = h, host_end = h + hl;
        p = h + hl;
    }
    if (*p == ':') {
        port = p + 1;
        port_end = port + strcspn(port, "/?");
        p = port_end;
    }
    if (*p != '\0' && *p != '/' && *p != '?')
        return fail(u, errbuf, errlen, "bad host in the registry URL: text after the ]");
    if (*p == '/') {
        db = p + 1;
        db_end = db + strcspn(db, "?");
        p = db_end;
    }
    if (*p == '?') query = p + 1;
    if (query && strchr(query, '\n'))
        return fail(u, errbuf, errlen, "line break in the query string of the registry URL");
    if (pw) {
        /* A raw '@' after the credentials is the tail of a password holding
         * an unescaped '@': refuse it rather than connect to (and show) a
         * host or database made of the password's tail. */
        if (strchr(h, '@'))
            return fail(u, errbuf, errlen,
                        "unescaped '@' after the password in the registry URL: write '@' in a "
                        "password, database name or query value as %%40");
    }

    if (user_end &&
        decode_part(u, errbuf, errlen, "user name", rest, (size_t)(user_end - rest), &u->user) != 0)
        return -1;
    if (pw &&
        decode_part(u, errbuf, errlen, "password", pw, (size_t)(pw_end - pw), &u->password) != 0)
        return -1;
    if (host &&
        decode_part(u, errbuf, errlen, "host", host, (size_t)(host_end - host), &u->host) != 0)
        return -1;
    if (port && memchr(port, ',', (size_t)(port_end - port))) {
        /* libpq's own multi-host form, host1:port1,host2:port2: SQLAlchemy
         * (and so Feast's registry) takes several hosts in the query. The
         * scheme is copied: fail() frees u first. */
        char scheme[32];
        snprintf(scheme, sizeof(scheme), "%s", u->scheme);
        return fail(u, errbuf, errlen,
                    "several hosts in the registry URL's host part (host1:port1,host2:port2): "
                    "name them in the query instead, as SQLAlchemy does: "
                    "%s://user@/database?host=host1:port1&host=host2:port2",
                    scheme);
    }
    if (port) {
        long n = 0;
        int ok = port_end > port && port_end - port <= 5;
        for (const char *c = port; ok && c < port_end; c++) {
            ok = *c >= '0' && *c <= '9';
            n = n * 10 + (*c - '0');
        }
        if (!ok || n < 1 || n > 65535)
            return fail(u, errbuf, errlen,
                        "the port in the registry URL is not a number from 1 to 65535");
        u->port = (int)n;
    }
    int sqlite = strcmp(u->scheme, "sqlite") == 0;
    if (db && (db_end > db || sqlite) &&
        decode_part(u, errbuf, errlen, sqlite ? "sqlite path" : "database name", db,
                    (size_t)(db_end - db), &u->database) != 0)
        return -1;
    if (sqlite) {
        /* sqlite:// and sqlite:/// -> memory; sqlite:///x -> "x";
         * sqlite:////x -> "/x". */
        if (user_end || host || port || v6)
            return fail(u, errbuf, errlen,
                        "sqlite URLs take no host or user: write sqlite:///relative.db "
                        "or sqlite:////absolute/path.db");
        if (!u->database || !u->database[0]) {
            free(u->database);
            u->database = strdup(":memory:");
            if (!u->database) return fail(u, errbuf, errlen, "out of memory");
        }
    }
    if (query && parse_query(u, query, strlen(query), errbuf, errlen) != 0) return -1;
    return 0;
}

const char *url_query(const db_url *u, const char *k) {
    for (int i = 0; i < u->nquery; i++)
        if (strcmp(u->qkey[i], k) == 0) return u->qval[i];
    return NULL;
}

int url_is_sqlite_memory(const db_url *u) {
    return strcmp(u->scheme, "sqlite") == 0 &&
           (u->database == NULL || u->database[0] == '\0' || strcmp(u->database, ":memory:") == 0);
}

/* Appends s to out[*n..], percent-encoding what would change the URL's
 * meaning when read back (a socket path as host, '@' or ':' in a user name),
 * except the characters in keep. */
static void put_encoded(char *out, size_t outlen, size_t *n, const char *s, const char *keep) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && *n + 4 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((strchr("/@:?#%[] ", ch) && !strchr(keep, ch)) || ch < 0x20 || ch == 0x7f) {
            out[(*n)++] = '%';
            out[(*n)++] = hex[ch >> 4];
            out[(*n)++] = hex[ch & 15];
        } else {
            out[(*n)++] = (char)ch;
        }
    }
    out[*n] = '\0';
}

static void put_raw(char *out, size_t outlen, size_t *n, const char *s) {
    for (; *s && *n + 1 < outlen; s++)
        out[(*n)++] = *s;
    out[*n] = '\0';
}

void url_redacted(const db_url *u, char *out, size_t outlen) {
    size_t n = 0;
    if (outlen == 0) return;
    out[0] = '\0';
    put_raw(out, outlen, &n, u->scheme);
    if (u->driver) {
        put_raw(out, outlen, &n, "+");
        put_raw(out, outlen, &n, u->driver);
    }
    put_raw(out, outlen, &n, "://");
    if (strcmp(u->scheme, "sqlite") == 0) {
        put_raw(out, outlen, &n, "/");
        if (!url_is_sqlite_memory(u)) put_encoded(out, outlen, &n, u->database, "/:@#[] ");
        return;
    }
    if (u->user) {
        put_encoded(out, outlen, &n, u->user, "");
        if (u->password) put_raw(out, outlen, &n, ":***");
        put_raw(out, outlen, &n, "@");
    }
    if (u->host) {
        int v6 = strchr(u->host, ':') != NULL && u->host[0] != '/';
        if (v6) put_raw(out, outlen, &n, "[");
        put_encoded(out, outlen, &n, u->host, v6 ? ":" : "");
        if (v6) put_raw(out, outlen, &n, "]");
    }
    if (u->port) {
        char port[16];
        snprintf(port, sizeof(port), ":%d", u->port);
        put_raw(out, outlen, &n, port);
    }
    if (u->database) {
        put_raw(out, outlen, &n, "/");
        put_encoded(out, outlen, &n, u->database, "");
    }
}
