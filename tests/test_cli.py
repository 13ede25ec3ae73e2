"""The real feast CLI and servers on a real repository, with the native
registry picked up by the start-up hook (no code change, no config change)."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEAST = str(BIN / "feast")
END = datetime(2026, 1, 11, tzinfo=timezone.utc)
START = END - timedelta(days=10)


def _demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


@pytest.fixture
def repo(tmp_path):
    workdir = tmp_path / "repo"
    _demo().make_repo(workdir, "sql", START, END)
    return workdir


def feast(repo, *args, env=None, check=True):
    proc = subprocess.run(
        [FEAST, *args], cwd=repo, capture_output=True, text=True, env=env, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"feast {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def in_repo(repo, code, env=None):
    """Runs code in a fresh interpreter in the repo; returns its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


STATE = """
import json, warnings
warnings.simplefilter("ignore")
from feast import FeatureStore
fs = FeatureStore(repo_path=".")
r = fs.registry
print(json.dumps({
    "registry": type(r).__module__ + "." + type(r).__qualname__,
    "entities": sorted(e.name for e in r.list_entities(fs.project)),
    "views": sorted(v.name for v in r.list_feature_views(fs.project)),
    "services": sorted(s.name for s in r.list_feature_services(fs.project)),
    "intervals": {v.name: len(v.materialization_intervals) for v in r.list_feature_views(fs.project)},
}))
"""


def test_cli_lifecycle(repo):
    created = feast(repo, "registry", "create-schema")
    assert "Change log installed" in created.stdout
    plan = feast(repo, "plan")
    assert "driver_hourly_stats" in plan.stdout
    feast(repo, "apply")
    state = json.loads(in_repo(repo, STATE))
    assert state["registry"] == "feast_sqlreg.registry.NativeSqlRegistry"
    assert state["entities"] == ["__dummy", "customer", "driver"]
    assert state["views"] == ["customer_profile", "driver_hourly_stats", "driver_quality"]
    assert state["services"] == ["driver_activity"]

    feast(repo, "apply")  # idempotent
    mid = START + timedelta(days=5)
    feast(repo, "materialize", START.strftime("%Y-%m-%dT%H:%M:%S"), mid.strftime("%Y-%m-%dT%H:%M:%S"))
    feast(repo, "materialize-incremental", END.strftime("%Y-%m-%dT%H:%M:%S"))
    state = json.loads(in_repo(repo, STATE))
    assert set(state["intervals"].values()) == {2}

    # The stock registry reads what the CLI wrote through ours.
    stock = json.loads(in_repo(repo, STATE, env={**os.environ, "FEAST_SQLREG_DISABLE": "1"}))
    assert stock["registry"] == "feast.infra.registry.sql.SqlRegistry"
    assert {k: v for k, v in stock.items() if k != "registry"} == {
        k: v for k, v in state.items() if k != "registry"
    }

    feast(repo, "teardown")
    state = json.loads(in_repo(repo, STATE))
    assert state["views"] == [] and state["entities"] == []


def _registry_rows(repo):
    """Every row of every table of the repo's SQLite registry."""
    import sqlite3

    text = next(repo.rglob("feature_store.yaml")).read_text()
    path = Path(text.split("sqlite:///", 1)[1].split()[0])
    db = sqlite3.connect(path if path.is_absolute() else repo / path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        db.close()


def test_plan_and_an_unchanged_apply_rewrite_nothing(repo):
    feast(repo, "apply")
    before = _registry_rows(repo)
    assert before["feature_views"]
    feast(repo, "plan")
    feast(repo, "apply")
    assert _registry_rows(repo) == before


def test_status_command(repo):
    registry_db = next(repo.rglob("feature_store.yaml")).read_text().split("sqlite:///", 1)[1].split()[0]
    db = Path(registry_db) if Path(registry_db).is_absolute() else repo / registry_db
    assert not db.exists()
    before = subprocess.run(
        [sys.executable, "-m", "feast_sqlreg", "status"], cwd=repo, capture_output=True, text=True
    )
    assert before.returncode == 0, before.stderr
    # A status check reports the missing file and does not create it.
    assert "no database file yet" in before.stdout and str(db) in before.stdout
    assert not db.exists()
    feast(repo, "apply")
    out = subprocess.run(
        [sys.executable, "-m", "feast_sqlreg", "status"], cwd=repo, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "native" in out.stdout and "sqlite" in out.stdout
    assert "connection:   ok; schema complete" in out.stdout
    disabled = subprocess.run(
        [sys.executable, "-m", "feast_sqlreg", "status"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "FEAST_SQLREG_DISABLE": "1"},
    )
    assert disabled.returncode == 0
    assert "stock" in disabled.stdout and "FEAST_SQLREG_DISABLE" in disabled.stdout


def test_hook_imports_nothing_at_start_up():
    """The .pth hook loads only itself: no feast, no feast_sqlreg, no C
    extension, in a process that never uses Feast."""
    code = "import sys; print(sorted(m for m in sys.modules if 'feast' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "['feast_sqlreg_hook']"


def test_native_registry_when_feast_sqlreg_is_imported_first():
    """A program that imports feast_sqlreg.registry before Feast: Feast's SQL
    registry module loads while ours is still loading; the hook finishes
    its work when ours is done, and Feast's FeatureStore gets it too."""
    code = (
        "import warnings; warnings.simplefilter('error', UserWarning)\n"
        "import feast_sqlreg.registry as r\n"
        "import feast.feature_store as fs, feast.infra.registry.sql as sql\n"
        "from feast_sqlreg import _install\n"
        "print(_install.status['patched'], sql.SqlRegistry is r.NativeSqlRegistry,"
        " fs.SqlRegistry is r.NativeSqlRegistry, sql.StockSqlRegistry.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True", "feast.infra.registry.sql"]
    assert "stock SQL registry" not in out.stderr


def test_disable_gives_stock(repo):
    code = "from feast.infra.registry.sql import SqlRegistry; print(SqlRegistry.__module__)"
    assert in_repo(repo, code) == "feast_sqlreg.registry"
    env = {**os.environ, "FEAST_SQLREG_DISABLE": "1"}
    assert in_repo(repo, code, env=env) == "feast.infra.registry.sql"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(repo, args, ready):
    """Starts a feast server, waits until ready() holds, returns (proc, log)."""
    log = repo / f"server-{args[0]}.log"
    proc = subprocess.Popen(
        [FEAST, "--log-level", "INFO", *args],
        cwd=repo,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if ready():
                return proc, log
        except OSError:
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise AssertionError(f"server not ready: {log.read_text()}")


def _stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_feast_serve_uses_native_registry(repo):
    feast(repo, "apply")
    feast(repo, "materialize", START.strftime("%Y-%m-%dT%H:%M:%S"), END.strftime("%Y-%m-%dT%H:%M:%S"))
    port = _free_port()

    def ready():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200

    proc, log = _serve(repo, ["serve", "--host", "127.0.0.1", "-p", str(port)], ready)
    try:
        body = json.dumps(
            {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
        ).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
        values = answer["results"][1]["values"]
        assert values[0] is not None
    finally:
        _stop(proc)
    assert "feast_sqlreg: native SQL registry" in log.read_text()


def test_feast_serve_registry_uses_native_registry(repo):
    feast(repo, "apply")
    port = _free_port()

    def ready():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    proc, log = _serve(repo, ["serve_registry", "--port", str(port)], ready)
    try:
        from feast.infra.registry.remote import RemoteRegistry, RemoteRegistryConfig

        remote = RemoteRegistry(
            RemoteRegistryConfig(registry_type="remote", path=f"127.0.0.1:{port}"), "demo", None
        )
        assert sorted(e.name for e in remote.list_entities("demo")) == ["__dummy", "customer", "driver"]
        views = remote.list_feature_views("demo", allow_cache=False)
        assert views and all(v.name for v in views)
        assert remote.get_entity("driver", "demo").join_key == "driver_id"
        # A missing object crosses gRPC as stock's: NOT_FOUND, then Feast's exception.
        from feast.errors import EntityNotFoundException

        with pytest.raises(EntityNotFoundException):
            remote.get_entity("nobody", "demo")
    finally:
        _stop(proc)
    assert "feast_sqlreg: native SQL registry" in log.read_text()
    assert "answers reads from stored protos" in log.read_text()


def test_feast_serve_registry_with_tls_keeps_the_native_front(repo, tmp_path):
    """`feast serve_registry --key K --cert C`: the native front serves TLS
    with Feast's files, and Feast's RemoteRegistry, trusting the
    certificate, reads through it."""
    feast(repo, "apply")
    port = _free_port()
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )

    def ready():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    proc, log = _serve(repo, ["serve_registry", "--port", str(port), "--key", str(key),
                              "--cert", str(cert)], ready)
    try:
        from feast.infra.registry.remote import RemoteRegistry, RemoteRegistryConfig

        remote = RemoteRegistry(
            RemoteRegistryConfig(registry_type="remote", path=f"localhost:{port}",
                                 cert=str(cert)), "demo", None
        )
        assert sorted(e.name for e in remote.list_entities("demo")) == ["__dummy", "customer", "driver"]
        assert remote.get_entity("driver", "demo").join_key == "driver_id"
    finally:
        _stop(proc)
    assert "(native front, TLS; grpcio on 127.0.0.1:" in log.read_text()
