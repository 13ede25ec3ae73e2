"""Materialization intervals: stock's behaviour for one writer, and none lost
with many concurrent writers (where stock loses them)."""

import multiprocessing
import threading
from datetime import datetime, timedelta, timezone

import pytest

import objects as o
from conftest import config

from feast.errors import FeatureViewNotFoundException
from feast_sqlreg.registry import NativeSqlRegistry

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def interval(i):
    return BASE + timedelta(hours=i), BASE + timedelta(hours=i + 1)


def test_sequential_matches_stock(make_registry):
    results = []
    for kind in ("stock", "native"):
        reg = make_registry(kind)
        fv = o.feature_view()
        reg.apply_feature_view(fv, "proj")
        for i in range(3):
            reg.apply_materialization(fv, "proj", *interval(i))
        got = reg.get_feature_view(fv.name, "proj")
        # Naive datetimes are UTC, as protobuf reads them.
        reg.apply_materialization(fv, "proj", datetime(2026, 2, 1), datetime(2026, 2, 2))
        got = reg.get_feature_view(fv.name, "proj")
        results.append((got.materialization_intervals, got.state if hasattr(got, "state") else None))
        with pytest.raises(FeatureViewNotFoundException):
            reg.apply_materialization(o.feature_view(name="nope"), "proj", *interval(0))
        with pytest.raises(ValueError, match="Cannot apply materialization"):
            reg.apply_materialization(o.on_demand_feature_view(fv), "proj", *interval(0))
    assert results[0] == results[1]
    assert len(results[1][0]) == 4


def test_reapply_keeps_intervals(make_registry):
    for kind in ("stock", "native"):
        reg = make_registry(kind)
        fv = o.feature_view()
        reg.apply_feature_view(fv, "proj")
        reg.apply_materialization(fv, "proj", *interval(0))
        created = reg.get_feature_view(fv.name, "proj").created_timestamp
        reg.apply_feature_view(o.feature_view(description="new"), "proj")
        got = reg.get_feature_view(fv.name, "proj")
        assert got.materialization_intervals == [interval(0)], kind
        assert got.created_timestamp == created, kind
        assert got.description == "new"


def test_stale_copy_cannot_drop_intervals(make_registry):
    """Feast's materialize re-applies its (maybe stale) copy of a view to set
    its state; stock then drops intervals another job recorded meanwhile."""
    reg = make_registry("native")
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    reg.apply_materialization(fv, "proj", *interval(0))
    stale = reg.get_feature_view(fv.name, "proj")  # has interval 0
    reg.apply_materialization(fv, "proj", *interval(1))  # another job
    stale.description = "state flip"
    reg.apply_feature_view(stale, "proj")
    got = reg.get_feature_view(fv.name, "proj")
    assert got.materialization_intervals == [interval(0), interval(1)]


def test_concurrent_threads_lose_nothing(make_registry):
    reg = make_registry("native")
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    n_threads, per_thread = 8, 10
    errors = []

    def work(t):
        try:
            for j in range(per_thread):
                reg.apply_materialization(fv, "proj", *interval(t * per_thread + j))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = reg.get_feature_view(fv.name, "proj").materialization_intervals
    assert sorted(got) == [interval(i) for i in range(n_threads * per_thread)]


def _materialize_in_process(url, start, count):
    reg = NativeSqlRegistry(config(url), "proj", None)
    fv = reg.get_feature_view("driver_hourly_stats", "proj")
    for i in range(start, start + count):
        reg.apply_materialization(fv, "proj", *interval(i))


def test_concurrent_processes_lose_nothing(make_registry):
    """Separate processes (as separate `feast materialize` jobs are), each
    with its own connections, on one database."""
    reg = make_registry("native")
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    url = reg.registry_config.path
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_materialize_in_process, args=(url, p * 10, 10)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = reg.get_feature_view(fv.name, "proj").materialization_intervals
    assert sorted(got) == [interval(i) for i in range(40)]


def test_stream_feature_view_intervals(make_registry):
    reg = make_registry("native")
    sfv = o.stream_feature_view()
    reg.apply_feature_view(sfv, "proj")
    reg.apply_materialization(sfv, "proj", *interval(0))
    assert reg.get_stream_feature_view(sfv.name, "proj").materialization_intervals == [interval(0)]


def test_concurrent_first_apply_of_one_object(make_registry):
    """Many writers creating the same new object at once: one inserts, the
    others update it; nobody gets a duplicate-key error."""
    reg = make_registry("native")
    errors = []
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            reg.apply_entity(o.entity(description=f"writer {i}"), "proj")
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert reg.get_entity("driver", "proj").description.startswith("writer ")
