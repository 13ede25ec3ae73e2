"""Shared fixtures: fresh databases, and the stock and native registries.

Every test gets databases of its own. ``backend`` is the database kind the
test runs on; FEAST_SQLREG_BACKENDS (comma-separated, default: every backend
this build of the extension supports) limits it.
"""

import os
import sys
import uuid
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore", category=RuntimeWarning, module="feast.stream_feature_view")

import feast.infra.registry.sql as stock_sql  # noqa: E402  (the hook patches it)
from feast.infra.registry.sql import SqlRegistryConfig  # noqa: E402

from feast_sqlreg import _install  # noqa: E402
from feast_sqlreg._sqlregistry import backends as BUILT  # noqa: E402
from feast_sqlreg.registry import NativeSqlRegistry  # noqa: E402

if not _install.status["patched"]:
    raise RuntimeError(
        "feast_sqlreg's start-up hook did not patch Feast "
        f"({_install.status['reason']}): install the package with 'pip install .' "
        "and unset FEAST_SQLREG_DISABLE"
    )
StockSqlRegistry = stock_sql.StockSqlRegistry

PG_ADMIN = os.environ.get("FEAST_SQLREG_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("FEAST_SQLREG_MYSQL", "mysql://root@127.0.0.1:3306/")


def _wanted():
    built = BUILT.split(",")
    env = os.environ.get("FEAST_SQLREG_BACKENDS")
    if not env:
        return built
    wanted = [b.strip() for b in env.split(",") if b.strip()]
    missing = [b for b in wanted if b not in built]
    if missing:
        raise RuntimeError(f"FEAST_SQLREG_BACKENDS asks for {missing}; this build has {built}")
    return wanted


BACKENDS = _wanted()


class Databases:
    """Makes fresh databases of one backend and drops them afterwards."""

    def __init__(self, backend, tmp_path):
        self.backend = backend
        self.tmp_path = tmp_path
        self.created = []

    def new(self):
        """A (native URL, stock URL) pair naming one new, empty database."""
        name = f"fsr_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            url = f"sqlite:///{self.tmp_path / (name + '.db')}"
            return url, url
        if self.backend == "postgresql":
            import psycopg

            with psycopg.connect(_psycopg_dsn(PG_ADMIN), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            base = PG_ADMIN.rsplit("/", 1)[0]
            return f"{base}/{name}", f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
        if self.backend == "mysql":
            import pymysql

            conn = pymysql.connect(**_pymysql_args(MYSQL_ADMIN))
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}`")
            conn.close()
            self.created.append(name)
            base = MYSQL_ADMIN.rstrip("/")
            return f"{base}/{name}", f"{base.replace('mysql://', 'mysql+pymysql://')}/{name}"
        raise ValueError(self.backend)

    def drop_all(self):
        if self.backend == "postgresql" and self.created:
            import psycopg

            with psycopg.connect(_psycopg_dsn(PG_ADMIN), autocommit=True) as conn:
                for name in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.backend == "mysql" and self.created:
            import pymysql

            conn = pymysql.connect(**_pymysql_args(MYSQL_ADMIN))
            with conn.cursor() as cur:
                for name in self.created:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()


def _psycopg_dsn(url):
    return url.replace("postgresql+psycopg://", "postgresql://")


def _pymysql_args(url):
    from urllib.parse import unquote, urlparse

    u = urlparse(url.replace("mysql+pymysql://", "mysql://"))
    return dict(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        autocommit=True,
    )


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def databases(backend, tmp_path):
    dbs = Databases(backend, tmp_path)
    yield dbs
    dbs.drop_all()


def config(url, **kw):
    args = dict(registry_type="sql", path=url, cache_ttl_seconds=60)
    args.update(kw)
    return SqlRegistryConfig(**args)


@pytest.fixture
def make_registry(databases):
    """make_registry('native'|'stock', url=None, project='proj', **config):
    a registry on a new database, or on url (a (native, stock) pair)."""
    made = []

    def make(kind, urls=None, project="proj", **kw):
        urls = urls or databases.new()
        cls = NativeSqlRegistry if kind == "native" else StockSqlRegistry
        url = urls[0] if kind == "native" else urls[1]
        reg = cls(config(url, **kw), project, None)
        made.append(reg)
        return reg

    yield make
    for reg in made:
        if isinstance(reg, NativeSqlRegistry):
            reg.close()  # its change poller, before the database goes
        # A native registry's engines are made on first use (and disposed
        # by close()): reading them here would only make new ones.
        engine = None if isinstance(reg, NativeSqlRegistry) else getattr(reg, "write_engine", None)
        if engine is not None:
            engine.dispose()
            reg.read_engine.dispose()


def urls_of(reg):
    """The (native, stock) URL pair of the database a registry uses."""
    path = reg.registry_config.path
    scheme, rest = path.split("://", 1)
    base = scheme.split("+", 1)[0]
    stock = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}.get(base, base)
    return f"{base}://{rest}", f"{stock}://{rest}"


class RawConnection:
    """A plain driver connection (sqlite3, psycopg, pymysql) to a registry's
    database, for doing what a broken tool or another client would: holding
    locks, writing raw rows. Autocommit unless begin() is called."""

    def __init__(self, reg):
        native, _ = urls_of(reg)
        scheme, rest = native.split("://", 1)
        self.kind = scheme
        if scheme == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(rest[1:], isolation_level=None)
            self.mark = "?"
        elif scheme == "postgresql":
            import psycopg

            self.conn = psycopg.connect(native, autocommit=True)
            self.mark = "%s"
        else:
            import pymysql

            args = _pymysql_args(native)
            args["database"] = rest.rsplit("/", 1)[1]
            self.conn = pymysql.connect(**args)
            self.mark = "%s"

    def execute(self, sql, params=()):
        sql = sql.replace("?", self.mark)
        if self.kind == "sqlite":
            return self.conn.execute(sql, params).fetchall()
        with self.conn.cursor() as cur:
            cur.execute(sql, params or None)  # no %-formatting without params
            return cur.fetchall() if cur.description else []

    def lock_row(self, table, name_col, name):
        """Opens a transaction holding the write lock on one row (SQLite: on
        the whole database)."""
        if self.kind == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.execute("BEGIN")
            self.execute(f"SELECT * FROM {table} WHERE {name_col} = ? FOR UPDATE", (name,))

    def begin(self):
        self.execute("BEGIN")

    def commit(self):
        self.execute("COMMIT")

    def rollback(self):
        self.execute("ROLLBACK")

    def close(self):
        self.conn.close()
