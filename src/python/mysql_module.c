/* mysql_module.c - feast_sqlreg._backend_mysql: the MySQL / MariaDB driver
 * (db/db_mysql.c, MariaDB Connector/C), registered with the core when imported
 * (backend_module.h). */
#include "python/backend_module.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A binary wheel carries MariaDB Connector/C's authentication plugins in
 * feast_sqlreg/_mariadb_plugin/, next to this module, since the system may
 * have none; a build from source has no such directory and keeps the
 * library's own. 0, or -1 with an exception set. */
static int use_bundled_mysql_plugins(PyObject *module) {
    static const char sub[] = "/_mariadb_plugin";
    PyObject *file = PyModule_GetFilenameObject(module);
    if (!file) { /* no __file__ (an embedded interpreter): nothing to find */
        PyErr_Clear();
        return 0;
    }
    PyObject *bytes = PyUnicode_EncodeFSDefault(file);
    Py_DECREF(file);
    if (!bytes) return -1;
    int rv = -1;
    char *dir = NULL;
    const char *path = PyBytes_AsString(bytes);
    if (!path) goto done;
    const char *slash = strrchr(path, '/');
    if (!slash) { /* extension paths are absolute; be safe anyway */
        rv = 0;
        goto done;
    }
    size_t len = (size_t)(slash - path);
    if (!(dir = malloc(len + sizeof(sub)))) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(dir, path, len);
    memcpy(dir + len, sub, sizeof(sub));
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && db_mysql_set_plugin_dir(dir) != 0) {
        PyErr_NoMemory();
        goto done;
    }
    rv = 0;
done:
    free(dir);
    Py_DECREF(bytes);
    return rv;
}

static int mysql_module_exec(PyObject *module) {
    /* Before the driver is registered: no connection exists yet. */
    if (use_bundled_mysql_plugins(module) != 0) return -1;
    return backend_register(&db_mysql_driver);
}

static PyModuleDef_Slot mysql_module_slots[] = {
    {Py_mod_exec, mysql_module_exec},
    {0, NULL},
};

static struct PyModuleDef mysql_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "feast_sqlreg._backend_mysql",
    .m_doc = "feast_sqlreg's MySQL / MariaDB backend (MariaDB Connector/C), loaded when a "
             "mysql:// or mariadb:// URL is first opened.",
    .m_size = 0,
    .m_slots = mysql_module_slots,
};

PyMODINIT_FUNC PyInit__backend_mysql(void); /* the one exported symbol */
PyMODINIT_FUNC PyInit__backend_mysql(void) {
    return PyModuleDef_Init(&mysql_module_def);
}
