"""python -m feast_sqlreg doctor against healthy and broken set-ups: each
broken one is found, named, given its fix, and makes the exit status 1;
a healthy one passes (exit 0)."""

import os
import subprocess
import sys

import pytest

from conftest import BACKENDS, RawConnection, config
from feast_sqlreg import _doctor
from feast_sqlreg.registry import NativeSqlRegistry, open_store
from test_replica import Replicated

pytestmark = pytest.mark.xdist_group("standby")  # pauses the shared MariaDB replica

PGBOUNCER_PORT = int(os.environ.get("FEAST_SQLREG_PGBOUNCER_PORT", "6435"))


def findings(url, read=None, fleet=1, **kw):
    cfg = config(url, read_path=read, **kw)
    store = open_store(cfg)
    try:
        return _doctor.check(store, cfg, fleet)
    finally:
        store.close()


def problems(found):
    return [f for f in found if f.level == _doctor.PROBLEM]


def made(make_registry):
    """A registry database as a native registry leaves it: tables and
    change log."""
    reg = make_registry("native")
    reg.refresh()
    return reg


def doctor_cli(*args):
    return subprocess.run([sys.executable, "-m", "feast_sqlreg", "doctor", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_healthy_registry_passes(make_registry):
    reg = made(make_registry)
    url = reg.registry_config.path
    found = findings(url)
    assert problems(found) == [], found
    checks = {f.check for f in found}
    assert {"schema", "change log"} <= checks
    res = doctor_cli("--url", url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 problem(s)" in res.stdout


def test_a_missing_table_is_a_problem(make_registry):
    reg = made(make_registry)
    raw = RawConnection(reg)
    raw.execute("DROP TABLE permissions")
    raw.close()
    found = problems(findings(reg.registry_config.path))
    assert len(found) == 1 and found[0].check == "schema", found
    assert "missing tables permissions" in found[0].text
    assert "feast apply" in found[0].fix
    res = doctor_cli("--url", reg.registry_config.path)
    assert res.returncode == 1
    assert "PROBLEM  schema: path: missing tables permissions" in res.stdout, res.stdout
    assert "fix: run `feast apply`" in res.stdout


def test_a_missing_trigger_is_a_problem(make_registry, backend):
    reg = made(make_registry)
    raw = RawConnection(reg)
    if backend == "postgresql":
        raw.execute("DROP TRIGGER feast_sqlreg_entities ON entities")
        gone = "feast_sqlreg_entities"
    else:
        raw.execute("DROP TRIGGER feast_sqlreg_entities_upd")
        gone = "feast_sqlreg_entities_upd"
    raw.close()
    found = problems(findings(reg.registry_config.path))
    assert [f.check for f in found] == ["change log"], found
    assert gone in found[0].text and "cache_ttl_seconds" in found[0].text
    assert "trigger" in found[0].fix


@pytest.mark.skipif("mysql" not in BACKENDS, reason="this build has no MySQL backend")
@pytest.mark.parametrize("backend", ["mysql"])
def test_mysql_narrow_blob_and_folding_collation(make_registry):
    reg = made(make_registry)
    found = findings(reg.registry_config.path)
    # The test databases have the server's default collation, a folding one.
    folding = [f for f in found if f.check == "collation"]
    assert folding[0].level == _doctor.WARNING
    assert "entities.entity_name (utf8mb4_general_ci)" in folding[0].text, folding
    assert folding[0].fix.startswith(
        "ALTER TABLE <table> CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, for each of ")
    assert "entities" in folding[0].fix
    raw = RawConnection(reg)
    raw.execute("ALTER TABLE feature_views MODIFY feature_view_proto BLOB NOT NULL")
    raw.close()
    bad = problems(findings(reg.registry_config.path))
    assert [f.check for f in bad] == ["blob widths"], bad
    assert bad[0].fix == "ALTER TABLE feature_views MODIFY feature_view_proto LONGBLOB NOT NULL"


@pytest.mark.skipif("mysql" not in BACKENDS, reason="this build has no MySQL backend")
@pytest.mark.parametrize("backend", ["mysql"])
def test_mysql_prepared_statement_budget_for_the_fleet(make_registry):
    reg = made(make_registry)
    url = reg.registry_config.path
    ok = {f.check: f for f in findings(url, fleet=2)}
    assert ok["prepared statements"].level == _doctor.OK, ok
    found = {f.check: f for f in findings(url, fleet=100)}
    assert found["prepared statements"].level == _doctor.PROBLEM
    assert "100 processes x 15 connections x about 60 statements = 90000" in \
        found["prepared statements"].text
    assert "SET GLOBAL max_prepared_stmt_count = 90000" in found["prepared statements"].fix
    # Smaller pools fit: the budget follows sqlalchemy_config_kwargs.
    small = {f.check: f for f in findings(
        url, fleet=100, sqlalchemy_config_kwargs={"pool_size": 1, "max_overflow": 1})}
    assert small["prepared statements"].level == _doctor.OK, small


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="this build has no PostgreSQL backend")
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_connections_and_a_pooler_with_prepared_statements(make_registry):
    reg = made(make_registry)
    url = reg.registry_config.path
    assert problems(findings(url)) == []
    many = {f.check: f for f in findings(url, fleet=1000)}
    assert many["connections"].level == _doctor.PROBLEM
    assert "1000 processes x 15 connections" in many["connections"].text
    pooled = url.replace(":5432/", f":{PGBOUNCER_PORT}/")
    found = {f.check: f for f in findings(pooled)}
    assert found["pooler"].level == _doctor.PROBLEM, found
    assert "prepare_threshold: null" in found["pooler"].fix
    fixed = {f.check: f for f in findings(pooled + "?prepare_threshold=None")}
    assert fixed["pooler"].level == _doctor.OK, fixed


@pytest.mark.parametrize("kind", [k for k in ("postgresql", "mysql") if k in BACKENDS])
def test_replica_lag_and_stopped_replication(kind, tmp_path):
    pair = Replicated(kind, tmp_path)
    try:
        reg = NativeSqlRegistry(config(pair.primary, read_path=pair.replica), "proj", None)
        reg.refresh()
        reg.close()
        found = {f.check: f for f in findings(pair.primary, read=pair.replica)}
        assert found["replica"].level == _doctor.OK, found
        assert "read_path is the" in found["replica"].text
        # read_path on the primary itself: not a replica.
        same = {f.check: f for f in findings(pair.primary, read=pair.primary)}
        assert same["replica"].level == _doctor.WARNING
        assert "not a" in same["replica"].text
        if kind == "mysql":
            pair._my(pair.replica.rsplit("/", 1)[0] + "/", "STOP SLAVE SQL_THREAD")
            try:
                stopped = {f.check: f for f in findings(pair.primary, read=pair.replica)}
            finally:
                pair._my(pair.replica.rsplit("/", 1)[0] + "/", "START SLAVE SQL_THREAD")
            assert stopped["replica"].level == _doctor.PROBLEM
            assert "replication is stopped" in stopped["replica"].text
    finally:
        pair.drop()


def test_cli_without_a_repository_or_url_says_so(tmp_path):
    res = doctor_cli("--chdir", str(tmp_path))
    assert res.returncode == 2
    assert "no feature_store.yaml" in res.stderr


def test_cli_on_a_sqlite_file_that_is_not_there_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "registry.db"
    res = doctor_cli("--url", f"sqlite:///{missing}")
    assert res.returncode == 1, res.stdout
    assert f"PROBLEM  database: no database file at {missing}" in res.stdout
    assert "fix: run `feast apply`" in res.stdout
    assert not missing.exists()  # a check changes nothing
    # The read_path's file too, beside a path that is there.
    there = tmp_path / "there.db"
    NativeSqlRegistry(config(f"sqlite:///{there}"), "proj", None).close()
    res = doctor_cli("--url", f"sqlite:///{there}", "--read-url", f"sqlite:///{missing}")
    assert res.returncode == 1 and f"no database file at {missing}" in res.stdout
    assert not missing.exists()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_cli_output_never_shows_the_password(kind, make_registry):
    if kind not in BACKENDS:
        pytest.skip(f"FEAST_SQLREG_BACKENDS leaves {kind} out")
    secret = "Sekr1t-pw-4-doctor"
    if kind == "mysql":  # root has no password: this one is refused
        url = f"mysql://root:{secret}@127.0.0.1:3306/test"
    else:  # trust authentication: accepted, and the URL is printed
        url = f"postgresql://postgres:{secret}@127.0.0.1:5432/postgres"
    res = doctor_cli("--url", url)
    assert "feast_sqlreg doctor:" in res.stdout + res.stderr
    assert secret not in res.stdout + res.stderr
