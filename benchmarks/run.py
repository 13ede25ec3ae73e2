"""Native vs stock SQL registry, side by side, on the same database kind in
the same run. Prints a table per backend and writes benchmarks/RESULTS.md.

    python benchmarks/run.py [--backends sqlite,postgresql,mysql] [--sizes 10,50,100]

--backends pgbouncer runs PostgreSQL through PgBouncer in transaction mode
(scripts/databases.sh), both registries with prepare_threshold: None.
--backends sqlite-wal runs SQLite on database files set to WAL mode
(PRAGMA journal_mode=WAL, kept in the file) for both registries: see the
README's SQLite section for what that mode trades.

Scenarios (each on a fresh database per registry):
- apply N: the registry calls `feast apply` makes for a repository of N
  feature views (entity, source, N views, a feature service; each with
  commit=False, then commit()), in the default sync cache mode, where stock
  re-reads the whole registry after every write;
- refresh: one full registry rebuild (proto()) with N views in each of 5
  projects;
- get: 200 uncached get_feature_view calls (mostly Feast's own from_proto,
  which native runs without typeguard's checks in the reading thread);
- get_cached: 200 get_feature_view calls from the cached registry;
- materialize: 50 apply_materialization calls on one view;
- reapply N: the N views of a stored registry applied again unchanged (the
  registry calls of `feast apply` on an unchanged repository);
- noop_apply N: the registry calls of `feast apply` of an unchanged
  repository where Feast does not plan (any online store but SQLite):
  FeatureStore.apply re-applies every object with commit=False, then
  commit();
- noop_plan N: the registry calls of `feast apply` (and `feast plan`) of an
  unchanged repository where Feast plans (the local provider with the
  SQLite online store): Feast's own diff_between (every list_* call, then
  Feast comparing each stored object with the repository's), refresh,
  get_infra, and update_infra of the same infra. Feast's comparison is
  most of it, the same work for both registries (the note under the table
  gives native's list_* share);
- apply_one N: one view of an N-view registry applied with a changed tag,
  20 times (best of 3 rounds; per call = the time / 20).
Ratio = stock time / native time (above 1: native is faster).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.simplefilter("ignore")

import conftest  # noqa: E402  (databases, registries)
import objects as o  # noqa: E402
from feast import Field  # noqa: E402
from feast.types import Float32  # noqa: E402

from feast_sqlreg._sqlregistry import backends as BUILT  # noqa: E402


def views(n):
    ent = o.entity()
    src = o.file_source()
    return ent, src, [
        o.feature_view(
            name=f"fv_{i:04d}",
            ent=ent,
            source=src,
            schema=[Field(name=f"f{j}", dtype=Float32) for j in range(8)],
        )
        for i in range(n)
    ]


def timed(fn, repeat=1):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


# "pgbouncer": PostgreSQL through the PgBouncer (transaction mode) that
# scripts/databases.sh runs on port 6435, both registries with
# prepare_threshold: None, the setting each needs there.
PGBOUNCER_PORT = int(os.environ.get("FEAST_SQLREG_PGBOUNCER_PORT", "6435"))


class Bench:
    def __init__(self, backend, tmp):
        self.bounced = backend == "pgbouncer"
        self.wal = backend == "sqlite-wal"
        real = {"pgbouncer": "postgresql", "sqlite-wal": "sqlite"}.get(backend, backend)
        self.dbs = conftest.Databases(real, Path(tmp))
        self.made = []

    def registry(self, kind, urls=None, **kw):
        if urls is None:
            urls = self.new_database()
        if self.bounced:
            kw.setdefault("sqlalchemy_config_kwargs", {"connect_args": {"prepare_threshold": None}})
        cls = conftest.NativeSqlRegistry if kind == "native" else conftest.StockSqlRegistry
        reg = cls(conftest.config(urls[0] if kind == "native" else urls[1], **kw), "proj", None)
        reg.bench_urls = urls
        self.made.append(reg)
        return reg

    def new_database(self):
        """(native URL, stock URL) of a new, empty database."""
        urls = self.dbs.new()
        if self.wal:
            # The database file in WAL mode before either registry opens it;
            # the mode is kept in the file, and both run on it.
            import sqlite3

            db = sqlite3.connect(urls[0][len("sqlite:///"):])
            assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
            db.close()
        if self.bounced:
            urls = [u.replace(":5432/", f":{PGBOUNCER_PORT}/") for u in urls]
        return urls

    def close(self):
        """Closes the native registries made so far: their change pollers
        must not run in the background of the next scenario."""
        for reg in self.made:
            if isinstance(reg, conftest.NativeSqlRegistry):
                reg.close()
        self.made.clear()

    def apply(self, kind, n):
        reg = self.registry(kind)
        ent, src, fvs = views(n)

        def run():
            # As FeatureStore.apply and `feast apply` call the registry:
            # commit=False for each object, then commit().
            reg.apply_entity(ent, "proj", commit=False)
            reg.apply_data_source(src, "proj", commit=False)
            for fv in fvs:
                reg.apply_feature_view(fv, "proj", commit=False)
            reg.apply_feature_service(o.feature_service(views=fvs[:5]), "proj", commit=False)
            reg.commit()
            reg.list_feature_views("proj", allow_cache=True)

        return timed(run)

    def stored(self, kind, n):
        """A registry of `kind` over a database holding an entity, a source
        and n views: (reg, views). The rows are written by the native
        registry for both (the same tables and bytes either registry
        writes: stock reads them as its own, tests/test_compat.py), in one
        commit, so that a large registry is made in seconds, not in the
        quarter of an hour stock's applies take at 5,000 views."""
        builder = self.registry("native")
        urls = builder.bench_urls
        ent, src, fvs = views(n)
        builder.apply_entity(ent, "proj", commit=False)
        builder.apply_data_source(src, "proj", commit=False)
        for fv in fvs:
            builder.apply_feature_view(fv, "proj", commit=False)
        builder.commit()
        builder.close()
        self.made.remove(builder)
        return self.registry(kind, urls), fvs

    def reapply(self, kind, n):
        reg, _ = self.stored(kind, n)
        _, _, again = views(n)  # the same definitions, built anew
        return timed(lambda: [reg.apply_feature_view(fv, "proj") for fv in again])

    def noop_apply(self, kind, n):
        reg, _ = self.stored(kind, n)
        ent, src, fvs = views(n)  # the same definitions, built anew

        def run():
            reg.apply_entity(ent, "proj", commit=False)
            reg.apply_data_source(src, "proj", commit=False)
            for fv in fvs:
                reg.apply_feature_view(fv, "proj", commit=False)
            reg.commit()

        return timed(run)

    def noop_plan(self, kind, n):
        from feast.diff.registry_diff import diff_between
        from feast.project import Project
        from feast.repo_contents import RepoContents

        reg, _ = self.stored(kind, n)
        ent, src, fvs = views(n)
        repo = RepoContents(
            projects=[Project(name="proj")], data_sources=[src], entities=[ent],
            feature_views=fvs, on_demand_feature_views=[], stream_feature_views=[],
            label_views=[], feature_services=[], permissions=[],
        )
        reg.apply_project(Project(name="proj"))
        listed = {}

        def run():
            t0 = time.perf_counter()
            diff = diff_between(reg, "proj", repo)
            listed["diff"] = time.perf_counter() - t0
            assert all(d.transition_type.name == "UNCHANGED" for d in diff.feast_object_diffs)
            reg.refresh(project="proj")
            reg.update_infra(reg.get_infra("proj"), "proj", commit=True)

        took = timed(run)
        if kind == "native":
            # native's own share of the diff: the list_* calls it made
            from feast.infra.registry.registry import FeastObjectType

            t0 = time.perf_counter()
            FeastObjectType.get_objects_from_registry(reg, "proj")
            self.plan_lists = (time.perf_counter() - t0, listed["diff"], took)
        return took

    def apply_one(self, kind, n):
        reg, fvs = self.stored(kind, n)
        target = fvs[n // 2]
        rounds = iter(range(10**6))

        def run():
            for _ in range(20):
                target.tags["round"] = str(next(rounds))
                reg.apply_feature_view(target, "proj")

        return timed(run, repeat=3) / 20

    def refresh(self, kind, n):
        reg = self.registry(kind)
        ent, src, fvs = views(n)
        for p in range(5):
            project = f"p{p}"
            reg.apply_entity(ent, project)
            reg.apply_data_source(src, project)
            for fv in fvs:
                reg.apply_feature_view(fv, project)
        return timed(reg.proto, repeat=5)

    def get(self, kind, n):
        reg = self.registry(kind)
        ent, src, fvs = views(n)
        for fv in fvs:
            reg.apply_feature_view(fv, "proj")
        names = [fv.name for fv in fvs]
        return timed(lambda: [reg.get_feature_view(names[i % n], "proj") for i in range(200)], repeat=3)

    def get_cached(self, kind, n):
        """200 get_feature_view calls served from the cached registry proto
        (allow_cache=True, after one refresh): Feast's object conversion,
        with or without typeguard's checks, and nothing else."""
        reg = self.registry(kind)
        ent, src, fvs = views(n)
        for fv in fvs:
            reg.apply_feature_view(fv, "proj")
        names = [fv.name for fv in fvs]
        reg.refresh()
        return timed(
            lambda: [reg.get_feature_view(names[i % n], "proj", allow_cache=True) for i in range(200)],
            repeat=3,
        )

    def get_breakdown(self):
        """(µs of Store.get, µs of Feast's FeatureView.from_proto with and
        without typeguard's checks) per call: what an uncached get costs in
        the database layer vs in Feast."""
        from feast.feature_view import FeatureView
        from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto

        reg = self.registry("native")
        ent, src, fvs = views(1)
        reg.apply_feature_view(fvs[0], "proj")
        store = reg._store
        store.get(3, "proj", fvs[0].name)
        t0 = time.perf_counter()
        for _ in range(500):
            data = store.get(3, "proj", fvs[0].name)
        store_us = (time.perf_counter() - t0) / 500 * 1e6
        from feast_sqlreg._typechecks import thread_suppressed

        def convert():
            t0 = time.perf_counter()
            for _ in range(200):
                FeatureView.from_proto(FeatureViewProto.FromString(data))
            return (time.perf_counter() - t0) / 200 * 1e6

        checked = convert()
        with thread_suppressed():
            unchecked = convert()
        return store_us, checked, unchecked

    def materialize(self, kind, n):
        reg = self.registry(kind)
        ent, src, fvs = views(1)
        reg.apply_feature_view(fvs[0], "proj")
        t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

        def run():
            for i in range(50):
                reg.apply_materialization(
                    fvs[0], "proj", t0 + timedelta(hours=i), t0 + timedelta(hours=i + 1)
                )

        return timed(run)


def hook_import_us():
    """Microseconds the start-up hook adds to an interpreter (median of 15,
    from -X importtime)."""
    samples = []
    for _ in range(15):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True
        ).stderr
        for line in out.splitlines():
            if line.rstrip().endswith("feast_sqlreg_hook"):
                samples.append(int(line.split("|")[1]))
    return statistics.median(samples) if samples else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default=BUILT)
    ap.add_argument("--sizes", default="10,100,300")
    ap.add_argument(
        "--scenarios",
        default="apply,refresh,get,get_cached,materialize,reapply,noop_apply,noop_plan,apply_one",
        help="a subset prints its table without rewriting RESULTS.md",
    )
    ap.add_argument(
        "--section",
        help="write the tables as this section of RESULTS.md (replacing it), not the whole file",
    )
    ap.add_argument(
        "--limit",
        default="",
        help="scenario=N,...: sizes above N are not run for that scenario "
        "(stock's apply of 5,000 views alone takes about 10 minutes per backend)",
    )
    args = ap.parse_args()
    limits = {k: int(v) for k, v in (x.split("=") for x in args.limit.split(",") if x)}
    scenarios = args.scenarios.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = [
        "# Benchmarks: native vs stock SQL registry",
        "",
        f"Feast {__import__('feast').__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; each scenario on a fresh database per registry, "
        "both registries on the same server in the same run. "
        "Ratio = stock / native (higher is better for native).",
        "",
    ]
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(backend, tmp)
            rows = []
            try:
                for scenario in scenarios:
                    sized = ("apply", "refresh", "reapply", "noop_apply", "noop_plan", "apply_one")
                    for n in sizes if scenario in sized else sizes[-1:]:
                        if n > limits.get(scenario, n):
                            continue
                        stock = getattr(bench, scenario)("stock", n)
                        bench.close()
                        native = getattr(bench, scenario)("native", n)
                        bench.close()
                        rows.append((scenario, n, stock, native))
                        print(f"{backend:10s} {scenario:11s} n={n:4d} stock {stock*1000:9.1f} ms"
                              f"  native {native*1000:8.1f} ms  x{stock/native:6.1f}", flush=True)
                store_us, checked_us, unchecked_us = bench.get_breakdown()
            finally:
                bench.close()
                bench.dbs.drop_all()
        lines += [f"## {backend}", "", "| scenario | N | stock (ms) | native (ms) | stock / native |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {s} | {n} | {a*1000:.1f} | {b*1000:.1f} | {a/b:.1f}x |" for s, n, a, b in rows]
        lines += ["", f"An uncached get: {store_us:.0f} us in the native store (GIL released); "
                  f"Feast's FeatureView.from_proto takes {checked_us:.0f} us with typeguard's checks "
                  f"(stock) and {unchecked_us:.0f} us without them (native, reading thread only).", ""]
        if getattr(bench, "plan_lists", None):
            lists, diff, total = bench.plan_lists
            lines += [f"noop_plan, native: {total*1000:.0f} ms, of which Feast's diff_between "
                      f"{diff*1000:.0f} ms; its list_* calls to the registry take {lists*1000:.0f} ms "
                      "of that, the rest is Feast comparing objects.", ""]
    results = ROOT / "benchmarks" / "RESULTS.md"
    if args.section:
        old = results.read_text() if results.exists() else ""
        inner = ["#" + line if line.startswith("## ") else line for line in lines[2:]]
        body = "\n".join([f"## {args.section}", "", *inner]).rstrip("\n") + "\n\n"
        pattern = re.compile(rf"^## {re.escape(args.section)}\n.*?(?=^## |\Z)", re.S | re.M)
        new = pattern.sub(lambda _: body, old) if pattern.search(old) else old + "\n" + body
        results.write_text(new)
        return
    if args.scenarios != ap.get_default("scenarios"):
        return
    us = hook_import_us()
    lines += ["## Start-up cost", "",
              f"The .pth hook adds {us} us to the start of a Python process that never imports "
              "Feast (median of 15 runs, `python -X importtime -c pass`).", ""]
    print(lines[-2])
    # Sections other runs own (make soak: "## Soak", make fleet: "## Fleet",
    # make bench-serve: "## Serving path", --section: "## Large registries")
    # are kept.
    old = results.read_text() if results.exists() else ""
    kept = re.findall(r"^## (?:Soak|Fleet|Serving path|Large registries)\b.*?(?=^## |\Z)", old,
                      flags=re.S | re.M)
    results.write_text("\n".join(lines).rstrip("\n") + "\n\n" + "".join(kept))


if __name__ == "__main__":
    main()
