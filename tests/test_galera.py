"""The native registry on a MariaDB Galera cluster (galera-4): three
private nodes on this machine (faultdb.GaleraCluster), writers on every
node, and a node killed under writers.

Galera certifies a transaction at COMMIT against the ones other nodes
committed meanwhile and aborts the loser (error 1213, as an InnoDB
deadlock), possibly in the middle of a statement. What must hold: every
acknowledged write is on every node, and what reaches a caller is the
registry's answer or, where the outcome of a write cannot be known (its
node died under it), an error that says so.

`make test-ha` runs this file; so does `make test` (about a minute)."""

import multiprocessing
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import objects as o
from conftest import BACKENDS, config
from faultdb import GaleraCluster, check_writer_logs
from feast_sqlreg.registry import NativeSqlRegistry, open_store

pytestmark = [
    pytest.mark.skipif("mysql" not in BACKENDS, reason="this build has no MySQL backend"),
    pytest.mark.skipif(shutil.which("mariadbd") is None, reason="no MariaDB server here"),
    pytest.mark.xdist_group("galera"),
]

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def interval(i):
    return BASE + timedelta(hours=i), BASE + timedelta(hours=i + 1)


@pytest.fixture(scope="module")
def cluster():
    c = GaleraCluster(3)
    try:
        c.start()
        yield c
    finally:
        c.close()


@pytest.fixture
def database(cluster):
    """A new database on the cluster: its URL on each node."""
    name = f"fsr_{uuid.uuid4().hex[:12]}"
    cluster.new_database(name)
    return [node.url(name) for node in cluster.nodes]


def _writer(url, start, count, barrier, out):
    """One `feast materialize`-like job: its own registry on one node,
    recording intervals start..start+count-1 on the one view, once every
    writer is ready (Feast's import takes seconds: without the barrier the
    writers would hardly overlap). Puts (acknowledged interval numbers,
    [error texts]) on out."""
    done, failed = [], []
    reg = NativeSqlRegistry(config(url), "proj", None)
    try:
        fv = reg.get_feature_view("driver_hourly_stats", "proj")
        barrier.wait(120)
        for i in range(start, start + count):
            try:
                reg.apply_materialization(fv, "proj", *interval(i))
                done.append(i)
            except Exception as e:  # reported by the test
                failed.append(f"{type(e).__name__}: {e}")
    finally:
        try:
            reg.close()
        except Exception as e:  # reported by the test
            failed.append(f"close: {type(e).__name__}: {e}")
        out.put((done, failed))


def _run_writers(urls, processes, per_process):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(processes)
    procs = [ctx.Process(target=_writer,
                         args=(urls[p % len(urls)], p * per_process, per_process, barrier, out))
             for p in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"a writer hung or died (exit status {p.exitcode})"
    done = sorted(i for d, _ in results for i in d)
    failed = [f for _, f in results for f in f]
    return done, failed


def _intervals_on_every_node(urls):
    seen = []
    for url in urls:
        reg = NativeSqlRegistry(config(url), "proj", None)
        try:
            fv = reg.get_feature_view("driver_hourly_stats", "proj", allow_cache=False)
            seen.append(sorted(fv.materialization_intervals))
        finally:
            reg.close()
    return seen


def _conflicts(cluster):
    """Transactions Galera aborted so far, on all nodes: those that failed
    certification at COMMIT, and those a replicated one aborted (brute
    force) while they ran."""
    return sum(int(cluster.status(node, var)) for node in cluster.nodes
               for var in ("wsrep_local_cert_failures", "wsrep_local_bf_aborts"))


def test_writers_on_every_node_lose_nothing_and_see_no_conflict(cluster, database):
    """8 processes x 25 materializations of one view, spread over the three
    nodes: the row every writer updates is the hottest row there is. Every
    call succeeds (the conflicts, which the test makes sure happened, are
    retried), and every interval is on every node."""
    first = NativeSqlRegistry(config(database[0]), "proj", None)
    first.apply_feature_view(o.feature_view(), "proj")
    first.close()
    before = _conflicts(cluster)
    done, failed = _run_writers(database, processes=8, per_process=25)
    conflicts = _conflicts(cluster) - before
    print(f"{conflicts} transactions aborted by Galera and retried")
    assert conflicts > 0
    assert failed == [], "\n".join(sorted(set(failed)))
    assert done == list(range(200))
    want = [interval(i) for i in range(200)]
    for got in _intervals_on_every_node(database):
        assert got == want


def _writer_until(url, first, ready, stop, out):
    """A writer that records intervals first, first+1, ... until stop is
    set (putting None on ready after its first success); puts [(interval,
    acknowledged, monotonic time, error text)] on out."""
    log = []
    reg = NativeSqlRegistry(config(url), "proj", None)
    try:
        fv = reg.get_feature_view("driver_hourly_stats", "proj")
        i = first
        while not stop.is_set():
            try:
                reg.apply_materialization(fv, "proj", *interval(i))
                if not any(ok for _, ok, _, _ in log):
                    ready.put(None)
                log.append((i, True, time.monotonic(), ""))
            except Exception as e:  # reported by the test
                log.append((i, False, time.monotonic(), f"{type(e).__name__}: {e}"))
                time.sleep(0.05)
            i += 1
    finally:
        try:
            reg.close()
        except Exception as e:  # shown by check_writer_logs, not as a bare exit status
            log.append((None, False, time.monotonic(), f"close: {type(e).__name__}: {e}"))
        out.put(log)


def test_a_node_killed_under_writers_loses_nothing(cluster, database):
    """Four writers, each with every node in its URL (?host=...&host=...,
    its own node first), one node killed (SIGKILL) under them: every
    acknowledged interval is on the nodes left; a call that fails says its
    outcome is unknown; every writer's calls succeed again within 5 s of
    the cluster's eviction of the dead node (its failover)."""
    name = database[0].rsplit("/", 1)[1]
    hosts = [f"127.0.0.1:{node.port}" for node in cluster.nodes]
    first = NativeSqlRegistry(config(database[0]), "proj", None)
    first.apply_feature_view(o.feature_view(), "proj")
    first.close()
    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    urls = []
    for w in range(4):
        order = hosts[w % 3:] + hosts[:w % 3]
        urls.append(f"mysql://root@/{name}?" + "&".join(f"host={h}" for h in order)
                    + "&connect_timeout=2")
    procs = [ctx.Process(target=_writer_until, args=(urls[w], w * 100000, ready, stop, out))
             for w in range(4)]
    for p in procs:
        p.start()
    victim = cluster.nodes[2]
    try:
        for _ in procs:  # every writer has written once (Feast's import takes seconds)
            ready.get(timeout=120)
        time.sleep(2)
        killed_at = time.monotonic()
        victim.kill()
        # Writes on the nodes left stall until they evict the dead one
        # (evs.suspect_timeout, evs.inactive_timeout: faultdb.GaleraCluster);
        # the cluster is whole again, a primary component of two, from then.
        while cluster.status(cluster.nodes[0], "wsrep_cluster_size") != "2":
            assert time.monotonic() - killed_at < 30, "the cluster did not evict the dead node"
            time.sleep(0.05)
        evicted_at = time.monotonic()
        print(f"the nodes left evicted the dead one {evicted_at - killed_at:.2f} s after the kill")
        time.sleep(max(0.0, killed_at + 8 - time.monotonic()))
    finally:
        stop.set()
    logs = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"a writer hung or died (exit status {p.exitcode})"
    left = [u for u, node in zip(database, cluster.nodes) if node is not victim]
    stored = _intervals_on_every_node(left)
    cluster.rejoin(victim)  # the next tests want three nodes
    assert _intervals_on_every_node(database[2:])[0] == stored[0]  # and it caught up
    assert stored[0] == stored[1]
    # What the registry owes from there: calls succeed again within 5 s
    # (as after a PostgreSQL standby's promotion).
    check_writer_logs(logs, set(stored[0]), evicted_at, "the eviction", interval)


def test_change_feed_reads_each_row_once_despite_galeras_id_steps(cluster, database):
    """Galera gives each node every third auto-increment id, so after a
    burst of writes on one node two ids in three are holes for
    HOLE_SECONDS. The feed reads each change row once: the holes cost a
    COUNT per look, not a re-read of every row since the oldest hole."""
    import pymysql

    from feast_sqlreg._changes import ChangeFeed
    from feast_sqlreg._sqlregistry import Store

    node = cluster.nodes[0]
    conn = pymysql.connect(host="127.0.0.1", port=node.port, user="root")
    with conn.cursor() as cur:
        cur.execute("SELECT @@auto_increment_increment")
        assert cur.fetchone()[0] == 3  # wsrep_auto_increment_control, three nodes
    conn.close()
    writer = NativeSqlRegistry(config(database[0]), "proj", None)
    writer.apply_entity(o.entity("first"), "proj")
    with Store(database[1]) as store:
        feed = ChangeFeed(store)
        for i in range(300):
            writer.apply_entity(o.entity(f"e{i}"), "proj")
        deadline = time.monotonic() + 30
        seen = set()
        while len(seen) < 300:
            assert time.monotonic() < deadline, f"the feed saw {len(seen)} of 300 writes"
            seen |= {name for _, _, name in feed.poll() or ()}
            time.sleep(0.05)
        assert feed._holes, "no holes: the premise (ids in steps of 3) did not hold"
        read = feed.rows_read
        for _ in range(10):
            assert feed.poll() == set()
        assert feed.rows_read == read, "rows read again while holes were open"
    writer.close()


def _misses(write_url, read_url, rounds):
    """Writes on one node then reads on another, through one registry,
    while another writer keeps the nodes' appliers busy: how many reads
    missed the write just made."""
    import threading

    reg = NativeSqlRegistry(config(write_url, read_path=read_url), "proj", None)
    busy = NativeSqlRegistry(config(write_url), "proj", None)
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            busy.apply_entity(o.entity(f"load{i % 50}", description="x" * 20000 + str(i)), "proj")
            i += 1

    loader = threading.Thread(target=load)
    loader.start()
    missed = 0
    try:
        for i in range(rounds):
            reg.apply_entity(o.entity(f"e{i}", description=f"round {i}"), "proj")
            got = {e.name for e in reg.list_entities("proj", allow_cache=False)}
            missed += f"e{i}" not in got
    finally:
        stop.set()
        loader.join()
        reg.close()
        busy.close()
    return missed


def test_read_path_on_another_node_sees_its_own_writes(cluster, database):
    """read_path on another node: every read sees the write just made
    (the registry asks Galera for causal reads, wsrep_sync_wait=1).
    ?wsrep_sync_wait=0 shows what happens without (24 of 200 reads missed
    their write when this was written)."""
    without = _misses(database[0], database[1] + "?wsrep_sync_wait=0", 200)
    assert _misses(database[0], database[1], 200) == 0
    print(f"with wsrep_sync_wait=0: {without} of 200 reads missed the write")


def test_doctor_says_whether_the_user_may_flush_a_node(cluster, database):
    """On a Galera node the registry repairs a damaged table cache with
    FLUSH LOCAL TABLES, which needs RELOAD: the doctor says whether the
    registry's user has it."""
    import pymysql

    from feast_sqlreg import _doctor

    NativeSqlRegistry(config(database[0]), "proj", None).close()  # its schema
    name = database[0].rsplit("/", 1)[1]
    port = cluster.nodes[0].port
    user = f"u{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-galera-1'")
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
    finally:
        conn.close()
    seen = {}
    for who, url in (("root", database[0]),
                     (user, f"mysql://{user}:pw-galera-1@127.0.0.1:{port}/{name}")):
        cfg = config(url)
        store = open_store(cfg)
        try:
            seen[who] = {f.check: f for f in _doctor.check(store, cfg)}
        finally:
            store.close()
    assert "galera flush" in seen["root"], seen["root"]
    assert seen["root"]["galera flush"].level == _doctor.OK
    lacking = seen[user]["galera flush"]
    assert lacking.level == _doctor.WARNING
    assert "GRANT RELOAD" in lacking.fix
    assert "pw-galera-1" not in str(lacking)
