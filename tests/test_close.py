"""Closing: Store.close(), the context manager, teardown and interpreter exit.

Connections used to go only when the Store was garbage-collected. Now a
registry can close them when the user is done, a close() that races a call
running without the GIL never frees what that call uses, and the
interpreter closes what is left at exit.
"""

import subprocess
import sys
import threading
import time

import pytest

import objects as o
from conftest import RawConnection, urls_of
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY


def _sessions(reg, store_url):
    """Server sessions the registry's database has open, or for SQLite the
    number of open file handles of this process on the file."""
    raw = RawConnection(reg)
    try:
        if raw.kind == "postgresql":
            db = store_url.rsplit("/", 1)[1]
            rows = raw.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()",
                (db,),
            )
        elif raw.kind == "mysql":
            db = store_url.rsplit("/", 1)[1]
            rows = raw.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE db = ? "
                "AND id <> CONNECTION_ID()",
                (db,),
            )
        else:
            import os

            path = store_url.split(":///", 1)[1]
            fds = os.listdir("/proc/self/fd")
            n = 0
            for fd in fds:
                try:
                    if os.readlink(f"/proc/self/fd/{fd}") == os.path.abspath(path):
                        n += 1
                except OSError:
                    pass
            return n
        return int(rows[0][0])
    finally:
        raw.close()


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_close_releases_connections_and_later_calls_fail_clearly(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    url = urls_of(reg)[0]
    store = Store(url, pool_size=3)
    threads = [threading.Thread(target=store.get, args=(ENTITY, "proj", "driver")) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert _sessions(reg, url) >= 1
    before = _sessions(reg, url)
    store.close()
    assert store.closed
    assert _wait_for(lambda: _sessions(reg, url) <= before - 1)
    with pytest.raises(errors.InterfaceError, match="closed"):
        store.get(ENTITY, "proj", "driver")
    store.close()  # idempotent
    assert "closed" in repr(store)


def test_context_manager_and_registry_close(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    url = urls_of(reg)[0]
    with Store(url) as store:
        assert store.get(ENTITY, "proj", "driver") is not None
    assert store.closed
    reg.close()
    with pytest.raises(errors.InterfaceError, match="closed"):
        reg.get_entity("driver", "proj")


def test_close_while_a_call_waits_without_the_gil(make_registry):
    """close() from another thread while a write waits on a row lock: the
    write finishes on its connection, then the store is closed; nothing is
    freed under it (ASan and the suite would show a crash)."""
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    url = urls_of(reg)[0]
    store = Store(url, pool_size=1, max_overflow=0)
    blocker = RawConnection(reg)
    blocker.lock_row("entities", "entity_name", "driver")
    result = {}

    def write():
        try:
            proto = o.entity(description="late").to_proto().SerializeToString()
            result["inserted"] = store.apply(ENTITY, "proj", "driver", proto, 1)
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.5)
    store.close()  # returns at once: the write still holds the store
    assert store.closed and t.is_alive()
    blocker.rollback()
    t.join(30)
    blocker.close()
    assert not t.is_alive()
    assert result == {"inserted": False}, result
    assert reg.get_entity("driver", "proj", allow_cache=False).description == "late"


def test_teardown_releases_idle_connections(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    url = urls_of(reg)[0]
    if url.startswith("sqlite"):
        before = _sessions(reg, url)
        reg.teardown()
        assert _sessions(reg, url) < before
    else:
        reg.teardown()
        assert _wait_for(lambda: _sessions(reg, url) == 0)
    reg.apply_entity(o.entity(), "proj")  # still usable
    assert reg.get_entity("driver", "proj").name == "driver"


def test_interpreter_exit_closes_registries(make_registry):
    """A process that never closes its registry: feast_sqlreg closes it at
    interpreter exit."""
    reg = make_registry("native")
    url = urls_of(reg)[0]
    code = (
        "import atexit\n"
        "atexit.register(lambda: print('closed' if r._store.closed else 'open'))\n"
        "from feast.infra.registry.sql import SqlRegistryConfig\n"
        "from feast_sqlreg.registry import NativeSqlRegistry\n"
        f"r = NativeSqlRegistry(SqlRegistryConfig(registry_type='sql', path={url!r}), 'proj', None)\n"
        "r.list_entities('proj')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # atexit runs handlers last-in first-out: feast_sqlreg's (registered when
    # Feast was imported) ran before the check registered first.
    assert out.stdout.strip() == "closed"


def test_truncated_multibyte_message_is_still_an_error_of_ours(make_registry):
    """Messages are cut to fit a fixed buffer; a cut inside a UTF-8
    character used to turn the error into a UnicodeDecodeError."""
    reg = make_registry("native")
    name = "é" * 250
    reg.apply_entity(o.entity(name), "proj")
    raw = RawConnection(reg)
    raw.execute("UPDATE entities SET entity_proto = ? WHERE project_id = 'proj'", (b"\x00\x01",))
    raw.close()
    with pytest.raises(errors.DataError) as info:
        reg._store.get(ENTITY, "proj", name)
    assert str(info.value).startswith("entities row 'éé")
