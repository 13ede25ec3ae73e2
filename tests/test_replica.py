"""read_path on real replicas (scripts/databases.sh runs a PostgreSQL hot
standby on port 5433, streaming from the server on 5432, and a private
MariaDB primary and GTID replica on 3307/3308): reads go to the replica,
and a process reads its own writes there (it waits for the replica to
replay them, up to replica_wait, then reads the primary).

One xdist group: a test pauses the standby's replay, which would only slow
the others down, but keeps timings honest."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from feast.errors import EntityNotFoundException

import feast_sqlreg.registry as native_registry
import objects as o
from conftest import BACKENDS, PG_ADMIN, Databases, _psycopg_dsn, _pymysql_args, config
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import NativeSqlRegistry

pytestmark = pytest.mark.xdist_group("standby")

STANDBY_PORT = int(os.environ.get("FEAST_SQLREG_PG_STANDBY_PORT", "5433"))
MY_PRIMARY = os.environ.get("FEAST_SQLREG_MYSQL_PRIMARY", "mysql://root@127.0.0.1:3307/")
MY_REPLICA = os.environ.get("FEAST_SQLREG_MYSQL_REPLICA", "mysql://root@127.0.0.1:3308/")


def standby(url):
    return url.replace(":5432/", f":{STANDBY_PORT}/")


def admin(port):
    import psycopg

    return psycopg.connect(_psycopg_dsn(standby(PG_ADMIN) if port != 5432 else PG_ADMIN), autocommit=True)


class Replicated:
    """A new database on a primary, seen on its replica: the PostgreSQL hot
    standby, or the private MariaDB pair (scripts/databases.sh)."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        self.name = f"fsr_{uuid.uuid4().hex[:12]}"
        if kind == "postgresql":
            self.dbs = Databases("postgresql", tmp_path)
            self.primary, _ = self.dbs.new()
            self.name = self.primary.rsplit("/", 1)[1]
            self.replica = standby(self.primary)
            with admin(STANDBY_PORT) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0], (
                    f"127.0.0.1:{STANDBY_PORT} is not a hot standby: run scripts/databases.sh"
                )
        else:
            self._my(MY_PRIMARY, f"CREATE DATABASE `{self.name}`")
            self.primary = MY_PRIMARY + self.name
            self.replica = MY_REPLICA + self.name
        for _ in range(500):
            if self.on_replica():
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"database {self.name} did not reach the replica in 5 s")

    @staticmethod
    def _my(url, sql):
        import pymysql

        conn = pymysql.connect(**_pymysql_args(url))
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()

    def on_replica(self):
        if self.kind == "postgresql":
            with admin(STANDBY_PORT) as conn:
                sql = "SELECT 1 FROM pg_database WHERE datname = %s"
                return conn.execute(sql, (self.name,)).fetchone() is not None
        return bool(self._my(MY_REPLICA, f"SHOW DATABASES LIKE '{self.name}'"))

    def replay(self, paused):
        """Stops or restarts the replica's replay of the primary's log."""
        if self.kind == "postgresql":
            with admin(STANDBY_PORT) as conn:
                conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
        else:
            self._my(MY_REPLICA, "STOP SLAVE SQL_THREAD" if paused else "START SLAVE SQL_THREAD")

    def drop(self):
        if self.kind == "postgresql":
            self.dbs.drop_all()
        else:
            self._my(MY_PRIMARY, f"DROP DATABASE IF EXISTS `{self.name}`")


@pytest.fixture(params=["postgresql", "mysql"])
def pair(request, tmp_path):
    """A Replicated database on each kind of replica."""
    if request.param not in BACKENDS:
        pytest.skip(f"FEAST_SQLREG_BACKENDS leaves {request.param} out")
    replicated = Replicated(request.param, tmp_path)
    yield replicated
    replicated.drop()


@pytest.fixture
def registries():
    made = []

    def make(primary, read, **kw):
        reg = NativeSqlRegistry(config(primary, read_path=read, **kw), "proj", None)
        made.append(reg)
        return reg

    make.made = made
    yield make
    for reg in made:
        reg.close()


def test_reads_go_to_the_replica_and_see_their_own_writes(pair, registries):
    reg = registries(pair.primary, pair.replica)
    for i in range(100):
        reg.apply_entity(o.entity(f"e{i}"), "proj")
        # The very next uncached read, from the standby, has the write.
        assert reg.get_entity(f"e{i}", "proj", allow_cache=False).name == f"e{i}"
        assert len(reg.list_entities("proj", allow_cache=False)) == i + 1
    stats = reg._store.replica_stats()
    print(stats)
    assert stats["written"] > 0
    assert stats["replayed"] >= stats["written"]  # every read waited for the standby...
    assert stats["fallbacks"] == 0  # ...and none had to go to the primary


def test_a_stalled_replica_falls_back_to_the_primary(pair, registries, monkeypatch):
    primary, read = pair.primary, pair.replica
    monkeypatch.setattr(native_registry, "REPLICA_WAIT_SECONDS", 0.3)
    writer = registries(primary, read)
    monkeypatch.setattr(native_registry, "REPLICA_WAIT_SECONDS", -1)  # never waits
    other = registries(primary, read)
    writer.apply_entity(o.entity("driver"), "proj")
    assert writer.get_entity("driver", "proj", allow_cache=False)
    pair.replay(paused=True)
    try:
        writer.apply_entity(o.entity("rider"), "proj")
        since = time.monotonic()
        # The writer waits 0.3 s for the standby, then reads the primary.
        assert writer.get_entity("rider", "proj", allow_cache=False).name == "rider"
        waited = time.monotonic() - since
        assert 0.3 <= waited < 2.0, waited
        assert writer._store.replica_stats()["fallbacks"] >= 1
        # A process that did not write reads the standby as it is: this is
        # what the writer would have seen without the wait.
        with pytest.raises(EntityNotFoundException):
            other.get_entity("rider", "proj", allow_cache=False)
    finally:
        pair.replay(paused=False)
    since = time.monotonic()
    while True:
        try:
            other.get_entity("rider", "proj", allow_cache=False)
            break
        except EntityNotFoundException:
            assert time.monotonic() - since < 5, "the standby did not catch up"
            time.sleep(0.01)


def test_a_registry_on_a_new_database_waits_for_the_replica_to_have_its_schema(pair, registries, monkeypatch):
    """The first registry on a brand-new database creates the tables on the
    primary and reads at once: the replica may not have replayed them yet.
    MariaDB's DDL commits outside a transaction; its position counts too."""
    monkeypatch.setattr(native_registry, "REPLICA_WAIT_SECONDS", 0.3)
    pair.replay(paused=True)
    try:
        reg = registries(pair.primary, pair.replica)  # creates the schema, then reads
        reg.apply_entity(o.entity("driver"), "proj")
        assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
        assert [p.name for p in reg.list_projects(allow_cache=False)] == ["proj"]
        assert reg._store.replica_stats()["fallbacks"] >= 1  # read the primary meanwhile
    finally:
        pair.replay(paused=False)
    # Caught up, the replica serves the reads again, and has it all.
    assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
    assert reg._store.replica_stats()["replayed"] >= reg._store.replica_stats()["written"] > 0


def test_other_replicas_of_the_registry_see_writes_through_the_replica(pair, registries):
    """Change detection reads the change log from read_path: a cached
    registry on the replica sees another registry's write within a second."""
    primary, read = pair.primary, pair.replica
    writer = registries(primary, read, cache_ttl_seconds=600)
    reader = registries(primary, read, cache_ttl_seconds=600)
    writer.apply_entity(o.entity("driver"), "proj")
    reader.refresh()
    since = time.monotonic()
    writer.apply_entity(o.entity("rider"), "proj")
    while "rider" not in {e.name for e in reader.list_entities("proj", allow_cache=True)}:
        assert time.monotonic() - since < 1.0, "not seen through the replica within 1 s"
        time.sleep(0.01)
    print(f"seen through the {pair.kind} replica after {time.monotonic() - since:.3f} s")


def test_the_replica_is_a_real_replica(pair):
    if pair.kind == "postgresql":
        with Store(pair.replica) as st:
            with pytest.raises(errors.DatabaseError, match="read-only transaction"):
                st.create_schema()
        return
    import pymysql

    conn = pymysql.connect(**_pymysql_args(MY_REPLICA), cursorclass=pymysql.cursors.DictCursor)
    with conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
        cur.execute("SELECT @@read_only AS ro")
        read_only = cur.fetchone()["ro"]
    conn.close()
    assert status["Slave_IO_Running"] == status["Slave_SQL_Running"] == "Yes"
    assert status["Using_Gtid"] == "Slave_Pos" and read_only == 1


def test_replica_wait_must_be_a_number_of_seconds(pair):
    with pytest.raises(errors.ConfigurationError, match="replica_wait"):
        Store(pair.primary, pair.replica, replica_wait=float("nan"))


def test_registry_server_front_reads_the_replica_and_its_own_writes(pair, tmp_path, monkeypatch):
    """`feast serve_registry` with a read_path: the native front answers
    uncached Gets itself, through the registry's own store, so a write made
    by this process is read back at once even while the replica's replay
    is paused (the store waits replica_wait, then reads the primary)."""
    import grpc
    from feast.protos.feast.registry import RegistryServer_pb2 as pb

    from test_front import served_store

    monkeypatch.setattr(native_registry, "REPLICA_WAIT_SECONDS", 0.3)
    store, server, channel, stub = served_store(tmp_path, pair.primary, read_path=pair.replica)

    def get(name):
        return stub.GetEntity(pb.GetEntityRequest(name=name, project="proj", allow_cache=False))

    try:
        store.registry.apply_entity(o.entity("first"), "proj")
        before = server.front.stats()
        assert get("first").spec.name == "first"
        pair.replay(paused=True)
        try:
            store.registry.apply_entity(o.entity("second"), "proj")
            assert get("second").spec.name == "second"  # this process's write, at once
            with pytest.raises(grpc.RpcError) as missing:
                get("never_written")
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            pair.replay(paused=False)
        after = server.front.stats()
        # Both finds came from the front's workers, not Feast's server; the
        # miss was relayed to Feast's server for its NOT_FOUND.
        assert after["fetched"] - before["fetched"] == 2
        assert after["relayed"] - before["relayed"] == 1
        assert store.registry._store.replica_stats()["fallbacks"] >= 1  # read the primary
        # The registry closed before the server stops: its store stays open
        # for the front's workers until the front stops.
        store.registry.close()
        assert get("first").spec.name == "first"
    finally:
        channel.close()
        server.stop(None)
        store.registry.close()



@contextlib.contextmanager
def _throwaway_server_dir(prefix, user):
    """(directory, port) for a throwaway server run as user: a new directory
    that user owns (the tests run as root in CI, which initdb and mariadbd
    refuse to run as) and a free local port. Removed afterwards."""
    base = tempfile.mkdtemp(prefix=prefix)
    os.chmod(base, 0o755)  # for user to reach its own directory inside
    where = os.path.join(base, "server")
    os.makedirs(where, mode=0o700)
    if os.geteuid() == 0:
        os.chown(where, pwd.getpwnam(user).pw_uid, -1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        yield where, port
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def crash_recovered_postgres():
    """A throwaway PostgreSQL server that went through crash recovery (killed
    with SIGKILL after a write, then started again): a primary on which
    pg_last_wal_replay_lsn() is not NULL. Yields its admin URL."""
    import psycopg

    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with _throwaway_server_dir("fsr-crashed-", "postgres") as (where, port):
        data = os.path.join(where, "data")
        opts = f"-p {port} -k {where} -c listen_addresses=127.0.0.1 -c fsync=off"

        def run(*argv):
            done = subprocess.run(as_postgres + [f"{bindir}/{argv[0]}", *argv[1:]],
                                  capture_output=True, text=True)
            assert done.returncode == 0, f"{argv[0]} failed: {done.stderr}"

        def start():
            run("pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(where, "log"), "-w", "start")

        def kill():
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
            # Its backends leave when they see the postmaster gone; a new one
            # starts only once they have (shared memory still attached).
            for _ in range(500):
                if subprocess.run(["pgrep", "-f", data], capture_output=True).returncode != 0:
                    break
                time.sleep(0.01)
            for stale in [os.path.join(data, "postmaster.pid")] + glob.glob(f"{where}/.s.PGSQL.*"):
                os.unlink(stale)

        run("initdb", "-A", "trust", "-U", "postgres", "-D", data)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        try:
            start()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE written (x int); INSERT INTO written VALUES (1)")
            kill()
            start()
            yield url
        finally:
            subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                           capture_output=True)

@pytest.mark.skipif("postgresql" not in BACKENDS, reason="FEAST_SQLREG_BACKENDS leaves postgresql out")
def test_a_primary_after_crash_recovery_is_not_a_replica(crash_recovered_postgres, registries):
    """A read_path on a PostgreSQL primary is read as it is, even when that
    primary once replayed its log after a crash (pg_last_wal_replay_lsn()
    then keeps a position forever): no read waits for it, none goes to path."""
    import psycopg

    with psycopg.connect(crash_recovered_postgres, autocommit=True) as conn:
        assert conn.execute("SELECT pg_last_wal_replay_lsn() IS NOT NULL, pg_is_in_recovery()").fetchone() == (
            True,
            False,
        )
        conn.execute('CREATE DATABASE "reads"')
    dbs = Databases("postgresql", None)
    try:
        primary, _ = dbs.new()
        read = crash_recovered_postgres.rsplit("/", 1)[0] + "/reads"
        registries(read, None)  # an empty registry there
        reg = registries(primary, read)
        for i in range(5):
            reg.apply_entity(o.entity(f"e{i}"), "proj")
            since = time.monotonic()
            assert reg.list_entities("proj", allow_cache=False) == []  # read_path's, at once
            assert time.monotonic() - since < 0.5
        stats = reg._store.replica_stats()
        assert stats["written"] > 0 and stats["waits"] == 0 and stats["fallbacks"] == 0, stats
        assert len(registries(primary, None).list_entities("proj")) == 5
    finally:
        for made in registries.made:
            made.close()
        dbs.drop_all()



@pytest.fixture
def former_replica_mariadb():
    """A throwaway MariaDB server with a binary log that once was a replica:
    its @@gtid_slave_pos keeps an old position (0-1-3), as a replica keeps
    it after it was promoted to primary. Yields its admin URL."""
    import pymysql

    with _throwaway_server_dir("fsr-promoted-", "mysql") as (where, port):
        data, sock, log = (os.path.join(where, f) for f in ("data", "mariadbd.sock", "error.log"))
        done = subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={data}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        server = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", f"--datadir={data}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--socket={sock}",
             "--skip-name-resolve", "--server-id=2", "--log-bin=binlog", "--binlog-format=ROW",
             "--innodb-buffer-pool-size=16M", f"--log-error={log}"],
        )
        try:
            for _ in range(1000):
                try:
                    conn = pymysql.connect(unix_socket=sock, user="root", autocommit=True)
                    break
                except pymysql.err.OperationalError:
                    assert server.poll() is None, open(log).read()
                    time.sleep(0.01)
            else:
                raise AssertionError("the throwaway MariaDB did not start in 10 s")
            with conn.cursor() as cur:
                cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
                cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                cur.execute("SET GLOBAL gtid_slave_pos = '0-1-3'")
                cur.execute("CREATE DATABASE registry")
            conn.close()
            yield f"mysql://root@127.0.0.1:{port}/"
        finally:
            server.terminate()
            server.wait(30)

@pytest.mark.skipif("mysql" not in BACKENDS, reason="FEAST_SQLREG_BACKENDS leaves mysql out")
def test_a_promoted_mariadb_replica_reads_its_own_writes_at_once(former_replica_mariadb, registries):
    """A replica promoted to primary keeps its last @@gtid_slave_pos; its own
    writes go to its binary log under its own server id. Used as path and
    read_path (a fleet's two URLs after a failover, both naming the new
    primary), a read after a write needs no wait: the write is there."""
    url = former_replica_mariadb + "registry"
    reg = registries(url, url)
    for i in range(8):  # past the old replication position (sequence 3)
        reg.apply_entity(o.entity(f"e{i}"), "proj")
        since = time.monotonic()
        assert len(reg.list_entities("proj", allow_cache=False)) == i + 1
        assert time.monotonic() - since < 0.5
    stats = reg._store.replica_stats()
    assert stats["written"] > 3 and stats["waits"] == 0 and stats["fallbacks"] == 0, stats
