"""What a caller sees when the server fails in the middle of a call, as on
HA databases (a Galera conflict, a failover): the server's own error,
with its number, and where the outcome of a write cannot be known, a
message that says so, never a bare "unknown error" or a plain
"connection closed" for a write that may have been committed."""

import os
import time
import uuid

import pytest

import objects as o
from conftest import BACKENDS, RawConnection, _psycopg_dsn, config
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY, NativeSqlRegistry

PG_ADMIN = os.environ.get("FEAST_SQLREG_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_STANDBY_PORT = int(os.environ.get("FEAST_SQLREG_PG_STANDBY_PORT", "5433"))


def _only(backend):
    return pytest.mark.skipif(backend not in BACKENDS, reason=f"this build has no {backend} backend")


@_only("mysql")
@pytest.mark.parametrize("backend", ["mysql"])
def test_mysql_error_while_rows_are_read_keeps_its_number(make_registry):
    """An error packet that arrives while a result's rows are read (a
    transaction aborted mid-result, an expression failing at some row) is
    recorded on the connection, not on the statement: it reaches the caller
    with its number and text, not as 'unknown error [code=0]'."""
    reg = make_registry("native")
    reg.apply_entity(o.entity("a"), "proj")
    reg.apply_entity(o.entity("b"), "proj")
    raw = RawConnection(reg)
    # entities becomes a view whose third row fails: the first rows are
    # sent before the server meets the error.
    raw.execute("RENAME TABLE entities TO entities_real")
    raw.execute("CREATE TABLE two_rows (k INT)")
    raw.execute("INSERT INTO two_rows VALUES (1), (1)")
    raw.execute("INSERT INTO entities_real SELECT 'c', project_id, last_updated_timestamp, "
                "entity_proto FROM entities_real WHERE entity_name = 'a'")
    raw.execute("CREATE VIEW entities AS SELECT entity_name, project_id, last_updated_timestamp,"
                " CASE WHEN entity_name = 'c' THEN (SELECT k FROM two_rows) ELSE entity_proto END"
                " AS entity_proto FROM entities_real")
    raw.close()
    with pytest.raises(errors.DatabaseError) as info:
        reg._store.list(ENTITY, "proj")
    assert info.value.code == 1242, info.value
    assert info.value.sqlstate == "21000"
    assert "Subquery returns more than 1 row" in str(info.value)
    assert "unknown error" not in str(info.value)


@_only("postgresql")
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_connection_lost_at_commit_says_the_outcome_is_unknown(make_registry):
    """The connection goes at COMMIT (here a deferred trigger terminates the
    session, as a failover or a killed server would): the caller gets an
    OperationalError saying the outcome is unknown, and the write is not
    retried, since it may have been committed."""
    reg = make_registry("native")
    reg.apply_entity(o.entity("first"), "proj")
    raw = RawConnection(reg)
    # A sequence counts the COMMITs tried: nextval is not rolled back.
    raw.execute("CREATE SEQUENCE commits_tried")
    raw.execute("""CREATE FUNCTION drop_session() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN PERFORM nextval('commits_tried');
                   PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$""")
    raw.execute("CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT OR UPDATE ON entities "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION drop_session()")
    with pytest.raises(errors.OperationalError) as info:
        reg.apply_entity(o.entity("second"), "proj")
    message = str(info.value)
    assert "lost at COMMIT" in message and "outcome is unknown" in message, message
    assert raw.execute("SELECT last_value FROM commits_tried")[0][0] == 1  # not retried
    raw.execute("DROP TRIGGER at_commit ON entities")
    raw.close()
    # The registry goes on: the broken connection was not pooled again.
    reg.apply_entity(o.entity("third"), "proj")
    assert {e.name for e in reg.list_entities("proj", allow_cache=False)} == {"first", "third"}


@pytest.mark.parametrize("scheme", [b for b in ("postgresql", "mysql") if b in BACKENDS])
def test_several_hosts_in_the_host_part_name_the_query_form(scheme):
    """libpq's netloc form host1:port1,host2:port2 is not SQLAlchemy's: the
    message shows the ?host= form that works, without the password."""
    url = f"{scheme}://u:s3cr3t@127.0.0.1:5440,127.0.0.1:5441/db"
    with pytest.raises(errors.ConfigurationError) as info:
        NativeSqlRegistry(config(url), "proj", None)
    message = str(info.value)
    assert f"{scheme}://user@/database?host=host1:port1&host=host2:port2" in message, message
    assert "s3cr3t" not in message


@_only("postgresql")
def test_postgres_hosts_in_the_query_with_read_write_find_the_primary():
    """?host=standby&host=primary&target_session_attrs=read-write: libpq
    skips the hot standby (scripts/databases.sh, port 5433) and the store
    writes on the primary; a dead first host is skipped the same way."""
    import psycopg

    name = f"fsr_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_psycopg_dsn(PG_ADMIN), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        user = PG_ADMIN.split("://", 1)[1].split("@", 1)[0]
        # libpq tries the next host only when a host cannot be reached or is
        # not read-write: a host without the database ends the attempt, so
        # the standby must have replayed the CREATE DATABASE first.
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"postgresql://{user}@127.0.0.1:{PG_STANDBY_PORT}/{name}").close()
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "the standby did not replay CREATE DATABASE"
                time.sleep(0.1)
        for first in (f"127.0.0.1:{PG_STANDBY_PORT}", "127.0.0.1:1"):
            url = (f"postgresql://{user}@/{name}?host={first}&host=127.0.0.1:5432"
                   f"&target_session_attrs=read-write&connect_timeout=5")
            via = f"via_{first.rsplit(':', 1)[1]}"
            with Store(url) as store:
                store.create_schema()  # refused by a standby
                store.apply(ENTITY, "proj", via, o.entity(via).to_proto().SerializeToString(), 1)
                names = [n for n, _ in store.list(ENTITY, "proj", -1, True)[0]]
            assert via in names
    finally:
        with psycopg.connect(_psycopg_dsn(PG_ADMIN), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
