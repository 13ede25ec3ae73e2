"""The wheel's test inside the clean root (run by scripts/wheel_test.sh).

    python wheel_test_root.py WORKDIR NAME=REGISTRY_URL ...

Runs with the root's venv python, where only the wheel and Feast (from
PyPI) are installed. Checks that importing the core maps no database
client library, that the extensions (the core and both backend modules)
and the MariaDB plugins load only libraries bundled in the wheel besides
the C library, then for
each registry URL builds a small feature repository, runs `feast apply` and
`feast materialize`, and checks through FeatureStore that the native
registry served it, that the materialization was recorded, and that the
online store has the values. Exits non-zero on the first failure.
"""

import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# What a manylinux wheel may take from the system (auditwheel's policy).
SYSTEM_LIBS = re.compile(
    r"^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|"
    r"libnsl|libcrypt|libgcc_s|libstdc\+\+|libz)[-.]"
)
BIN = Path(sys.executable).parent

FEATURES_PY = '''\
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(
    name="driver_stats_source",
    path="{data}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=30),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=source,
)
driver_activity = FeatureService(name="driver_activity", features=[driver_hourly_stats])
'''

FEATURE_STORE_YAML = """\
project: wheel_test
provider: local
registry:
  registry_type: sql
  path: {url}
  cache_ttl_seconds: 60
online_store:
  type: sqlite
  path: {online}
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def step(msg):
    print(f"-- {msg}", flush=True)


def run(*cmd, cwd=None):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
        fail(f"{' '.join(map(str, cmd))} exited {out.returncode}")
    return out.stdout, time.perf_counter() - t0


def mapped():
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if ".so" in line}


def check_libraries():
    before = mapped()  # the interpreter's own (Debian's python3 maps libexpat)
    import feast_sqlreg
    from feast_sqlreg import _sqlregistry

    pkg = Path(feast_sqlreg.__file__).parent
    bundled = pkg.parent / "feast_sqlreg.libs"
    so = Path(_sqlregistry.__file__)
    # The client libraries come with their backend modules, on demand.
    core_new = mapped() - before
    loaded = sorted(Path(m).name for m in core_new if "libpq" in m or "libmariadb" in m)
    if loaded:
        fail(f"importing the core mapped {loaded}")
    import feast_sqlreg._backend_mysql  # noqa: F401
    import feast_sqlreg._backend_pg  # noqa: F401

    modules = sorted(pkg.glob("_backend_*.so"))
    plugins = sorted((pkg / "_mariadb_plugin").glob("*.so"))
    print(f"extension: {so.name} (backends {_sqlregistry.backends}, "
          f"SQLite {_sqlregistry.sqlite_version})")
    print(f"backend modules: {', '.join(m.name for m in modules)}; the core's import "
          "mapped no client library")
    print(f"bundled: {len(list(bundled.iterdir()))} libraries in {bundled.name}/, "
          f"plugins: {', '.join(p.name for p in plugins)}")
    if not plugins:
        fail("no MariaDB plugins in the wheel")
    if len(modules) != 2:
        fail(f"backend modules in the wheel: {[m.name for m in modules]}")
    for obj in [so, *modules, *plugins]:
        out, _ = run("ldd", str(obj))
        system = []
        for line in out.splitlines():
            if "not found" in line:
                fail(f"ldd {obj.name}: {line.strip()}")
            parts = line.split()
            name = parts[0]
            path = os.path.normpath(parts[2] if len(parts) > 2 and parts[1] == "=>" else name)
            if path.startswith(str(bundled) + "/"):
                continue
            if not SYSTEM_LIBS.match(Path(name).name):
                fail(f"{obj.name} loads {name} from the system ({path})")
            system.append(Path(name).name)
        print(f"ldd {obj.name}: system libraries only {sorted(set(system))}")
    # What the imports really mapped, not only what ldd says.
    new = mapped() - before
    ours = sorted(Path(m).name for m in new if m.startswith(str(bundled)))
    other = sorted(
        m for m in new
        if not m.startswith(str(bundled)) and not m.startswith(str(pkg))
        and not SYSTEM_LIBS.match(Path(m).name)
    )
    print(f"the imports mapped {len(ours)} bundled libraries and, from the system, "
          f"{sorted(Path(m).name for m in new - set(other) if not m.startswith(str(bundled)) and not m.startswith(str(pkg))) or 'nothing'} "
          f"and {other or 'nothing else'}")
    if other:
        fail(f"the imports mapped system libraries {other}")
    plugin_dir = f"/usr/lib/{platform.machine()}-linux-gnu/libmariadb3/plugin"
    print(f"system MariaDB plugin directory {plugin_dir}: "
          f"{'present' if os.path.isdir(plugin_dir) else 'absent'}")


def make_repo(repo, url):
    import numpy as np
    import pandas as pd

    (repo / "data").mkdir(parents=True)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=2)
    ts = pd.date_range(start, end, freq="1h", inclusive="left", tz="UTC")
    ids = [1001, 1002, 1003]
    df = pd.DataFrame({
        "driver_id": np.repeat(ids, len(ts)).astype("int64"),
        "event_timestamp": np.tile(ts, len(ids)),
        "conv_rate": np.linspace(0, 1, len(ts) * len(ids)).astype("float32"),
        "avg_daily_trips": np.arange(len(ts) * len(ids)).astype("int64"),
    })
    df["created"] = pd.Timestamp(end)
    df.to_parquet(repo / "data" / "driver_stats.parquet", index=False)
    (repo / "features.py").write_text(
        FEATURES_PY.format(data=repo / "data" / "driver_stats.parquet"))
    (repo / "feature_store.yaml").write_text(
        FEATURE_STORE_YAML.format(url=url, online=repo / "data" / "online.db"))
    return start, end


def check_backend(name, url, workdir):
    repo = workdir / f"repo_{name}"
    start, end = make_repo(repo, url)
    out, _ = run(sys.executable, "-m", "feast_sqlreg", "status", cwd=repo)
    print("   " + out.strip().replace("\n", "\n   "))
    out, t_apply = run(str(BIN / "feast"), "apply", cwd=repo)
    fmt = "%Y-%m-%dT%H:%M:%S"
    out, t_mat = run(str(BIN / "feast"), "materialize", start.strftime(fmt),
                     end.strftime(fmt), cwd=repo)
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    cls = type(store.registry)
    if not cls.__module__.startswith("feast_sqlreg"):
        fail(f"{name}: FeatureStore uses {cls.__module__}.{cls.__qualname__}")
    fv = store.get_feature_view("driver_hourly_stats")
    if not fv.materialization_intervals:
        fail(f"{name}: no materialization interval recorded")
    online = store.get_online_features(
        features=["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
        entity_rows=[{"driver_id": 1001}, {"driver_id": 1003}],
    ).to_dict()
    if None in online["avg_daily_trips"]:
        fail(f"{name}: online values missing: {online}")
    print(f"{name}: feast apply {t_apply:.1f}s, feast materialize {t_mat:.1f}s; "
          f"registry {cls.__module__}.{cls.__qualname__}; "
          f"{len(store.list_feature_views())} feature view, "
          f"{len(fv.materialization_intervals)} interval; "
          f"online avg_daily_trips {online['avg_daily_trips']}")
    store.registry.close()


def main():
    workdir = Path(sys.argv[1])
    backends = [a.split("=", 1) for a in sys.argv[2:]]
    print(f"python {sys.version.split()[0]} ({sys.executable})")
    step("libraries")
    check_libraries()  # before Feast (and numpy, pyarrow, ...) map theirs
    import feast

    print(f"feast {feast.__version__}")
    for name, url in backends:
        step(f"feast apply and materialize on {name}")
        check_backend(name, url, workdir)
    print("root test: ok")


if __name__ == "__main__":
    main()
