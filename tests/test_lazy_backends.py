"""The client libraries are loaded on demand (issue 9): importing the core
maps neither libpq nor the MariaDB client library, and opening a store maps
only the one its URL needs, through the backend module of that kind
(feast_sqlreg._backend_pg, _backend_mysql). Each check runs in a fresh
interpreter, since a library, once mapped, stays."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import feast_sqlreg
from feast_sqlreg import _sqlregistry

LIBS = {"postgresql": "libpq", "mysql": "libmariadb"}
MODULES = {"postgresql": "feast_sqlreg._backend_pg", "mysql": "feast_sqlreg._backend_mysql"}

# Prints, as JSON, after each step: the client libraries mapped and the
# backend modules imported. argv: a SQLite URL, then the URL to open.
PROBE = r"""
import json, sys

def seen(step):
    with open("/proc/self/maps") as f:
        maps = f.read()
    libs = sorted(n for n in ("libpq", "libmariadb") if n in maps)
    mods = sorted(m for m in sys.modules if m.startswith("feast_sqlreg._backend"))
    print(json.dumps([step, libs, mods]), flush=True)

seen("start")
import feast_sqlreg._sqlregistry as core
seen("import")
with core.Store(sys.argv[1]) as s:
    s.create_schema()
seen("sqlite")
how, url = sys.argv[2], sys.argv[3]
if how == "store":
    with core.Store(url) as s:
        s.create_schema()
        assert not s.missing_tables(False)
else:  # the registry server's front opens a store of its own
    f = core.Front(0, 1, [], [], path=url, workers=1)
    f.stop()
seen("open")
"""


def probe(tmp_path, how, url, env=None):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, f"sqlite:///{tmp_path / 'lazy.db'}", how, url],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )
    assert out.returncode == 0, out.stderr
    return {step: (libs, mods) for step, libs, mods in map(json.loads, out.stdout.splitlines())}


@pytest.mark.parametrize("how", ["store", "front"])
def test_client_library_loaded_only_when_a_url_of_its_kind_is_opened(
        backend, databases, tmp_path, how):
    url = databases.new()[0]
    steps = probe(tmp_path, how, url)
    assert steps["start"] == ([], [])  # the interpreter itself maps neither
    assert steps["import"] == ([], []), "importing the core loaded a backend"
    assert steps["sqlite"] == ([], []), "a SQLite store loaded a backend"
    if backend == "sqlite":
        assert steps["open"] == ([], [])
    else:
        assert steps["open"] == ([LIBS[backend]], [MODULES[backend]])


def test_backends_lists_the_build_without_importing_it():
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, feast_sqlreg._sqlregistry as c; print(c.backends); "
         "print(sorted(m for m in sys.modules if 'feast_sqlreg._backend' in m))"],
        capture_output=True, text=True, check=True, cwd="/",
    ).stdout.split("\n")
    built = out[0].split(",")
    assert built[0] == "sqlite" and out[1] == "[]"
    pkg = Path(feast_sqlreg.__file__).parent
    for backend, module in MODULES.items():
        present = any(pkg.glob(module.rsplit(".", 1)[1] + ".*.so"))
        assert (backend in built) == present, (backend, built)


@pytest.mark.parametrize("backend_kind", ["postgresql", "mysql"])
def test_a_backend_module_missing_is_a_configuration_error(tmp_path, backend_kind):
    """The package without one backend module, as a build without that
    client library has it: opening such a URL is a ConfigurationError, and
    the other backends still load."""
    if backend_kind not in _sqlregistry.backends.split(","):
        pytest.skip(f"this build has no {backend_kind} backend")
    pkg = Path(feast_sqlreg.__file__).parent
    copy = tmp_path / "site" / "feast_sqlreg"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for so in copy.glob(MODULES[backend_kind].rsplit(".", 1)[1] + ".*.so"):
        so.unlink()
    code = r"""
import sys
import feast_sqlreg, feast_sqlreg._sqlregistry as core
from feast_sqlreg.errors import ConfigurationError
assert feast_sqlreg.__file__.startswith(sys.argv[1]), feast_sqlreg.__file__
for url in ("postgresql://u:secret@127.0.0.1:1/x", "mariadb://u:secret@127.0.0.1:1/x"):
    try:
        core.Store(url, pool_pre_ping=False).close()
    except ConfigurationError as e:
        print("config:", e)
    except Exception as e:  # the other backend: loaded, server unreachable or fine
        print("other:", type(e).__name__)
    else:
        print("other: opened")
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(copy)], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    missing = 0 if backend_kind == "postgresql" else 1
    scheme = ["postgresql", "mariadb"][missing]
    assert lines[missing].startswith(f"config: no backend for '{scheme}' URLs"), lines
    assert "secret" not in out.stdout
    assert not lines[1 - missing].startswith("config:"), lines
