/* front_type.c - the Python face of front/front.c: the Front type
 * (feast_sqlreg._sqlregistry.Front).
 *
 * Front(port, backend_port, methods, kinds, path=None, workers=4,
 * store=None, request_fields=None, tls_cert=None, tls_key=None) starts the
 * native gRPC front (see front/front.h), reading method i's requests with the field numbers
 * request_fields[i], (name, project, allow_cache), 0 for a field the
 * message lacks (None: (1, 2, 3) for every method), answering
 * uncached Gets from the database at path (a store of its own, `workers`
 * connections) when path is given, or through a registry's own Store when
 * store is (which knows that process's writes: read-your-writes on a
 * read_path replica; kept open until the front stops); set_answers() hands it the table of cached
 * answers, built here from Python objects with the GIL held and swapped in whole; stop() (or
 * deallocation) stops its threads. With tls_cert and tls_key (paths of the PEM certificate chain
 * and private key, both or neither), clients speak TLS to it (front_tls); a file that does not
 * load is an OSError saying which and why.
 */
#include "front/front.h"
#include "python/module.h"

typedef struct {
    PyObject_HEAD front *f;
    PyObject *store; /* a borrowed Store object, or NULL */
} FrontObject;

/* request_fields: one (name, project, allow_cache) tuple of field numbers
 * per method, each 0 (no such field) or a field number, the non-zero ones
 * of a tuple distinct. A PyMem block of n, or NULL with an exception set. */
static front_fields *parse_fields(PyObject *obj, Py_ssize_t n) {
    PyObject *seq = PySequence_Fast(obj, "Front: request_fields is a list of "
                                         "(name, project, allow_cache) field numbers");
    if (!seq) return NULL;
    front_fields *fields = NULL;
    if (PySequence_Size(seq) != n) {
        PyErr_SetString(PyExc_ValueError, "Front: one entry of request_fields per method");
        goto done;
    }
    if (!(fields = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(*fields)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v[3];
        PyObject *item = PySequence_GetItem(seq, i);
        /* PyArg_ParseTuple takes nothing but a tuple. */
        int ok = item && PyTuple_Check(item) &&
                 PyArg_ParseTuple(item, "lll:request_fields", &v[0], &v[1], &v[2]);
        if (item && !ok && !PyTuple_Check(item))
            PyErr_Format(PyExc_TypeError, "Front: request_fields[%zd] is not a tuple", i);
        Py_XDECREF(item);
        if (!ok) goto fail;
        for (int k = 0; k < 3; k++)
            if (v[k] < 0 || v[k] > (1L << 29) - 1 || (v[k] && (v[k] == v[(k + 1) % 3]))) {
                PyErr_Format(PyExc_ValueError,
                             "Front: request_fields[%zd] = (%ld, %ld, %ld): field numbers are 0 "
                             "(none) or distinct, from 1 to 2**29 - 1",
                             i, v[0], v[1], v[2]);
                goto fail;
            }
        fields[i] = (front_fields){(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]};
    }
    goto done;
fail:
    PyMem_Free(fields);
    fields = NULL;
done:
    Py_DECREF(seq);
    return fields;
}

/* "O&" converter: a path (str, bytes, os.PathLike) to bytes, or None to
 * NULL. */
static int path_or_none(PyObject *obj, void *out) {
    if (obj == Py_None) {
        *(PyObject **)out = NULL;
        return 1;
    }
    return PyUnicode_FSConverter(obj, out) ? 1 : 0;
}

static PyObject *start(PyTypeObject *type, int port, int backend_port, PyObject *methods,
                       PyObject *kinds, const char *path, int workers, PyObject *store_obj,
                       PyObject *fields_obj, const front_tls *tls);

static PyObject *Front_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"port",  "backend_port",   "methods",  "kinds",   "path", "workers",
                             "store", "request_fields", "tls_cert", "tls_key", NULL};
    int port, backend_port, workers = 4;
    PyObject *methods, *kinds, *store_obj = Py_None, *fields_obj = Py_None;
    PyObject *cert = NULL, *key = NULL; /* bytes */
    const char *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iiO!O!|ziOOO&O&:Front", kwlist, &port,
                                     &backend_port, &PyList_Type, &methods, &PyList_Type, &kinds,
                                     &path, &workers, &store_obj, &fields_obj, path_or_none, &cert,
                                     path_or_none, &key)) {
        Py_XDECREF(cert);
        return NULL;
    }
    PyObject *front = NULL;
    if (!cert != !key) {
        PyErr_SetString(PyExc_ValueError, "Front: tls_cert and tls_key, both or neither");
    } else if (cert) {
        front_tls tls = {PyBytes_AsString(cert), PyBytes_AsString(key)};
        if (tls.cert_path && tls.key_path)
            front = start(type, port, backend_port, methods, kinds, path, workers, store_obj,
                          fields_obj, &tls);
    } else {
        front = start(type, port, backend_port, methods, kinds, path, workers, store_obj,
                      fields_obj, NULL);
    }
    Py_XDECREF(cert);
    Py_XDECREF(key);
    return front;
}

static PyObject *start(PyTypeObject *type, int port, int backend_port, PyObject *methods,
                       PyObject *kinds, const char *path, int workers, PyObject *store_obj,
                       PyObject *fields_obj, const front_tls *tls) {
    if (path && store_obj != Py_None) {
        PyErr_SetString(PyExc_ValueError, "Front: path or store, not both");
        return NULL;
    }
    if (port < 0 || port > 65535 || backend_port <= 0 || backend_port > 65535) {
        PyErr_Format(PyExc_ValueError, "Front: port %d or backend port %d out of range", port,
                     backend_port);
        return NULL;
    }
    Py_ssize_t n = PyList_Size(methods);
    if (PyList_Size(kinds) != n || workers < 1 || workers > 64) {
        PyErr_SetString(PyExc_ValueError, "Front: one kind per method, 1 to 64 workers");
        return NULL;
    }
    front_fields *fields = NULL;
    if (fields_obj != Py_None && !(fields = parse_fields(fields_obj, n))) return NULL;
    /* Before the method names are borrowed: the import runs Python code. */
    if (sqlreg_load_backend(path) != 0) {
        PyMem_Free(fields);
        return NULL;
    }
    const char **paths = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    obj_kind *kind = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(obj_kind));
    if (!paths || !kind) {
        PyMem_Free(paths);
        PyMem_Free(kind);
        PyMem_Free(fields);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(methods, i); /* borrowed */
        long k = PyLong_AsLong(PyList_GetItem(kinds, i));
        if (!item || !(paths[i] = PyUnicode_AsUTF8AndSize(item, NULL)) ||
            (k == -1 && PyErr_Occurred()) || k < 0 || k >= OBJ_KINDS) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "Front: not an object kind");
            PyMem_Free(paths);
            PyMem_Free(kind);
            PyMem_Free(fields);
            return NULL;
        }
        kind[i] = (obj_kind)k;
    }
    store *borrowed = NULL;
    if (store_obj != Py_None) {
        module_state *ms = (module_state *)PyType_GetModuleState(type);
        if (!(borrowed = sqlreg_store_borrow(ms, store_obj))) {
            PyMem_Free(paths);
            PyMem_Free(kind);
            PyMem_Free(fields);
            return NULL;
        }
    }
    char err[512] = "";
    front *f = NULL;
    db_err dberr;
    db_err_clear(&dberr);
    Py_BEGIN_ALLOW_THREADS
        /* Uncached answers need no more connections than workers. */
        pool_opts opts = {workers, 0, 30.0, -1.0, 1};
        store *st = borrowed ? borrowed : path ? store_open(path, NULL, &opts, &dberr) : NULL;
        if (!path || st)
            f = front_start(port, backend_port, paths, kind, fields, (int)n, st, borrowed == NULL,
                            workers, tls, err, sizeof(err));
    Py_END_ALLOW_THREADS
    PyMem_Free(paths);
    PyMem_Free(kind);
    PyMem_Free(fields);
    if (!f && borrowed) sqlreg_store_release(store_obj);
    if (dberr.kind != DB_ERR_NONE) {
        module_state *ms = (module_state *)PyType_GetModuleState(type);
        return sqlreg_raise(ms, &dberr);
    }
    if (!f) {
        PyErr_Format(PyExc_OSError, "feast_sqlreg front: %s", err);
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    FrontObject *self = (FrontObject *)alloc(type, 0);
    if (!self) {
        Py_BEGIN_ALLOW_THREADS
            front_stop(f);
        Py_END_ALLOW_THREADS
        if (borrowed) sqlreg_store_release(store_obj);
        return NULL;
    }
    self->f = f;
    self->store = borrowed ? store_obj : NULL;
    return (PyObject *)self;
}

static void stop(FrontObject *self) {
    front *f = self->f;
    self->f = NULL;
    if (f) {
        Py_BEGIN_ALLOW_THREADS
            front_stop(f);
        Py_END_ALLOW_THREADS
    }
    /* After the workers are gone: the store may close now. */
    PyObject *store_obj = self->store;
    self->store = NULL;
    if (store_obj) sqlreg_store_release(store_obj);
}

static void Front_dealloc(FrontObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    stop(self);
    freefunc free_slot = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_slot(self);
    Py_DECREF(tp);
}

static front *live(FrontObject *self) {
    if (!self->f) PyErr_SetString(PyExc_ValueError, "the front is stopped");
    return self->f;
}

static PyObject *Front_set_answers(FrontObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"entries", "keep_decisions", NULL};
    PyObject *entries;
    int keep = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:set_answers", kwlist, &entries, &keep))
        return NULL;
    front *f = live(self);
    if (!f) return NULL;
    if (entries == Py_None) {
        if (keep) {
            PyErr_SetString(PyExc_ValueError, "set_answers(None) forgets every decision");
            return NULL;
        }
        front_set_answers(f, NULL);
        Py_RETURN_NONE;
    }
    PyObject *seq = PySequence_Fast(entries, "set_answers() takes a list of "
                                             "(method, project, name, message) tuples or None");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Size(seq);
    front_answers *a = n < 0 ? NULL : front_answers_new((size_t)n);
    if (!a) {
        Py_DECREF(seq);
        return n < 0 ? NULL : PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(seq, i);
        int method;
        const char *project, *name;
        Py_ssize_t pn, nn;
        const char *msg;
        Py_ssize_t mn;
        int ok = item &&
                 PyArg_ParseTuple(item, "is#s#y#", &method, &project, &pn, &name, &nn, &msg, &mn);
        Py_XDECREF(item);
        if (!ok) {
            front_answers_free(a);
            Py_DECREF(seq);
            return NULL;
        }
        if (front_answers_add(a, method, project, (size_t)pn, name, (size_t)nn, msg, (size_t)mn) !=
            0) {
            front_answers_free(a);
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
    }
    Py_DECREF(seq);
    if (keep)
        front_replace_answers(f, a);
    else
        front_set_answers(f, a);
    Py_RETURN_NONE;
}

static PyObject *Front_set_auth(FrontObject *self, PyObject *on) {
    front *f = live(self);
    int truth = f ? PyObject_IsTrue(on) : -1;
    if (truth < 0) return NULL;
    front_set_auth(f, truth);
    Py_RETURN_NONE;
}

static PyObject *Front_generation(FrontObject *self, PyObject *noargs) {
    (void)noargs;
    front *f = live(self);
    return f ? PyLong_FromUnsignedLongLong((unsigned long long)front_generation(f)) : NULL;
}

static PyObject *Front_learn(FrontObject *self, PyObject *args) {
    front *f = live(self);
    if (!f) return NULL;
    unsigned long long generation;
    const char *auth;
    Py_ssize_t an;
    double until;
    PyObject *entries;
    if (!PyArg_ParseTuple(args, "Ks#dO:learn", &generation, &auth, &an, &until, &entries))
        return NULL;
    PyObject *seq = PySequence_Fast(entries, "learn: entries is a list of "
                                             "(method, project, name, status, message) tuples");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Size(seq), got = 0;
    front_decision *d = n < 0 ? NULL : PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(*d));
    /* The entries, held while their strings are borrowed. */
    PyObject **items = n < 0 ? NULL : PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(PyObject *));
    int rv = -2;
    if (!d || !items) {
        if (n >= 0) PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[got++] = PySequence_GetItem(seq, i);
        Py_ssize_t pn, nn, mn;
        if (!item || !PyTuple_Check(item) ||
            !PyArg_ParseTuple(item, "is#s#is#:learn", &d[i].method, &d[i].project, &pn,
                              &d[i].name, &nn, &d[i].status, &d[i].message, &mn)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "learn: entries[%zd] is not a tuple", i);
            goto fail;
        }
        if (d[i].method < 0 || d[i].status < 0 || d[i].status > 16) {
            PyErr_Format(PyExc_ValueError,
                         "learn: entries[%zd]: method %d or gRPC status %d out of range", i,
                         d[i].method, d[i].status);
            goto fail;
        }
        d[i].pn = (size_t)pn, d[i].nn = (size_t)nn, d[i].mn = (size_t)mn;
    }
    /* The strings are the tuples' own; the front copies them. */
    rv = front_learn(f, (uint64_t)generation, auth, (size_t)an, until, d, (size_t)n);
fail:
    for (Py_ssize_t i = 0; i < got; i++)
        Py_XDECREF(items[i]);
    PyMem_Free(items);
    PyMem_Free(d);
    Py_DECREF(seq);
    if (rv == -2) return NULL;
    if (rv < 0) return PyErr_NoMemory();
    return PyBool_FromLong(rv);
}

static PyObject *Front_stats(FrontObject *self, PyObject *noargs) {
    (void)noargs;
    front *f = live(self);
    if (!f) return NULL;
    front_stats s;
    front_stats_get(f, &s);
    return Py_BuildValue(
        "{sKsKsKsKsKsKsLsKsKsKsK}", "answered", (unsigned long long)s.answered, "denied",
        (unsigned long long)s.denied, "decisions", (unsigned long long)s.decisions, "fetched",
        (unsigned long long)s.fetched, "relayed", (unsigned long long)s.relayed, "connections",
        (unsigned long long)s.connections, "held", (long long)s.held, "tls_handshakes",
        (unsigned long long)s.tls_handshakes, "tls_handshake_failures",
        (unsigned long long)s.tls_handshake_failures, "tls_reloads",
        (unsigned long long)s.tls_reloads, "tls_reload_failures",
        (unsigned long long)s.tls_reload_failures);
}

static PyObject *Front_stop(FrontObject *self, PyObject *noargs) {
    (void)noargs;
    stop(self);
    Py_RETURN_NONE;
}

static PyObject *Front_port(FrontObject *self, void *closure) {
    (void)closure;
    front *f = live(self);
    return f ? PyLong_FromLong(front_port(f)) : NULL;
}

static PyMethodDef Front_methods[] = {
    {"set_answers", (PyCFunction)(void (*)(void))Front_set_answers, METH_VARARGS | METH_KEYWORDS,
     "set_answers(entries, keep_decisions=False) -> None: the cached answers, [(method "
     "index, project, name, serialized response)], swapped in whole; None answers nothing. "
     "The learned decisions are forgotten, unless keep_decisions (for a new table whose "
     "changes decide nothing: the same permissions, the same objects' classes)."},
    {"stats", (PyCFunction)Front_stats, METH_NOARGS,
     "stats() -> {answered, denied, decisions, fetched, relayed, connections, held, "
     "tls_handshakes, tls_handshake_failures, tls_reloads, tls_reload_failures}: calls so far "
     "(denied: refused by a learned decision), decisions learned now; bytes waiting in the "
     "front's buffers now; TLS handshakes done and failed, certificate reloads done and "
     "failed."},
    {"set_auth", (PyCFunction)Front_set_auth, METH_O,
     "set_auth(on) -> None: with auth on, cached Gets are answered only for a learned "
     "decision (see learn); everything else is relayed."},
    {"generation", (PyCFunction)Front_generation, METH_NOARGS,
     "generation() -> int: the number of answer tables so far; read it before deciding."},
    {"learn", (PyCFunction)Front_learn, METH_VARARGS,
     "learn(generation, authorization, until, entries) -> bool: decisions for calls with "
     "that authorization header value, until Unix time until; entries: [(method, project, "
     "name, status, message)]: status 0 answers such calls, another gRPC status refuses "
     "them with message. False when dropped (the table changed since generation, or "
     "until is past)."},
    {"stop", (PyCFunction)Front_stop, METH_NOARGS, "stop() -> None: closes every connection."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Front_getset[] = {
    {"port", (getter)Front_port, NULL, "the port the front listens on", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Front_slots[] = {
    {Py_tp_new, Front_new},
    {Py_tp_dealloc, Front_dealloc},
    {Py_tp_methods, Front_methods},
    {Py_tp_getset, Front_getset},
    {Py_tp_doc, "Front(port, backend_port, methods): the native gRPC front of a registry "
                "server (see feast_sqlreg.server)."},
    {0, NULL},
};

static PyType_Spec Front_spec = {
    .name = "feast_sqlreg._sqlregistry.Front",
    .basicsize = sizeof(FrontObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Front_slots,
};

int front_type_setup(PyObject *module) {
    PyObject *type = PyType_FromModuleAndSpec(module, &Front_spec, NULL);
    if (!type) return -1;
    int rv = PyModule_AddObject(module, "Front", type);
    if (rv != 0) Py_DECREF(type);
    return rv;
}
