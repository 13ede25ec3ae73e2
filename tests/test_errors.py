"""Bad input gets a clear Python exception naming what was wrong; never a
crash, a hang, a half-written registry, or a password in a message."""

import threading
import time

import pytest
from feast.infra.registry.sql import FeastRegistrySchemaError
from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto

import objects as o
from conftest import RawConnection, config, urls_of
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY, NativeSqlRegistry

SECRET = "s3cr%40t-pw"  # url-encoded "s3cr@t-pw"


@pytest.mark.parametrize(
    "url, exc, words",
    [
        ("nonsense", errors.ConfigurationError, "not a database URL"),
        ("", errors.ConfigurationError, "registry path is empty"),
        ("oracle://u:" + SECRET + "@db/x", errors.ConfigurationError, "no backend for 'oracle'"),
        ("sqlite://host/x.db", errors.ConfigurationError, "sqlite URLs take no host"),
        ("postgresql://u:" + SECRET + "@h:99999/db", errors.ConfigurationError, "port"),
        ("sqlite:///%zz.db", errors.ConfigurationError, "percent-escape"),
    ],
)
def test_bad_urls(url, exc, words):
    with pytest.raises(exc) as info:
        NativeSqlRegistry(config(url), "proj", None)
    assert words in str(info.value)
    assert "s3cr" not in str(info.value)
    assert isinstance(info.value, ValueError)  # configuration errors are ValueErrors


def test_unopenable_sqlite_path(tmp_path):
    with pytest.raises(errors.OperationalError, match="cannot open"):
        NativeSqlRegistry(config(f"sqlite:///{tmp_path}/no/such/dir/r.db"), "proj", None)


def test_password_never_shown():
    for scheme in ("postgresql", "mysql"):
        url = f"{scheme}://alice:{SECRET}@127.0.0.1:1/db?connect_timeout=1"
        try:
            store = Store(url)
        except errors.DatabaseError as e:  # this build has no such backend
            assert "s3cr" not in str(e)
            continue
        assert "s3cr" not in repr(store) and "***" in repr(store)
        assert "s3cr" not in store.url
        with pytest.raises(errors.OperationalError) as info:
            store.create_schema()
        assert "s3cr" not in str(info.value)


def test_schema_modes(databases):
    url = databases.new()[0]
    with pytest.raises(FeastRegistrySchemaError, match="missing tables: .*entities"):
        NativeSqlRegistry(config(url, schema_mode="verify"), "proj", None)
    store = Store(url)
    assert "entities" in store.missing_tables()
    # skip: no DDL, no check; the first operation says which table is missing.
    with pytest.raises(errors.ProgrammingError, match="feast_metadata|projects"):
        NativeSqlRegistry(config(url, schema_mode="skip"), "proj", None)
    NativeSqlRegistry(config(url), "proj", None)  # auto creates them
    assert store.missing_tables() == []
    NativeSqlRegistry(config(url, schema_mode="verify"), "proj", None)


def test_store_argument_errors(databases):
    store = Store(databases.new()[0])
    store.create_schema()
    with pytest.raises(ValueError, match="unknown object kind 99"):
        store.get(99, "p", "n")
    with pytest.raises(TypeError):
        store.get(ENTITY, None, "n")
    with pytest.raises(TypeError):
        store.apply(ENTITY, "p", "n", "not bytes", 0)


def test_corrupt_stored_object_is_named_and_not_overwritten(make_registry):
    """A stored row that is not a valid object: the update is refused with a
    message naming table, object and project, and the row is left alone."""
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    garbage = b"\xff\xff\xff\xff"
    raw = RawConnection(reg)  # as a broken tool might write it
    raw.execute("UPDATE entities SET entity_proto = ? WHERE entity_name = 'driver'", (garbage,))
    raw.close()
    store = reg._store
    with pytest.raises(errors.DataError, match="entities 'driver' in project 'proj'.*not a valid"):
        store.apply(ENTITY, "proj", "driver", o.entity().to_proto().SerializeToString(), 1)
    with pytest.raises(errors.DataError, match="entities row 'driver' in project 'proj'"):
        store.get(ENTITY, "proj", "driver")
    raw = RawConnection(reg)
    stored = raw.execute("SELECT entity_proto FROM entities WHERE entity_name = 'driver'")
    raw.close()
    assert bytes(stored[0][0]) == garbage


def test_pool_timeout_is_an_error_not_a_hang(make_registry):
    """With every connection busy, a caller waits pool_timeout, then gets an
    OperationalError that says what to tune; the busy call completes."""
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    store = Store(urls_of(reg)[0], pool_size=1, max_overflow=0, pool_timeout=0.5)
    blocker = RawConnection(reg)
    blocker.lock_row("entities", "entity_name", "driver")
    proto = o.entity(description="late").to_proto().SerializeToString()
    t = threading.Thread(target=store.apply, args=(ENTITY, "proj", "driver", proto, 1))
    t.start()  # takes the only connection, then waits for the row lock
    time.sleep(0.3)
    start = time.monotonic()
    with pytest.raises(errors.OperationalError, match="pool_size"):
        store.get(ENTITY, "proj", "driver")
    assert time.monotonic() - start < 2.5
    blocker.rollback()
    blocker.close()
    t.join(30)
    # The waiting write went through (merged: it keeps the stored created_timestamp).
    stored = EntityProto.FromString(store.get(ENTITY, "proj", "driver"))
    assert stored.spec.description == "late" and stored.meta.HasField("created_timestamp")


def test_exceptions_pickle_with_codes():
    import pickle

    e = errors.IntegrityError("dup")
    e.sqlstate, e.code = "23505", 1062
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is errors.IntegrityError and back.sqlstate == "23505" and back.code == 1062
