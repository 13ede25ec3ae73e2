"""Faults: servers that restart, die, stall or never answer, and a SQLite
file locked by another process. Every wait is bounded; the servers that get
hurt are private ones (faultdb.py), never the shared servers other test
workers use."""

import subprocess
import sys
import threading
import time
import uuid

import pytest

import faultdb
import objects as o
from conftest import BACKENDS, Databases, RawConnection, config
from feast_sqlreg import errors
from feast_sqlreg.registry import NativeSqlRegistry

RECOVERY_LIMIT = 2.0  # seconds from "server back" to calls working again


def needs(backend):
    return pytest.mark.skipif(backend not in BACKENDS, reason=f"{backend} not tested")


@pytest.fixture(scope="module")
def private_pg():
    if "postgresql" not in BACKENDS:
        pytest.skip("postgresql not tested")
    srv = faultdb.PrivatePostgres()
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def private_mysql():
    if "mysql" not in BACKENDS:
        pytest.skip("mysql not tested")
    srv = faultdb.PrivateMariaDB()
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def registry(url, **connect_args):
    kwargs = {"connect_args": connect_args} if connect_args else {}
    return NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=kwargs), "proj", None)


def fresh(server, **connect_args):
    return registry(server.new_database(f"fsr_{uuid.uuid4().hex[:12]}"), **connect_args)


class Load:
    """n threads, each applying entities with unique names (recording the
    acknowledged ones) and reading back the last one, until stop()."""

    def __init__(self, reg, n=4):
        self.reg = reg
        self.stopping = threading.Event()
        self.acked = [[] for _ in range(n)]
        self.ok_at = [[] for _ in range(n)]  # monotonic time of each success
        self.failures = [0] * n
        self.unexpected = []
        self.threads = [threading.Thread(target=self._work, args=(t,), daemon=True) for t in range(n)]
        for th in self.threads:
            th.start()

    def _work(self, t):
        i = 0
        last = None
        while not self.stopping.is_set():
            try:
                if last is None or i % 2 == 0:
                    name = f"t{t}_{i}"
                    self.reg.apply_entity(o.entity(name), "proj")
                    self.acked[t].append(name)
                    last = name
                else:
                    self.reg.get_entity(last, "proj", allow_cache=False)
                self.ok_at[t].append(time.monotonic())
            except errors.OperationalError:
                self.failures[t] += 1
                time.sleep(0.02)
            except Exception as e:  # anything else is a bug
                self.unexpected.append(repr(e))
                time.sleep(0.02)
            i += 1

    def recovered_after(self, since, timeout=10.0):
        """Seconds from since until every thread had a success, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            firsts = [next((x for x in ok if x > since), None) for ok in self.ok_at]
            if all(firsts):
                return max(firsts) - since
            time.sleep(0.02)
        return None

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join(15)
        assert not any(th.is_alive() for th in self.threads), "a registry thread hangs"


def survive(reg, fault):
    """Runs fault() (which returns once the server is back) under load;
    returns (recovery seconds, acknowledged writes, lost writes)."""
    load = Load(reg)
    try:
        time.sleep(0.5)
        assert all(load.ok_at), "no call succeeded before the fault"
        fault()
        back = time.monotonic()
        recovery = load.recovered_after(back)
        time.sleep(0.2)
    finally:
        load.stop()
    assert not load.unexpected, load.unexpected[:5]
    acked = {name for names in load.acked for name in names}
    stored = {e.name for e in reg.list_entities("proj", allow_cache=False)}
    lost = acked - stored
    print(f"recovery {recovery} s, {len(acked)} acknowledged, {len(lost)} lost, "
          f"{sum(load.failures)} failed calls")
    return recovery, acked, lost, load


def test_postgres_restart_loses_nothing(private_pg):
    reg = fresh(private_pg, connect_timeout=2)
    recovery, acked, lost, load = survive(reg, private_pg.restart)
    assert not lost, sorted(lost)[:10]
    assert recovery is not None and recovery < RECOVERY_LIMIT, recovery
    assert len(acked) > 4


def test_mariadb_killed_and_restarted_loses_nothing(private_mysql):
    reg = fresh(private_mysql, connect_timeout=2)

    def crash():
        private_mysql.kill()
        time.sleep(0.3)  # calls fail meanwhile
        private_mysql.start()

    recovery, acked, lost, load = survive(reg, crash)
    assert not lost, sorted(lost)[:10]
    assert sum(load.failures) > 0  # the fault was seen
    assert recovery is not None and recovery < RECOVERY_LIMIT, recovery


@pytest.mark.parametrize(
    "backend,url,message",
    [
        pytest.param("postgresql", "postgresql://postgres@127.0.0.1:{port}/db", "timeout",
                     marks=needs("postgresql")),
        pytest.param("mysql", "mysql://root@127.0.0.1:{port}/db", "handshake",
                     marks=needs("mysql")),
    ],
)
def test_silent_server_fails_within_connect_timeout(backend, url, message):
    server = faultdb.SilentServer()
    try:
        start = time.monotonic()
        with pytest.raises(errors.OperationalError, match=message):
            registry(url.format(port=server.port), connect_timeout=2)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    # libpq counts whole seconds, so 2 means between 1 and 2 s.
    assert 0.9 < elapsed < 4.0, elapsed
    assert server.accepted  # it did get as far as TCP


@needs("postgresql")
def test_postgres_connect_timeout_defaults_to_10_s():
    server = faultdb.SilentServer()
    try:
        start = time.monotonic()
        with pytest.raises(errors.OperationalError, match="timeout"):
            registry(f"postgresql://postgres@127.0.0.1:{server.port}/db")
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert 8.5 < elapsed < 13.0, elapsed


def stall(reg, server, read_timeout):
    """SIGSTOP the server while a thread is calling; returns the seconds
    until the call in flight failed and its error."""
    got = {}
    ready = threading.Event()

    def calls():
        while True:
            try:
                reg.get_entity("driver", "proj", allow_cache=False)
                ready.set()
            except Exception as e:
                got["error"] = e
                got["at"] = time.monotonic()
                return

    th = threading.Thread(target=calls, daemon=True)
    th.start()
    try:
        assert ready.wait(10)
        time.sleep(0.1)
        server.pause()
        stopped = time.monotonic()
        th.join(read_timeout * 3 + 10)
        assert not th.is_alive(), "the call in flight hangs"
    finally:
        server.resume()
    return got["at"] - stopped, got["error"]


def works_again(reg, within):
    deadline = time.monotonic() + within
    while True:
        try:
            return reg.get_entity("driver", "proj", allow_cache=False)
        except errors.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_postgres_stall_fails_within_read_timeout(private_pg):
    reg = fresh(private_pg, read_timeout=2, connect_timeout=2)
    reg.apply_entity(o.entity(), "proj")
    took, error = stall(reg, private_pg, 2)
    assert isinstance(error, errors.OperationalError), repr(error)
    # The statement in flight (or the pre-ping) misses read_timeout; when it
    # was a ping, the reconnect then misses connect_timeout.
    assert 1.5 < took < 4.5, (took, error)
    assert "read_timeout" in str(error) or "timeout" in str(error), str(error)
    works_again(reg, 2.0)


def test_postgres_read_timeout_message(private_pg):
    reg = fresh(private_pg, read_timeout=1, connect_timeout=5)
    reg.apply_entity(o.entity(), "proj")
    # No pre-ping in the way: the stalled statement itself reports.
    reg2 = NativeSqlRegistry(
        config(reg.registry_config.path + "?read_timeout=1",
               sqlalchemy_config_kwargs={"pool_pre_ping": False}),
        "proj", None)
    reg2.get_entity("driver", "proj", allow_cache=False)
    private_pg.pause()
    try:
        start = time.monotonic()
        with pytest.raises(errors.OperationalError, match=r"within 1\.0 s \(read_timeout\).*"
                           r"outcome is unknown"):
            reg2.apply_entity(o.entity(description="changed"), "proj")
        took = time.monotonic() - start
    finally:
        private_pg.resume()
    assert 0.9 < took < 2.5, took
    works_again(reg2, 2.0)


def test_mariadb_stall_fails_within_read_timeout(private_mysql):
    reg = fresh(private_mysql, read_timeout=2, connect_timeout=2)
    reg.apply_entity(o.entity(), "proj")
    took, error = stall(reg, private_mysql, 2)
    assert isinstance(error, errors.OperationalError), repr(error)
    assert 1.5 < took < 4.5, (took, error)
    works_again(reg, 2.0)


@needs("postgresql")
def test_postgres_statement_timeout_is_not_retried_nor_breaks_the_connection(tmp_path):
    dbs = Databases("postgresql", tmp_path)
    try:
        url = dbs.new()[0]
        reg = registry(url, options="-c statement_timeout=500")
        reg.apply_entity(o.entity(), "proj")
        raw = RawConnection(reg)
        sessions = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'feast_sqlreg' ORDER BY pid"
        )
        before = raw.execute(sessions)
        raw.lock_row("entities", "entity_name", "driver")
        start = time.monotonic()
        with pytest.raises(errors.OperationalError) as info:
            reg.apply_entity(o.entity(description="changed"), "proj")
        took = time.monotonic() - start
        raw.rollback()
        assert info.value.sqlstate == "57014"
        # Once, not retried 8 times as a lock conflict would be.
        assert took < 2.0, took
        # The connection was kept (the change poller may have opened another).
        assert set(before) <= set(raw.execute(sessions))
        reg.apply_entity(o.entity(description="changed"), "proj")
        assert reg.get_entity("driver", "proj", allow_cache=False).description == "changed"
        raw.close()
    finally:
        dbs.drop_all()


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("committed", flush=True)
"""


@needs("sqlite")
def test_sqlite_locked_by_another_process_waits_timeout(tmp_path):
    path = tmp_path / "registry.db"
    reg = registry(f"sqlite:///{path}?timeout=1")
    reg.apply_entity(o.entity(), "proj")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(errors.OperationalError, match="locked"):
            reg.apply_entity(o.entity("other"), "proj")
        took = time.monotonic() - start
        assert 0.9 < took < 3.0, took
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
        assert holder.wait(10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    reg.apply_entity(o.entity("other"), "proj")
    assert reg.get_entity("other", "proj", allow_cache=False).name == "other"
