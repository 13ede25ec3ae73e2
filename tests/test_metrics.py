"""Prometheus metrics (feast_sqlreg._metrics), scraped: calls by method and
backend, errors by kind, retries, the cache and the change feed, pools,
bad rows, replicas, the registry server's front; in prometheus_client's
default registry, on `feast serve_registry`'s own port, and through the
multiprocess files `feast serve --metrics` reads. Real databases, real
servers; every number is read from a scrape."""

import gc
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import prometheus_client
import pytest
from feast.errors import EntityNotFoundException
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

import feast_sqlreg.registry as native_registry
import objects as o
from conftest import BACKENDS, RawConnection, config
from feast_sqlreg import _changes, _metrics, errors
from feast_sqlreg._sqlregistry import Store, Timings
from feast_sqlreg.registry import NativeSqlRegistry

SERVERS = [b for b in BACKENDS if b != "sqlite"]
CALLS = "feast_sqlreg_registry_call_duration_seconds"


# ---- reading a scrape --------------------------------------------------------


class Scrape:
    """One exposition (text format), by sample name and labels."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name, **labels):
        """The value of the one sample of name whose labels include these;
        None when there is none."""
        want = set((k, str(v)) for k, v in labels.items())
        found = [v for (n, ls), v in self.samples.items() if n == name and want <= ls]
        assert len(found) <= 1, f"{len(found)} samples of {name} {labels}"
        return found[0] if found else None

    def value(self, name, **labels):
        v = self.get(name, **labels)
        return 0.0 if v is None else v


def scrape():
    return Scrape(prometheus_client.generate_latest(prometheus_client.REGISTRY).decode())


def http_scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return Scrape(r.read().decode())


def reg_labels(reg):
    return dict(backend=reg._metrics_backend, registry=reg.metrics_label)


def wait_for(predicate, within=5.0):
    since = time.monotonic()
    while not predicate():
        assert time.monotonic() - since < within, f"not within {within} s"
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_feed(monkeypatch):
    """Registries made now follow no change log (FEAST_SQLREG_POLL_SECONDS=0):
    no poller thread uses their pool."""
    monkeypatch.setattr(_changes, "POLL_SECONDS", 0)


# ---- calls -------------------------------------------------------------------


def test_calls_are_counted_by_method_and_backend(make_registry, backend):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.get_entity("driver", "proj", allow_cache=True)  # refreshes the cache once
    before = scrape()
    for _ in range(7):
        reg.get_entity("driver", "proj", allow_cache=True)
    for _ in range(3):
        reg.get_entity("driver", "proj", allow_cache=False)
    after = scrape()
    labels = dict(method="get_entity", backend=backend)
    count = after.value(f"{CALLS}_count", **labels) - before.value(f"{CALLS}_count", **labels)
    assert count == 10
    took = after.value(f"{CALLS}_sum", **labels) - before.value(f"{CALLS}_sum", **labels)
    assert 0 < took < 10
    # Buckets are cumulative and end at the count; a cached get takes well
    # under 10 ms here, so the 10 ms bucket holds them all.
    inf = after.value(f"{CALLS}_bucket", le="+Inf", **labels)
    assert inf == after.value(f"{CALLS}_count", **labels)
    assert after.value(f"{CALLS}_bucket", le="0.01", **labels) - before.value(
        f"{CALLS}_bucket", le="0.01", **labels) >= 7
    # Another method's count did not move, and the calls carry no other backend.
    lists = dict(method="list_entities", backend=backend)
    assert after.value(f"{CALLS}_count", **lists) == before.value(f"{CALLS}_count", **lists)


def test_errors_are_counted_by_exception_class(make_registry, backend):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    errs = "feast_sqlreg_registry_call_errors_total"
    labels = dict(method="get_entity", backend=backend)
    before = scrape()
    for _ in range(2):
        with pytest.raises(EntityNotFoundException):
            reg.get_entity("nobody", "proj")
    # A damaged row: DataError, named.
    raw = RawConnection(reg)
    raw.execute("UPDATE entities SET entity_proto = ? WHERE entity_name = ?", (b"\x00\x01", "driver"))
    raw.close()
    with pytest.raises(errors.DataError):
        reg.get_entity("driver", "proj")
    reg.close()
    with pytest.raises(errors.InterfaceError):
        reg.get_entity("driver", "proj")
    after = scrape()

    def delta(kind):
        return after.value(errs, kind=kind, **labels) - before.value(errs, kind=kind, **labels)

    assert delta("EntityNotFoundException") == 2
    assert delta("DataError") == 1
    assert delta("InterfaceError") == 1
    # Failed calls are timed too.
    assert after.value(f"{CALLS}_count", **labels) - before.value(f"{CALLS}_count", **labels) == 4


def test_timings_refuse_bad_input():
    with pytest.raises(ValueError, match="between 1 and 64"):
        Timings([])
    with pytest.raises(ValueError, match="ascending"):
        Timings([0.1, 0.1])
    with pytest.raises(ValueError, match="finite"):
        Timings([0.1, float("inf")])
    with pytest.raises(TypeError):
        Timings(5)
    t = Timings([0.001, 0.01])
    with pytest.raises(TypeError):
        t.add("slow")
    with pytest.raises(ValueError, match="NaN"):
        t.add(float("nan"))
    for s in (0.0005, 0.001, 0.005, 2.0, -1.0):
        t.add(s)
    assert t.bounds == (0.001, 0.01)
    counts, seconds = t.snapshot()
    assert counts == (3, 1, 1)  # <= 0.001 (bounds included), <= 0.01, +Inf
    assert seconds == pytest.approx(0.0005 + 0.001 + 0.005 + 2.0 - 1.0)


# ---- retries -----------------------------------------------------------------


@pytest.mark.parametrize("backend", [b for b in SERVERS if b == "postgresql"])
def test_lock_conflicts_are_retried_and_counted(make_registry, backend):
    """PostgreSQL's lock_timeout turns a row locked by another session into
    55P03, which the write retries with backoff: 8 attempts, 7 retries,
    then the call fails with an OperationalError."""
    reg = make_registry("native", sqlalchemy_config_kwargs={
        "connect_args": {"options": "-c lock_timeout=50"}})
    reg.apply_entity(o.entity(), "proj")
    before = scrape()
    raw = RawConnection(reg)
    raw.lock_row("entities", "entity_name", "driver")
    try:
        with pytest.raises(errors.OperationalError) as failed:
            reg.apply_entity(o.entity(description="changed"), "proj")
        assert failed.value.sqlstate == "55P03"
    finally:
        raw.rollback()
        raw.close()
    after = scrape()
    labels = dict(reason="conflict", **reg_labels(reg))
    assert after.value("feast_sqlreg_retries_total", **labels) - before.value(
        "feast_sqlreg_retries_total", **labels) == 7
    errs = dict(method="apply_entity", backend=backend, kind="OperationalError")
    assert after.value("feast_sqlreg_registry_call_errors_total", **errs) - before.value(
        "feast_sqlreg_registry_call_errors_total", **errs) == 1
    # Nothing else was retried.
    for reason in ("stale_plan", "reconnect", "failover", "apply_race"):
        assert after.value("feast_sqlreg_retries_total", reason=reason, **reg_labels(reg)) == 0
    reg.apply_entity(o.entity(description="changed"), "proj")  # the lock is gone
    assert scrape().value("feast_sqlreg_retries_total", **labels) == after.value(
        "feast_sqlreg_retries_total", **labels)


def _kill_sessions(url, backend):
    """Ends every session of the database url names except this one (its
    connections, as a restarted pooler or a server that dropped them)."""
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return len(killed)
    import pymysql

    from conftest import _pymysql_args

    conn = pymysql.connect(**_pymysql_args(url))
    database = url.rsplit("/", 1)[1]
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s "
                        "AND id <> CONNECTION_ID()", (database,))
            ids = [row[0] for row in cur.fetchall()]
            for i in ids:
                cur.execute(f"KILL {int(i)}")
    finally:
        conn.close()
    return len(ids)


@pytest.mark.parametrize("backend", SERVERS)
def test_a_reconnect_is_counted(databases, backend):
    """A pooled connection used a moment ago (so not pinged) that the server
    closed: the read fails at once and runs again on a pinged connection."""
    url = databases.new()[0]
    with Store(url) as st:
        st.create_schema()
        st.list_projects()
        assert st.stats()["retries"] == {"conflict": 0, "stale_plan": 0, "reconnect": 0,
                                         "failover": 0}
        assert _kill_sessions(url, backend) == 1
        time.sleep(0.1)  # the server has closed it
        assert st.list_projects() == ([], [])
        stats = st.stats()
        assert stats["retries"] == {"conflict": 0, "stale_plan": 0, "reconnect": 1,
                                    "failover": 0}
        assert stats["pool"]["connects"] == 2


# ---- pools -------------------------------------------------------------------


def test_pool_in_use_and_waits(make_registry, backend, no_feed):
    """A write held by another session's lock keeps its connection checked
    out: in use 1. With pool_size 1 and no overflow, a read meanwhile waits
    pool_timeout for it and fails; that is a wait and a timeout."""
    kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.3}
    reg = make_registry("native", sqlalchemy_config_kwargs=kwargs)
    reg.apply_entity(o.entity(), "proj")
    pool = dict(pool="write", **reg_labels(reg))
    first = scrape()
    assert first.get("feast_sqlreg_pool_capacity", **pool) == 1
    assert first.get("feast_sqlreg_pool_connections", state="in_use", **pool) == 0
    assert first.get("feast_sqlreg_pool_connections", state="idle", **pool) == 1
    raw = RawConnection(reg)
    raw.lock_row("entities", "entity_name", "driver")
    writer = threading.Thread(
        target=lambda: reg.apply_entity(o.entity(description="changed"), "proj"))
    writer.start()
    try:
        wait_for(lambda: scrape().get("feast_sqlreg_pool_connections", state="in_use", **pool) == 1)
        time.sleep(0.2)  # the write is inside its transaction, waiting for the lock
        before = scrape()
        assert before.get("feast_sqlreg_pool_connections", state="idle", **pool) == 0
        with pytest.raises(errors.OperationalError, match="waiting for a free registry connection"):
            reg.get_entity("driver", "proj")
        after = scrape()
    finally:
        raw.rollback()
        raw.close()
        writer.join(30)
    assert not writer.is_alive()
    for name, grew in (("feast_sqlreg_pool_waits_total", 1),
                       ("feast_sqlreg_pool_wait_timeouts_total", 1)):
        assert after.value(name, **pool) - before.value(name, **pool) == grew, name
    waited = after.value("feast_sqlreg_pool_wait_seconds_total", **pool) - before.value(
        "feast_sqlreg_pool_wait_seconds_total", **pool)
    assert 0.25 <= waited < 2.0
    done = scrape()
    assert done.get("feast_sqlreg_pool_connections", state="in_use", **pool) == 0
    assert done.get("feast_sqlreg_pool_connections", state="idle", **pool) == 1
    assert reg.get_entity("driver", "proj").description == "changed"
    # No read_path: one pool.
    assert done.get("feast_sqlreg_pool_capacity", pool="read", **reg_labels(reg)) is None


# ---- cache and change feed ---------------------------------------------------


def test_cache_age_and_the_change_feed(make_registry, backend):
    # The writer first: its start-up writes are older than the reader's feed.
    writer = make_registry("native", cache_ttl_seconds=600)
    reader = make_registry("native", urls=_urls(writer), cache_ttl_seconds=600)
    labels = reg_labels(reader)
    wait_for(lambda: scrape().value("feast_sqlreg_change_feed_polls_total", **labels) >= 2)
    s = scrape()
    assert s.get("feast_sqlreg_change_feed_healthy", **labels) == 1
    assert 0 <= s.get("feast_sqlreg_change_feed_lag_seconds", **labels) < 2
    assert s.get("feast_sqlreg_change_feed_failures_total", **labels) == 0
    assert s.get("feast_sqlreg_change_feed_holes", **labels) == 0
    time.sleep(1.2)
    aged = scrape()
    assert aged.get("feast_sqlreg_cache_age_seconds", **labels) >= 1.2
    # The feed is looked at every 0.5 s: the lag stays below the 2 s that
    # make it unhealthy.
    assert aged.get("feast_sqlreg_change_feed_lag_seconds", **labels) < 2.0
    updates = (aged.value("feast_sqlreg_cache_updates_total", how="full", **labels)
               + aged.value("feast_sqlreg_cache_updates_total", how="patched", **labels))
    writer.apply_entity(o.entity("rider"), "proj")

    def renewed():
        now = scrape()
        return (now.value("feast_sqlreg_cache_updates_total", how="full", **labels)
                + now.value("feast_sqlreg_cache_updates_total", how="patched", **labels)) > updates

    wait_for(renewed)
    assert scrape().get("feast_sqlreg_cache_age_seconds", **labels) < 1.0
    assert {e.name for e in reader.list_entities("proj", allow_cache=True)} >= {"rider"}


def _urls(reg):
    from conftest import urls_of

    return urls_of(reg)


def test_a_failing_change_feed_is_counted_and_unhealthy(make_registry, backend):
    reg = make_registry("native", cache_ttl_seconds=600)
    labels = reg_labels(reg)
    wait_for(lambda: scrape().value("feast_sqlreg_change_feed_polls_total", **labels) >= 1)
    raw = RawConnection(reg)
    raw.execute("DROP TABLE feast_sqlreg_changes" + (" CASCADE" if backend == "postgresql" else ""))
    raw.close()
    wait_for(lambda: scrape().value("feast_sqlreg_change_feed_failures_total", **labels) >= 2)
    wait_for(lambda: scrape().get("feast_sqlreg_change_feed_healthy", **labels) == 0, within=5)
    assert scrape().get("feast_sqlreg_change_feed_lag_seconds", **labels) >= 2.0


def test_no_change_feed_is_unhealthy_with_no_lag(make_registry, no_feed):
    reg = make_registry("native")
    s = scrape()
    assert s.get("feast_sqlreg_change_feed_healthy", **reg_labels(reg)) == 0
    assert s.get("feast_sqlreg_change_feed_lag_seconds", **reg_labels(reg)) is None
    assert s.get("feast_sqlreg_cache_age_seconds", **reg_labels(reg)) is not None


# ---- bad rows ----------------------------------------------------------------


def test_bad_rows_are_counted(make_registry, backend):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_entity(o.entity("rider"), "proj")
    labels = reg_labels(reg)
    assert scrape().get("feast_sqlreg_bad_rows", **labels) == 0
    raw = RawConnection(reg)
    raw.execute("UPDATE entities SET entity_proto = ? WHERE entity_name = ?", (b"", "driver"))
    raw.close()
    reg.refresh()
    s = scrape()
    assert s.get("feast_sqlreg_bad_rows", **labels) == 1
    assert s.get("feast_sqlreg_bad_rows_reported", **labels) == 1
    reg.list_entities("proj")  # the same row again: reported once
    assert scrape().get("feast_sqlreg_bad_rows_reported", **labels) == 1
    reg.delete_entity("driver", "proj")
    reg.refresh()
    s = scrape()
    assert s.get("feast_sqlreg_bad_rows", **labels) == 0
    assert s.get("feast_sqlreg_bad_rows_reported", **labels) == 1  # since it started


# ---- replicas ------------------------------------------------------------------


def test_a_read_path_has_its_own_pool(make_registry, backend):
    """A read_path that is not a replica (the same database) is read as it
    is: its pool shows, and no read waited or fell back."""
    writer = make_registry("native")
    reg = make_registry("native", urls=_urls(writer), read_path=writer.registry_config.path)
    reg.apply_entity(o.entity(), "proj")
    reg.get_entity("driver", "proj")
    s = scrape()
    labels = reg_labels(reg)
    assert s.get("feast_sqlreg_registry_info", read_path="true", **labels) == 1
    assert s.get("feast_sqlreg_pool_connects_total", pool="read", **labels) >= 1
    assert s.get("feast_sqlreg_pool_connects_total", pool="write", **labels) >= 1
    assert s.get("feast_sqlreg_replica_waits_total", **labels) == 0
    assert s.get("feast_sqlreg_replica_fallbacks_total", **labels) == 0
    assert s.get("feast_sqlreg_replica_fallbacks_total", **reg_labels(writer)) is None


@pytest.mark.xdist_group("standby")
@pytest.mark.parametrize("backend", SERVERS)
def test_a_stalled_replica_fallback_is_counted(backend, tmp_path, monkeypatch, no_feed):
    """Replay paused, a read after this process's write waits 0.3 s for the
    replica, then reads the primary: one fallback. (No change feed: its
    polls read the replica too.)"""
    from test_replica import Replicated

    pair = Replicated(backend, tmp_path)
    monkeypatch.setattr(native_registry, "REPLICA_WAIT_SECONDS", 0.3)
    # The schema first, replayed: a registry's start-up reads the replica.
    with Store(pair.primary, pair.replica) as st:
        st.create_schema()
        wait_for(lambda: not st.missing_tables(True))
    reg = NativeSqlRegistry(config(pair.primary, read_path=pair.replica), "proj", None)
    try:
        labels = reg_labels(reg)
        reg.apply_entity(o.entity("driver"), "proj")
        reg.get_entity("driver", "proj")
        before = scrape()
        pair.replay(paused=True)
        try:
            reg.apply_entity(o.entity("rider"), "proj")
            assert reg.get_entity("rider", "proj").name == "rider"  # from the primary
        finally:
            pair.replay(paused=False)
        after = scrape()
        assert after.value("feast_sqlreg_replica_fallbacks_total", **labels) - before.value(
            "feast_sqlreg_replica_fallbacks_total", **labels) == 1
    finally:
        reg.close()
        pair.drop()


# ---- several registries --------------------------------------------------------


def test_registries_drop_out_when_closed_or_collected(make_registry, databases):
    one = make_registry("native", project="metrics")
    two = make_registry("native", project="metrics")
    third = NativeSqlRegistry(config(databases.new()[0]), "metrics", None)
    labels = {one.metrics_label, two.metrics_label, third.metrics_label}
    assert len(labels) == 3 and one.metrics_label.startswith("metrics")

    def infos():
        return {dict(ls)["registry"] for (n, ls) in scrape().samples
                if n == "feast_sqlreg_registry_info"}

    assert labels <= infos()
    one.close()
    assert one.metrics_label not in infos()
    assert two.metrics_label in infos()
    gone = third.metrics_label
    poller = third._poller._thread
    third._poller.stop()
    poller.join(5)  # its loop holds the registry while it looks
    del third
    gc.collect()
    assert gone not in infos()
    # A scrape of the same registry twice, and installing again, do not fail
    # (one collector for the process, registered once).
    _metrics.install()
    scrape()
    scrape()


def test_feature_store_metrics_are_in_the_default_registry(backend, databases, tmp_path):
    """What `feast serve --metrics` users get with no set-up: a FeatureStore
    on a sql registry shows in prometheus_client.REGISTRY."""
    from feast import FeatureStore

    url = databases.new()[0]
    (tmp_path / "feature_store.yaml").write_text(
        "project: shop\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {url}\n  cache_ttl_seconds: 60\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    try:
        store.apply([o.entity()])
        before = scrape()
        for _ in range(4):
            store.get_entity("driver")
        after = scrape()
        labels = dict(method="get_entity", backend=backend)
        assert after.value(f"{CALLS}_count", **labels) - before.value(f"{CALLS}_count", **labels) == 4
        assert after.get("feast_sqlreg_registry_info", backend=backend,
                         registry=store.registry.metrics_label) == 1
    finally:
        store.registry.close()


# ---- feast serve_registry --------------------------------------------------------


def test_serve_registry_metrics_port(backend, databases, tmp_path, monkeypatch):
    """FEAST_SQLREG_METRICS_PORT: start_server serves the metrics over
    HTTP; the front's answered and relayed calls are counted there."""
    from test_front import served_store

    monkeypatch.setenv("FEAST_SQLREG_METRICS_PORT", "0")
    url = databases.new()[0]
    store, server, channel, stub = served_store(tmp_path, url)
    try:
        store.registry.apply_entity(o.entity(), "proj")
        port = server.metrics.server_port
        front = dict(port=server.port)
        get = pb.GetEntityRequest(name="driver", project="proj", allow_cache=True)
        # The front answers cached Gets once its table has the entity.
        wait_for(lambda: (stub.GetEntity(get), server.front.stats()["answered"] > 0)[1])
        before = http_scrape(port)
        for _ in range(3):
            assert stub.GetEntity(get).spec.name == "driver"
        for _ in range(2):
            stub.ListEntities(pb.ListEntitiesRequest(project="proj", allow_cache=True))
        after = http_scrape(port)
        calls = "feast_sqlreg_front_calls_total"
        assert after.value(calls, outcome="answered", **front) - before.value(
            calls, outcome="answered", **front) == 3
        assert after.value(calls, outcome="relayed", **front) - before.value(
            calls, outcome="relayed", **front) == 2
        lists = dict(method="list_protos", backend=backend)
        assert after.value(f"{CALLS}_count", **lists) - before.value(f"{CALLS}_count", **lists) == 2
        assert after.value("feast_sqlreg_front_connections_total", **front) >= 1
        assert after.get("feast_sqlreg_registry_info", backend=backend,
                         registry=store.registry.metrics_label) == 1
    finally:
        channel.close()
        server.stop(None)
        store.registry.close()
    with pytest.raises(OSError):
        http_scrape(port)
    assert scrape().get("feast_sqlreg_front_connections_total", port=server.port) is None


def _feature_store(reg, tmp_path):
    """A FeatureStore of a repository in tmp_path on reg's database."""
    from feast import FeatureStore

    (tmp_path / "feature_store.yaml").write_text(
        "project: proj\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {reg.registry_config.path}\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    return FeatureStore(repo_path=str(tmp_path))


@pytest.mark.parametrize("value", ["http", "-1", "65536", "80.5"])
def test_a_bad_metrics_port_is_refused_before_anything_starts(value, make_registry, tmp_path,
                                                               monkeypatch):
    from feast_sqlreg import server as native_server

    store = _feature_store(make_registry("native"), tmp_path)
    port = free_port()
    monkeypatch.setenv("FEAST_SQLREG_METRICS_PORT", value)
    try:
        with pytest.raises(errors.ConfigurationError, match="FEAST_SQLREG_METRICS_PORT must be"):
            native_server.start_server(store, port, wait_for_termination=False)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        store.registry.close()


def test_a_metrics_port_in_use_is_named(make_registry, tmp_path, monkeypatch):
    from feast_sqlreg import server as native_server

    store = _feature_store(make_registry("native"), tmp_path)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        monkeypatch.setenv("FEAST_SQLREG_METRICS_PORT", str(taken.getsockname()[1]))
        try:
            with pytest.raises(OSError, match="FEAST_SQLREG_METRICS_PORT"):
                native_server.start_server(store, 0, wait_for_termination=False)
        finally:
            store.registry.close()


def test_feast_serve_registry_cli_serves_metrics(tmp_path, monkeypatch):
    """The real `feast serve_registry` (the demo repository: SQLite)."""
    from feast.protos.feast.registry import RegistryServer_pb2_grpc as pb_grpc

    from test_cli import END, START, _demo, _serve, _stop, feast

    repo = tmp_path / "repo"
    _demo().make_repo(repo, "sql", START, END)
    feast(repo, "apply")
    port, metrics = free_port(), free_port()
    monkeypatch.setenv("FEAST_SQLREG_METRICS_PORT", str(metrics))
    proc, log = _serve(repo, ["serve_registry", "--port", str(port)],
                       lambda: http_scrape(metrics) is not None)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RegistryServerStub(channel)
            get = pb.GetEntityRequest(name="driver", project="demo", allow_cache=True)
            # Relayed until the front's table is in; then answered by the front.
            deadline = time.monotonic() + 20
            while http_scrape(metrics).value("feast_sqlreg_front_calls_total",
                                             outcome="answered", port=port) == 0:
                assert time.monotonic() < deadline, "no Get answered by the front in 20 s"
                assert stub.GetEntity(get).spec.name == "driver"
                time.sleep(0.1)
        s = http_scrape(metrics)
        assert s.get("feast_sqlreg_registry_info", backend="sqlite", registry="demo") == 1
        assert s.get("feast_sqlreg_change_feed_healthy", backend="sqlite", registry="demo") == 1
        assert s.get("feast_sqlreg_front_connections_total", port=port) >= 1
    finally:
        _stop(proc)
    assert f"metrics on port {metrics}" in log.read_text()


# ---- feast serve --metrics: multiprocess files -----------------------------------

WORKERS = """
import os, sys, time, urllib.request
from feast_sqlreg import _metrics
import feast_sqlreg._sqlregistry
assert "prometheus_client" not in sys.modules, "feast_sqlreg imported prometheus_client"
# Feast loads feast.metrics, which sets PROMETHEUS_MULTIPROC_DIR (a
# temporary directory of its own) before it imports prometheus_client; the
# start-up hook must not import it first, or Feast's metrics would stay in
# memory, unseen by its metrics server.
from feast import FeatureStore
import feast.metrics
import prometheus_client, prometheus_client.values as values
assert values.ValueClass is not values.MutexValue, "prometheus_client left multiprocess mode"
repo, port = sys.argv[1], int(sys.argv[2])
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
store = FeatureStore(repo_path=repo)

def worker(calls):  # a gunicorn worker, forked
    pid = os.fork()
    if pid == 0:
        for _ in range(calls):
            store.get_entity("driver")
        time.sleep(0.8)  # the mirror writes every 0.2 s
        os._exit(0)
    os.waitpid(pid, 0)
    feast.metrics.mark_process_dead(pid)  # gunicorn's child_exit hook, under --metrics

def ours():
    return sum(b"feast_sqlreg_" in open(os.path.join(directory, f), "rb").read()
               for f in os.listdir(directory))

# Feast's metrics off (`feast serve` without --metrics): nobody reads the
# directory, nothing of ours is written to it.
for _ in range(2):
    store.get_entity("driver")
worker(3)
print("files while off", ours())
# In this process's default registry, whatever the mode.
text = prometheus_client.generate_latest().decode()
assert f'feast_sqlreg_registry_info{{backend="{store.registry._metrics_backend}"' in text, text
# What `feast serve --metrics` does before gunicorn forks its workers.
feast.metrics.start_metrics_server(store, port=port, start_resource_monitoring=False,
                                   start_freshness_monitoring=False)
for _ in range(4):
    store.get_entity("driver")
worker(5)
time.sleep(0.8)  # this process's mirror
with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
    sys.stdout.write(r.read().decode())
"""


def _repo_on(url, tmp_path):
    (tmp_path / "feature_store.yaml").write_text(
        "project: shop\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {url}\n  cache_ttl_seconds: 60\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([o.entity()])
    store.registry.close()
    return tmp_path


def test_feasts_metrics_server_shows_each_workers_registry_once(backend, databases, tmp_path):
    """Feast's own start_metrics_server (a process of its own that reads the
    multiprocess directory, as `feast serve --metrics` starts it), and
    forked workers using the registry. Each process writes its own calls:
    the parent's 2 + 4 and the second worker's 5; the first worker's 3 were
    made while Feast's metrics were off, when nothing is written; no call
    is counted twice across a fork."""
    repo = _repo_on(databases.new()[0], tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("prometheus_multiproc")}
    env["FEAST_SQLREG_METRICS_MIRROR_SECONDS"] = "0.2"
    out = subprocess.run([sys.executable, "-c", WORKERS, str(repo), str(free_port())],
                         capture_output=True, text=True, timeout=120, env=env,
                         cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stderr
    first, rest = out.stdout.split("\n", 1)
    assert first == "files while off 0"
    s = Scrape(rest)
    assert s.get(f"{CALLS}_count", method="get_entity", backend=backend) == 11
    assert s.get(f"{CALLS}_bucket", method="get_entity", backend=backend, le="+Inf") == 11
    assert s.get("feast_sqlreg_registry_info", backend=backend, registry="shop") == 1
    # Gauges: the live processes' (the parent alone; Feast's metrics process
    # reports nothing of the copies it inherited).
    assert s.get("feast_sqlreg_pool_capacity", backend=backend, registry="shop", pool="write") == 15
    assert s.get("feast_sqlreg_change_feed_healthy", backend=backend, registry="shop") == 1


def test_feast_serve_metrics_show_the_registry(tmp_path):
    """The real `feast serve` (gunicorn, a forked worker) in multiprocess
    mode, scraped by Feast's own metrics server function (what `feast serve
    --metrics` starts, on port 8000 always; here on a free port)."""
    import json

    from test_cli import END, START, _demo, _serve, _stop, feast

    repo = tmp_path / "repo"
    _demo().make_repo(repo, "sql", START, END)
    feast(repo, "apply")
    directory = tmp_path / "prom"
    directory.mkdir()
    port, metrics_port = free_port(), free_port()
    saved = dict(os.environ)
    os.environ.update(PROMETHEUS_MULTIPROC_DIR=str(directory),
                      PROMETHEUS_MULTIPROCESS_DIR=str(directory),
                      FEAST_SQLREG_METRICS_MIRROR_SECONDS="0.2")

    def health():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200

    try:
        proc, _ = _serve(repo, ["serve", "--host", "127.0.0.1", "-p", str(port)], health)
        metrics = subprocess.Popen(
            [sys.executable, "-c", "import sys; from feast.metrics import _run_metrics_server; "
             "_run_metrics_server(int(sys.argv[1]), sys.argv[2])", str(metrics_port),
             str(directory)], start_new_session=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        body = json.dumps({"features": ["driver_hourly_stats:conv_rate"],
                           "entities": {"driver_id": [1001]}}).encode()
        for _ in range(5):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features",
                                         data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200

        def served():
            try:
                s = http_scrape(metrics_port)
            except OSError:
                return False
            return s.get("feast_sqlreg_registry_info", backend="sqlite", registry="demo") == 1

        wait_for(served, within=20)
        s = http_scrape(metrics_port)
        calls = sum(v for (n, ls), v in s.samples.items()
                    if n == f"{CALLS}_count" and dict(ls)["backend"] == "sqlite")
        assert calls >= 5
        assert s.get("feast_sqlreg_change_feed_healthy", backend="sqlite", registry="demo") == 1
    finally:
        _stop(proc)
        os.killpg(metrics.pid, 15)
        metrics.wait(20)


