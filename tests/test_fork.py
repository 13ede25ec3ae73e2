"""os.fork() (gunicorn's workers, multiprocessing's fork start method): the
child of a process whose registry holds pooled connections uses the registry
with connections of its own, leaves the parent's alone, and cannot deadlock
on a pool lock another thread held at the moment of the fork."""

import os
import signal
import threading
import time
import traceback

import pytest

import objects as o
from conftest import BACKENDS, RawConnection

NO_PRE_PING = {"pool_pre_ping": False}  # so a broken connection shows as an error


def fork_and_run(fn):
    """Runs fn in a forked child, which exits 0 when fn returns."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid, timeout):
    """The child's exit code; kills it and fails when it takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child did not finish within {timeout} s (deadlock?)")


def sessions(raw):
    """Server-side ids of the registry's sessions on its database."""
    if raw.kind == "postgresql":
        rows = raw.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'feast_sqlreg'"
        )
    elif raw.kind == "mysql":
        rows = raw.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
            "AND ID <> CONNECTION_ID()"
        )
    else:
        return set()
    return {r[0] for r in rows}


def test_child_opens_its_own_connections(make_registry, backend):
    reg = make_registry("native", sqlalchemy_config_kwargs=NO_PRE_PING)
    reg.apply_entity(o.entity(), "proj")
    assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
    raw = RawConnection(reg)
    before = sessions(raw)
    assert before or backend == "sqlite"

    def child():
        assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
        reg.apply_entity(o.entity("from_child"), "proj")
        assert reg.get_entity("from_child", "proj", allow_cache=False).name == "from_child"

    assert wait_child(fork_and_run(child), 60) == 0
    # The parent's pooled connections still work (no pre-ping to hide a
    # broken one) and are the same server sessions as before.
    assert reg.get_entity("from_child", "proj", allow_cache=False).name == "from_child"
    reg.apply_entity(o.entity("from_parent"), "proj")
    assert before <= sessions(raw)
    raw.close()


# On the servers only: SQLite itself has no fork handlers, and a child forked
# while another thread is inside SQLite can inherit its unix-VFS or per-file
# lock mutex held and hang in sqlite3_open (seen: ~1 in 200 forks). That is
# SQLite's own rule (the README says to fork before such threads start); the
# pool's part is checked without SQLite calls in tests/c/test_pool.c, and a
# plain fork on SQLite by test_child_opens_its_own_connections.
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "sqlite"])
def test_fork_while_another_thread_uses_the_pool(make_registry, backend):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    stop = threading.Event()
    calls = [0]
    failures = []

    def hammer():
        while not stop.is_set():
            try:
                reg.get_entity("driver", "proj", allow_cache=False)
                calls[0] += 1
            except Exception as e:
                failures.append(repr(e))
                return

    th = threading.Thread(target=hammer, daemon=True)
    th.start()
    try:
        for i in range(12):
            while calls[0] < 3 * (i + 1) and th.is_alive():
                time.sleep(0.001)

            def child(i=i):
                assert reg.get_entity("driver", "proj", allow_cache=False).name == "driver"
                reg.apply_entity(o.entity(f"child_{i}"), "proj")

            assert wait_child(fork_and_run(child), 30) == 0, f"child {i} failed"
    finally:
        stop.set()
        th.join(15)
    assert not th.is_alive()
    assert not failures, failures
    names = {e.name for e in reg.list_entities("proj", allow_cache=False)}
    assert {f"child_{i}" for i in range(12)} <= names
