"""What the metrics' timing wrapper costs a cached registry read.

    python benchmarks/metrics_overhead.py [--rounds N]

On a SQLite registry (the cached reads never touch the database), each
cached read is called through NativeSqlRegistry as installed (timed by
feast_sqlreg._metrics, type checks off in the same frame) and through
the same method with only the type-check wrapper it had before the
metrics (feast_sqlreg._typechecks.without_type_checks), in turns; the
best of N rounds of 20,000 calls each, per call. For comparison:
prometheus_client's own Histogram.observe of one labelled child. Prints
a table; writes nothing.
"""

import argparse
import sys
import tempfile
import time
import timeit
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import objects as o  # noqa: E402
from conftest import config  # noqa: E402
from feast_sqlreg import _metrics, _typechecks  # noqa: E402
from feast_sqlreg.registry import NativeSqlRegistry  # noqa: E402

CALLS = 20_000


def best(fn, rounds):
    fn()
    return min(timeit.timeit(fn, number=CALLS) for _ in range(rounds)) / CALLS * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        reg = NativeSqlRegistry(config(f"sqlite:///{d}/registry.db"), "proj", None)
        reg.apply_entity(o.entity(), "proj")
        reg.apply_data_source(o.file_source(), "proj")
        reg.apply_feature_view(o.feature_view(), "proj")
        reg.refresh()
        view = reg.list_feature_views("proj", allow_cache=True)[0].name
        cases = [("get_entity", ("driver", "proj", True)),
                 ("get_feature_view", (view, "proj", True)),
                 ("list_entities", ("proj", True))]
        print(f"cached reads, us per call (best of {args.rounds} x {CALLS:,}):")
        print(f"{'method':18s} {'before':>8s} {'timed':>8s} {'cost':>8s}")
        for name, call_args in cases:
            timed = getattr(NativeSqlRegistry, name)
            before = _typechecks.without_type_checks(timed.__wrapped__)
            a, b = [], []
            for _ in range(args.rounds // 10 or 1):  # in turns: the machine's load drifts
                a.append(best(lambda: timed(reg, *call_args), 10))
                b.append(best(lambda: before(reg, *call_args), 10))
            print(f"{name:18s} {min(b):8.3f} {min(a):8.3f} {min(a) - min(b):+8.3f}")
        reg.close()
    import prometheus_client

    h = prometheus_client.Histogram("x_seconds", "x", ["method", "backend"],
                                    buckets=_metrics.BUCKETS, registry=None)
    child = h.labels("get_entity", "sqlite")
    clock = time.perf_counter
    print(f"prometheus_client Histogram.observe (mode: {type(child._sum).__name__}): "
          f"{best(lambda: child.observe(clock()), args.rounds):.3f} us")


if __name__ == "__main__":
    main()
