/* db.c - error helpers and driver selection for the backend interface. */
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void db_err_clear(db_err *err) {
    err->kind = DB_ERR_NONE;
    err->code = 0;
    err->sqlstate[0] = '\0';
    err->msg[0] = '\0';
}

void db_err_set(db_err *err, db_errkind kind, int code, const char *sqlstate, const char *fmt,
                ...) {
    va_list ap;
    err->kind = kind;
    err->code = code;
    snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate ? sqlstate : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* Drivers end their messages with newlines; messages read better without. */
    size_t n = strlen(err->msg);
    while (n > 0 && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
        err->msg[--n] = '\0';
}

const db_driver *db_driver_for(const db_url *url, db_err *err) {
    if (strcmp(url->scheme, "sqlite") == 0) return &db_sqlite_driver;
#ifdef FEAST_SQLREG_HAVE_PG
    if (strcmp(url->scheme, "postgresql") == 0 || strcmp(url->scheme, "postgres") == 0)
        return &db_pg_driver;
#endif
#ifdef FEAST_SQLREG_HAVE_MYSQL
    if (strcmp(url->scheme, "mysql") == 0 || strcmp(url->scheme, "mariadb") == 0)
        return &db_mysql_driver;
#endif
    db_err_set(err, DB_ERR_CONFIG, 0, NULL,
               "no backend for '%s' URLs in this build of feast_sqlreg "
               "(supported: sqlite"
#ifdef FEAST_SQLREG_HAVE_PG
               ", postgresql"
#endif
#ifdef FEAST_SQLREG_HAVE_MYSQL
               ", mysql, mariadb"
#endif
               ")",
               url->scheme);
    return NULL;
}
