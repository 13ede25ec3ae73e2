/* module.c - the _sqlregistry module: multi-phase init, state, exceptions. */
#include "python/module.h"

#include <sqlite3.h>
#include <string.h>

static module_state *get_state(PyObject *module) {
    return (module_state *)PyModule_GetState(module);
}

PyObject *sqlreg_raise(module_state *ms, const db_err *err) {
    PyObject *cls;
    switch (err->kind) {
    case DB_ERR_CONNECT:
    case DB_ERR_BUSY:
    case DB_ERR_OPERATIONAL:
    case DB_ERR_TIMEOUT:
    case DB_ERR_STALE_PLAN:
        cls = ms->OperationalError;
        break;
    case DB_ERR_INTEGRITY:
    case DB_ERR_DUPLICATE:
        cls = ms->IntegrityError;
        break;
    case DB_ERR_PROGRAMMING:
        cls = ms->ProgrammingError;
        break;
    case DB_ERR_DATA:
        cls = ms->DataError;
        break;
    case DB_ERR_CONFIG:
        cls = ms->ConfigurationError;
        break;
    case DB_ERR_INTERFACE:
        cls = ms->InterfaceError;
        break;
    default:
        cls = ms->DatabaseError;
    }
    if (err->kind == DB_ERR_NOMEM) return PyErr_NoMemory();
    /* Server messages are not always UTF-8 (a server's own charset, a
     * truncated multi-byte character): never let decoding fail the raise. */
    const char *msg = err->msg[0] ? err->msg : "database error";
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (!text) return NULL;
    PyObject *exc = PyObject_CallFunctionObjArgs(cls, text, NULL);
    Py_DECREF(text);
    if (!exc) return NULL;
    PyObject *sqlstate =
        err->sqlstate[0] ? PyUnicode_FromString(err->sqlstate) : Py_NewRef(Py_None);
    PyObject *code = PyLong_FromLong(err->code);
    if (sqlstate && code && PyObject_SetAttrString(exc, "sqlstate", sqlstate) == 0 &&
        PyObject_SetAttrString(exc, "code", code) == 0)
        PyErr_SetObject(cls, exc);
    Py_XDECREF(sqlstate);
    Py_XDECREF(code);
    Py_DECREF(exc);
    return NULL;
}

static int load_exceptions(module_state *ms) {
    PyObject *errors = PyImport_ImportModule("feast_sqlreg.errors");
    if (!errors) return -1;
    struct {
        PyObject **slot;
        const char *name;
    } table[] = {
        {&ms->DatabaseError, "DatabaseError"},
        {&ms->OperationalError, "OperationalError"},
        {&ms->IntegrityError, "IntegrityError"},
        {&ms->ProgrammingError, "ProgrammingError"},
        {&ms->InterfaceError, "InterfaceError"},
        {&ms->DataError, "DataError"},
        {&ms->ConfigurationError, "ConfigurationError"},
    };
    int rv = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) && rv == 0; i++) {
        *table[i].slot = PyObject_GetAttrString(errors, table[i].name);
        if (!*table[i].slot) rv = -1;
    }
    Py_DECREF(errors);
    return rv;
}

/* ---- backends loaded on demand ------------------------------------------ */

/* The driver registry's entry point, handed to the backend modules through
 * the _C_API capsule (backend_module.h). */
static const db_driver_api driver_api = {DB_DRIVER_ABI, db_register_driver};

int sqlreg_load_backend(const char *path) {
    if (!path) return 0;
    db_dialect d = db_dialect_of_url(path);
    const char *name = d == DB_POSTGRES ? "feast_sqlreg._backend_pg"
                       : d == DB_MYSQL  ? "feast_sqlreg._backend_mysql"
                                        : NULL;
    if (!name || db_driver_registered(d)) return 0;
    PyObject *mod = PyImport_ImportModule(name);
    if (mod) {
        Py_DECREF(mod);
        return 0;
    }
    /* Not built (no client library at build time): store_open then fails
     * with db_driver_for's ConfigurationError, as a build without the
     * backend always has. Any other failure (the client library missing
     * at run time) is worth its own message. */
    if (PyErr_ExceptionMatches(PyExc_ModuleNotFoundError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* KINDS: the table of kinds (common/kinds.h), one dict per kind in obj_kind
 * order, for the Python package to build its maps from. */
static PyObject *kinds_table(void) {
    PyObject *all = PyTuple_New(OBJ_KINDS);
    if (!all) return NULL;
    for (int k = 0; k < OBJ_KINDS; k++) {
        const kind_info *t = kind_of((obj_kind)k);
        PyObject *row = Py_BuildValue(
            "{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:O,s:I,s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:s,s:s}", "id",
            k, "name", t->id, "noun", t->noun, "table", t->table, "name_col", t->name_col,
            "proto_col", t->proto_col, "reg_field", (unsigned)t->reg_field, "reg_name", t->reg_name,
            "user_meta", t->user_meta ? Py_True : Py_False, "project_no", (unsigned)t->project_no,
            "in_spec", t->in_spec ? Py_True : Py_False, "intervals",
            t->intervals ? Py_True : Py_False, "compared", t->compared ? Py_True : Py_False, "view",
            t->view, "py_class", t->py_class, "py_proto", t->py_proto, "not_found", t->not_found,
            "get_rpc", t->get_rpc, "list_rpc", t->list_rpc);
        if (!row) {
            Py_DECREF(all);
            return NULL;
        }
        PyTuple_SetItem(all, k, row); /* steals row */
    }
    return all;
}

static int module_exec(PyObject *module) {
    module_state *ms = get_state(module);
    if (load_exceptions(ms) != 0) return -1;
    if (store_type_setup(module, ms) != 0) return -1;
    if (front_type_setup(module) != 0) return -1;
    if (timings_type_setup(module) != 0) return -1;
    /* What the build has (setup.py defines the macros for the backend
     * modules it builds), loaded or not: importing them to find out would
     * cost what loading them on demand saves. */
    const char *backends = "sqlite"
#ifdef FEAST_SQLREG_HAVE_PG
                           ",postgresql"
#endif
#ifdef FEAST_SQLREG_HAVE_MYSQL
                           ",mysql"
#endif
        ;
    if (PyModule_AddStringConstant(module, "backends", backends) != 0) return -1;
    if (PyModule_AddStringConstant(module, "sqlite_version", sqlite3_libversion()) != 0) return -1;
    PyObject *kinds = kinds_table();
    if (!kinds) return -1;
    int added = PyModule_AddObjectRef(module, "KINDS", kinds);
    Py_DECREF(kinds);
    if (added != 0) return -1;
    PyObject *api = PyCapsule_New((void *)&driver_api, DB_DRIVER_API_CAPSULE, NULL);
    if (!api) return -1;
    int rv = PyModule_AddObjectRef(module, "_C_API", api);
    Py_DECREF(api);
    return rv;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg) {
    module_state *ms = get_state(module);
    Py_VISIT(ms->StoreType);
    Py_VISIT(ms->DatabaseError);
    Py_VISIT(ms->OperationalError);
    Py_VISIT(ms->IntegrityError);
    Py_VISIT(ms->ProgrammingError);
    Py_VISIT(ms->InterfaceError);
    Py_VISIT(ms->DataError);
    Py_VISIT(ms->ConfigurationError);
    return 0;
}

static int module_clear(PyObject *module) {
    module_state *ms = get_state(module);
    Py_CLEAR(ms->StoreType);
    Py_CLEAR(ms->DatabaseError);
    Py_CLEAR(ms->OperationalError);
    Py_CLEAR(ms->IntegrityError);
    Py_CLEAR(ms->ProgrammingError);
    Py_CLEAR(ms->InterfaceError);
    Py_CLEAR(ms->DataError);
    Py_CLEAR(ms->ConfigurationError);
    return 0;
}

static void module_free(void *module) {
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "feast_sqlreg._sqlregistry",
    .m_doc = "Native storage core of feast_sqlreg: Feast's SQL registry over "
             "sqlite3, libpq and libmysqlclient.",
    .m_size = sizeof(module_state),
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__sqlregistry(void); /* the one exported symbol */
PyMODINIT_FUNC PyInit__sqlregistry(void) {
    return PyModuleDef_Init(&module_def);
}
