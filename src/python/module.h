/* module.h - state shared by the Python-facing C files (module.c,
 * store_type.c, front_type.c, timings_type.c): src/python/ holds the only C
 * files that include Python.h. */
#ifndef FEAST_SQLREG_MODULE_H
#define FEAST_SQLREG_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "db/db.h"
#include "store/store.h"

typedef struct {
    PyTypeObject *StoreType;
    /* Exception classes, defined in feast_sqlreg/errors.py and cached here. */
    PyObject *DatabaseError;
    PyObject *OperationalError;
    PyObject *IntegrityError;
    PyObject *ProgrammingError;
    PyObject *InterfaceError;
    PyObject *DataError;
    PyObject *ConfigurationError;
} module_state;

/* Raises the exception class that fits err->kind, with .sqlstate and .code
 * set; returns NULL so callers can `return sqlreg_raise(...)`. Call with the
 * GIL held. */
PyObject *sqlreg_raise(module_state *ms, const db_err *err);

/* Imports the backend module for path's dialect (feast_sqlreg._backend_pg,
 * _backend_mysql) unless its driver is registered already, so that the
 * client libraries are loaded only by processes that use them. Call with
 * the GIL held, before store_open. 0 (also when the build has no such
 * module: store_open then reports it), or -1 with an exception set. */
int sqlreg_load_backend(const char *path);
/* The open store of a Store object, for a user outside its methods (the
 * front's workers): counted as a call in flight, so the object's close()
 * leaves the closing to sqlreg_store_release, and the object is kept
 * alive. NULL with an exception set when obj is not an open Store. Both
 * with the GIL held. */
store *sqlreg_store_borrow(module_state *ms, PyObject *obj);
void sqlreg_store_release(PyObject *obj);

/* Adds the Store type to the module; 0 or -1 with an exception set. */
int store_type_setup(PyObject *module, module_state *ms);
/* Adds the Front type (front_type.c); 0 or -1 with an exception set. */
int front_type_setup(PyObject *module);
/* Adds the Timings type (timings_type.c); 0 or -1 with an exception set. */
int timings_type_setup(PyObject *module);

#endif
