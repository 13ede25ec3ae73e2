/* url.c - see url.h. */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) with percent-escapes decoded ('+' as a space too when
 * plus_space, as in query strings). Returns NULL on a bad escape or out of
 * memory. */
static char *decode(const char *s, size_t n, int plus_space) {
    char *out = malloc(n + 1);
    size_t j = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int a = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(a * 16 + b);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

void url_free(db_url *u) {
    free(u->scheme);
    free(u->driver);
    free(u->user);
    if (u->password) {
        /* Do not leave the secret lying in freed memory. */
        volatile char *p = u->password;
        while (*p)
            *p++ = 0;
        free(u->password);
    }
    free(u->host);
    free(u->database);
    for (int i = 0; i < u->nquery; i++) {
        free(u->qkey[i]);
        free(u->qval[i]);
    }
    memset(u, 0, sizeof(*u));
}

static int fail(db_url *u, char *errbuf, size_t errlen, const char *msg) {
    url_free(u);
    snprintf(errbuf, errlen, "%s", msg);
    return -1;
}

static int parse_query(db_url *u, const char *q) {
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            if (u->nquery >= URL_MAX_QUERY) return -1;
            char *k = decode(q, klen, 1);
            char *v = eq ? decode(eq + 1, len - klen - 1, 1) : decode("", 0, 0);
            if (!k || !v) {
                free(k);
                free(v);
                return -1;
            }
            u->qkey[u->nquery] = k;
            u->qval[u->nquery] = v;
            u->nquery++;
        }
        q += len;
        if (*q == '&') q++;
    }
    return 0;
}

int url_parse(const char *text, db_url *u, char *errbuf, size_t errlen) {
    memset(u, 0, sizeof(*u));
    const char *sep = strstr(text, "://");
    if (!sep || sep == text)
        return fail(u, errbuf, errlen,
                    "registry path is not a database URL of the form "
                    "dialect[+driver]://...");
    const char *plus = memchr(text, '+', (size_t)(sep - text));
    size_t slen = plus ? (size_t)(plus - text) : (size_t)(sep - text);
    u->scheme = decode(text, slen, 0);
    if (plus) u->driver = decode(plus + 1, (size_t)(sep - plus - 1), 0);
    if (!u->scheme || (plus && !u->driver)) return fail(u, errbuf, errlen, "out of memory");
    for (char *c = u->scheme; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');

    const char *rest = sep + 3;
    const char *qmark = strchr(rest, '?');
    const char *end = qmark ? qmark : rest + strlen(rest);

    if (strcmp(u->scheme, "sqlite") == 0) {
        /* sqlite:// -> memory; sqlite:///x -> "x"; sqlite:////x -> "/x".
         * What follows "://" up to the first '/' is an (empty) host. */
        const char *slash = memchr(rest, '/', (size_t)(end - rest));
        if (slash && slash != rest)
            return fail(u, errbuf, errlen,
                        "sqlite URLs take no host: write sqlite:///relative.db "
                        "or sqlite:////absolute/path.db");
        if (!slash || slash + 1 == end)
            u->database = decode(":memory:", 8, 0);
        else
            u->database = decode(slash + 1, (size_t)(end - slash - 1), 0);
        if (!u->database) return fail(u, errbuf, errlen, "bad percent-escape in the sqlite path");
        if (qmark && parse_query(u, qmark + 1) != 0)
            return fail(u, errbuf, errlen, "bad query string in the registry URL");
        return 0;
    }

    /* Authority: [user[:password]@]host[:port], then /database. The '@' that
     * ends the credentials is the last one before the path (passwords may
     * contain unescaped '@' in hand-written URLs). */
    const char *path = memchr(rest, '/', (size_t)(end - rest));
    const char *auth_end = path ? path : end;
    const char *at = NULL;
    for (const char *c = rest; c < auth_end; c++)
        if (*c == '@') at = c;
    const char *hoststart = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        u->user = decode(rest, (size_t)((colon ? colon : at) - rest), 0);
        if (!u->user) return fail(u, errbuf, errlen, "bad percent-escape in the user name");
        if (colon) {
            u->password = decode(colon + 1, (size_t)(at - colon - 1), 0);
            if (!u->password) return fail(u, errbuf, errlen, "bad percent-escape in the password");
        }
        hoststart = at + 1;
    }
    const char *portsep = NULL;
    if (hoststart < auth_end && *hoststart == '[') {
        const char *close = memchr(hoststart, ']', (size_t)(auth_end - hoststart));
        if (!close) return fail(u, errbuf, errlen, "unterminated [IPv6] host in the registry URL");
        u->host = decode(hoststart + 1, (size_t)(close - hoststart - 1), 0);
        if (close + 1 < auth_end) {
            if (close[1] != ':') return fail(u, errbuf, errlen, "bad host in the registry URL");
            portsep = close + 1;
        }
    } else {
        portsep = memchr(hoststart, ':', (size_t)(auth_end - hoststart));
        size_t hlen = (size_t)((portsep ? portsep : auth_end) - hoststart);
        if (hlen) u->host = decode(hoststart, hlen, 0);
    }
    if (portsep) {
        char *endp = NULL;
        long port = strtol(portsep + 1, &endp, 10);
        if (endp != auth_end || port <= 0 || port > 65535)
            return fail(u, errbuf, errlen,
                        "the port in the registry URL is not a number from 1 to 65535");
        u->port = (int)port;
    }
    if (path && path + 1 < end) {
        u->database = decode(path + 1, (size_t)(end - path - 1), 0);
        if (!u->database) return fail(u, errbuf, errlen, "bad percent-escape in the database name");
    }
    if (qmark && parse_query(u, qmark + 1) != 0)
        return fail(u, errbuf, errlen, "bad query string in the registry URL");
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
 * meaning (a socket path as host, '@' or ':' in a user name). */
static void put_encoded(char *out, size_t outlen, size_t *n, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && *n + 4 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (strchr("/@:?#%[] ", ch) || ch < 0x20) {
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
        if (!url_is_sqlite_memory(u)) put_raw(out, outlen, &n, u->database);
        return;
    }
    if (u->user) {
        put_encoded(out, outlen, &n, u->user);
        if (u->password) put_raw(out, outlen, &n, ":***");
        put_raw(out, outlen, &n, "@");
    }
    if (u->host) {
        int v6 = strchr(u->host, ':') != NULL && u->host[0] != '/';
        if (v6) put_raw(out, outlen, &n, "[");
        if (v6)
            put_raw(out, outlen, &n, u->host);
        else
            put_encoded(out, outlen, &n, u->host);
        if (v6) put_raw(out, outlen, &n, "]");
    }
    if (u->port) {
        char port[16];
        snprintf(port, sizeof(port), ":%d", u->port);
        put_raw(out, outlen, &n, port);
    }
    if (u->database) {
        put_raw(out, outlen, &n, "/");
        put_encoded(out, outlen, &n, u->database);
    }
}
