"""Prometheus metrics of the native registry (prometheus_client).

What is measured where:

- Registry calls (every public ``NativeSqlRegistry`` method, and the
  registry server's ``find_proto``/``get_proto``/``list_protos``): a
  wrapper (``timed``) adds each call's time to a histogram of its method
  and backend kept in C (``_sqlregistry.Timings``); about 0.4 µs a call
  (README, "Metrics"), where prometheus_client's ``Histogram.observe``
  alone costs about 2.7 µs here, as much as a cached ``get_entity``.
  Exceptions are counted by class name.
- Everything else is read when a scrape asks (``Collector``): each live
  registry's cache age, change feed and bad rows, its Store's retries and
  pools (``Store.stats()``, ``Store.replica_stats()``), each native front's
  ``Front.stats()``. Registries and fronts are held weakly: one that is
  closed, stopped or collected drops out.

Where they are exposed:

- ``prometheus_client.REGISTRY``: one ``Collector`` for the process, put
  there as soon as prometheus_client is imported (the start-up hook watches
  for it, ``install``), and never before: prometheus_client chooses between
  in-memory and multiprocess values when it is first imported, and Feast's
  ``feast.metrics`` sets ``PROMETHEUS_MULTIPROC_DIR`` just before it imports
  it. So an application's own ``generate_latest()`` or ``start_http_server``
  shows them, and so does ``feast serve_registry`` with
  ``FEAST_SQLREG_METRICS_PORT`` (``serve``).
- ``feast serve --metrics``: Feast's metrics endpoint is a process of its
  own that reads the files every process writes into
  ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode), not
  the default registry of the process serving requests. (``import feast``
  loads ``feast.metrics``, which sets that variable to a temporary
  directory of its own unless it is set: every Feast process is in that
  mode.) In a process in that mode that has a registry or front, a thread
  (``_Mirror``) writes what the Collector reads into prometheus_client
  metrics of the same names every ``FEAST_SQLREG_METRICS_MIRROR_SECONDS``
  (5 s), so each gunicorn worker's registry shows there too; a gauge of
  several workers is combined as its multiprocess mode says
  (``_FAMILIES``). It writes nothing while nobody reads the files: the
  directory is Feast's own and Feast's metrics are off
  (``_internals.feast_metrics_dir_unread``).
"""

import functools
import logging
import os
import sys
import threading
import time
import weakref
from typing import Dict, List, Tuple

from feast_sqlreg import errors

logger = logging.getLogger("feast_sqlreg.metrics")

#: Upper bounds of the call latency buckets, in seconds: a cached get takes
#: a few microseconds, a full read of a large registry seconds.
BUCKETS = (
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

# How often a process in prometheus_client's multiprocess mode writes its
# values where `feast serve --metrics` reads them.
MIRROR_SECONDS = float(os.environ.get("FEAST_SQLREG_METRICS_MIRROR_SECONDS", "5") or 5)

_REG = ("backend", "registry")
_POOL = _REG + ("pool",)
_FRONT = ("port",)

#: Every metric: name, type, help, label names, and the multiprocess mode of
#: a gauge (how `feast serve --metrics` combines several processes' values:
#: the live ones' largest, smallest or sum).
_FAMILIES = (
    ("feast_sqlreg_registry_call_duration_seconds", "histogram",
     "Registry method calls: latency by method and backend", ("method", "backend"), None),
    ("feast_sqlreg_registry_call_errors", "counter",
     "Registry method calls that raised, by exception class", ("method", "backend", "kind"),
     None),
    ("feast_sqlreg_registry_info", "gauge",
     "1 per live native registry: its backend, label, cache mode, and whether it has a "
     "read_path", _REG + ("cache_mode", "read_path"), "livemax"),
    ("feast_sqlreg_cache_age_seconds", "gauge",
     "Seconds since the cached registry was read or patched from the database", _REG,
     "livemax"),
    ("feast_sqlreg_cache_updates", "counter",
     "Cached registry renewals: full reads and patches", _REG + ("how",), None),
    ("feast_sqlreg_change_feed_healthy", "gauge",
     "1 while the change feed keeps the cache fresh, else 0 (no feed, or failing)", _REG,
     "livemin"),
    ("feast_sqlreg_change_feed_lag_seconds", "gauge",
     "Seconds since the change log was last read successfully", _REG, "livemax"),
    ("feast_sqlreg_change_feed_holes", "gauge",
     "Change log ids below the newest seen that are still awaited", _REG, "livemax"),
    ("feast_sqlreg_change_feed_polls", "counter", "Successful looks at the change log", _REG,
     None),
    ("feast_sqlreg_change_feed_failures", "counter", "Looks at the change log that failed",
     _REG, None),
    ("feast_sqlreg_bad_rows", "gauge",
     "Stored rows left out of the last full read of the registry", _REG, "livemax"),
    ("feast_sqlreg_bad_rows_reported", "gauge",
     "Distinct bad rows this registry has logged since it started (any read)", _REG,
     "livemax"),
    ("feast_sqlreg_retries", "counter",
     "Registry work run again: conflict (deadlock, lock wait, busy database), stale_plan, "
     "reconnect, failover (several hosts: a call that waited for a server, a transaction run "
     "again after its connection went before COMMIT), apply_race (an apply decided again "
     "after another writer changed the row)",
     _REG + ("reason",), None),
    ("feast_sqlreg_pool_connections", "gauge", "Pooled connections now, in use or idle",
     _POOL + ("state",), "livesum"),
    ("feast_sqlreg_pool_capacity", "gauge", "Connections a pool may hold (pool_size + "
     "max_overflow)", _POOL, "livesum"),
    ("feast_sqlreg_pool_connects", "counter", "Connections opened", _POOL, None),
    ("feast_sqlreg_pool_connect_failures", "counter", "Connection attempts that failed", _POOL,
     None),
    ("feast_sqlreg_pool_waits", "counter",
     "Checkouts that found every connection in use and waited", _POOL, None),
    ("feast_sqlreg_pool_wait_timeouts", "counter",
     "Waits for a connection that gave up after pool_timeout", _POOL, None),
    ("feast_sqlreg_pool_wait_seconds", "counter", "Time checkouts spent waiting", _POOL, None),
    ("feast_sqlreg_replica_waits", "counter",
     "Reads that waited for the read_path replica to replay this process's writes", _REG,
     None),
    ("feast_sqlreg_replica_fallbacks", "counter",
     "Reads that gave up waiting for the replica and read the primary", _REG, None),
    ("feast_sqlreg_front_calls", "counter",
     "Calls the native front of feast serve_registry took: answered from its table, denied "
     "by a learned decision, fetched from the database, relayed to grpcio",
     _FRONT + ("outcome",), None),
    ("feast_sqlreg_front_connections", "counter", "Client connections the front accepted",
     _FRONT, None),
    ("feast_sqlreg_front_held_bytes", "gauge", "Bytes waiting in the front's buffers", _FRONT,
     "livesum"),
    ("feast_sqlreg_front_decisions", "gauge", "Permission decisions the front holds", _FRONT,
     "livesum"),
    ("feast_sqlreg_front_tls_handshakes", "counter", "TLS handshakes, by result",
     _FRONT + ("result",), None),
    ("feast_sqlreg_front_tls_reloads", "counter", "Certificate reloads, by result",
     _FRONT + ("result",), None),
)
_SPEC = {f[0]: f for f in _FAMILIES}


# ---- registry calls --------------------------------------------------------


class _Calls:
    """The calls of one (method, backend): their latency histogram (a C
    ``Timings``: add() is one C call under the GIL, no lock), and the
    exceptions raised by class name (under lock: only on the way out of a
    failed call)."""

    __slots__ = ("timings", "errors")

    def __init__(self):
        from feast_sqlreg._sqlregistry import Timings

        self.timings = Timings(BUCKETS)
        self.errors: Dict[str, int] = {}


_calls: Dict[Tuple[str, str], _Calls] = {}
_calls_lock = threading.Lock()


def _calls_of(method: str, backend: str) -> _Calls:
    with _calls_lock:
        found = _calls.get((method, backend))
        if found is None:
            found = _calls[(method, backend)] = _Calls()
        return found


def _count_error(calls: _Calls, kind: str) -> None:
    with _calls_lock:
        calls.errors[kind] = calls.errors.get(kind, 0) + 1


def timed(name: str, method, checks_off: bool = False):
    """method (of NativeSqlRegistry), its calls counted as name's on the
    registry's backend (``self._metrics_backend``); with checks_off, also
    without typeguard's checks in the calling thread, as
    ``_typechecks.without_type_checks`` would wrap it (in the same frame: a
    cached get is a few microseconds). About 0.25 µs a call (README,
    "Metrics")."""
    from feast_sqlreg import _typechecks

    by_backend: Dict[str, _Calls] = {}
    clock = time.perf_counter

    def calls_of(backend):
        calls = by_backend[backend] = _calls_of(name, backend)
        return calls

    if not (checks_off and _typechecks.ACTIVE):

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            calls = by_backend.get(self._metrics_backend) or calls_of(self._metrics_backend)
            start = clock()
            try:
                return method(self, *args, **kwargs)
            except Exception as e:
                _count_error(calls, type(e).__name__)
                raise
            finally:
                calls.timings.add(clock() - start)

        return call

    local = _typechecks.thread_state()

    @functools.wraps(method)
    def read(self, *args, **kwargs):
        calls = by_backend.get(self._metrics_backend) or calls_of(self._metrics_backend)
        local.depth = getattr(local, "depth", 0) + 1
        start = clock()
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            _count_error(calls, type(e).__name__)
            raise
        finally:
            calls.timings.add(clock() - start)
            local.depth -= 1

    return read


def calls_snapshot() -> Dict[Tuple[str, str], Tuple[tuple, float, Dict[str, int]]]:
    """{(method, backend): (counts per bucket, seconds, errors by class)}
    of the calls so far, copied."""
    with _calls_lock:
        items = [(key, calls, dict(calls.errors)) for key, calls in _calls.items()]
    return {key: calls.timings.snapshot() + (errs,) for key, calls, errs in items}


# ---- what is read at scrape time ---------------------------------------------

_tracked_lock = threading.Lock()
_registries: Dict[int, Tuple["weakref.ref", str]] = {}  # id -> (registry, label)
_fronts: Dict[int, "weakref.ref"] = {}


# No weakref callbacks: one can run inside any allocation, with the lock
# held by its own thread. Entries whose object is gone are pruned as found.


def track_registry(registry, project: str) -> str:
    """Reports registry (a NativeSqlRegistry) until it is closed or
    collected; returns its ``registry`` label: project (the registry's
    own), with "#2", "#3", ... when a live registry of the process already
    has that one."""
    base = str(project)
    with _tracked_lock:
        _prune(_registries)
        taken = {label for _, label in _registries.values()}
        label, n = base, 1
        while label in taken:
            n += 1
            label = f"{base}#{n}"
        _registries[id(registry)] = (weakref.ref(registry), label)
    _start()
    return label


def forget_registry(registry) -> None:
    """registry (closed) no longer reports."""
    with _tracked_lock:
        entry = _registries.get(id(registry))
        if entry is not None and entry[0]() is registry:
            del _registries[id(registry)]


def track_front(server) -> None:
    """Reports the native front of server (feast_sqlreg.server's
    FrontedServer: its ``front``) until it is stopped or collected."""
    with _tracked_lock:
        _prune(_fronts)
        _fronts[id(server)] = (weakref.ref(server), None)
    _start()


def forget_front(server) -> None:
    with _tracked_lock:
        entry = _fronts.get(id(server))
        if entry is not None and entry[0]() is server:
            del _fronts[id(server)]


def _prune(table) -> None:
    """Called with _tracked_lock held."""
    for key in [k for k, (ref, _) in table.items() if ref() is None]:
        del table[key]


def _live(table) -> list:
    """[(object, label)] of a table's live entries."""
    with _tracked_lock:
        _prune(table)
        entries = list(table.values())
    found = []
    for ref, label in entries:
        obj = ref()
        if obj is not None:
            found.append((obj, label))
    return found


class _Families:
    """The metric families of one scrape, filled by name."""

    def __init__(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        self._made = {}
        self._classes = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                         "histogram": HistogramMetricFamily}

    def __call__(self, name):
        family = self._made.get(name)
        if family is None:
            _, kind, doc, labels, _ = _SPEC[name]
            family = self._made[name] = self._classes[kind](name, doc, labels=labels)
        return family

    def add(self, name, labels, value):
        self(name).add_metric([str(v) for v in labels], value)

    def all(self):
        return [self._made[f[0]] for f in _FAMILIES if f[0] in self._made]


def _add_calls(fam: _Families) -> None:
    for (method, backend), (counts, seconds, errs) in sorted(calls_snapshot().items()):
        cumulative, buckets = 0, []
        for bound, n in zip(BUCKETS + (float("inf"),), counts):
            cumulative += n
            buckets.append((_le(bound), cumulative))
        fam("feast_sqlreg_registry_call_duration_seconds").add_metric(
            [method, backend], buckets, seconds)
        for kind, n in sorted(errs.items()):
            fam.add("feast_sqlreg_registry_call_errors", (method, backend, kind), n)


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def _add_registry(fam: _Families, registry, label: str) -> None:
    """One registry's values; raises when it is closed meanwhile (the
    scrape then leaves it out)."""
    store = registry._raw_store
    stats = store.stats()  # InterfaceError once closed
    backend = registry._metrics_backend
    reg = (backend, label)
    config = registry.registry_config
    fam.add("feast_sqlreg_registry_info",
            reg + (registry.cache_mode, "true" if config.read_path else "false"), 1)
    read_at = registry._cache_read_at
    if read_at is not None:
        fam.add("feast_sqlreg_cache_age_seconds", reg, max(0.0, time.monotonic() - read_at))
    for how, n in sorted(registry.cache_updates.items()):
        fam.add("feast_sqlreg_cache_updates", reg + (how,), n)
    poller = registry._poller
    if poller is not None and poller.pid != os.getpid():
        poller = None  # a forked child's: its thread is the parent's
    fam.add("feast_sqlreg_change_feed_healthy", reg,
            1 if poller is not None and poller.healthy() else 0)
    if poller is not None:
        fam.add("feast_sqlreg_change_feed_lag_seconds", reg, poller.lag())
        fam.add("feast_sqlreg_change_feed_holes", reg, poller.holes())
        fam.add("feast_sqlreg_change_feed_polls", reg, poller.polls)
        fam.add("feast_sqlreg_change_feed_failures", reg, poller.failures)
    fam.add("feast_sqlreg_bad_rows", reg, len(registry.bad_rows))
    reported = {row[:3] for row in list(registry._reported_rows)}  # (table, project, name)
    fam.add("feast_sqlreg_bad_rows_reported", reg, len(reported))
    retries = dict(stats["retries"], apply_race=registry.apply_races)
    for reason, n in sorted(retries.items()):
        fam.add("feast_sqlreg_retries", reg + (reason,), n)
    for role, pool in (("write", stats["pool"]), ("read", stats["read_pool"])):
        if pool is None:
            continue
        where = reg + (role,)
        fam.add("feast_sqlreg_pool_connections", where + ("in_use",), pool["in_use"])
        fam.add("feast_sqlreg_pool_connections", where + ("idle",), pool["idle"])
        fam.add("feast_sqlreg_pool_capacity", where, pool["capacity"])
        fam.add("feast_sqlreg_pool_connects", where, pool["connects"])
        fam.add("feast_sqlreg_pool_connect_failures", where, pool["connect_failures"])
        fam.add("feast_sqlreg_pool_waits", where, pool["waits"])
        fam.add("feast_sqlreg_pool_wait_timeouts", where, pool["timeouts"])
        fam.add("feast_sqlreg_pool_wait_seconds", where, pool["wait_seconds"])
    if config.read_path:
        replica = store.replica_stats()
        fam.add("feast_sqlreg_replica_waits", reg, replica["waits"])
        fam.add("feast_sqlreg_replica_fallbacks", reg, replica["fallbacks"])


def _add_front(fam: _Families, server) -> None:
    stats = server.front.stats()  # ValueError once stopped
    port = (server.port,)
    for outcome in ("answered", "denied", "fetched", "relayed"):
        fam.add("feast_sqlreg_front_calls", port + (outcome,), stats[outcome])
    fam.add("feast_sqlreg_front_connections", port, stats["connections"])
    fam.add("feast_sqlreg_front_held_bytes", port, stats["held"])
    fam.add("feast_sqlreg_front_decisions", port, stats["decisions"])
    fam.add("feast_sqlreg_front_tls_handshakes", port + ("ok",), stats["tls_handshakes"])
    fam.add("feast_sqlreg_front_tls_handshakes", port + ("failed",),
            stats["tls_handshake_failures"])
    fam.add("feast_sqlreg_front_tls_reloads", port + ("ok",), stats["tls_reloads"])
    fam.add("feast_sqlreg_front_tls_reloads", port + ("failed",), stats["tls_reload_failures"])


class Collector:
    """prometheus_client collector of every metric above, read when
    collected. One per process (``COLLECTOR``)."""

    def describe(self):
        fam = _Families()
        for name, *_ in _FAMILIES:
            fam(name)
        return fam.all()

    def collect(self):
        fam = _Families()
        _add_calls(fam)
        for registry, label in _live(_registries):
            try:
                _add_registry(fam, registry, label)
            except errors.InterfaceError:
                pass  # closed meanwhile: it drops out
            except Exception as e:  # a scrape must not fail for one registry
                logger.debug("feast_sqlreg: no metrics for %r: %s", registry, e)
        for server, _ in _live(_fronts):
            try:
                _add_front(fam, server)
            except ValueError:
                pass  # stopped meanwhile
            except Exception as e:
                logger.debug("feast_sqlreg: no metrics for a front: %s", e)
        return fam.all()


COLLECTOR = Collector()
_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Puts COLLECTOR into prometheus_client.REGISTRY (once) and, in
    prometheus_client's multiprocess mode, starts the mirror. Called when
    prometheus_client has been imported (by the start-up hook, or by the
    first registry when it was imported before)."""
    global _installed
    with _install_lock:
        if not _installed:
            from prometheus_client import REGISTRY

            try:
                REGISTRY.register(COLLECTOR)
            except ValueError as e:  # names taken by someone else's metrics
                logger.warning("feast_sqlreg: metrics not registered: %s", e)
            _installed = True
    _start_mirror()


def _start() -> None:
    """On tracking a registry or front: install() if prometheus_client is
    there already (imported before the start-up hook could see it)."""
    if not _installed and "prometheus_client" in sys.modules:
        install()
    else:
        _start_mirror()


# ---- feast serve_registry's port -----------------------------------------------

#: The environment variable that gives `feast serve_registry` a metrics port.
PORT_SETTING = "FEAST_SQLREG_METRICS_PORT"


def port_setting():
    """The port FEAST_SQLREG_METRICS_PORT asks for, or None when it is unset
    or empty; ConfigurationError when it is not a port number."""
    text = os.environ.get(PORT_SETTING, "").strip()
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise errors.ConfigurationError(
            f"{PORT_SETTING} must be a port number from 0 to 65535 (0: any free port), "
            f"got {text!r}"
        )
    return port


def serve(port: int):
    """Serves prometheus_client.REGISTRY (these metrics and any others of
    the process) over HTTP on port, on every address; returns the server
    (its ``server_port``; ``shutdown()`` stops it)."""
    try:
        import prometheus_client
    except ImportError as e:
        raise errors.ConfigurationError(
            f"{PORT_SETTING} needs prometheus_client (pip install prometheus_client): {e}"
        ) from None
    install()
    try:
        httpd, _ = prometheus_client.start_http_server(port)
    except OSError as e:
        raise OSError(e.errno, f"cannot serve metrics on port {port} ({PORT_SETTING}): "
                               f"{e.strerror}") from None
    logger.info("feast_sqlreg: metrics on port %d", httpd.server_port)
    return httpd


def stop_serving(httpd) -> None:
    """Stops a server serve() started (again: nothing)."""
    if not getattr(httpd, "_feast_sqlreg_stopped", False):
        httpd._feast_sqlreg_stopped = True
        httpd.shutdown()
        httpd.server_close()


# ---- multiprocess mode: the mirror ------------------------------------------------


def _multiprocess() -> bool:
    """Whether prometheus_client keeps its values in files (the variables
    it reads when first imported)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


class _Mirror:
    """Writes what COLLECTOR reads into prometheus_client metrics (not
    registered anywhere: in multiprocess mode their values go to this
    process's files), so that a MultiProcessCollector elsewhere (`feast
    serve --metrics`) sees them. Counters and histograms are written as
    what changed since the last write (``_base``); a forked child starts
    from what it inherited, so nothing is counted twice."""

    def __init__(self):
        self.pid = os.getpid()
        self._metrics = {}
        self._base: Dict[tuple, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.rebase()
        self._thread = threading.Thread(target=self._run, name="feast_sqlreg-metrics",
                                        daemon=True)
        self._thread.start()

    def _run(self):
        from feast_sqlreg import _internals

        while not self._stopping.wait(MIRROR_SECONDS):
            if _internals.in_feast_metrics_server():
                return  # a fork that reads the files: its registries are the parent's copies
            if _internals.feast_metrics_dir_unread():
                continue
            try:
                self.write()
            except Exception as e:  # the directory removed at exit, say
                logger.debug("feast_sqlreg: metrics not written: %s", e)

    def rebase(self):
        """What is there now counts as written (in a new process image)."""
        with self._lock:
            self._base = {key: value for key, _, value in _flatten(COLLECTOR.collect())}

    def write(self):
        with self._lock:
            for key, kind, value in _flatten(COLLECTOR.collect()):
                name, labels, part = key
                metric = self._metric(name)
                if kind == "gauge":
                    metric.labels(*labels).set(value)
                    continue
                before = self._base.get(key, 0)
                # Less than before: a registry of that label anew, counting from 0.
                delta = value - before if value >= before else value
                self._base[key] = value
                if delta <= 0:
                    continue
                if kind == "counter":
                    metric.labels(*labels).inc(delta)
                else:
                    from feast_sqlreg import _internals

                    _internals.histogram_add(metric.labels(*labels), part, delta)

    def _metric(self, name):
        metric = self._metrics.get(name)
        if metric is None:
            import prometheus_client

            _, kind, doc, labels, mode = _SPEC[name]
            if kind == "counter":
                metric = prometheus_client.Counter(name, doc, labels, registry=None)
            elif kind == "gauge":
                metric = prometheus_client.Gauge(name, doc, labels, registry=None,
                                                 multiprocess_mode=mode)
            else:
                metric = prometheus_client.Histogram(name, doc, labels, registry=None,
                                                     buckets=BUCKETS)
            self._metrics[name] = metric
        return metric

    def stop(self):
        self._stopping.set()


def _flatten(families):
    """((name, label values, part), type, value) for every sample: part is
    None, or for a histogram the bucket index (non-cumulative counts) or
    "sum"."""
    for family in families:
        if family.type == "histogram":
            runs: Dict[tuple, List[float]] = {}
            for s in family.samples:
                labels = tuple(s.labels[n] for n in _SPEC[family.name][3])
                if s.name.endswith("_bucket"):
                    runs.setdefault(labels, []).append(s.value)
                elif s.name.endswith("_sum"):
                    yield (family.name, labels, "sum"), "histogram", s.value
            for labels, cumulative in runs.items():
                previous = 0
                for i, total in enumerate(cumulative):
                    yield (family.name, labels, i), "histogram", total - previous
                    previous = total
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            labels = tuple(s.labels[n] for n in _SPEC[family.name][3])
            yield (family.name, labels, None), family.type, s.value


_mirror = None
_mirror_lock = threading.Lock()


def _start_mirror() -> None:
    """A mirror for this process, in multiprocess mode, once prometheus_client
    is in and there is a registry or a front to report."""
    global _mirror
    if not _installed or not _multiprocess() or not (_registries or _fronts):
        return
    with _mirror_lock:
        if _mirror is None or _mirror.pid != os.getpid():
            _mirror = _Mirror()


def flush() -> None:
    """Writes the mirror now (multiprocess mode), as it does every
    MIRROR_SECONDS; also done at exit."""
    from feast_sqlreg import _internals

    mirror = _mirror
    if mirror is not None and mirror.pid == os.getpid() and not _internals.feast_metrics_dir_unread():
        mirror.write()


def _after_fork_in_child() -> None:
    # Locks another thread held at fork() stay locked in the child: new ones.
    global _calls_lock, _tracked_lock, _mirror_lock, _install_lock, _mirror
    _calls_lock = threading.Lock()
    _tracked_lock = threading.Lock()
    _mirror_lock = threading.Lock()
    _install_lock = threading.Lock()
    if _mirror is not None:
        _mirror = None  # its thread is the parent's
        try:
            _start_mirror()  # counts from what the child inherited
        except Exception as e:
            logger.debug("feast_sqlreg: no metrics mirror after fork: %s", e)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception as e:
        logger.debug("feast_sqlreg: metrics not written at exit: %s", e)


import atexit  # noqa: E402

atexit.register(_flush_at_exit)
