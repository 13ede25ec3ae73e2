/* module.h - state shared by the Python-facing C files (module.c, registry.c). */
#ifndef FEAST_SQLREG_MODULE_H
#define FEAST_SQLREG_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "db.h"

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

/* Adds the Store type to the module; 0 or -1 with an exception set. */
int registry_setup_types(PyObject *module, module_state *ms);

#endif
