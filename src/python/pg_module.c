/* pg_module.c - feast_sqlreg._backend_pg: the PostgreSQL driver (db/db_pg.c,
 * libpq), registered with the core when imported (backend_module.h). */
#include "python/backend_module.h"

static int pg_module_exec(PyObject *module) {
    (void)module;
    return backend_register(&db_pg_driver);
}

static PyModuleDef_Slot pg_module_slots[] = {
    {Py_mod_exec, pg_module_exec},
    {0, NULL},
};

static struct PyModuleDef pg_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "feast_sqlreg._backend_pg",
    .m_doc = "feast_sqlreg's PostgreSQL backend (libpq), loaded when a postgresql:// URL is "
             "first opened.",
    .m_size = 0,
    .m_slots = pg_module_slots,
};

PyMODINIT_FUNC PyInit__backend_pg(void); /* the one exported symbol */
PyMODINIT_FUNC PyInit__backend_pg(void) {
    return PyModuleDef_Init(&pg_module_def);
}
