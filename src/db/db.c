/* db.c - driver selection: the registry of backend drivers.
 *
 * SQLite is compiled into the core. The PostgreSQL and MySQL drivers live in
 * extension modules of their own (feast_sqlreg._backend_pg and
 * _backend_mysql), so that importing the core maps neither client library:
 * each registers its driver here when it is imported (through the core's
 * _C_API capsule, python/module.c), which the core does the first time a URL of
 * that kind is opened. The C test programs, which link every driver in,
 * register the ones they use directly.
 *
 * One slot per dialect, read and written atomically, with no lock:
 * store_open runs without the GIL in any thread, and a child forked while
 * another thread was looking a driver up must not inherit a held lock. A
 * slot, once set, never changes (drivers are static tables of modules that
 * are never unloaded).
 */
#include "db/db.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic(const db_driver *) registered[DB_MYSQL + 1];

db_dialect db_dialect_of_scheme(const char *scheme) {
    if (strcmp(scheme, "sqlite") == 0) return DB_SQLITE;
    if (strcmp(scheme, "postgresql") == 0 || strcmp(scheme, "postgres") == 0) return DB_POSTGRES;
    if (strcmp(scheme, "mysql") == 0 || strcmp(scheme, "mariadb") == 0) return DB_MYSQL;
    return DB_UNKNOWN;
}

db_dialect db_dialect_of_url(const char *text) {
    db_url u;
    char errbuf[256];
    if (url_parse(text, &u, errbuf, sizeof(errbuf)) != 0) return DB_UNKNOWN;
    db_dialect d = db_dialect_of_scheme(u.scheme);
    url_free(&u);
    return d;
}

int db_register_driver(const db_driver *drv) {
    if (!drv || drv->dialect <= DB_SQLITE || drv->dialect > DB_MYSQL) return -1;
    const db_driver *seen = NULL;
    if (atomic_compare_exchange_strong(&registered[drv->dialect], &seen, drv)) return 0;
    return seen == drv ? 0 : -1; /* the same table again is fine, another is not */
}

const db_driver *db_driver_registered(db_dialect d) {
    if (d == DB_SQLITE) return &db_sqlite_driver;
    if (d <= DB_UNKNOWN || d > DB_MYSQL) return NULL;
    return atomic_load(&registered[d]);
}

const db_driver *db_driver_for(const db_url *url, db_err *err) {
    const db_driver *drv = db_driver_registered(db_dialect_of_scheme(url->scheme));
    if (drv) return drv;
    /* What the build has, loaded or not: a backend whose module could not
     * be imported is reported like one the build left out. */
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
