"""The write path: one read and at most one transaction per apply, with
the decisions made on the stored bytes where they settle it.

- `_surely_differs` (a changed definition known changed without building
  the stored object) and `_schema_surely_same` (no new version without
  building either view) must never say what Feast's own __eq__ and
  _schema_or_udf_changed contradict, over every pair of generated variants
  of every kind they cover, fresh and materialized; and they must be taken
  for the common edits (tags, description, owner).
- `_restamped` (the message after an apply re-stamps the object's times and
  version) is the object's own to_proto() after the same change.
- Store.apply(expect=...) writes only over the row the caller read.
- Racing writers lose nothing: intervals, versions, applies.
- The name check across view tables raises what stock raises."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from feast import Field
from feast.errors import ConcurrentVersionConflict, ConflictingFeatureViewNames
from feast.types import Float32, Int64

import feast_sqlreg.registry as native
import conftest
import objects as o
from feast_sqlreg import _internals
from feast_sqlreg._kinds import KINDS
from test_unchanged import apply, spy_from_proto, variants

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
VIEW_KINDS = (native.FEATURE_VIEW, native.STREAM_FEATURE_VIEW)


def _stored(reg, kind, name):
    return KINDS[kind].py_proto.FromString(reg._store.get(kind, "proj", name, True))


@pytest.mark.parametrize("materialized", [False, True], ids=["fresh", "materialized"])
def test_the_byte_verdicts_never_contradict_feast(make_registry, materialized):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    pairs = differs_taken = schema_taken = 0
    for kind, label, base, vs in variants():
        for stored_variant, make_stored in vs.items():
            first = make_stored()
            apply(reg, kind, first)
            if materialized and kind in VIEW_KINDS:
                reg.apply_materialization(first, "proj", T0, T0 + timedelta(hours=1))
            stored = _stored(reg, kind, first.name)
            for new_variant, make_new in vs.items():
                new = make_new()
                new_proto = new.to_proto()
                old_def = native._definition_message(kind, stored)
                new_def = native._definition_message(kind, new_proto)
                if old_def.SerializeToString(deterministic=True) == new_def.SerializeToString(
                    deterministic=True
                ):
                    continue
                pairs += 1
                existing = type(new).from_proto(stored)
                where = (label, stored_variant, new_variant)
                if native._surely_differs(kind, new, old_def, new_def):
                    differs_taken += 1
                    assert not existing == new, where
                if kind in VIEW_KINDS:
                    rebuilt = type(new).from_proto(type(new_proto).FromString(
                        new_proto.SerializeToString()))
                    if native._schema_surely_same(kind, stored, new_proto):
                        schema_taken += 1
                        assert not _internals.schema_or_udf_changed(rebuilt, existing), where
            # back to the base definition for the next stored variant
            apply(reg, kind, base())
    assert pairs > 300
    # Taken for the common edits: every pair that differs only in tags,
    # description or owner (or, materialized, in the intervals too).
    assert differs_taken > 100, differs_taken
    assert schema_taken > 60, schema_taken


def test_a_tag_or_description_change_is_decided_on_the_bytes(make_registry):
    reg = make_registry("native")
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    assert native._surely_differs(
        native.FEATURE_VIEW, o.feature_view(tags={"team": "x"}),
        native._definition_message(native.FEATURE_VIEW, _stored(reg, native.FEATURE_VIEW, fv.name)),
        native._definition_message(native.FEATURE_VIEW, o.feature_view(tags={"team": "x"}).to_proto()),
    )
    assert not native._surely_differs(  # a ttl is compared as timedelta: not on bytes
        native.FEATURE_VIEW, o.feature_view(ttl=timedelta(days=3)),
        native._definition_message(native.FEATURE_VIEW, _stored(reg, native.FEATURE_VIEW, fv.name)),
        native._definition_message(native.FEATURE_VIEW,
                                   o.feature_view(ttl=timedelta(days=3)).to_proto()),
    )


OBJECTS = {
    native.ENTITY: [o.entity, lambda: o.entity(tags={"a": "b"})],
    native.FEATURE_SERVICE: [o.feature_service, lambda: o.feature_service(owner="me")],
    native.FEATURE_VIEW: [o.feature_view, lambda: o.feature_view(tags={"x": "y"})],
    native.STREAM_FEATURE_VIEW: [o.stream_feature_view],
    native.ON_DEMAND_FEATURE_VIEW: [o.on_demand_feature_view],
}


def test_restamped_is_the_objects_own_to_proto():
    assert set(OBJECTS) == native._RESTAMPED
    created = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=timezone.utc)
    updated = datetime(2026, 7, 8, 9, 10, 11, 121314, tzinfo=timezone.utc)
    for kind, makers in OBJECTS.items():
        for make in makers:
            for version in (None, 0, 3):
                obj = make()
                first = obj.to_proto()
                obj.created_timestamp = created
                if hasattr(obj, "last_updated_timestamp"):
                    obj.last_updated_timestamp = updated
                if version is not None:
                    obj.current_version_number = version
                got = native._restamped(
                    kind, obj, first, created,
                    updated if hasattr(obj, "last_updated_timestamp") else None, version)
                want = obj.to_proto()
                assert got.SerializeToString(deterministic=True) == want.SerializeToString(
                    deterministic=True
                ), (KINDS[kind].table, version)


def _spy_from_proto(monkeypatch, built):
    spy_from_proto(monkeypatch, (native.FEATURE_VIEW, native.ENTITY, native.FEATURE_SERVICE), built)


def test_a_metadata_change_builds_nothing_and_makes_no_version(make_registry, monkeypatch):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    fv = o.feature_view()
    reg.apply_feature_view(fv, "proj")
    reg.apply_feature_service(o.feature_service(), "proj")
    created = _stored(reg, native.FEATURE_VIEW, fv.name).meta.created_timestamp
    built = []
    _spy_from_proto(monkeypatch, built)
    reg.apply_feature_view(o.feature_view(tags={"team": "new"}), "proj")
    reg.apply_feature_view(o.feature_view(tags={"team": "new"}, description="d", owner="x"), "proj")
    reg.apply_entity(o.entity(description="changed"), "proj")
    reg.apply_feature_service(o.feature_service(tags={"t": "u"}), "proj")
    monkeypatch.undo()
    assert built == []
    stored = _stored(reg, native.FEATURE_VIEW, fv.name)
    assert dict(stored.spec.tags) == {"team": "new"} and stored.spec.owner == "x"
    assert stored.meta.created_timestamp == created
    assert [v["version_number"] for v in reg.list_feature_view_versions(fv.name, "proj")] == [0]
    assert reg.get_entity("driver", "proj").description == "changed"
    assert reg.get_feature_service("driver_activity", "proj").tags == {"t": "u"}


def test_a_schema_change_is_one_new_version(make_registry, monkeypatch):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    built = []
    _spy_from_proto(monkeypatch, built)
    wider = o.feature_view(schema=[Field(name="conv_rate", dtype=Float32),
                                   Field(name="extra", dtype=Int64)])
    reg.apply_feature_view(wider, "proj")
    monkeypatch.undo()
    assert wider.current_version_number == 1
    versions = reg.list_feature_view_versions("driver_hourly_stats", "proj")
    assert [v["version_number"] for v in versions] == [0, 1]
    active = _stored(reg, native.FEATURE_VIEW, "driver_hourly_stats")
    assert active.meta.current_version_number == 1 and active.spec.project == "proj"
    v1 = reg.get_feature_view_by_version("driver_hourly_stats", "proj", 1)
    assert [f.name for f in v1.features] == ["conv_rate", "extra"]
    v0 = reg.get_feature_view_by_version("driver_hourly_stats", "proj", 0)
    assert "extra" not in [f.name for f in v0.features]
    # Staged (no_promote): the next version is saved, the row stays.
    narrower = o.feature_view(schema=[Field(name="conv_rate", dtype=Float32)])
    reg.apply_feature_view(narrower, "proj", no_promote=True)
    assert [v["version_number"] for v in
            reg.list_feature_view_versions("driver_hourly_stats", "proj")] == [0, 1, 2]
    assert _stored(reg, native.FEATURE_VIEW, "driver_hourly_stats") == active


def test_apply_writes_only_over_the_row_it_read(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    store = reg._store
    stored = store.get(native.ENTITY, "proj", "driver", True)
    other = o.entity(description="other").to_proto().SerializeToString()
    assert store.apply(native.ENTITY, "proj", "driver", other, 1, expect=other) is None
    assert store.apply(native.ENTITY, "proj", "driver", other, 1, expect=None) is None
    assert store.apply(native.ENTITY, "proj", "nobody", other, 1, expect=stored) is None
    assert store.get(native.ENTITY, "proj", "driver", True) == stored
    assert store.get(native.ENTITY, "proj", "nobody", True) is None
    assert store.apply(native.ENTITY, "proj", "driver", other, 1, expect=stored) is False
    assert store.apply(native.ENTITY, "proj", "new", other, 1, expect=None) is True
    with pytest.raises(TypeError, match="expect must be bytes or None"):
        store.apply(native.ENTITY, "proj", "driver", other, 1, expect="text")


def test_racing_applies_and_materializations_lose_nothing(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    failures = []
    rounds = 25

    def tagger(i):
        try:
            for r in range(rounds):
                reg.apply_feature_view(o.feature_view(tags={"writer": f"{i}-{r}"}), "proj")
        except Exception as e:  # reported below
            failures.append(e)

    def materializer():
        try:
            for r in range(rounds):
                start = T0 + timedelta(hours=r)
                reg.apply_materialization(o.feature_view(), "proj", start,
                                          start + timedelta(hours=1))
        except Exception as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=tagger, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=materializer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    stored = _stored(reg, native.FEATURE_VIEW, "driver_hourly_stats")
    assert len(stored.meta.materialization_intervals) == rounds
    assert stored.spec.tags["writer"].endswith(f"-{rounds - 1}")


def test_racing_schema_changes_make_contiguous_versions(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    results, failures = [], []

    def writer(i):
        for r in range(4):
            fv = o.feature_view(schema=[Field(name="conv_rate", dtype=Float32),
                                        Field(name=f"w{i}_{r}", dtype=Int64)])
            try:
                reg.apply_feature_view(fv, "proj")
                results.append(fv.current_version_number)
            except ConcurrentVersionConflict:
                failures.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = [v["version_number"] for v in
               reg.list_feature_view_versions("driver_hourly_stats", "proj")]
    assert numbers == list(range(len(numbers)))
    assert sorted(results) == numbers[1:]  # each success is its own version
    assert len(results) + len(failures) == 16 and len(results) >= 12


VIEW_MAKERS = {
    "FeatureView": lambda name: o.feature_view(name=name),
    "StreamFeatureView": lambda name: o.stream_feature_view(name=name),
    "OnDemandFeatureView": lambda name: o.on_demand_feature_view(name=name),
    "LabelView": lambda name: o.label_view(name=name),
}


@pytest.mark.parametrize("first", sorted(VIEW_MAKERS))
def test_a_name_taken_by_another_view_kind_is_refused_as_stock_refuses_it(make_registry, first):
    regs = {kind: make_registry(kind) for kind in ("stock", "native")}
    outcomes = {}
    for kind, reg in regs.items():
        reg.apply_entity(o.entity(), "proj")
        reg.apply_feature_view(VIEW_MAKERS[first]("shared"), "proj")
        seen = []
        for second in sorted(VIEW_MAKERS):
            try:
                reg.apply_feature_view(VIEW_MAKERS[second]("shared"), "proj")
                seen.append((second, "ok"))
            except ConflictingFeatureViewNames as e:
                seen.append((second, str(e)))
        outcomes[kind] = seen
    assert outcomes["native"] == outcomes["stock"]
    assert sum(1 for _, r in outcomes["native"] if r != "ok") == 3


def _counting(reg, calls):
    """Counts the registry's calls of the named Store methods."""
    raw = reg._raw_store

    class Counting:
        def __getattr__(self, name):
            if name in calls:
                calls[name] += 1
            return getattr(raw, name)

    reg._raw_store = Counting()
    reg._store._store = reg._raw_store


def test_applies_with_commit_false_are_one_transaction_at_commit(make_registry):
    """What feast apply does: every object with commit=False, then commit().
    They wait, decided, and go in one transaction; this registry's own reads
    see them first, another process's only after commit()."""
    reg = make_registry("native")
    other = make_registry("native", urls=conftest.urls_of(reg))
    reg.apply_entity(o.entity(), "proj")
    calls = {"apply": 0, "apply_batch": 0}
    _counting(reg, calls)
    views = [o.feature_view(name=f"fv_{i}") for i in range(5)]
    for fv in views:
        reg.apply_feature_view(fv, "proj", commit=False)
    reg.apply_entity(o.entity(description="batched"), "proj", commit=False)
    assert other.get_entity("driver", "proj").description == o.entity().description  # not yet
    assert other.list_feature_views("proj") == []
    reg.commit()
    assert calls == {"apply": 0, "apply_batch": 1}
    assert sorted(v.name for v in other.list_feature_views("proj")) == [v.name for v in views]
    assert other.get_entity("driver", "proj").description == "batched"
    assert [v["version_number"] for v in other.list_feature_view_versions("fv_0", "proj")] == [0]
    # Its own reads see what waits.
    reg.apply_entity(o.entity(description="mine"), "proj", commit=False)
    assert reg.get_entity("driver", "proj").description == "mine"
    assert calls["apply_batch"] == 2
    # And so does the next apply of the same object.
    reg.apply_feature_view(o.feature_view(name="fv_0", tags={"a": "1"}), "proj", commit=False)
    reg.apply_feature_view(o.feature_view(name="fv_0", tags={"a": "2"}), "proj", commit=False)
    reg.close()
    assert other.get_feature_view("fv_0", "proj").tags == {"a": "2"}


def test_a_name_taken_in_the_same_batch_is_refused(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(name="shared"), "proj", commit=False)
    with pytest.raises(ConflictingFeatureViewNames, match="shared"):
        reg.apply_feature_view(o.stream_feature_view(name="shared"), "proj", commit=False)
    reg.commit()
    assert reg.get_feature_view("shared", "proj").name == "shared"
    with pytest.raises(Exception):
        reg.get_stream_feature_view("shared", "proj")


def test_a_batch_over_a_row_changed_meanwhile_loses_nothing(make_registry):
    reg = make_registry("native")
    other = make_registry("native", urls=conftest.urls_of(reg))
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.apply_feature_view(o.feature_view(tags={"mine": "1"}), "proj", commit=False)
    reg.apply_feature_view(o.feature_view(name="second"), "proj", commit=False)
    other.apply_materialization(o.feature_view(), "proj", T0, T0 + timedelta(hours=1))
    reg.commit()  # the batch finds the row changed: each apply decides again
    stored = _stored(other, native.FEATURE_VIEW, "driver_hourly_stats")
    assert dict(stored.spec.tags) == {"mine": "1"}
    assert len(stored.meta.materialization_intervals) == 1
    assert other.get_feature_view("second", "proj").name == "second"


def test_an_unchanged_repository_applied_with_commit_false_reads_per_kind_not_per_object(
    make_registry,
):
    """feast apply (without a plan) of an unchanged repository: every
    object with commit=False, then commit(). The rows are read once per
    kind (and per rival view table) and checked once per kind at commit(),
    not read once per object; nothing is written."""
    reg = make_registry("native")
    views = [o.feature_view(name=f"fv_{i}") for i in range(30)]
    reg.apply_entity(o.entity(), "proj")
    for fv in views:
        reg.apply_feature_view(fv, "proj")
    before = {fv.name: reg._store.get(native.FEATURE_VIEW, "proj", fv.name, True) for fv in views}
    calls = {"read_for_apply": 0, "list": 0, "apply": 0, "apply_batch": 0}
    _counting(reg, calls)
    reg.apply_entity(o.entity(), "proj", commit=False)
    for i in range(30):
        reg.apply_feature_view(o.feature_view(name=f"fv_{i}"), "proj", commit=False)
    reg.commit()
    # entities; feature views and their 3 rival tables; then the check at
    # commit(): entities, feature views.
    assert calls == {"read_for_apply": 0, "list": 1 + 4 + 2, "apply": 0, "apply_batch": 0}
    assert {n: reg._store.get(native.FEATURE_VIEW, "proj", n, True) for n in before} == before


def test_an_unchanged_apply_whose_row_changed_before_commit_takes_effect_at_commit(
    make_registry,
):
    """An apply with commit=False found unchanged, then another writer
    changes the row before commit(): at commit() the apply is made, as the
    later one (stock writes it then too). Found unchanged on the rows read
    for the batch and on a read of its own alike."""
    reg = make_registry("native")
    other = make_registry("native", urls=conftest.urls_of(reg))
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.apply_feature_view(o.feature_view(name="read_alone"), "proj")
    # One found on the batch's rows, one on its own read (a rival table
    # holds no such name; the second kind's rows are read after the first
    # was changed, so it takes the same path).
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)
    other.apply_feature_view(o.feature_view(tags={"theirs": "1"}), "proj")
    other.apply_feature_view(o.feature_view(name="read_alone", tags={"theirs": "1"}), "proj")
    reg._snapshots.clear()  # as after SNAPSHOT_SECONDS: read_alone is read on its own
    reg.apply_feature_view(o.feature_view(name="read_alone", tags={"theirs": "1"}), "proj",
                           commit=False)
    assert other.get_feature_view("driver_hourly_stats", "proj").tags == {"theirs": "1"}
    reg.commit()
    assert other.get_feature_view("driver_hourly_stats", "proj").tags == dict(o.feature_view().tags)
    # read_alone was unchanged against what it read (their version): it stays.
    assert other.get_feature_view("read_alone", "proj").tags == {"theirs": "1"}


def test_a_later_changed_apply_of_an_unchanged_one_wins_at_commit(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)  # unchanged
    reg.apply_feature_view(o.feature_view(tags={"later": "1"}), "proj", commit=False)
    reg.commit()
    assert reg.get_feature_view("driver_hourly_stats", "proj").tags == {"later": "1"}


def test_rows_read_for_a_batch_are_not_used_past_other_uses_of_the_store(make_registry):
    """The rows read for applies with commit=False are dropped at the next
    other use of the store and after SNAPSHOT_SECONDS, so a later apply
    never decides on them: here a row this registry changed itself."""
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj")
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)
    assert reg._snapshots
    reg.apply_feature_view(o.feature_view(tags={"x": "1"}), "proj")  # commit=True
    assert not reg._snapshots
    # The original definition again, with commit=False: a change from
    # x=1, not "unchanged" on rows read before.
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)
    reg.commit()
    assert reg.get_feature_view("driver_hourly_stats", "proj").tags == dict(o.feature_view().tags)
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)
    taken = reg._snapshots[(native.FEATURE_VIEW, "proj")][0]
    reg._snapshots[(native.FEATURE_VIEW, "proj")] = (taken - native.SNAPSHOT_SECONDS, {})
    calls = {"list": 0}
    _counting(reg, calls)
    reg.apply_feature_view(o.feature_view(), "proj", commit=False)
    assert calls["list"] == 1  # read again, not taken from the stale rows
    reg.commit()
