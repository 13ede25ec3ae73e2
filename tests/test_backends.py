"""What differs per database: URL forms, read_path with a read-only user,
large protos, pool bounds, sqlalchemy_config_kwargs, and the stock
registry's own schema checks on a database we created."""

import logging
import os
import threading
import time
from urllib.parse import quote

import pytest
from feast import Field
from feast.types import String

import objects as o
from conftest import BACKENDS, Databases, RawConnection, config, urls_of
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY, NativeSqlRegistry

# Created by scripts/databases.sh (make test).
RO_USER, RO_PASSWORD = "feast_ro", "ro p@ss:w%rd/x"


def db_name(url):
    return url.split("?", 1)[0].rsplit("/", 1)[1]


def admin(reg):
    """A RawConnection as the admin user, to the registry's database."""
    return RawConnection(reg)


def read_only_url(reg, backend):
    """A URL for the read-only user, granted SELECT on reg's database."""
    native = urls_of(reg)[0]
    if backend == "sqlite":
        return native + "?mode=ro"
    raw = admin(reg)
    name = db_name(native)
    if backend == "postgresql":
        raw.execute(f'GRANT CONNECT ON DATABASE "{name}" TO {RO_USER}')
        raw.execute(f"GRANT USAGE ON SCHEMA public TO {RO_USER}")
        raw.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {RO_USER}")
    else:
        for host in ("%", "localhost"):
            raw.execute(f"GRANT SELECT ON `{name}`.* TO '{RO_USER}'@'{host}'")
    raw.close()
    host = native.split("@", 1)[1].split("/", 1)[0]
    scheme = native.split("://", 1)[0]
    return f"{scheme}://{RO_USER}:{quote(RO_PASSWORD, safe='')}@{host}/{name}"


def test_read_path_with_a_read_only_user(make_registry, backend):
    writer = make_registry("native")
    writer.apply_entity(o.entity(), "proj")
    ro = read_only_url(writer, backend)
    # The read-only account really cannot write...
    with pytest.raises(errors.DatabaseError):
        Store(ro).apply(ENTITY, "proj", "x", b"", 1)
    # ...and serves every plain read of a registry whose writes go to path.
    reg = NativeSqlRegistry(config(urls_of(writer)[0], read_path=ro, schema_mode="verify"), "proj", None)
    assert [e.name for e in reg.list_entities("proj")] == ["driver"]
    assert reg.get_entity("driver", "proj").join_key == "driver_id"
    reg.apply_entity(o.entity(description="via path"), "proj")
    assert reg.get_entity("driver", "proj").description == "via path"
    assert [p.spec.name for p in reg.proto().projects] == ["proj"]


def test_plain_reads_go_to_read_path(make_registry, databases):
    """With read_path naming another database, plain reads see that one;
    writes and the reads they depend on use path."""
    primary = make_registry("native")
    primary.apply_entity(o.entity(), "proj")
    created = primary.get_entity("driver", "proj").created_timestamp
    replica = make_registry("native")  # an empty registry database
    reg = NativeSqlRegistry(
        config(urls_of(primary)[0], read_path=urls_of(replica)[0]), "proj", None
    )
    assert reg.list_entities("proj") == []  # served by read_path
    reg.apply_entity(o.entity(description="changed"), "proj")  # decided on path
    got = primary.get_entity("driver", "proj")
    assert got.description == "changed" and got.created_timestamp == created


def test_read_path_of_another_kind_is_refused(make_registry, tmp_path, backend):
    reg = make_registry("native")
    other = f"sqlite:///{tmp_path}/x.db" if backend != "sqlite" else "postgresql://u@127.0.0.1/x"
    with pytest.raises(errors.ConfigurationError, match="same kind of database"):
        Store(urls_of(reg)[0], other)


def _server_url_forms(reg, backend):
    """Every spelling a Feast user writes for the registry's database."""
    native = urls_of(reg)[0]
    rest = native.split("://", 1)[1]
    name = db_name(native)
    raw = admin(reg)
    if backend == "postgresql":
        sockdir = raw.execute("SHOW unix_socket_directories")[0][0].split(",")[0].strip()
        forms = [f"{s}://{rest}" for s in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")]
        forms.append(f"postgresql://postgres@/{name}?host={quote(sockdir, safe='')}")
        forms.append(f"postgresql://postgres@{quote(sockdir, safe='')}/{name}")
    elif backend == "mysql":
        socket = raw.execute("SELECT @@socket")[0][0]
        forms = [f"{s}://{rest}" for s in ("mysql", "mysql+pymysql", "mysql+mysqldb", "mariadb", "mariadb+pymysql")]
        forms.append(f"mysql://root@localhost/{name}?unix_socket={quote(socket, safe='')}")
    else:
        path = rest[1:]
        forms = [native, f"sqlite:///{os.path.relpath(path)}", native + "?timeout=5"]
    raw.close()
    return forms


def test_url_forms(make_registry, backend):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    for url in _server_url_forms(reg, backend):
        other = NativeSqlRegistry(config(url), "proj", None)
        assert [e.name for e in other.list_entities("proj")] == ["driver"], url


@pytest.mark.skipif("mysql" not in BACKENDS, reason="FEAST_SQLREG_BACKENDS excludes mysql")
def test_mysql_password_authentication(tmp_path):
    """PostgreSQL here trusts local connections; MariaDB checks passwords, so
    this is where a url-encoded password is really verified."""
    dbs = Databases("mysql", tmp_path)
    try:
        reg = NativeSqlRegistry(config(dbs.new()[0]), "proj", None)
        ro = read_only_url(reg, "mysql")
        assert Store(ro).get(ENTITY, "proj", "nope") is None
        wrong = ro.replace(quote(RO_PASSWORD, safe=""), "wrong%40pw")
        with pytest.raises(errors.OperationalError) as info:
            Store(wrong).get(ENTITY, "proj", "nope")
        assert info.value.code == 1045 and "wrong" not in str(info.value)
    finally:
        dbs.drop_all()


def test_large_protos_round_trip(make_registry, backend):
    """Protos well past MySQL's 64 KB BLOB limit, through both registries."""
    big = o.feature_view(
        schema=[Field(name=f"feature_{i:05d}_" + "x" * 40, dtype=String) for i in range(3000)]
    )
    size = len(big.to_proto().SerializeToString())
    assert size > 150_000  # MySQL's BLOB would keep 65,535 bytes of it
    reg = make_registry("native")
    reg.apply_feature_view(big, "proj")
    got = reg.get_feature_view(big.name, "proj")
    assert len(got.features) == 3000
    assert len(reg.proto().feature_views[0].SerializeToString()) >= size
    stock = make_registry("stock", urls_of(reg))
    assert len(stock.get_feature_view(big.name, "proj").features) == 3000


def test_stock_schema_checks_pass_on_our_schema(make_registry, caplog):
    """Feast's own verify and narrow-BLOB checks find nothing to say."""
    reg = make_registry("native")
    with caplog.at_level(logging.ERROR):
        make_registry("stock", urls_of(reg), schema_mode="verify")
    assert not [r for r in caplog.records if "BLOB" in r.getMessage()]


def blob_errors(caplog, make):
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        make()
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "BLOB" in r.getMessage()]


def test_narrow_blob_columns_are_reported_as_stock_does(make_registry, backend, caplog):
    """A MySQL registry whose proto columns are still 64 KB BLOBs (created
    before Feast's LONGBLOB fix) gets stock's ERROR from both registries,
    for the write and the read database; never on other backends, never
    after the migration, and never a refusal to start."""
    reg = make_registry("native")
    urls = urls_of(reg)
    raw = RawConnection(reg)
    if backend == "mysql":
        raw.execute("ALTER TABLE entities MODIFY entity_proto BLOB NOT NULL")
        raw.execute("ALTER TABLE feature_views MODIFY user_metadata BLOB NULL")
        raw.execute("CREATE TABLE unrelated (payload BLOB)")  # not a registry column
    stock = blob_errors(caplog, lambda: make_registry("stock", urls))
    native = blob_errors(caplog, lambda: make_registry("native", urls))
    both = blob_errors(caplog, lambda: make_registry("native", urls, read_path=urls[0]))
    if backend != "mysql":
        assert stock == native == both == []
        return
    assert len(stock) == 1 and "entities.entity_proto, feature_views.user_metadata" in stock[0]
    assert native == stock
    assert both == stock * 2  # path and read_path are checked apart
    raw.execute("ALTER TABLE entities MODIFY entity_proto LONGBLOB NOT NULL")
    raw.execute("ALTER TABLE feature_views MODIFY user_metadata LONGBLOB NULL")
    assert blob_errors(caplog, lambda: make_registry("native", urls)) == []
    raw.close()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "sqlite"])
def test_start_up_does_not_wait_for_other_writers(make_registry, backend):
    """A registry starting on an existing schema (schema_mode: auto, every
    replica of a fleet) runs no DDL: PostgreSQL's CREATE INDEX IF NOT
    EXISTS would queue behind any open write transaction on the table even
    though the index exists. (SQLite has one writer at a time by design.)"""
    first = make_registry("native")
    first.apply_entity(o.entity(), "proj")
    raw = RawConnection(first)
    raw.begin()
    raw.execute("UPDATE entities SET last_updated_timestamp = 1 WHERE entity_name = ?", ("driver",))
    started = []
    thread = threading.Thread(target=lambda: started.append(make_registry("native", urls_of(first))))
    thread.start()
    thread.join(10)
    while_open = bool(started)
    raw.rollback()
    raw.close()
    thread.join(30)
    assert started
    assert while_open, "the second registry waited for the open write transaction"


CONNECT_ARGS = {
    "sqlite": {"timeout": 5, "check_same_thread": False},
    "postgresql": {"connect_timeout": 5, "application_name": "fsr_connect_args"},
    "mysql": {"connect_timeout": 5, "charset": "utf8mb4"},
}


def test_sqlalchemy_config_kwargs(databases, backend, caplog):
    url = databases.new()[0]
    kwargs = {
        "pool_size": 2,
        "max_overflow": 1,
        "pool_timeout": 5,
        "pool_recycle": 3600,
        "pool_pre_ping": True,
        "connect_args": CONNECT_ARGS[backend],
        "echo": False,
        "isolation_level": "SERIALIZABLE",  # no meaning here: warned about once
    }
    with caplog.at_level(logging.WARNING, logger="feast_sqlreg"):
        regs = [NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=kwargs), "proj", None) for _ in range(2)]
    warned = [r for r in caplog.records if "isolation_level" in r.getMessage()]
    assert len(warned) <= 1  # once per process (an earlier test may have taken it)
    regs[0].apply_entity(o.entity(), "proj")
    assert [e.name for e in regs[1].list_entities("proj")] == ["driver"]
    if backend == "postgresql":
        raw = RawConnection(regs[0])
        names = raw.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = ?", (db_name(url),)
        )
        raw.close()
        assert ("fsr_connect_args",) in [tuple(n) for n in names]
    bad = dict(kwargs, connect_args={"no_such_option": 1})
    with pytest.raises(errors.ConfigurationError, match="no_such_option"):
        NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=bad), "proj", None)


def test_pool_never_exceeds_its_size(make_registry, backend):
    """16 threads share a pool of 3 connections: the server never sees more
    than 3 sessions from it, and every call returns the right answer. (No
    overflow here: a closed overflow session lingers on the server for a
    moment, which would blur the count.)"""
    reg = make_registry("native")
    for i in range(5):
        reg.apply_entity(o.entity(name=f"e{i}"), "proj")
    store = Store(urls_of(reg)[0], pool_size=3, max_overflow=0, pool_timeout=30)
    raw = RawConnection(reg)
    name = db_name(urls_of(reg)[0])
    seen, failures = [], []

    def sessions():
        if backend == "postgresql":
            return raw.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND application_name = 'feast_sqlreg'",
                (name,),
            )[0][0]
        if backend == "mysql":
            return raw.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
                (name,),
            )[0][0]
        return 0

    def work(t):
        for i in range(100):
            data = store.get(ENTITY, "proj", f"e{(t + i) % 5}")
            if data is None or f"e{(t + i) % 5}".encode() not in data:
                failures.append((t, i))

    # The registry's own sessions (its writes, its change poller: one or
    # two, as their timing falls) would blur the count: closed, and gone
    # from the server, before the threads start.
    reg.close()
    deadline = time.monotonic() + 5
    while sessions() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sessions() == 0
    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        n = sessions()
        if n > 3:
            # A session the pool closed (a stale or broken connection it
            # replaced) stays in the server's process list for a moment
            # after the client let it go: look again before counting it.
            time.sleep(0.05)
            n = sessions()
        seen.append(n)
    for t in threads:
        t.join()
    raw.close()
    assert failures == []
    assert max(seen, default=0) <= 3
    if backend != "sqlite":
        assert max(seen) >= 1  # the count does see the pool's sessions


def test_tls_options_reach_the_client_library(make_registry, backend):
    """The local servers run without TLS: asking for it must fail with a
    clear error, and turning it off must work, so the option got through."""
    if backend == "sqlite":
        with pytest.raises(errors.ConfigurationError, match="unknown option 'sslmode'"):
            Store(urls_of(make_registry("native"))[0] + "?sslmode=require").get(ENTITY, "p", "n")
        return
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    off, on = ("sslmode=disable", "sslmode=require") if backend == "postgresql" else (
        "ssl_mode=DISABLED",
        "ssl_mode=REQUIRED",
    )
    url = urls_of(reg)[0]
    assert Store(f"{url}?{off}").get(ENTITY, "proj", "driver") is not None
    with pytest.raises(errors.OperationalError, match="(?i)ssl|tls"):
        Store(f"{url}?{on}").get(ENTITY, "proj", "driver")
