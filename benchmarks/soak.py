"""Soak: a long run of mixed registry operations through NativeSqlRegistry,
with real Feast objects, watching the process's memory for leaks.

    python benchmarks/soak.py [--backend sqlite|postgresql|mysql] [--ops 100000]

Operations (seeded random mix, on one project of 12 feature views and 4
entities): apply entity, apply feature view, get cached and uncached, get a
missing object (the exception path), list cached and uncached,
apply_materialization, delete feature view, full proto refresh, set/get
project metadata.

Memory is the process's resident set size (/proc/self/statm; tracemalloc is
not used, so C allocations count and nothing slows down), sampled after a
gc.collect() every --sample-every operations. Bounds (exit status 1 if one
is exceeded):
- growth: RSS at the end minus RSS after the warm-up (--warmup ops) must be
  below --max-growth-mb (20 MB);
- trend: over the last half of the run, the samples must not rise at every
  step by a total of --trend-mb (1 MB) or more.

Prints a table and writes its figures into the "Soak" section of
benchmarks/RESULTS.md (one row per backend; other backends' rows are kept).
"""

import argparse
import gc
import os
import random
import re
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.simplefilter("ignore")
import logging  # noqa: E402

logging.getLogger("feast").setLevel(logging.ERROR)

import conftest  # noqa: E402  (imports Feast first: the hook patches it)
import objects as o  # noqa: E402
from feast import Field  # noqa: E402
from feast.errors import FeatureViewNotFoundException  # noqa: E402
from feast.types import Float32  # noqa: E402

PROJECT = "soak"
N_VIEWS = 12
N_ENTITIES = 4
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PAGE = os.sysconf("SC_PAGE_SIZE")

# (operation, weight): about what a busy feature server plus a materializer
# and a CI pipeline applying changes do to one registry.
MIX = [
    ("apply_entity", 5),
    ("apply_feature_view", 8),
    ("get_cached", 20),
    ("get_uncached", 12),
    ("get_missing", 3),
    ("list_cached", 3),
    ("list_uncached", 3),
    ("apply_materialization", 12),
    ("delete_feature_view", 4),
    ("refresh", 4),
    ("set_metadata", 6),
    ("get_metadata", 12),
]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class Soak:
    def __init__(self, registry, seed=1):
        self.reg = registry
        self.rng = random.Random(seed)
        self.entities = [o.entity(name=f"ent_{i}") for i in range(N_ENTITIES)]
        src = o.file_source()
        self.views = [
            o.feature_view(
                name=f"fv_{i:03d}",
                ent=self.entities[i % N_ENTITIES],
                source=src,
                schema=[Field(name=f"f{j}", dtype=Float32) for j in range(6)],
            )
            for i in range(N_VIEWS)
        ]
        self.live = set()
        self.t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.step = 0
        ops, weights = zip(*MIX)
        self.ops, self.weights = list(ops), list(weights)
        self.counts = dict.fromkeys(self.ops, 0)
        self.seconds = dict.fromkeys(self.ops, 0.0)
        for e in self.entities:
            self.reg.apply_entity(e, PROJECT)
        for fv in self.views:
            self._apply_view(fv)

    def _apply_view(self, fv):
        self.reg.apply_feature_view(fv, PROJECT)
        self.live.add(fv.name)

    def _live_view(self):
        if not self.live:
            self._apply_view(self.rng.choice(self.views))
        return self.rng.choice(sorted(self.live))

    def run(self, n):
        clock = time.perf_counter
        for op in self.rng.choices(self.ops, self.weights, k=n):
            t = clock()
            getattr(self, op)()
            self.seconds[op] += clock() - t
            self.counts[op] += 1

    # ---- the operations ----------------------------------------------------

    def apply_entity(self):
        self.reg.apply_entity(self.rng.choice(self.entities), PROJECT)

    def apply_feature_view(self):
        self._apply_view(self.rng.choice(self.views))

    def get_cached(self):
        self.reg.get_feature_view(self._live_view(), PROJECT, allow_cache=True)

    def get_uncached(self):
        if self.rng.random() < 0.5:
            self.reg.get_entity(self.rng.choice(self.entities).name, PROJECT, allow_cache=False)
        else:
            self.reg.get_feature_view(self._live_view(), PROJECT, allow_cache=False)

    def get_missing(self):
        try:
            self.reg.get_feature_view("no_such_view", PROJECT, allow_cache=False)
        except FeatureViewNotFoundException:
            pass
        else:
            raise AssertionError("get_feature_view of a missing view returned")

    def list_cached(self):
        self.reg.list_feature_views(PROJECT, allow_cache=True)

    def list_uncached(self):
        if self.rng.random() < 0.5:
            self.reg.list_entities(PROJECT, allow_cache=False)
        else:
            self.reg.list_feature_views(PROJECT, allow_cache=False)

    def apply_materialization(self):
        name = self._live_view()
        fv = self.views[int(name[3:])]
        self.step += 1
        start = self.t0 + timedelta(minutes=self.step)
        self.reg.apply_materialization(fv, PROJECT, start, start + timedelta(minutes=1))

    def delete_feature_view(self):
        # Keeps the registry (and its intervals) from growing without bound.
        name = self._live_view()
        self.reg.delete_feature_view(name, PROJECT)
        self.live.discard(name)

    def refresh(self):
        self.reg.refresh(PROJECT)

    def set_metadata(self):
        key = f"key_{self.rng.randrange(20)}"
        self.reg.set_project_metadata(PROJECT, key, f"value_{self.step}_{self.rng.random()}")

    def get_metadata(self):
        self.reg.get_project_metadata(PROJECT, f"key_{self.rng.randrange(25)}")


def sample(done, t_start):
    gc.collect()
    return dict(ops=done, rss=rss_mb(), objects=len(gc.get_objects()), secs=time.perf_counter() - t_start)


def judge(samples, warm, end, args):
    """(ok, reasons) against the stated bounds."""
    reasons = []
    growth = end["rss"] - warm["rss"]
    if growth >= args.max_growth_mb:
        reasons.append(f"RSS grew {growth:.1f} MB after the warm-up (bound {args.max_growth_mb} MB)")
    half = [s for s in samples if s["ops"] >= args.ops / 2]
    if len(half) >= 3:
        steps = [b["rss"] - a["rss"] for a, b in zip(half, half[1:])]
        rise = half[-1]["rss"] - half[0]["rss"]
        if all(d > 0 for d in steps) and rise >= args.trend_mb:
            reasons.append(
                f"RSS rose at every sample over the last half, {rise:.1f} MB in all "
                f"(bound: not monotone by {args.trend_mb} MB or more)"
            )
    return not reasons, reasons


def write_results(backend, row, samples_line, args):
    """Replaces this backend's rows in RESULTS.md's Soak section, keeping
    the other backends' rows and everything outside the section. Locked:
    soaks on several backends may run at once."""
    import fcntl

    # Left in place: unlinking it would let a waiter and a newcomer lock
    # different files.
    with open(os.path.join(tempfile.gettempdir(), "feast_sqlreg_soak_results.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write_results(backend, row, samples_line, args)


def _write_results(backend, row, samples_line, args):
    header = [
        "## Soak",
        "",
        f"`make soak` (`benchmarks/soak.py`): mixed registry operations through "
        "NativeSqlRegistry with real Feast objects (apply entity / feature view, get cached, "
        "uncached and missing, list, apply_materialization, delete, proto refresh, set/get "
        f"project metadata) on one project of {N_VIEWS} feature views. RSS from /proc/self/statm "
        "after gc.collect(), no tracemalloc. Bounds: growth after the warm-up "
        f"< {args.max_growth_mb:g} MB, and no rise at every sample over the last half "
        f"totalling {args.trend_mb:g} MB or more.",
        "",
        "| backend | ops | warm-up | RSS after warm-up (MB) | RSS at end (MB) | growth (MB) "
        "| Python objects warm-up / end | ops/s | result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    text = RESULTS.read_text() if RESULTS.exists() else ""
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    old = m.group(0) if m else ""
    rows = [line for line in old.splitlines() if line.startswith("| ") and not line.startswith("| backend")
            and not line.startswith("| ---")]
    sample_lines = [line for line in old.splitlines() if line.startswith("- ")]
    rows = [r for r in rows if r.split("|")[1].strip() != backend] + [row]
    sample_lines = [s for s in sample_lines if not s.startswith(f"- {backend}:")] + [samples_line]
    order = {"sqlite": 0, "postgresql": 1, "mysql": 2}
    rows.sort(key=lambda r: order.get(r.split("|")[1].strip(), 9))
    sample_lines.sort(key=lambda s: order.get(s[2:].split(":")[0], 9))
    section = "\n".join(
        header + rows + ["", "RSS (MB) sampled every 10,000 operations, from the start:", ""]
        + sample_lines
    ) + "\n\n"
    if m:
        text = text[: m.start()] + section + text[m.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "mysql"])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=5_000)
    ap.add_argument("--sample-every", type=int, default=10_000)
    ap.add_argument("--max-growth-mb", type=float, default=20.0)
    ap.add_argument("--trend-mb", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-results", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.warmup >= args.ops:
        ap.error("--warmup must be smaller than --ops")

    # SQLite's file goes to /dev/shm when there is one: this measures memory,
    # not the disk's fsync latency (which would dominate every write).
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        dbs = conftest.Databases(args.backend, Path(tmp))
        try:
            url, _ = dbs.new()
            reg = conftest.NativeSqlRegistry(conftest.config(url), PROJECT, None)
            soak = Soak(reg, seed=args.seed)
            t_start = time.perf_counter()
            samples = [sample(0, t_start)]
            print(f"soak on {args.backend}: {args.ops} operations, warm-up {args.warmup}", flush=True)
            print(f"{'ops':>8} {'RSS MB':>8} {'objects':>9} {'s':>7}")
            print(f"{0:8d} {samples[0]['rss']:8.1f} {samples[0]['objects']:9d} {0:7.1f}", flush=True)
            done = 0
            warm = None
            marks = sorted({args.warmup, args.ops, *range(args.sample_every, args.ops, args.sample_every)})
            for mark in marks:
                soak.run(mark - done)
                done = mark
                s = sample(done, t_start)
                if mark == args.warmup:
                    warm = s
                if mark % args.sample_every == 0 or mark == args.ops:
                    samples.append(s)
                tag = "  (after warm-up)" if mark == args.warmup else ""
                print(f"{done:8d} {s['rss']:8.1f} {s['objects']:9d} {s['secs']:7.1f}{tag}", flush=True)
            end = samples[-1]
            reg.teardown()
        finally:
            dbs.drop_all()

    ops_per_s = args.ops / end["secs"]
    ok, reasons = judge(samples, warm, end, args)
    growth = end["rss"] - warm["rss"]
    print()
    print(f"| backend | ops | RSS after warm-up | RSS at end | growth | ops/s |")
    print(f"| {args.backend} | {args.ops} | {warm['rss']:.1f} MB | {end['rss']:.1f} MB "
          f"| {growth:+.1f} MB | {ops_per_s:.0f} |")
    print("mix (count, mean ms): " + ", ".join(
        f"{k} {v} {1000 * soak.seconds[k] / max(v, 1):.2f}" for k, v in soak.counts.items()))
    for r in reasons:
        print(f"FAIL: {r}")
    print("PASS" if ok else "FAIL")
    if not args.no_results:
        row = (f"| {args.backend} | {args.ops:,} | {args.warmup:,} | {warm['rss']:.1f} | {end['rss']:.1f} "
               f"| {growth:+.1f} | {warm['objects']:,} / {end['objects']:,} | {ops_per_s:.0f} "
               f"| {'pass' if ok else 'FAIL'} |")
        line = f"- {args.backend}: " + ", ".join(f"{s['rss']:.1f}" for s in samples)
        write_results(args.backend, row, line, args)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
