/* store_type.c - the Store type: Python arguments in, store_* calls (src/store/)
 * with the GIL released, Python objects and exceptions out.
 *
 * Every method follows one shape: parse arguments (borrowed pointers into
 * the argument objects, which stay alive for the call), release the GIL
 * around exactly one store_* call, then build the result or raise from the
 * plain-C db_err with the GIL held again.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "python/module.h"
#include "store/store.h"

typedef struct {
    PyObject_HEAD store *st; /* NULL once closed */
    /* Calls running with the GIL released; close() waits for none of them:
     * the last one to finish closes the store (see store_done). */
    int inflight;
    store *closing;
    char desc[512];
} StoreObject;

static module_state *state_of(PyObject *self) {
    return (module_state *)PyType_GetModuleState(Py_TYPE(self));
}

static store *live(StoreObject *self) {
    if (!self->st) {
        db_err err;
        db_err_set(&err, DB_ERR_INTERFACE, 0, NULL, "the registry store is closed");
        sqlreg_raise(state_of((PyObject *)self), &err);
    }
    return self->st;
}

/* Closes a store with the GIL released: closing sockets can block. */
static void close_store(store *st) {
    Py_BEGIN_ALLOW_THREADS
        store_close(st);
    Py_END_ALLOW_THREADS
}

/* Called with the GIL after a call that ran without it: a close() that came
 * meanwhile left the store to the last call still using it. */
static void store_done(StoreObject *self) {
    if (--self->inflight == 0 && self->closing) {
        store *st = self->closing;
        self->closing = NULL;
        close_store(st);
    }
}

store *sqlreg_store_borrow(module_state *ms, PyObject *obj) {
    if (!PyObject_TypeCheck(obj, ms->StoreType)) {
        PyErr_SetString(PyExc_TypeError, "store must be a feast_sqlreg Store");
        return NULL;
    }
    StoreObject *self = (StoreObject *)obj;
    store *st = live(self);
    if (!st) return NULL;
    self->inflight++;
    Py_INCREF(obj);
    return st;
}

void sqlreg_store_release(PyObject *obj) {
    store_done((StoreObject *)obj);
    Py_DECREF(obj);
}

/* Runs one store call with the GIL released; on failure raises from err
 * (a local db_err of the caller) and returns NULL from the method. The
 * store is checked again first: parsing arguments can run Python code, and
 * so another thread's close(). */
#define CALL_STORE(self, expr)                                                                     \
    do {                                                                                           \
        if ((self)->st != st && !live(self)) return NULL;                                          \
        (self)->inflight++;                                                                        \
        PyThreadState *ts_ = PyEval_SaveThread();                                                  \
        int rv_ = (expr);                                                                          \
        PyEval_RestoreThread(ts_);                                                                 \
        store_done(self);                                                                          \
        if (rv_ != 0) return sqlreg_raise(state_of((PyObject *)(self)), &err);                     \
    } while (0)

static int check_kind(int kind) {
    if (kind < 0 || kind >= OBJ_KINDS) {
        PyErr_Format(PyExc_ValueError, "unknown object kind %d", kind);
        return -1;
    }
    return 0;
}

static PyObject *value_to_py(db_value v) {
    switch (v.type) {
    case DB_INT:
        return PyLong_FromLongLong(v.i);
    case DB_TEXT:
        return PyUnicode_DecodeUTF8(v.p, (Py_ssize_t)v.n, "replace");
    case DB_BLOB:
        return PyBytes_FromStringAndSize(v.p, (Py_ssize_t)v.n);
    default:
        Py_RETURN_NONE;
    }
}

/* A list of values (take == 1) or of tuples of the first `take` columns
 * (take <= 0: all of them); frees rs. */
static PyObject *columns_to_py(rowset *rs, int take) {
    if (take <= 0 || take > rs->ncols) take = rs->ncols;
    PyObject *list = PyList_New((Py_ssize_t)rs->nrows);
    for (size_t r = 0; list && r < rs->nrows; r++) {
        PyObject *item;
        if (take == 1) {
            item = value_to_py(rowset_get(rs, r, 0));
        } else {
            item = PyTuple_New(take);
            for (int c = 0; item && c < take; c++) {
                PyObject *v = value_to_py(rowset_get(rs, r, c));
                /* PyTuple_SetItem steals v, also when it fails. */
                if (!v || PyTuple_SetItem(item, c, v) < 0) Py_CLEAR(item);
            }
        }
        if (!item || PyList_SetItem(list, (Py_ssize_t)r, item) < 0) Py_CLEAR(list);
    }
    rowset_free(rs);
    return list;
}

/* A list of values (one column) or of tuples; frees rs. */
static PyObject *rows_to_py(rowset *rs) {
    return columns_to_py(rs, 0);
}

/* (rows, bad): rows of the first `take` columns of rs, and the bad rows
 * left out, as (table, project, name, reason) tuples; frees both. */
static PyObject *rows_and_bad_to_py(rowset *rs, int take, rowset *bad) {
    PyObject *rows = columns_to_py(rs, take);
    PyObject *b = rows_to_py(bad);
    if (!rows || !b) {
        Py_XDECREF(rows);
        Py_XDECREF(b);
        return NULL;
    }
    return Py_BuildValue("(NN)", rows, b);
}

/* The first row's first `take` columns (a value or a tuple), or None;
 * frees rs. */
static PyObject *first_columns_to_py(rowset *rs, int take) {
    if (rs->nrows == 0) {
        rowset_free(rs);
        Py_RETURN_NONE;
    }
    rs->nrows = 1;
    PyObject *list = columns_to_py(rs, take);
    if (!list) return NULL;
    PyObject *item = Py_NewRef(PyList_GetItem(list, 0)); /* nrows is 1 here */
    Py_DECREF(list);
    return item;
}

/* The first row (value or tuple), or None; frees rs. */
static PyObject *first_row_to_py(rowset *rs) {
    return first_columns_to_py(rs, 0);
}

/* ---- construction -------------------------------------------------------- */

static PyObject *Store_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path",          "read_path",    "pool_size",
                             "max_overflow",  "pool_timeout", "pool_recycle",
                             "pool_pre_ping", "replica_wait", NULL};
    const char *path, *read_path = NULL;
    pool_opts opts = {5, 10, 30.0, -1.0, 1};
    double replica_wait = STORE_REPLICA_WAIT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|ziiddpd:Store", kwlist, &path, &read_path,
                                     &opts.size, &opts.max_overflow, &opts.timeout, &opts.recycle,
                                     &opts.pre_ping, &replica_wait))
        return NULL;
    /* SQLAlchemy's meanings: pool_size 0 and max_overflow -1 mean "no
     * limit"; anything below those, or a timeout that is not a finite
     * number of seconds, is a configuration mistake. */
    if (opts.size < 0 || opts.max_overflow < -1 || !isfinite(opts.timeout) || opts.timeout < 0 ||
        !isfinite(replica_wait)) {
        module_state *ms = (module_state *)PyType_GetModuleState(type);
        db_err err;
        db_err_set(&err, DB_ERR_CONFIG, 0, NULL,
                   "pool options out of range: pool_size %d (>= 0), max_overflow %d (>= -1), "
                   "pool_timeout %g (finite, >= 0 seconds), replica_wait %g (finite seconds)",
                   opts.size, opts.max_overflow, opts.timeout, replica_wait);
        return sqlreg_raise(ms, &err);
    }
    if (opts.size == 0) opts.size = POOL_NO_LIMIT;
    if (opts.max_overflow == -1) opts.max_overflow = POOL_NO_LIMIT;
    if (sqlreg_load_backend(path) != 0 || sqlreg_load_backend(read_path) != 0) return NULL;
    /* Slots through PyType_GetSlot: the stable ABI hides PyTypeObject. */
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    StoreObject *self = (StoreObject *)alloc(type, 0);
    if (!self) return NULL;
    db_err err;
    db_err_clear(&err);
    self->st = store_open(path, read_path, &opts, &err);
    if (!self->st) {
        module_state *ms = (module_state *)PyType_GetModuleState(type);
        Py_DECREF(self);
        return sqlreg_raise(ms, &err);
    }
    store_set_replica_wait(self->st, replica_wait);
    store_describe(self->st, 0, self->desc, sizeof(self->desc));
    return (PyObject *)self;
}

static void Store_dealloc(StoreObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    /* No call can be in flight: each holds a reference to self. */
    if (self->st) close_store(self->st);
    self->st = NULL;
    freefunc free_slot = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_slot(self);
    Py_DECREF(tp);
}

static PyObject *Store_close(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = self->st;
    self->st = NULL;
    if (st && self->inflight == 0)
        close_store(st);
    else if (st)
        self->closing = st;
    Py_RETURN_NONE;
}

static PyObject *Store_enter(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    if (!live(self)) return NULL;
    return Py_NewRef(self);
}

static PyObject *Store_exit(StoreObject *self, PyObject *args) {
    (void)args;
    return Store_close(self, NULL);
}

static PyObject *Store_release_idle(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    if (!st) return NULL;
    CALL_STORE(self, (store_release_idle(st), 0));
    Py_RETURN_NONE;
}

static PyObject *Store_closed(StoreObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->st == NULL);
}

static PyObject *Store_repr(StoreObject *self) {
    return PyUnicode_FromFormat("<feast_sqlreg Store %s%s>", self->desc,
                                self->st ? "" : " (closed)");
}

static PyObject *Store_dialect(StoreObject *self, void *closure) {
    (void)closure;
    store *st = live(self);
    if (!st) return NULL;
    switch (store_dialect(st)) {
    case DB_POSTGRES:
        return PyUnicode_FromString("postgresql");
    case DB_MYSQL:
        return PyUnicode_FromString("mysql");
    default:
        return PyUnicode_FromString("sqlite");
    }
}

static PyObject *Store_url(StoreObject *self, void *closure) {
    (void)closure;
    return PyUnicode_FromString(self->desc);
}

/* ---- schema -------------------------------------------------------------- */

static PyObject *Store_create_schema(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    if (!st) return NULL;
    CALL_STORE(self, store_create_schema(st, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_missing_tables(StoreObject *self, PyObject *args) {
    int read = 0;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "|p:missing_tables", &read)) return NULL;
    CALL_STORE(self, store_missing_tables(st, read, &rs, &err));
    return rows_to_py(&rs);
}

static PyObject *Store_narrow_blob_columns(StoreObject *self, PyObject *args) {
    int read = 0;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "|p:narrow_blob_columns", &read)) return NULL;
    CALL_STORE(self, store_narrow_blob_columns(st, read, &rs, &err));
    return rows_to_py(&rs);
}

/* ---- change log ---------------------------------------------------------- */

static PyObject *Store_install_change_log(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    if (!st) return NULL;
    CALL_STORE(self, store_install_change_log(st, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_changes(StoreObject *self, PyObject *args) {
    long long after, limit = 10000;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "L|L:changes", &after, &limit)) return NULL;
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "changes: limit must be at least 1");
        return NULL;
    }
    CALL_STORE(self, store_changes(st, after, limit, &rs, &err));
    return rows_to_py(&rs);
}

/* The one number a one-row, one-column result holds (0 for none or NULL),
 * as a Python int; frees rs. */
static PyObject *number_of(rowset *rs) {
    db_value v = rs->nrows ? rowset_get(rs, 0, 0) : db_null();
    long long n = v.type == DB_INT ? (long long)v.i : 0;
    if (v.type == DB_TEXT || v.type == DB_BLOB) /* MySQL's COALESCE(MAX()) may come as text */
        n = strtoll(v.n ? (const char *)v.p : "0", NULL, 10);
    rowset_free(rs);
    return PyLong_FromLongLong(n);
}

static PyObject *Store_changes_head(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st) return NULL;
    CALL_STORE(self, store_changes_head(st, &rs, &err));
    return number_of(&rs);
}

static PyObject *Store_changes_count(StoreObject *self, PyObject *args) {
    long long after, upto;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "LL:changes_count", &after, &upto)) return NULL;
    CALL_STORE(self, store_changes_count(st, after, upto, &rs, &err));
    return number_of(&rs);
}

static PyObject *Store_replica_stats(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    if (!st) return NULL;
    store_replica_stats s;
    store_replica_stats_get(st, &s);
    return Py_BuildValue("{sLsLsKsK}", "written", (long long)s.written, "replayed",
                         (long long)s.replayed, "waits", (unsigned long long)s.waits, "fallbacks",
                         (unsigned long long)s.fallbacks);
}

/* A pool's pool_stats as a dict (a new reference, NULL with an error set). */
static PyObject *pool_stats_to_py(const pool_stats *p) {
    return Py_BuildValue("{sisisisisKsKsKsKsd}", "capacity", p->capacity, "open", p->open,
                         "in_use", p->in_use, "idle", p->idle, "connects",
                         (unsigned long long)p->connects, "connect_failures",
                         (unsigned long long)p->connect_failures, "waits",
                         (unsigned long long)p->waits, "timeouts", (unsigned long long)p->timeouts,
                         "wait_seconds", p->wait_seconds);
}

static PyObject *Store_stats(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    store_stats s;
    if (!st) return NULL;
    /* Released: the pools' locks are taken (never held across I/O, but
     * held by a checkout in another thread for a moment). */
    CALL_STORE(self, (store_stats_get(st, &s), 0));
    PyObject *wpool = pool_stats_to_py(&s.write_pool);
    PyObject *rpool = s.has_read_pool ? pool_stats_to_py(&s.read_pool) : Py_NewRef(Py_None);
    if (!wpool || !rpool) {
        Py_XDECREF(wpool);
        Py_XDECREF(rpool);
        return NULL;
    }
    return Py_BuildValue("{s{sKsKsKsK}sNsN}", "retries", "conflict",
                         (unsigned long long)s.conflict_retries, "stale_plan",
                         (unsigned long long)s.replans, "reconnect",
                         (unsigned long long)s.reconnects, "failover",
                         (unsigned long long)s.failovers, "pool", wpool, "read_pool", rpool);
}

static PyObject *Store_prune_changes(StoreObject *self, PyObject *args) {
    long long before;
    int64_t deleted = 0;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "L:prune_changes", &before)) return NULL;
    CALL_STORE(self, store_prune_changes(st, before, &deleted, &err));
    return PyLong_FromLongLong(deleted);
}

/* ---- objects ------------------------------------------------------------- */

static PyObject *Store_get(StoreObject *self, PyObject *args) {
    int kind, primary = 0;
    sref project, name;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st ||
        !PyArg_ParseTuple(args, "is#s#|p:get", &kind, &project.p, &project.n, &name.p, &name.n,
                          &primary) ||
        check_kind(kind))
        return NULL;
    CALL_STORE(self, store_get(st, (obj_kind)kind, project, name, primary, &rs, &err));
    return first_columns_to_py(&rs, 1); /* the proto */
}

static PyObject *Store_list(StoreObject *self, PyObject *args) {
    int kind;
    sref project;
    long long since = -1;
    int primary = 0;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st ||
        !PyArg_ParseTuple(args, "is#|Lp:list", &kind, &project.p, &project.n, &since, &primary) ||
        check_kind(kind))
        return NULL;
    rowset bad;
    CALL_STORE(self, store_list(st, (obj_kind)kind, project, since, primary, &rs, &bad, &err));
    return rows_and_bad_to_py(&rs, 2, &bad); /* (name, proto) */
}

static PyObject *Store_list_projects(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st) return NULL;
    rowset bad;
    CALL_STORE(self, store_list_projects(st, &rs, &bad, &err));
    return rows_and_bad_to_py(&rs, 0, &bad); /* (name, proto) */
}

static PyObject *Store_missing_change_log(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st) return NULL;
    CALL_STORE(self, store_missing_change_log(st, &rs, &err));
    return rows_to_py(&rs);
}

static PyObject *Store_inspect(StoreObject *self, PyObject *args) {
    const char *sql;
    int primary = 0;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "s|p:inspect", &sql, &primary)) return NULL;
    CALL_STORE(self, store_inspect(st, primary, sql, &rs, &err));
    return rows_to_py(&rs);
}

static PyObject *Store_apply(StoreObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kind",
                             "project",
                             "name",
                             "proto",
                             "now",
                             "project_proto",
                             "project_uuid",
                             "touch_metadata",
                             "version_number",
                             "version_type",
                             "version_id",
                             "expect",
                             "old_version_id",
                             "versions_only",
                             NULL};
    int kind, inserted = 0, raced = 0;
    sref project, name, proto;
    long long now, version_number = 0;
    PyObject *expect = NULL;
    write_ctx w = {0};
    w.touch_metadata = 1;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTupleAndKeywords(
            args, kwds, "is#s#y#L|z#z#pLz#z#Oz#p:apply", kwlist, &kind, &project.p, &project.n,
            &name.p, &name.n, &proto.p, &proto.n, &now, &w.project_proto.p, &w.project_proto.n,
            &w.project_uuid.p, &w.project_uuid.n, &w.touch_metadata, &version_number,
            &w.version_type.p, &w.version_type.n, &w.version_id.p, &w.version_id.n, &expect,
            &w.old_version_id.p, &w.old_version_id.n, &w.versions_only) ||
        check_kind(kind))
        return NULL;
    if (w.version_type.p && !w.version_id.p) {
        PyErr_SetString(PyExc_TypeError, "apply: version_type needs version_id");
        return NULL;
    }
    if (expect) {
        w.expect_set = 1;
        if (expect != Py_None) {
            char *p;
            Py_ssize_t n;
            if (!PyBytes_Check(expect)) {
                PyErr_SetString(PyExc_TypeError, "apply: expect must be bytes or None");
                return NULL;
            }
            PyBytes_AsStringAndSize(expect, &p, &n);
            w.expect.p = p;
            w.expect.n = (size_t)n;
        }
    }
    if ((w.old_version_id.p || w.versions_only) && !(w.expect_set && w.version_type.p)) {
        PyErr_SetString(PyExc_TypeError,
                        "apply: old_version_id and versions_only need expect and version_type");
        return NULL;
    }
    w.now = now;
    w.version_number = version_number;
    CALL_STORE(self,
               store_apply(st, (obj_kind)kind, project, name, proto, &w, &inserted, &raced, &err));
    if (raced) Py_RETURN_NONE;
    return PyBool_FromLong(inserted);
}

/* An optional bytes-or-str argument (None: absent) as an sref. */
static int opt_sref(PyObject *o, sref *out, const char *what) {
    out->p = NULL;
    out->n = 0;
    if (o == Py_None) return 0;
    Py_ssize_t n;
    const char *p;
    if (PyBytes_Check(o)) {
        char *bp;
        if (PyBytes_AsStringAndSize(o, &bp, &n) != 0) return -1;
        p = bp;
    } else if (PyUnicode_Check(o)) {
        p = PyUnicode_AsUTF8AndSize(o, &n);
        if (!p) return -1;
    } else {
        PyErr_Format(PyExc_TypeError, "apply_batch: %s must be bytes, str or None", what);
        return -1;
    }
    out->p = p;
    out->n = (size_t)n;
    return 0;
}

static PyObject *Store_apply_batch(StoreObject *self, PyObject *args) {
    PyObject *list;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "O!:apply_batch", &PyList_Type, &list)) return NULL;
    Py_ssize_t n = PyList_Size(list);
    if (n < 0) return NULL;
    store_batch_item *items = PyMem_Calloc((size_t)(n ? n : 1), sizeof(*items));
    if (!items) return PyErr_NoMemory();
    /* The list keeps every item (and its bytes) alive while the GIL is
     * released; nobody else holds it. */
    Py_INCREF(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GetItem(list, i);
        store_batch_item *it = &items[i];
        int kind, touch, versions_only;
        long long now, version_number;
        PyObject *project_proto, *project_uuid, *version_type, *version_id, *expect, *old_id;
        if (!PyTuple_Check(t) ||
            !PyArg_ParseTuple(t, "is#s#y#LOOpLOOOOp:apply_batch item", &kind, &it->project.p,
                              &it->project.n, &it->name.p, &it->name.n, &it->proto.p,
                              &it->proto.n, &now, &project_proto, &project_uuid, &touch,
                              &version_number, &version_type, &version_id, &expect, &old_id,
                              &versions_only) ||
            check_kind(kind) || opt_sref(project_proto, &it->w.project_proto, "project_proto") ||
            opt_sref(project_uuid, &it->w.project_uuid, "project_uuid") ||
            opt_sref(version_type, &it->w.version_type, "version_type") ||
            opt_sref(version_id, &it->w.version_id, "version_id") ||
            opt_sref(expect, &it->w.expect, "expect") ||
            opt_sref(old_id, &it->w.old_version_id, "old_version_id")) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "apply_batch: items must be tuples");
            PyMem_Free(items);
            Py_DECREF(list);
            return NULL;
        }
        if (it->w.version_type.p && !it->w.version_id.p) {
            PyErr_SetString(PyExc_TypeError, "apply_batch: version_type needs version_id");
            PyMem_Free(items);
            Py_DECREF(list);
            return NULL;
        }
        it->k = (obj_kind)kind;
        it->w.now = now;
        it->w.touch_metadata = touch;
        it->w.version_number = version_number;
        it->w.expect_set = 1;
        it->w.versions_only = versions_only;
    }
    int raced = 0;
    if ((self)->st != st && !live(self)) {
        PyMem_Free(items);
        Py_DECREF(list);
        return NULL;
    }
    self->inflight++;
    PyThreadState *ts = PyEval_SaveThread();
    int rv = store_apply_batch(st, items, (size_t)n, &raced, &err);
    PyEval_RestoreThread(ts);
    store_done(self);
    PyMem_Free(items);
    Py_DECREF(list);
    if (rv != 0) return sqlreg_raise(state_of((PyObject *)self), &err);
    if (raced) Py_RETURN_NONE;
    Py_RETURN_TRUE;
}

static PyObject *Store_read_for_apply(StoreObject *self, PyObject *args) {
    int kind, versions = 0;
    sref project, name;
    PyObject *others_arg;
    store *st = live(self);
    db_err err;
    rowset rs;
    obj_kind others[3];
    int taken = -1, has_project = 0;
    int64_t next_version = 0;
    if (!st ||
        !PyArg_ParseTuple(args, "is#s#O|p:read_for_apply", &kind, &project.p, &project.n, &name.p,
                          &name.n, &others_arg, &versions) ||
        check_kind(kind))
        return NULL;
    Py_ssize_t nothers = PySequence_Size(others_arg);
    if (nothers < 0) return NULL;
    if (nothers > 3) {
        PyErr_SetString(PyExc_ValueError, "read_for_apply: at most 3 other kinds");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nothers; i++) {
        PyObject *item = PySequence_GetItem(others_arg, i);
        if (!item) return NULL;
        long o = PyLong_AsLong(item);
        Py_DECREF(item);
        if ((o == -1 && PyErr_Occurred()) || check_kind((int)o)) return NULL;
        others[i] = (obj_kind)o;
    }
    CALL_STORE(self, store_read_for_apply(st, (obj_kind)kind, project, name, others, (int)nothers,
                                          versions, &rs, &taken, &next_version, &has_project,
                                          &err));
    PyObject *stored = first_columns_to_py(&rs, 1);
    if (!stored) return NULL;
    PyObject *taken_py = taken < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(others[taken]);
    return Py_BuildValue("(NNLi)", stored, taken_py, (long long)next_version, has_project);
}

static PyObject *Store_delete(StoreObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kind", "project", "name", "now", "touch_metadata", NULL};
    int kind;
    sref project, name;
    long long now;
    int64_t deleted = 0;
    write_ctx w = {0};
    w.touch_metadata = 1;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "is#s#L|p:delete", kwlist, &kind, &project.p,
                                     &project.n, &name.p, &name.n, &now, &w.touch_metadata) ||
        check_kind(kind))
        return NULL;
    w.now = now;
    CALL_STORE(self, store_delete(st, (obj_kind)kind, project, name, &w, &deleted, &err));
    return PyLong_FromLongLong(deleted);
}

static PyObject *Store_delete_feature_view(StoreObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"project", "name", "now", "touch_metadata", NULL};
    sref project, name;
    long long now;
    int64_t deleted = 0;
    write_ctx w = {0};
    w.touch_metadata = 1;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "s#s#L|p:delete_feature_view", kwlist, &project.p,
                                     &project.n, &name.p, &name.n, &now, &w.touch_metadata))
        return NULL;
    w.now = now;
    CALL_STORE(self, store_delete_feature_view(st, project, name, &w, &deleted, &err));
    return PyLong_FromLongLong(deleted);
}

static PyObject *Store_apply_materialization(StoreObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kind", "project", "name",           "start",
                             "end",  "now",     "touch_metadata", NULL};
    int kind, found = 0;
    sref project, name;
    long long s_sec, e_sec, n_sec;
    int s_ns, e_ns, n_ns;
    write_ctx w = {0};
    w.touch_metadata = 1;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "is#s#(Li)(Li)(Li)|p:apply_materialization",
                                     kwlist, &kind, &project.p, &project.n, &name.p, &name.n,
                                     &s_sec, &s_ns, &e_sec, &e_ns, &n_sec, &n_ns,
                                     &w.touch_metadata) ||
        check_kind(kind))
        return NULL;
    pb_ts start = {s_sec, s_ns}, end = {e_sec, e_ns}, now = {n_sec, n_ns};
    w.now = n_sec;
    CALL_STORE(self, store_apply_materialization(st, (obj_kind)kind, project, name, start, end, now,
                                                 &w, &found, &err));
    return PyBool_FromLong(found);
}

static PyObject *Store_set_user_metadata(StoreObject *self, PyObject *args) {
    int kind, found = 0;
    sref project, name, data = {NULL, 0};
    long long now;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTuple(args, "is#s#z#L:set_user_metadata", &kind, &project.p, &project.n,
                          &name.p, &name.n, &data.p, &data.n, &now) ||
        check_kind(kind))
        return NULL;
    const sref *dp = data.p ? &data : NULL;
    CALL_STORE(self,
               store_set_user_metadata(st, (obj_kind)kind, project, name, dp, now, &found, &err));
    return PyBool_FromLong(found);
}

static PyObject *Store_get_user_metadata(StoreObject *self, PyObject *args) {
    int kind;
    sref project, name;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st ||
        !PyArg_ParseTuple(args, "is#s#:get_user_metadata", &kind, &project.p, &project.n, &name.p,
                          &name.n) ||
        check_kind(kind))
        return NULL;
    CALL_STORE(self, store_get_user_metadata(st, (obj_kind)kind, project, name, &rs, &err));
    int found = rs.nrows > 0;
    PyObject *data = first_row_to_py(&rs);
    if (!data) return NULL;
    return Py_BuildValue("(NN)", PyBool_FromLong(found), data);
}

static PyObject *Store_delete_project(StoreObject *self, PyObject *args) {
    sref project;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "s#:delete_project", &project.p, &project.n)) return NULL;
    CALL_STORE(self, store_delete_project(st, project, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_teardown(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    if (!st) return NULL;
    CALL_STORE(self, store_teardown(st, &err));
    Py_RETURN_NONE;
}

/* ---- feast_metadata ------------------------------------------------------ */

static PyObject *Store_meta_get(StoreObject *self, PyObject *args) {
    sref project, key;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "s#s#:meta_get", &project.p, &project.n, &key.p, &key.n))
        return NULL;
    CALL_STORE(self, store_meta_get(st, project, key, &rs, &err));
    return first_row_to_py(&rs);
}

static PyObject *Store_meta_list(StoreObject *self, PyObject *args) {
    sref project;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "s#:meta_list", &project.p, &project.n)) return NULL;
    CALL_STORE(self, store_meta_list(st, project, &rs, &err));
    return rows_to_py(&rs);
}

static PyObject *Store_meta_by_key(StoreObject *self, PyObject *args) {
    sref key;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "s#:meta_by_key", &key.p, &key.n)) return NULL;
    CALL_STORE(self, store_meta_by_key(st, key, &rs, &err));
    return rows_to_py(&rs);
}

static PyObject *Store_meta_set(StoreObject *self, PyObject *args) {
    sref project, key, value;
    long long now;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "s#s#s#L:meta_set", &project.p, &project.n, &key.p, &key.n,
                                 &value.p, &value.n, &now))
        return NULL;
    CALL_STORE(self, store_meta_set(st, project, key, value, now, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_meta_init(StoreObject *self, PyObject *args) {
    sref project, key, value;
    long long now;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "s#s#s#L:meta_init", &project.p, &project.n, &key.p, &key.n,
                                 &value.p, &value.n, &now))
        return NULL;
    CALL_STORE(self, store_meta_init(st, project, key, value, now, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_meta_delete_project(StoreObject *self, PyObject *args) {
    sref project;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "s#:meta_delete_project", &project.p, &project.n))
        return NULL;
    CALL_STORE(self, store_meta_delete_project(st, project, &err));
    Py_RETURN_NONE;
}

/* ---- version history ----------------------------------------------------- */

static PyObject *Store_version_next(StoreObject *self, PyObject *args) {
    sref project, name;
    int64_t next = 0;
    store *st = live(self);
    db_err err;
    if (!st ||
        !PyArg_ParseTuple(args, "s#s#:version_next", &project.p, &project.n, &name.p, &name.n))
        return NULL;
    CALL_STORE(self, store_version_next(st, project, name, &next, &err));
    return PyLong_FromLongLong(next);
}

static PyObject *Store_version_save(StoreObject *self, PyObject *args) {
    sref project, name, type, proto, vid;
    long long number, created;
    store *st = live(self);
    db_err err;
    if (!st || !PyArg_ParseTuple(args, "s#s#Ls#y#Ls#:version_save", &project.p, &project.n, &name.p,
                                 &name.n, &number, &type.p, &type.n, &proto.p, &proto.n, &created,
                                 &vid.p, &vid.n))
        return NULL;
    CALL_STORE(self,
               store_version_save(st, project, name, number, type, proto, created, vid, &err));
    Py_RETURN_NONE;
}

static PyObject *Store_version_get(StoreObject *self, PyObject *args) {
    sref project, name;
    long long number;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st || !PyArg_ParseTuple(args, "s#s#L:version_get", &project.p, &project.n, &name.p,
                                 &name.n, &number))
        return NULL;
    CALL_STORE(self, store_version_get(st, project, name, number, &rs, &err));
    return first_row_to_py(&rs);
}

static PyObject *Store_version_list(StoreObject *self, PyObject *args) {
    sref project, name;
    store *st = live(self);
    db_err err;
    rowset rs;
    if (!st ||
        !PyArg_ParseTuple(args, "s#s#:version_list", &project.p, &project.n, &name.p, &name.n))
        return NULL;
    CALL_STORE(self, store_version_list(st, project, name, &rs, &err));
    return rows_to_py(&rs);
}

/* ---- whole registry ------------------------------------------------------ */

static PyObject *Store_registry(StoreObject *self, PyObject *noargs) {
    (void)noargs;
    store *st = live(self);
    db_err err;
    buf out = {0};
    rowset bad;
    if (!st) return NULL;
    CALL_STORE(self, store_registry(st, &out, &bad, &err));
    PyObject *bytes =
        PyBytes_FromStringAndSize(out.p ? (const char *)out.p : "", (Py_ssize_t)out.n);
    buf_free(&out);
    PyObject *b = rows_to_py(&bad);
    if (!bytes || !b) {
        Py_XDECREF(bytes);
        Py_XDECREF(b);
        return NULL;
    }
    return Py_BuildValue("(NN)", bytes, b);
}

static PyMethodDef Store_methods[] = {
    {"create_schema", (PyCFunction)Store_create_schema, METH_NOARGS,
     "Create the registry tables and indexes that are missing."},
    {"missing_tables", (PyCFunction)Store_missing_tables, METH_VARARGS,
     "missing_tables(read=False) -> names of registry tables not in the database."},
    {"narrow_blob_columns", (PyCFunction)Store_narrow_blob_columns, METH_VARARGS,
     "narrow_blob_columns(read=False) -> [(table, column)]: proto columns of registry tables "
     "still typed MySQL BLOB (64 KB), on the write or read database."},
    {"install_change_log", (PyCFunction)Store_install_change_log, METH_NOARGS,
     "install_change_log(): creates feast_sqlreg_changes and the triggers that fill it."},
    {"changes", (PyCFunction)Store_changes, METH_VARARGS,
     "changes(after, limit=10000) -> [(id, table, project, name)], id > after, in id order."},
    {"changes_head", (PyCFunction)Store_changes_head, METH_NOARGS,
     "changes_head() -> the largest change log id (0 when empty)."},
    {"changes_count", (PyCFunction)Store_changes_count, METH_VARARGS,
     "changes_count(after, upto) -> how many change log rows have after < id <= upto."},
    {"replica_stats", (PyCFunction)Store_replica_stats, METH_NOARGS,
     "replica_stats() -> {written, replayed, waits, fallbacks}: read-your-writes on a replica "
     "read_path (log positions; reads that waited for the replica; reads that went to the "
     "primary instead)."},
    {"stats", (PyCFunction)Store_stats, METH_NOARGS,
     "stats() -> {retries: {conflict, stale_plan, reconnect}, pool: {...}, read_pool: {...} or "
     "None}: calls run again (writes retried after a deadlock, lock wait or busy database; "
     "calls re-run after a stale prepared plan; calls re-run on a pinged connection after an "
     "unpinged one was found closed), and each pool's capacity, open, in_use and idle "
     "connections now, connects and connect_failures, and its waits for a free connection "
     "(waits, timeouts, wait_seconds) so far. read_pool is None without a read_path."},
    {"prune_changes", (PyCFunction)Store_prune_changes, METH_VARARGS,
     "prune_changes(before) -> rows deleted: those changed before `before` (epoch seconds)."},
    {"get", (PyCFunction)Store_get, METH_VARARGS,
     "get(kind, project, name, primary=False) -> stored proto bytes or None; DataError "
     "naming the row when it is not a valid object."},
    {"list", (PyCFunction)Store_list, METH_VARARGS,
     "list(kind, project, since=-1, primary=False) -> ([(name, proto)], bad): bad rows are "
     "left out and listed as (table, project, name, reason); primary: from the write "
     "database, never a replica."},
    {"missing_change_log", (PyCFunction)Store_missing_change_log, METH_NOARGS,
     "missing_change_log() -> [names]: feast_sqlreg_changes and the change-log triggers "
     "missing on the write database."},
    {"inspect", (PyCFunction)Store_inspect, METH_VARARGS,
     "inspect(sql, primary=False) -> [row tuples]: one read-only statement with no parameters "
     "(catalog tables, server settings), for the doctor; on the write database with primary."},
    {"list_projects", (PyCFunction)Store_list_projects, METH_NOARGS,
     "list_projects() -> ([(name, proto)], bad)."},
    {"apply", (PyCFunction)(void (*)(void))Store_apply, METH_VARARGS | METH_KEYWORDS,
     "apply(kind, project, name, proto, now, project_proto=None, project_uuid=None, "
     "touch_metadata=True, version_number=0, version_type=None, version_id=None) -> "
     "True if inserted, False if updated. With version_type, proto is also recorded "
     "as that version of the feature view, in the same transaction. expect=bytes or None: "
     "apply only if the stored row is still exactly that (None: still missing), else "
     "write nothing and return None; then the version is recorded on update too, "
     "old_version_id records the stored bytes as version 0 first, and versions_only "
     "records the versions without writing the row."},
    {"apply_batch", (PyCFunction)Store_apply_batch, METH_VARARGS,
     "apply_batch([(kind, project, name, proto, now, project_proto, project_uuid, "
     "touch_metadata, version_number, version_type, version_id, expect, old_version_id, "
     "versions_only)]) -> True when every item was applied in one transaction, None when "
     "one of the rows was not as expected (nothing written)."},
    {"read_for_apply", (PyCFunction)Store_read_for_apply, METH_VARARGS,
     "read_for_apply(kind, project, name, others, versions=False) -> (stored proto or None, "
     "the first kind of others holding that name or None, next version number, 1 if the "
     "project row exists | 2 if its project_uuid does), read "
     "from the write database in one statement."},
    {"delete", (PyCFunction)(void (*)(void))Store_delete, METH_VARARGS | METH_KEYWORDS,
     "delete(kind, project, name, now, touch_metadata=True) -> rows deleted."},
    {"delete_feature_view", (PyCFunction)(void (*)(void))Store_delete_feature_view,
     METH_VARARGS | METH_KEYWORDS,
     "delete_feature_view(project, name, now, touch_metadata=True) -> rows deleted."},
    {"apply_materialization", (PyCFunction)(void (*)(void))Store_apply_materialization,
     METH_VARARGS | METH_KEYWORDS,
     "apply_materialization(kind, project, name, (s, ns), (s, ns), (s, ns)) -> found."},
    {"set_user_metadata", (PyCFunction)Store_set_user_metadata, METH_VARARGS,
     "set_user_metadata(kind, project, name, data_or_None, now) -> found."},
    {"get_user_metadata", (PyCFunction)Store_get_user_metadata, METH_VARARGS,
     "get_user_metadata(kind, project, name) -> (found, data_or_None)."},
    {"delete_project", (PyCFunction)Store_delete_project, METH_VARARGS,
     "delete_project(name): the project and everything in it."},
    {"teardown", (PyCFunction)Store_teardown, METH_NOARGS,
     "Delete every registry object of every project."},
    {"meta_get", (PyCFunction)Store_meta_get, METH_VARARGS,
     "meta_get(project, key) -> (value, last_updated) or None."},
    {"meta_list", (PyCFunction)Store_meta_list, METH_VARARGS,
     "meta_list(project) -> [(key, value, last_updated)]."},
    {"meta_by_key", (PyCFunction)Store_meta_by_key, METH_VARARGS,
     "meta_by_key(key) -> [(project, last_updated)]."},
    {"meta_set", (PyCFunction)Store_meta_set, METH_VARARGS, "meta_set(project, key, value, now)."},
    {"meta_init", (PyCFunction)Store_meta_init, METH_VARARGS,
     "meta_init(project, key, value, now): set key unless the project has it."},
    {"meta_delete_project", (PyCFunction)Store_meta_delete_project, METH_VARARGS,
     "meta_delete_project(project)."},
    {"version_next", (PyCFunction)Store_version_next, METH_VARARGS,
     "version_next(project, name) -> the next free version number."},
    {"version_save", (PyCFunction)Store_version_save, METH_VARARGS,
     "version_save(project, name, number, type, proto, created, version_id); "
     "IntegrityError when the number is taken."},
    {"version_get", (PyCFunction)Store_version_get, METH_VARARGS,
     "version_get(project, name, number) -> (type, proto) or None."},
    {"version_list", (PyCFunction)Store_version_list, METH_VARARGS,
     "version_list(project, name) -> [(number, type, created, version_id)]."},
    {"registry", (PyCFunction)Store_registry, METH_NOARGS,
     "registry() -> (serialized feast.core.Registry, bad): bad rows are left out and listed "
     "as (table, project, name, reason)."},
    {"close", (PyCFunction)Store_close, METH_NOARGS,
     "Close every connection; later calls raise InterfaceError. Idempotent."},
    {"release_idle", (PyCFunction)Store_release_idle, METH_NOARGS,
     "Close the idle pooled connections now; the store stays usable."},
    {"__enter__", (PyCFunction)Store_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Store_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Store_getset[] = {
    {"dialect", (getter)Store_dialect, NULL, "sqlite, postgresql or mysql", NULL},
    {"url", (getter)Store_url, NULL, "the write URL, password masked", NULL},
    {"closed", (getter)Store_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Store_slots[] = {
    {Py_tp_new, Store_new},
    {Py_tp_dealloc, Store_dealloc},
    {Py_tp_repr, Store_repr},
    {Py_tp_methods, Store_methods},
    {Py_tp_getset, Store_getset},
    {Py_tp_doc, "Store(path, read_path=None, pool_size=5, max_overflow=10, pool_timeout=30.0, "
                "pool_recycle=-1, pool_pre_ping=True, replica_wait=1.0): Feast registry tables in "
                "one database (reads from read_path when given; a replica there waits up to "
                "replica_wait seconds for this process's writes, then the primary is read; "
                "replica_wait < 0: no waiting)."},
    {0, NULL},
};

static PyType_Spec Store_spec = {
    .name = "feast_sqlreg._sqlregistry.Store",
    .basicsize = sizeof(StoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Store_slots,
};

int store_type_setup(PyObject *module, module_state *ms) {
    ms->StoreType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Store_spec, NULL);
    if (!ms->StoreType) return -1;
    return PyModule_AddObjectRef(module, "Store", (PyObject *)ms->StoreType);
}
