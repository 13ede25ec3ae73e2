/* db_util.c - helpers every driver shares: error state, the statement
 * cache, change-log triggers. Stateless, so the backend modules
 * (_backend_pg, _backend_mysql) compile their own copies next to the core's;
 * global state of the backend interface (the driver registry) is in db.c. */
#include "db/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

void *db_stmt_cache_find(const db_stmt_cache *c, const char *sql) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->sql[i], sql) == 0) return c->stmt[i];
    return NULL;
}

static void drop_at(db_stmt_cache *c, int i) {
    c->release(c->stmt[i]);
    free(c->sql[i]);
    memmove(c->sql + i, c->sql + i + 1, sizeof(c->sql[0]) * (size_t)(c->n - i - 1));
    memmove(c->stmt + i, c->stmt + i + 1, sizeof(c->stmt[0]) * (size_t)(c->n - i - 1));
    c->n--;
}

int db_stmt_cache_add(db_stmt_cache *c, const char *sql, void *stmt, db_err *err) {
    char *copy = strdup(sql);
    if (!copy) {
        c->release(stmt);
        db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory");
        return -1;
    }
    if (c->n == DB_STMT_CACHE) drop_at(c, 0);
    c->sql[c->n] = copy;
    c->stmt[c->n] = stmt;
    c->n++;
    return 0;
}

void db_stmt_cache_forget(db_stmt_cache *c, void *stmt) {
    for (int i = 0; i < c->n; i++)
        if (c->stmt[i] == stmt) {
            drop_at(c, i);
            return;
        }
}

void db_stmt_cache_clear(db_stmt_cache *c) {
    while (c->n > 0)
        drop_at(c, c->n - 1);
}

int db_change_trigger_per_op(const char *fmt, int i, const char *table, const char *keycol,
                             char *name, size_t namelen, char *sql, size_t sqllen) {
    static const char *const ops[] = {"INSERT", "UPDATE", "DELETE"};
    static const char *const rows[] = {"NEW", "NEW", "OLD"};
    static const char *const tags[] = {"ins", "upd", "del"};
    if (i < 0 || i > 2) return 0;
    snprintf(name, namelen, DB_CHANGE_TRIGGER_PREFIX "%s_%s", table, tags[i]);
    snprintf(sql, sqllen, fmt, name, ops[i], table, table, rows[i], rows[i], keycol);
    return 1;
}
