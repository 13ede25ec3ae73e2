"""MySQL/MariaDB bound every client's prepared statements together
(max_prepared_stmt_count, 16382 by default) and a native registry
connection keeps about 60 of them: a large fleet can reach the bound. A
connection that meets it gives back its own statements and goes on; one
that still cannot prepare says which server setting to raise.

The bound is global, so these tests lower it on the private MariaDB
primary (scripts/databases.sh, port 3307), in the xdist group of the
other tests that use that server, and restore it afterwards."""

import os
import time
import uuid

import pytest

import objects as o
from conftest import BACKENDS, _pymysql_args, config
from feast_sqlreg import errors
from feast_sqlreg.registry import NativeSqlRegistry

pytestmark = [
    pytest.mark.skipif("mysql" not in BACKENDS, reason="this build has no MySQL backend"),
    pytest.mark.xdist_group("standby"),
]

MY_PRIMARY = os.environ.get("FEAST_SQLREG_MYSQL_PRIMARY", "mysql://root@127.0.0.1:3307/")
ONE_CONNECTION = {"pool_size": 1, "max_overflow": 0}


@pytest.fixture
def server():
    """(admin connection, URL of a new database) on the private primary;
    max_prepared_stmt_count is put back afterwards."""
    import pymysql

    admin = pymysql.connect(**_pymysql_args(MY_PRIMARY))
    name = f"fsr_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_prepared_stmt_count")
        (saved,) = cur.fetchone()
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield admin, MY_PRIMARY + name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"SET GLOBAL max_prepared_stmt_count = {int(saved)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def prepared_now(admin):
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
        return int(cur.fetchone()[1])


def set_bound(admin, n):
    with admin.cursor() as cur:
        cur.execute(f"SET GLOBAL max_prepared_stmt_count = {n}")


def every_read(reg):
    assert [e.name for e in reg.list_entities("proj", allow_cache=False)] == ["driver"]
    assert {v.name for v in reg.list_all_feature_views("proj", allow_cache=False)}
    assert reg.get_feature_view("driver_hourly_stats", "proj", allow_cache=False).materialization_intervals
    assert reg.list_feature_services("proj", allow_cache=False)
    assert reg.list_saved_datasets("proj", allow_cache=False)
    assert reg.list_permissions("proj", allow_cache=False)
    reg.refresh("proj")


def test_a_connection_at_the_servers_bound_gives_back_its_statements(server):
    admin, url = server
    base = prepared_now(admin)
    first = NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=ONE_CONNECTION), "proj", None)
    try:
        o.populate(first)
        every_read(first)
        needed = prepared_now(admin) - base  # what one connection keeps
    finally:
        first.close()
    assert needed > 40
    # Closing gave them back. The server frees a session's statements when
    # its thread handles the client's quit, a moment after close() returns.
    deadline = time.monotonic() + 5
    while prepared_now(admin) != base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert prepared_now(admin) == base
    # Room for a third of them: the connection meets the bound again and
    # again, and each time starts over with what it needs now.
    set_bound(admin, base + needed // 3)
    reg = NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=ONE_CONNECTION), "proj", None)
    try:
        for _ in range(3):
            every_read(reg)
            reg.apply_materialization(o.feature_view(), "proj", o.T0, o.T1)
            reg.apply_entity(o.entity(), "other")
        assert prepared_now(admin) <= base + needed // 3
    finally:
        reg.close()


def test_no_room_at_all_names_the_setting(server):
    admin, url = server
    reg = NativeSqlRegistry(config(url, sqlalchemy_config_kwargs=ONE_CONNECTION), "proj", None)
    try:
        reg.apply_entity(o.entity(), "proj")
        set_bound(admin, 0)
        with pytest.raises(errors.OperationalError) as caught:
            reg.list_entities("proj", allow_cache=False)
        assert "max_prepared_stmt_count is reached" in str(caught.value)
        assert "raise it on the server" in str(caught.value)
        set_bound(admin, 16382)
        assert [e.name for e in reg.list_entities("proj", allow_cache=False)] == ["driver"]
    finally:
        reg.close()
