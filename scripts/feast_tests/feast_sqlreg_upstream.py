"""pytest plugin: Feast's own registry tests on the local database servers.

Loaded with ``-p feast_sqlreg_upstream`` by ``scripts/feast_tests/run.py``
(``make feast-tests``); nothing of Feast's is copied or edited. Feast's tests
get PostgreSQL and MySQL from testcontainers, through two session fixtures
(``postgres_server`` and ``mysql_server`` in tests/integration/conftest.py),
and make a database per test with ``container.exec("psql ... -c 'CREATE
DATABASE x'")``. Here those two fixtures yield stand-ins for the containers
that name the local servers (``FEAST_SQLREG_PG``, ``FEAST_SQLREG_MYSQL``, as
for our own tests) and run that SQL through the Python drivers; the
databases made are dropped at the end of the session.

The versioning tests (tests/integration/registration/test_versioning.py) run
on a file registry upstream; their ``registry`` fixtures are pointed at a SQL
registry on a fresh database of ``FEAST_SQLREG_UPSTREAM_BACKEND`` (sqlite,
postgresql or mysql) instead.

A plugin's fixtures rank below conftest and module fixtures, so the
replacement is made where pytest sets the fixture up: ``pytest_fixture_setup``
swaps in our function for those fixtures (matched by name and defining
module) and pytest runs it as it would have run Feast's, caching and
teardown included.

``FEAST_SQLREG_UPSTREAM_EXPECT`` (``stock`` or ``native``) makes the session
refuse to start unless ``feast.infra.registry.sql.SqlRegistry`` is that one.
"""

import os
import shlex
import tempfile
import threading
import uuid
from collections import namedtuple
from urllib.parse import unquote, urlparse

import pytest

# Before any conftest puts Feast's source tree on sys.path: the tests must
# import the installed Feast (the one the start-up hook patches).
import feast  # noqa: F401

PG_ADMIN = os.environ.get("FEAST_SQLREG_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("FEAST_SQLREG_MYSQL", "mysql://root@127.0.0.1:3306/")
BACKEND = os.environ.get("FEAST_SQLREG_UPSTREAM_BACKEND", "sqlite")
# The account Feast's MySQL tests log in with (testcontainers makes a
# non-root user and grants it each new database).
MYSQL_USER = "feast_upstream"
MYSQL_PASSWORD = "feast_upstream"

ExecResult = namedtuple("ExecResult", "exit_code output")

_created = {"postgresql": [], "mysql": []}
_created_lock = threading.Lock()
#: fixture name -> times our replacement of it ran.
used = {}


def _admin(url):
    u = urlparse(url)
    return dict(
        host=u.hostname or "127.0.0.1",
        port=u.port,
        user=unquote(u.username or ""),
        password=unquote(u.password or ""),
    )


def _pg_connect(**kw):
    import psycopg

    a = _admin(PG_ADMIN)
    return psycopg.connect(
        host=a["host"],
        port=a["port"] or 5432,
        user=a["user"] or "postgres",
        password=a["password"] or None,
        dbname=kw.get("dbname", "postgres"),
        autocommit=True,
    )


def _mysql_connect():
    import pymysql

    a = _admin(MYSQL_ADMIN)
    return pymysql.connect(
        host=a["host"],
        port=a["port"] or 3306,
        user=a["user"] or "root",
        password=a["password"],
        autocommit=True,
    )


def _sql_of(command):
    """The SQL a ``psql -c '...'`` or ``mysql -e '...'`` command runs."""
    args = shlex.split(command)
    for flag in ("-c", "-e"):
        if flag in args:
            return args[args.index(flag) + 1]
    raise ValueError(f"not a psql -c / mysql -e command: {command!r}")


def _note_created(kind, sql):
    words = sql.replace(";", " ").split()
    for i in range(len(words) - 2):
        if words[i].upper() == "CREATE" and words[i + 1].upper() == "DATABASE":
            with _created_lock:
                _created[kind].append(words[i + 2].strip("`\""))


class LocalPostgres:
    """What Feast's tests use of testcontainers' PostgresContainer, on the
    local server."""

    def __init__(self):
        a = _admin(PG_ADMIN)
        self.host = a["host"]
        self.port = a["port"] or 5432
        self.username = a["user"] or "postgres"
        # Never empty: Feast puts it into a libpq "password=... host=..."
        # string, where an empty value would swallow the next keyword.
        self.password = a["password"] or "unused"

    def get_container_host_ip(self):
        return self.host

    def get_exposed_port(self, port):
        return self.port

    def exec(self, command):
        sql = _sql_of(command)
        with _pg_connect() as conn:
            conn.execute(sql)
        _note_created("postgresql", sql)
        return ExecResult(0, b"")


class LocalMySQL:
    """What Feast's tests use of testcontainers' MySqlContainer, on the local
    server: a non-root user that each new database is granted to."""

    def __init__(self):
        a = _admin(MYSQL_ADMIN)
        self.host = a["host"]
        self.port = a["port"] or 3306
        self.username = MYSQL_USER
        self.password = MYSQL_PASSWORD
        self.root_password = a["password"]
        conn = _mysql_connect()
        with conn.cursor() as cur:
            # Only user@'%': a user@'localhost' would take the local logins
            # without the grants.
            cur.execute(
                f"CREATE USER IF NOT EXISTS '{MYSQL_USER}'@'%' IDENTIFIED BY '{MYSQL_PASSWORD}'"
            )
        conn.close()

    def get_container_host_ip(self):
        return self.host

    def get_exposed_port(self, port):
        return self.port

    def get_connection_url(self):
        return f"mysql+pymysql://{self.username}:{self.password}@{self.host}:{self.port}/test"

    def exec(self, command):
        sql = _sql_of(command)
        conn = _mysql_connect()
        try:
            with conn.cursor() as cur:
                for statement in sql.split(";"):
                    if statement.strip():
                        cur.execute(statement)
        finally:
            conn.close()
        _note_created("mysql", sql)
        return ExecResult(0, b"")


def _drop_created(kind):
    with _created_lock:
        names, _created[kind] = _created[kind], []
    if not names:
        return
    if kind == "postgresql":
        with _pg_connect() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        conn = _mysql_connect()
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def postgres_server():
    yield LocalPostgres()
    _drop_created("postgresql")


def mysql_server():
    yield LocalMySQL()
    _drop_created("mysql")


def _close(registry):
    """Closes a registry's connections, native or stock, before its database
    is dropped."""
    close = getattr(type(registry), "close", None)
    if close is not None:
        registry.close()
        return
    for engine in {registry.__dict__.get("write_engine"), registry.__dict__.get("read_engine")}:
        if engine is not None:
            engine.dispose()


def sql_registry():
    """A SQL registry (native or stock, as the start-up hook decides) on a
    fresh database of FEAST_SQLREG_UPSTREAM_BACKEND, with the file registry's
    defaults otherwise."""
    from feast.infra.registry.sql import SqlRegistry, SqlRegistryConfig

    name = "fsu_" + uuid.uuid4().hex[:12]
    with tempfile.TemporaryDirectory() as tmpdir:
        if BACKEND == "sqlite":
            url = f"sqlite:///{tmpdir}/registry.db"
        elif BACKEND == "postgresql":
            pg = LocalPostgres()
            pg.exec(f"psql -c 'CREATE DATABASE {name}'")
            url = f"postgresql+psycopg://{pg.username}:{pg.password}@{pg.host}:{pg.port}/{name}"
        elif BACKEND == "mysql":
            my = LocalMySQL()
            my.exec(f"mysql -e 'CREATE DATABASE {name}; GRANT ALL PRIVILEGES ON {name}.* TO {MYSQL_USER};'")
            url = f"mysql+pymysql://{my.username}:{my.password}@{my.host}:{my.port}/{name}"
        else:
            raise pytest.UsageError(f"FEAST_SQLREG_UPSTREAM_BACKEND={BACKEND!r}")
        registry = SqlRegistry(SqlRegistryConfig(registry_type="sql", path=url), "test_project", None)
        try:
            yield registry
        finally:
            _close(registry)
            if BACKEND != "sqlite":
                _drop_created(BACKEND)


# (module suffix, fixture name) -> replacement. Each takes the same arguments
# as the fixture it replaces (none).
_REPLACEMENTS = {
    ("integration.conftest", "postgres_server"): postgres_server,
    ("integration.conftest", "mysql_server"): mysql_server,
    ("registration.test_versioning", "registry"): sql_registry,
    ("registration.test_versioning", "registry_no_online_versioning"): sql_registry,
}


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    module = getattr(fixturedef.func, "__module__", "") or ""
    for (suffix, name), ours in _REPLACEMENTS.items():
        if fixturedef.argname != name:
            continue
        if module.endswith(suffix):
            fixturedef.func = ours
        if fixturedef.func is ours:
            used[name] = used.get(name, 0) + 1
    return None  # pytest's own setup runs the (replaced) function


def _registry_class():
    from feast.infra.registry.sql import SqlRegistry

    return f"{SqlRegistry.__module__}.{SqlRegistry.__qualname__}"


def pytest_configure(config):
    expect = os.environ.get("FEAST_SQLREG_UPSTREAM_EXPECT")
    actual = _registry_class()
    is_native = actual.startswith("feast_sqlreg.")
    if expect and expect != ("native" if is_native else "stock"):
        raise pytest.UsageError(
            f"expected the {expect} SQL registry, but SqlRegistry is {actual} "
            "(FEAST_SQLREG_DISABLE and the start-up hook decide)"
        )


def pytest_report_header(config):
    return [
        f"feast {feast.__version__} from {os.path.dirname(feast.__file__)}",
        f"SqlRegistry is {_registry_class()}; versioning backend: {BACKEND}",
    ]


def pytest_terminal_summary(terminalreporter):
    if used:
        parts = ", ".join(f"{name} ({n}x)" for name, n in sorted(used.items()))
        terminalreporter.write_line(f"feast_sqlreg_upstream replaced: {parts}")
