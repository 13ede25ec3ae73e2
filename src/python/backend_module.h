/* backend_module.h - what the backend modules (pg_module.c, mysql_module.c)
 * share: handing their driver to the core.
 *
 * feast_sqlreg._backend_pg and _backend_mysql are extension modules of their
 * own so that importing the core maps neither libpq nor the MariaDB client
 * library: the core imports one the first time a URL of its kind is opened
 * (module.c, sqlreg_load_backend). Each compiles its driver and the
 * stateless helpers it calls (db/db_util.c, db/url.c); the driver registry
 * is the core's alone (db/db.c), reached through the capsule the core exports. */
#ifndef FEAST_SQLREG_BACKEND_MODULE_H
#define FEAST_SQLREG_BACKEND_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "db/db.h"

/* Registers drv with the core (importing it if need be). 0, or -1 with an
 * exception set: ImportError when the core is of another build. */
static inline int backend_register(const db_driver *drv) {
    const db_driver_api *api = (const db_driver_api *)PyCapsule_Import(DB_DRIVER_API_CAPSULE, 0);
    if (!api) return -1;
    if (api->abi != DB_DRIVER_ABI) {
        PyErr_Format(PyExc_ImportError,
                     "feast_sqlreg: the %s backend module (driver interface %d) does not match "
                     "feast_sqlreg._sqlregistry (driver interface %d): reinstall feast_sqlreg",
                     drv->name, DB_DRIVER_ABI, api->abi);
        return -1;
    }
    if (api->register_driver(drv) != 0) {
        PyErr_Format(PyExc_ImportError, "feast_sqlreg: another %s driver is already registered",
                     drv->name);
        return -1;
    }
    return 0;
}

#endif
