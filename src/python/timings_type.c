/* timings_type.c - the Timings type: the latency histogram of one registry
 * method on one backend (feast_sqlreg._metrics.timed), which a call's
 * wrapper adds its time to in one C call.
 *
 * Why C: the wrapper runs around every cached registry read (a few
 * microseconds); a lock, a bisect and two read-modify-writes in Python
 * cost about 0.5 us of that, add() about 0.05 us. No lock: add() and
 * snapshot() run with the GIL held from start to end, and the stable ABI
 * this module is built for has no free-threaded build.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "python/module.h"

enum { TIMINGS_MAX_BOUNDS = 64 };

typedef struct {
    PyObject_HEAD int nbounds;
    double bounds[TIMINGS_MAX_BOUNDS];       /* ascending, finite */
    uint64_t counts[TIMINGS_MAX_BOUNDS + 1]; /* per bucket, not cumulative; the last: +Inf */
    double seconds;                          /* the sum of what was added */
} TimingsObject;

static PyObject *Timings_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"bounds", NULL};
    PyObject *given;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Timings", kwlist, &given)) return NULL;
    PyObject *seq = PySequence_Fast(given, "Timings: bounds must be a sequence of numbers");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Size(seq);
    if (n < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    if (n < 1 || n > TIMINGS_MAX_BOUNDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "Timings: between 1 and %d bounds, got %zd",
                     TIMINGS_MAX_BOUNDS, n);
        return NULL;
    }
    double bounds[TIMINGS_MAX_BOUNDS];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(seq, i);
        double b = item ? PyFloat_AsDouble(item) : -1.0;
        Py_XDECREF(item);
        if (b == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
        if (!isfinite(b) || (i > 0 && b <= bounds[i - 1])) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError,
                            "Timings: bounds must be finite and strictly ascending");
            return NULL;
        }
        bounds[i] = b;
    }
    Py_DECREF(seq);
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    TimingsObject *self = (TimingsObject *)alloc(type, 0); /* zeroed */
    if (!self) return NULL;
    self->nbounds = (int)n;
    for (Py_ssize_t i = 0; i < n; i++)
        self->bounds[i] = bounds[i];
    return (PyObject *)self;
}

static void Timings_dealloc(TimingsObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    freefunc free_slot = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_slot(self);
    Py_DECREF(tp);
}

/* add(seconds): one call that took seconds, counted in the first bucket
 * whose bound is >= seconds (Prometheus' `le`). */
static PyObject *Timings_add(TimingsObject *self, PyObject *arg) {
    double s = PyFloat_AsDouble(arg);
    if (s == -1.0 && PyErr_Occurred()) return NULL;
    if (isnan(s)) {
        PyErr_SetString(PyExc_ValueError, "Timings.add: seconds is NaN");
        return NULL;
    }
    int lo = 0, hi = self->nbounds; /* the first i with bounds[i] >= s, or nbounds */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (self->bounds[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    self->counts[lo]++;
    self->seconds += s;
    Py_RETURN_NONE;
}

/* snapshot() -> (counts per bucket, the last +Inf, not cumulative; seconds). */
static PyObject *Timings_snapshot(TimingsObject *self, PyObject *noargs) {
    (void)noargs;
    PyObject *counts = PyTuple_New(self->nbounds + 1);
    if (!counts) return NULL;
    for (int i = 0; i <= self->nbounds; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong((unsigned long long)self->counts[i]);
        if (!n) {
            Py_DECREF(counts);
            return NULL;
        }
        PyTuple_SetItem(counts, i, n); /* steals n */
    }
    return Py_BuildValue("(Nd)", counts, self->seconds);
}

static PyObject *Timings_bounds(TimingsObject *self, void *closure) {
    (void)closure;
    PyObject *bounds = PyTuple_New(self->nbounds);
    for (int i = 0; bounds && i < self->nbounds; i++) {
        PyObject *b = PyFloat_FromDouble(self->bounds[i]);
        if (!b)
            Py_CLEAR(bounds);
        else
            PyTuple_SetItem(bounds, i, b); /* steals b */
    }
    return bounds;
}

static PyMethodDef Timings_methods[] = {
    {"add", (PyCFunction)Timings_add, METH_O,
     "add(seconds): one call that took seconds (a number, not NaN)."},
    {"snapshot", (PyCFunction)Timings_snapshot, METH_NOARGS,
     "snapshot() -> (counts, seconds): the calls in each bucket (not cumulative; one more "
     "than bounds, the last for +Inf) and their total time."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Timings_getset[] = {
    {"bounds", (getter)Timings_bounds, NULL, "the buckets' upper bounds, in seconds", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Timings_slots[] = {
    {Py_tp_new, Timings_new},
    {Py_tp_dealloc, Timings_dealloc},
    {Py_tp_methods, Timings_methods},
    {Py_tp_getset, Timings_getset},
    {Py_tp_doc, "Timings(bounds): a latency histogram (bounds: ascending upper bounds in "
                "seconds, at most 64) that calls are added to one at a time."},
    {0, NULL},
};

static PyType_Spec Timings_spec = {
    .name = "feast_sqlreg._sqlregistry.Timings",
    .basicsize = sizeof(TimingsObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Timings_slots,
};

int timings_type_setup(PyObject *module) {
    PyObject *type = PyType_FromModuleAndSpec(module, &Timings_spec, NULL);
    if (!type) return -1;
    int rv = PyModule_AddObjectRef(module, "Timings", type);
    Py_DECREF(type);
    return rv;
}
