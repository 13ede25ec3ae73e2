"""write_engine and read_engine: stock's SQLAlchemy engines on a native
registry, made on first use (feast_sqlreg._engines).

The registries here are given the URLs stock is given (urls_of()[1]:
``mysql+pymysql://``, ``postgresql+psycopg://``): an engine is made from the
configured URL exactly as stock makes it, so a bare ``mysql://`` would need
mysqlclient, as it does for stock."""

import logging
import threading

import pytest
from feast.infra.registry.sql import entities as entities_table
from feast.infra.registry.sql import metadata as stock_metadata
from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto
from sqlalchemy import event, insert, inspect, make_url, select

import objects as o
from conftest import config, urls_of as both_urls
from feast_sqlreg import _engines


def urls_of(reg):
    """A (URL, URL) pair naming reg's database the way stock is told."""
    stock = both_urls(reg)[1]
    return stock, stock


@pytest.fixture
def new_registry(make_registry, databases):
    """new_registry(urls=None, **config): a native registry on a new database
    (or on urls), configured with stock's URL form."""

    def make(urls=None, **kw):
        if urls is None:
            stock = databases.new()[1]
            urls = (stock, stock)
        return make_registry("native", urls, **kw)

    return make


def watch_disposal(engine):
    """A list that gets the engine when SQLAlchemy disposes it."""
    disposed = []
    event.listen(engine, "engine_disposed", disposed.append)
    return disposed


def test_no_engine_until_one_is_read(new_registry):
    reg = new_registry()
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.get_entity("driver", "proj")
    reg.list_feature_views("proj", allow_cache=True)
    reg.refresh()
    reg.proto()
    assert _engines._SLOT not in vars(reg)
    assert _engines.made(reg) == []

    engine = reg.write_engine
    assert _engines.made(reg) == [engine]
    assert reg.write_engine is engine
    assert reg.read_engine is engine  # no read_path: one engine, as stock
    assert _engines.made(reg) == [engine]
    assert engine.url == make_url(reg.registry_config.path)


def test_engines_are_made_as_stock_makes_them(new_registry, make_registry):
    kwargs = {"echo": False, "pool_pre_ping": True, "pool_recycle": 1800}
    reg = new_registry(sqlalchemy_config_kwargs=kwargs)
    stock = make_registry("stock", urls_of(reg), sqlalchemy_config_kwargs=kwargs)
    for ours, theirs in ((reg.write_engine, stock.write_engine), (reg.read_engine, stock.read_engine)):
        assert ours.url == theirs.url
        assert ours.dialect.name == theirs.dialect.name
        assert ours.driver == theirs.driver
        assert type(ours.pool) is type(theirs.pool)
        assert ours.pool._pre_ping is theirs.pool._pre_ping is True
        assert ours.pool._recycle == theirs.pool._recycle == 1800


def test_write_engine_sees_the_native_registry(new_registry):
    reg = new_registry()
    reg.apply_entity(o.entity(description="native"), "proj")
    engine = reg.write_engine
    assert set(stock_metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        rows = conn.execute(
            select(entities_table.c.entity_name, entities_table.c.project_id, entities_table.c.entity_proto)
        ).fetchall()
    assert [(name, project) for name, project, _ in rows] == [("driver", "proj")]
    assert EntityProto.FromString(rows[0][2]).spec.description == "native"


def test_a_row_written_through_write_engine_is_read_natively(new_registry):
    reg = new_registry()
    reg.apply_entity(o.entity(), "proj")
    rider = o.entity(name="rider", join_keys=["rider_id"], description="from SQLAlchemy")
    proto = rider.to_proto()
    proto.spec.project = "proj"
    with reg.write_engine.begin() as conn:
        conn.execute(
            insert(entities_table).values(
                entity_name="rider",
                project_id="proj",
                last_updated_timestamp=1,
                entity_proto=proto.SerializeToString(),
            )
        )
    assert reg.get_entity("rider", "proj").description == "from SQLAlchemy"
    reg.refresh()
    assert sorted(e.name for e in reg.list_entities("proj", allow_cache=True)) == ["driver", "rider"]


def test_read_engine_points_at_read_path(new_registry):
    primary = new_registry()
    primary.apply_entity(o.entity(), "proj")
    replica = new_registry()  # another, empty, registry database
    read_path = urls_of(replica)[0]
    reg = new_registry(urls_of(primary), read_path=read_path)
    assert reg.read_engine is not reg.write_engine
    assert reg.write_engine.url == make_url(reg.registry_config.path)
    assert reg.read_engine.url == make_url(reg.registry_config.read_path)
    name = entities_table.c.entity_name
    with reg.write_engine.connect() as conn:
        assert conn.execute(select(name)).scalars().all() == ["driver"]
    with reg.read_engine.connect() as conn:
        assert conn.execute(select(name)).scalars().all() == []
    assert len(_engines.made(reg)) == 2

    # read_path naming path itself: two engines all the same, as stock.
    same = new_registry(urls_of(primary), read_path=urls_of(primary)[0])
    assert same.read_engine is not same.write_engine
    assert same.read_engine.url == same.write_engine.url


def test_close_disposes_the_engines(new_registry):
    primary = new_registry()
    reg = new_registry(urls_of(primary), read_path=urls_of(primary)[0])
    write, read = reg.write_engine, reg.read_engine
    write_disposed, read_disposed = watch_disposal(write), watch_disposal(read)
    for engine in (write, read):
        with engine.connect() as conn:
            conn.execute(select(entities_table.c.entity_name)).fetchall()
        assert engine.pool.checkedin() == 1  # a pooled, open connection
    reg.close()
    assert write_disposed == [write] and read_disposed == [read]
    assert write.pool.checkedin() == read.pool.checkedin() == 0
    assert _engines.made(reg) == []


def test_close_without_engines_makes_none(new_registry):
    reg = new_registry()
    reg.close()
    assert _engines.made(reg) == []
    assert _engines._SLOT not in vars(reg)


def test_threads_get_one_engine(new_registry):
    reg = new_registry()
    barrier = threading.Barrier(8)
    got = []

    def read():
        barrier.wait()
        got.append(reg.write_engine)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in got}) == 1
    assert _engines.made(reg) == [got[0]]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://feast:s3cr%40t-pw@db.example:5432/registry",
        "mysql+pymysql://feast:s3cr%40t-pw@db.example:3306/registry",
    ],
)
def test_no_password_in_reprs_or_logs(url, caplog):
    """Engines are made without connecting; neither they nor the holder show
    the password, nor does anything logged while making and disposing them."""
    engines = _engines.Engines(config(url, read_path=url))
    with caplog.at_level(logging.DEBUG):
        shown = [repr(engines), repr(engines.write), repr(engines.read), str(engines.write.url)]
        shown.append(repr(engines))  # now that both are made
        engines.dispose()
    assert "***" in shown[1]
    for text in shown + [r.getMessage() for r in caplog.records]:
        assert "s3cr" not in text


def test_a_replaced_blob_check_gets_the_engines_as_stock_calls_it(new_registry, databases):
    """Stock calls _warn_if_narrow_blob_columns(engine) with write_engine,
    then read_engine when it is another engine. A subclass that replaces
    it is called the same way (the engines are made for it); the built-in
    check goes through the native store and makes none (the test above)."""
    from feast_sqlreg.registry import NativeSqlRegistry

    calls = []

    class Audited(NativeSqlRegistry):
        def _warn_if_narrow_blob_columns(self, engine):
            calls.append(engine)

    stock_url = databases.new()[1]
    reg = Audited(config(stock_url), "proj", None)
    assert calls == [reg.write_engine]
    calls.clear()
    both = Audited(config(stock_url, read_path=stock_url), "proj", None)
    assert calls == [both.write_engine, both.read_engine] and calls[0] is not calls[1]
    for r in (reg, both):
        r.close()
    # The built-in one keeps stock's signature, and runs Feast's own check.
    NativeSqlRegistry._warn_if_narrow_blob_columns(both.write_engine)
