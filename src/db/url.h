/* url.h - SQLAlchemy-style database URLs, parsed without SQLAlchemy.
 *
 *   dialect[+driver]://[user[:password]@][host][:port][/database][?k=v&...]
 *
 * Percent-escapes are decoded in every part. sqlite:///relative.db,
 * sqlite:////absolute.db and sqlite:// (memory) follow SQLAlchemy. The
 * password is kept only in this struct: url_redacted() is what goes into
 * messages and reprs.
 */
#ifndef FEAST_SQLREG_URL_H
#define FEAST_SQLREG_URL_H

#include <stddef.h>

#define URL_MAX_QUERY 32

typedef struct {
    char *scheme;   /* "postgresql", "mysql", "sqlite", "mariadb" */
    char *driver;   /* "psycopg", "pymysql", ... or NULL */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    char *host;     /* NULL when absent; brackets of an IPv6 literal removed */
    int port;       /* 0 when absent */
    char *database; /* NULL when absent; for sqlite, the file path or ":memory:" */
    int nquery;
    char *qkey[URL_MAX_QUERY];
    char *qval[URL_MAX_QUERY];
} db_url;

/* Parses text into *u. Returns 0, or -1 with a message (never containing the
 * password) in errbuf. */
int url_parse(const char *text, db_url *u, char *errbuf, size_t errlen);
void url_free(db_url *u);
/* The value of query key k, or NULL. */
const char *url_query(const db_url *u, const char *k);
/* Writes the URL with the password replaced by "***". */
void url_redacted(const db_url *u, char *out, size_t outlen);
/* 1 when the URL names SQLite's in-memory database. */
int url_is_sqlite_memory(const db_url *u);

#endif
