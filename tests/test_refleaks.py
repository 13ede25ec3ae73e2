"""The Python-facing C layer neither leaks references nor memory: every
Store method, on success and on error paths, repeated many times, leaves
Python's allocated memory flat (tracemalloc sees every leaked bytes, tuple
or list the C code forgot to release)."""

import gc
import tracemalloc

import pytest

import objects as o
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY, FEATURE_VIEW


def _call(fn, rounds):
    for _ in range(rounds):
        fn()  # grows() counts what is allocated under this line


_CALL_LINE = _call.__code__.co_firstlineno + 2


def grows(fn, rounds=3000):
    """Bytes of Python memory allocated by `rounds` more calls of `fn` in
    this thread and still held after them.

    Only allocations made under _call's call of `fn` count: a
    thread left running by an earlier test (a poller, a metrics server, a
    pool's reaper) allocates too, and once made this test fail under the
    full suite though nothing here leaked."""
    _call(fn, 200)  # warmed up: caches and free lists filled
    gc.collect()
    tracemalloc.start(16)
    try:
        _call(fn, rounds)
        gc.collect()
        mine = tracemalloc.Filter(True, __file__, lineno=_CALL_LINE, all_frames=True)
        held = tracemalloc.take_snapshot().filter_traces([mine])
    finally:
        tracemalloc.stop()
    return sum(stat.size for stat in held.statistics("filename"))


def test_the_measure_sees_a_leak_of_one_small_object_per_call():
    kept = []
    assert grows(lambda: kept.append(bytes(bytearray(40)))) > 64 * 1024  # a new object per call


def test_the_measure_ignores_what_another_thread_keeps():
    import queue
    import threading

    kept, asks, done = [], queue.Queue(), queue.Queue()

    def hoard():  # keeps one new object for every call measured
        while asks.get():
            kept.append(bytes(bytearray(40)))
            done.put(True)

    def call():
        asks.put(True)
        done.get()

    other = threading.Thread(target=hoard)
    other.start()
    try:
        growth = grows(call)
    finally:
        asks.put(False)
        other.join()
    assert len(kept) == 3200  # the other thread kept 3,200 objects meanwhile
    assert growth < 64 * 1024


def test_store_methods_do_not_leak(make_registry, monkeypatch):
    # No change poller: its cache updates (after each write here) would be
    # counted as this thread's growth.
    monkeypatch.setattr("feast_sqlreg._changes.POLL_SECONDS", 0)
    reg = make_registry("native")
    assert reg._poller is None
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    reg.apply_entity(o.entity(), "proj")
    store = reg._store
    proto = o.entity().to_proto().SerializeToString()

    def bad_kind():
        with pytest.raises(ValueError):
            store.get(99, "proj", "x")

    def integrity_error():
        with pytest.raises(errors.IntegrityError):
            store.version_save("proj", "driver_hourly_stats", 0, "feature_view", b"x", 1, "id")

    calls = {
        "get": lambda: store.get(ENTITY, "proj", "driver"),
        "get missing": lambda: store.get(ENTITY, "proj", "nope"),
        "list": lambda: store.list(ENTITY, "proj"),
        "list_projects": store.list_projects,
        "registry": store.registry,
        "apply": lambda: store.apply(ENTITY, "proj", "driver", proto, 1, project_uuid="u"),
        "meta_list": lambda: store.meta_list("proj"),
        "meta_get": lambda: store.meta_get("proj", "project_uuid"),
        "version_list": lambda: store.version_list("proj", "driver_hourly_stats"),
        "version_get": lambda: store.version_get("proj", "driver_hourly_stats", 0),
        "user metadata": lambda: store.get_user_metadata(FEATURE_VIEW, "proj", "driver_hourly_stats"),
        "missing_tables": store.missing_tables,
        "bad kind (error path)": bad_kind,
        "duplicate version (error path)": integrity_error,
        "bad url (error path)": lambda: pytest.raises(errors.ConfigurationError, Store, "nonsense"),
    }
    leaks = {}
    for name, fn in calls.items():
        growth = grows(fn, rounds=3000 if "registry" not in name else 1000)
        if growth > 64 * 1024:  # a leak of even one small object per call is 100+ KB here
            leaks[name] = growth
    assert leaks == {}
