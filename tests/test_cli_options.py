"""`feast registry create-schema` and `python -m feast_sqlreg status` reach
the database exactly as NativeSqlRegistry (FeatureStore) does:
sqlalchemy_config_kwargs.connect_args, pool options, the warning about
ignored keys, and the same ConfigurationError for a bad option.

Each test runs the real commands on a generated feature repository whose
registry is a fresh database of the backend under test."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import BACKENDS, MYSQL_ADMIN, PG_ADMIN, _pymysql_args, config
from test_cli import END, FEAST, START, _demo, feast, in_repo

SUBPROCESS_TIMEOUT = 300


def only(name):
    """Runs a test on one backend (if this build/run has it)."""
    return pytest.mark.parametrize(
        "backend",
        [pytest.param(name, marks=pytest.mark.skipif(name not in BACKENDS, reason=f"no {name}"))],
    )


@pytest.fixture
def repo(tmp_path):
    workdir = tmp_path / "repo"
    _demo().make_repo(workdir, "sql", START, END)
    return workdir


def set_registry(repo, path, **kwargs):
    """Points the repository's registry at path with these
    sqlalchemy_config_kwargs."""
    yml = repo / "feature_store.yaml"
    cfg = yaml.safe_load(yml.read_text())
    cfg["registry"]["path"] = path
    cfg["registry"].pop("sqlalchemy_config_kwargs", None)
    if kwargs:
        cfg["registry"]["sqlalchemy_config_kwargs"] = kwargs
    yml.write_text(yaml.safe_dump(cfg))


def status(repo):
    return subprocess.run(
        [sys.executable, "-m", "feast_sqlreg", "status"],
        cwd=repo, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )


FEATURE_STORE_ERROR = """
import warnings
warnings.simplefilter("ignore")
from feast import FeatureStore
try:
    FeatureStore(repo_path=".").registry
except Exception as e:
    print(f"{type(e).__module__}.{type(e).__name__}: {e}")
else:
    print("no error")
"""


# --------------------------------------------------------------------------- #
# connect_args the connection needs                                           #
# --------------------------------------------------------------------------- #


@only("postgresql")
def test_postgresql_options_search_path(backend, databases, repo):
    """connect_args options='-c search_path=...' decides where the tables go:
    create-schema puts them in that schema, status finds them there, and
    without the option status sees none (they are not in public)."""
    import psycopg

    url, _ = databases.new()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA fsr_reg")
    args = {"options": "-c search_path=fsr_reg", "application_name": "fsr-cli-options"}
    set_registry(repo, url, connect_args=args, pool_size=2)

    feast(repo, "registry", "create-schema")
    with psycopg.connect(url, autocommit=True) as conn:
        where = dict(
            conn.execute(
                "SELECT table_schema, count(*) FROM information_schema.tables "
                "WHERE table_schema IN ('public', 'fsr_reg') GROUP BY table_schema"
            ).fetchall()
        )
    # The 14 registry tables and the change log.
    assert where.get("fsr_reg") == 15 and "public" not in where, where

    out = status(repo)
    assert out.returncode == 0, out.stderr
    assert "schema complete" in out.stdout, out.stdout

    set_registry(repo, url)  # same database, no connect_args: public is empty
    out = status(repo)
    assert out.returncode == 0, out.stderr
    assert "missing tables" in out.stdout and "feature_views" in out.stdout, out.stdout


@only("postgresql")
def test_postgresql_application_name_in_pg_stat_activity(backend, databases, repo):
    """connect_args application_name names create-schema's connection on the
    server. The command is held in the middle of its DDL (another session
    is creating one of its tables, uncommitted) so pg_stat_activity can be
    read while it runs; the other session then rolls back."""
    import time

    import psycopg

    url, _ = databases.new()
    set_registry(repo, url, connect_args={"application_name": "fsr-create-schema"})

    blocker = psycopg.connect(url)
    blocker.execute("CREATE TABLE projects (x int)")
    proc = subprocess.Popen(
        [FEAST, "registry", "create-schema"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        names = set()
        deadline = time.time() + 120
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            while time.time() < deadline and "fsr-create-schema" not in names:
                assert proc.poll() is None, proc.communicate()
                names = {
                    r[0]
                    for r in admin.execute(
                        "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
                        (url.rsplit("/", 1)[1],),
                    ).fetchall()
                }
                time.sleep(0.2)
        assert "fsr-create-schema" in names, names
    finally:
        blocker.rollback()
        blocker.close()
        out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, err


@only("mysql")
def test_mysql_unix_socket(backend, databases, repo):
    """On localhost, connect_args unix_socket picks the server's socket: a
    wrong one must fail (and be named), the right one must work."""
    import pymysql

    url, _ = databases.new()
    conn = pymysql.connect(**_pymysql_args(MYSQL_ADMIN))
    with conn.cursor() as cur:
        cur.execute("SELECT @@socket")
        socket_path = cur.fetchone()[0]
    conn.close()
    host = url.split("@", 1)[1].split("/", 1)[0]
    local = url.replace(host, "localhost", 1)

    set_registry(repo, local, connect_args={"unix_socket": "/nonexistent/fsr.sock"})
    proc = feast(repo, "registry", "create-schema", check=False)
    assert proc.returncode != 0 and "/nonexistent/fsr.sock" in proc.stderr, proc.stderr
    out = status(repo)
    assert out.returncode == 1 and "/nonexistent/fsr.sock" in out.stdout, out.stdout

    set_registry(repo, local, connect_args={"unix_socket": socket_path, "connect_timeout": 5})
    feast(repo, "registry", "create-schema")
    out = status(repo)
    assert out.returncode == 0 and "schema complete" in out.stdout, out.stdout + out.stderr


@only("sqlite")
def test_sqlite_mode_ro(backend, databases, repo):
    """connect_args mode=ro opens the SQLite file read-only: create-schema
    must fail on it (it would succeed if the option were dropped)."""
    url, _ = databases.new()
    set_registry(repo, url)
    out = status(repo)  # reports the missing file, and does not create it
    assert out.returncode == 0 and "no database file yet" in out.stdout, out.stdout + out.stderr
    Path(url.split(":///", 1)[1]).touch()  # an empty database
    out = status(repo)
    assert out.returncode == 0 and "missing tables" in out.stdout, out.stdout + out.stderr

    set_registry(repo, url, connect_args={"mode": "ro", "timeout": 1})
    proc = feast(repo, "registry", "create-schema", check=False)
    assert proc.returncode != 0 and "OperationalError" in proc.stderr, proc.stderr

    set_registry(repo, url, connect_args={"timeout": 1})
    feast(repo, "registry", "create-schema")
    out = status(repo)
    assert out.returncode == 0 and "schema complete" in out.stdout, out.stdout


# --------------------------------------------------------------------------- #
# Bad and ignored options: the same answer as FeatureStore                    #
# --------------------------------------------------------------------------- #


def test_bad_connect_args_key_same_error_everywhere(backend, databases, repo):
    url, _ = databases.new()
    set_registry(repo, url, connect_args={"no_such_option": "1"})

    expected = in_repo(repo, FEATURE_STORE_ERROR)
    assert expected.startswith("feast_sqlreg.errors.ConfigurationError: "), expected
    assert "no_such_option" in expected

    proc = feast(repo, "registry", "create-schema", check=False)
    assert proc.returncode == 1
    assert expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    out = status(repo)
    assert out.returncode == 1
    assert expected in out.stderr, out.stderr
    assert "connection:   FAILED: ConfigurationError" in out.stdout


@only("sqlite")
def test_ignored_kwargs_warned_like_feature_store(backend, databases, repo):
    """store_options is what decides: a key with no native meaning gets the
    same warning from both commands, and does not stop them."""
    url, _ = databases.new()
    set_registry(repo, url, echo_pool=True, pool_size=3, pool_pre_ping=False)
    warning = "feast_sqlreg ignores sqlalchemy_config_kwargs['echo_pool']"
    proc = feast(repo, "registry", "create-schema")
    assert warning in proc.stderr, proc.stderr
    out = status(repo)
    assert out.returncode == 0 and "schema complete" in out.stdout
    assert warning in out.stderr, out.stderr


@only("sqlite")
def test_open_store_matches_native_registry(backend, databases, monkeypatch):
    """open_store() calls Store with exactly the arguments NativeSqlRegistry
    uses (URLs with connect_args, every pool option)."""
    from feast_sqlreg import _install, _sqlregistry
    from feast_sqlreg import registry as registry_module

    real = _sqlregistry.Store
    calls = []

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(_sqlregistry, "Store", recording)
    monkeypatch.setattr(registry_module, "Store", recording)
    url, _ = databases.new()
    kwargs = dict(
        pool_size=2, max_overflow=1, pool_timeout=4.5, pool_recycle=60, pool_pre_ping=False,
        connect_args={"timeout": 7},
    )
    cfg = config(url, read_path=url, sqlalchemy_config_kwargs=kwargs)
    _install.open_store(cfg).create_schema()
    registry_module.NativeSqlRegistry(cfg, "proj", None)
    assert len(calls) == 2
    assert calls[0] == calls[1]
    (path, read_path), options = calls[0]
    assert path == read_path == f"{url}?timeout=7"
    assert options == {
        **{k: v for k, v in kwargs.items() if k != "connect_args"},
        "replica_wait": registry_module.REPLICA_WAIT_SECONDS,
    }


def test_empty_path_same_error(tmp_path):
    from feast_sqlreg import _install
    from feast_sqlreg.errors import ConfigurationError
    from feast_sqlreg.registry import NativeSqlRegistry

    cfg = config("")
    with pytest.raises(ConfigurationError) as cli_error:
        _install.open_store(cfg)
    with pytest.raises(ConfigurationError) as native_error:
        NativeSqlRegistry(cfg, "proj", None)
    assert str(cli_error.value) == str(native_error.value)
