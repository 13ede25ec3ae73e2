"""PostgreSQL sessions that are not the registry's alone.

PgBouncer in transaction mode (scripts/databases.sh runs one on port 6435)
hands each transaction to any server connection, so a statement prepared
by name in one transaction may be missing, or its name taken, in the next.
Stock on psycopg 3 needs ``prepare_threshold: None`` in ``connect_args``
there; the same setting makes the native registry run every statement
unnamed. And a table altered under a statement a pooled connection
prepared ("cached plan must not change result type") costs one retry on a
new connection, not an error per pooled connection."""

import os
import threading

import pytest

import objects as o
from conftest import BACKENDS, PG_ADMIN, Databases, StockSqlRegistry, config
from feast_sqlreg import errors
from feast_sqlreg.registry import NativeSqlRegistry
from test_materialization import interval

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="this build has no PostgreSQL backend")

PGBOUNCER_PORT = int(os.environ.get("FEAST_SQLREG_PGBOUNCER_PORT", "6435"))
NO_PREPARE = {"connect_args": {"prepare_threshold": None}}


@pytest.fixture
def pg(tmp_path):
    dbs = Databases("postgresql", tmp_path)
    yield dbs
    dbs.drop_all()


def bounced(url):
    """The same database through PgBouncer."""
    return url.replace(":5432/", f":{PGBOUNCER_PORT}/")


def stock_url(url):
    return url.replace("postgresql://", "postgresql+psycopg://")


def test_pgbouncer_is_in_transaction_mode(pg):
    import psycopg

    url, _ = pg.new()
    with psycopg.connect(bounced(url).replace(url.rsplit("/", 1)[1], "pgbouncer"), autocommit=True,
                         prepare_threshold=None) as conn:
        modes = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
    assert modes["pool_mode"] == "transaction"


def test_named_statements_fail_behind_pgbouncer_with_a_message_that_says_what_to_do(pg):
    """Without the setting, the second registry's first statement lands on
    the server connection the first registry prepared its statements on."""
    url, _ = pg.new()
    first = NativeSqlRegistry(config(bounced(url)), "proj", None)
    try:
        with pytest.raises(errors.ProgrammingError) as caught:
            second = NativeSqlRegistry(config(bounced(url)), "proj", None)
            second.apply_entity(o.entity(), "proj")
            second.get_entity("driver", "proj", allow_cache=False)
        message = str(caught.value)
        assert "prepared statement" in message
        assert "PgBouncer" in message and "prepare_threshold" in message
    finally:
        first.close()


@pytest.mark.parametrize("how", ["connect_args", "url"])
def test_registry_behind_pgbouncer_in_transaction_mode(pg, how):
    """Two native registries and a stock one, through PgBouncer, with
    concurrent writers: every object and every materialization interval
    is there, read back directly from the server and through the pooler by
    stock."""
    url, _ = pg.new()
    if how == "url":
        native_url, kw = bounced(url) + "?prepare_threshold=None", {}
    else:
        native_url, kw = bounced(url), {"sqlalchemy_config_kwargs": NO_PREPARE}
    a = NativeSqlRegistry(config(native_url, **kw), "proj", None)
    b = NativeSqlRegistry(config(native_url, **kw), "proj", None)
    try:
        o.populate(a)
        fv = o.feature_view()
        failures = []

        def materialize(reg, start):
            try:
                for i in range(start, start + 15):
                    reg.apply_materialization(fv, "proj", *interval(i))
                    reg.get_feature_view(fv.name, "proj", allow_cache=False)
            except Exception as e:  # reported below
                failures.append(e)

        threads = [threading.Thread(target=materialize, args=(reg, k * 15))
                   for k, reg in enumerate([a, b, a, b])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        direct = NativeSqlRegistry(config(url), "proj", None)
        stock = StockSqlRegistry(config(stock_url(bounced(url)), sqlalchemy_config_kwargs=NO_PREPARE),
                                 "proj", None)
        try:
            want = sorted([interval(i) for i in range(60)] + [(o.T0, o.T1)])  # populate's own
            got = direct.get_feature_view(fv.name, "proj", allow_cache=False).materialization_intervals
            assert sorted(got) == want
            assert sorted(stock.get_feature_view(fv.name, "proj", allow_cache=False)
                          .materialization_intervals) == want
            for reg in (b, stock):
                assert sorted(e.name for e in reg.list_entities("other", allow_cache=False)) == ["driver"]
                assert {v.name for v in reg.list_all_feature_views("proj", allow_cache=False)} == {
                    v.name for v in direct.list_all_feature_views("proj", allow_cache=False)}
            a.refresh("proj")
            mine, theirs = a.proto(), direct.proto()
            mine.ClearField("version_id")  # a new one per read
            theirs.ClearField("version_id")
            assert mine == theirs
        finally:
            direct.close()
            stock.write_engine.dispose()
            stock.read_engine.dispose()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("value", ["-1", "soon", "1.5"])
def test_prepare_threshold_must_be_a_count_or_none(pg, value):
    url, _ = pg.new()
    with pytest.raises(errors.ConfigurationError) as caught:
        NativeSqlRegistry(config(f"{url}?prepare_threshold={value}"), "proj", None)
    assert "prepare_threshold" in str(caught.value) and value in str(caught.value)


def server_log_of(database):
    """The statements the server logged for one database, as (statement
    name, text) pairs in order: Debian's cluster log, which the server
    writes on this machine (log_statement is set for that database only)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0][:2]
    path = f"/var/log/postgresql/postgresql-{version}-main.log"
    marker = f"@{database} LOG:  execute "
    found = []
    with open(path, errors="replace") as log:
        for line in log:
            if marker in line:
                name, _, text = line.split(marker, 1)[1].partition(": ")
                found.append((name, text.strip()))
    return found


def test_prepare_threshold_counts_runs_as_psycopg_does(pg):
    """prepare_threshold=N: a statement runs unnamed N times, then under a
    name; None: never named; the default 0: named from the first run."""
    import psycopg

    runs = {}
    for value in ["3", "None", None]:
        url, _ = pg.new()
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" SET log_statement = \'all\'')
        reg = NativeSqlRegistry(config(url if value is None else f"{url}?prepare_threshold={value}"),
                                "proj", None)
        try:
            reg.apply_entity(o.entity(), "proj")
            for _ in range(6):
                reg.get_entity("driver", "proj", allow_cache=False)
        finally:
            reg.close()
        runs[value] = [name for name, text in server_log_of(database)
                       if text.startswith("SELECT entity_proto") and "FOR UPDATE" not in text
                       and "UNION ALL" not in text]
    # Six gets (the apply reads the row with a statement of its own).
    assert len(runs["3"]) == len(runs["None"]) == len(runs[None]) == 6
    assert runs["3"][:3] == ["<unnamed>"] * 3 and "<unnamed>" not in runs["3"][3:]
    assert len(set(runs["3"][3:])) == 1
    assert runs["None"] == ["<unnamed>"] * 6
    assert "<unnamed>" not in runs[None] and len(set(runs[None])) == 1


def test_table_altered_under_prepared_statements(pg):
    """A DBA widens a column the registry reads while every pooled
    connection holds a prepared SELECT on it: each such connection fails
    once on the server ("cached plan must not change result type"); the
    registry drops it and retries, so no call fails."""
    import psycopg

    url, _ = pg.new()
    reg = NativeSqlRegistry(config(url), "proj", None)
    try:
        reg.apply_entity(o.entity(), "proj")
        barrier = threading.Barrier(6)
        failures = []

        def read(rounds, wait):
            try:
                for _ in range(rounds):
                    if wait:
                        barrier.wait()
                    assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
                    assert [e.name for e in reg.list_entities("proj", allow_cache=False)] == ["driver"]
            except Exception as e:  # reported below
                failures.append(e)

        threads = [threading.Thread(target=read, args=(3, True)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE entities ALTER COLUMN project_id TYPE varchar(300)")
            before = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (url.rsplit("/", 1)[1],)
            ).fetchone()[0]
        assert before >= 2  # several pooled connections held the old plans
        threads = [threading.Thread(target=read, args=(5, False)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
    finally:
        reg.close()


def test_statements_are_planned_again_as_the_registry_grows(pg):
    """A statement prepared while its table was nearly empty (a new
    registry) gets a generic plan that may find a view by its project's
    index alone, reading every view of the project, and PostgreSQL keeps
    that plan until the table is analyzed. After 5,000 views arrive, the
    native store's reads keep that plan only until their statement is
    prepared again (at its 64th run): the index's own counter of rows read
    shows it. Without the re-plan, each of the 300 reads after the growth
    reads all 5,001 rows."""
    import time

    import psycopg

    from feast_sqlreg._sqlregistry import Store

    url, _ = pg.new()
    reg = NativeSqlRegistry(config(url), "proj", None)
    reg.apply_feature_view(o.feature_view(name="fv_watched"), "proj")
    reg.close()
    store = Store(url, None)
    for _ in range(10):  # planned with one row in the table
        assert store.get(3, "proj", "fv_watched") is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO feature_views (feature_view_name, project_id, last_updated_timestamp, "
            "feature_view_proto) SELECT 'bulk_' || g, project_id, last_updated_timestamp, "
            "feature_view_proto FROM feature_views, generate_series(1, 5000) g"
        )
    for _ in range(300):
        assert store.get(3, "proj", "fv_watched") is not None
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        # A backend's counters reach the statistics when it ends.
        for _ in range(50):
            if not conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchone()[0]:
                break
            time.sleep(0.1)
        scanned = dict(conn.execute(
            "SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes "
            "WHERE relname = 'feature_views'"
        ).fetchall())
    # Runs 11 to 63 may read the whole project (53 x 5,001 rows); the 237
    # after the re-plan read one row each.
    assert scanned["idx_feature_views_project_id"] <= 60 * 5001, scanned
