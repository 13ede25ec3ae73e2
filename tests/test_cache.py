"""allow_cache, cache_mode and cache_ttl_seconds as in Feast."""

import time

import objects as o
from conftest import urls_of

P = "proj"


def test_sync_mode_sees_own_writes(make_registry):
    """Every cached read after a write sees it. (Stock fails this about half
    the time: Feast memoizes lookups on id() of the registry proto, which a
    new proto can reuse, and stock leaves version_id empty.)"""
    reg = make_registry("native", cache_mode="sync", cache_ttl_seconds=600)
    for _ in range(20):
        assert reg.list_entities(P, allow_cache=True) == []
        reg.apply_entity(o.entity(), P)
        assert [e.name for e in reg.list_entities(P, allow_cache=True)] == ["driver"]
        reg.delete_entity("driver", P)
    assert reg.list_entities(P, allow_cache=True) == []


def test_other_writers_seen_after_ttl(make_registry):
    """Another process's write is seen by a cached read once the TTL passes
    (and at once without the cache)."""
    for kind in ("stock", "native"):
        reader = make_registry(kind, cache_mode="sync", cache_ttl_seconds=2)
        writer = make_registry(kind, urls_of(reader))
        reader.list_entities(P, allow_cache=True)  # warm the cache
        writer.apply_entity(o.entity(), P)
        assert reader.list_entities(P, allow_cache=True) == [], kind
        assert [e.name for e in reader.list_entities(P)] == ["driver"], kind
        time.sleep(2.2)
        assert [e.name for e in reader.list_entities(P, allow_cache=True)] == ["driver"], kind


def test_thread_mode_refreshes_in_background(make_registry):
    reader = make_registry("native", cache_mode="thread", cache_ttl_seconds=1)
    try:
        writer = make_registry("native", urls_of(reader))
        writer.apply_entity(o.entity(), P)
        deadline = time.time() + 10
        while time.time() < deadline and not reader.list_entities(P, allow_cache=True):
            time.sleep(0.2)
        assert [e.name for e in reader.list_entities(P, allow_cache=True)] == ["driver"]
    finally:
        reader.registry_refresh_thread.cancel()


def test_refresh_is_lazy_in_sync_mode(make_registry):
    """Writes do not re-read the registry (stock re-reads it after every
    write); the first cached read after them does, once."""
    reg = make_registry("native", cache_mode="sync", cache_ttl_seconds=600)
    calls = []
    original = type(reg).proto

    def counting_proto(self):
        calls.append(1)
        return original(self)

    reg.proto = counting_proto.__get__(reg)
    for i in range(5):
        reg.apply_entity(o.entity(name=f"e{i}"), P)
    assert calls == []
    assert len(reg.list_entities(P, allow_cache=True)) == 5
    assert len(reg.list_entities(P, allow_cache=True)) == 5
    assert calls == [1]
