"""The same scenarios against the stock SqlRegistry and NativeSqlRegistry.

Each scenario is a list of operations; each operation's outcome (return
value, Feast exception class, object state) is recorded by `Recorder` in a
form that does not depend on wall-clock time, and the two recordings must be
equal. Timestamp behaviour (created kept, last_updated moved or not) is
recorded as relations, which must also agree.
"""

import time

import pytest
from google.protobuf.json_format import MessageToDict

import objects as o

TIMESTAMP_KEYS = {"createdTimestamp", "lastUpdatedTimestamp", "lastUpdated"}


def _strip(d):
    """A proto dict without wall-clock timestamps."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in TIMESTAMP_KEYS}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def shape(value):
    """A comparable, time-independent form of a registry return value."""
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    if isinstance(value, list):
        return sorted((shape(v) for v in value), key=repr)
    if hasattr(value, "to_proto"):
        return (type(value).__name__, _strip(MessageToDict(value.to_proto())))
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k not in ("created_timestamp", "version_id")}
    return repr(value)


class Recorder:
    def __init__(self, registry):
        self.registry = registry
        self.log = []

    def __call__(self, label, fn, *args, **kwargs):
        try:
            result = ("ok", shape(fn(*args, **kwargs)))
        except Exception as e:  # the exception class is part of the behaviour
            result = ("raised", type(e).__name__)
        self.log.append((label, result))
        return result


def run_both(make_registry, scenario):
    logs = []
    for kind in ("stock", "native"):
        reg = make_registry(kind)
        rec = Recorder(reg)
        scenario(reg, rec)
        logs.append(rec.log)
    stock, native = logs
    assert len(stock) == len(native)
    for s, n in zip(stock, native):
        assert s == n, f"differs at {s[0]}:\n stock:  {s[1]}\n native: {n[1]}"
    return native


P = "proj"


def crud(getter, lister, applier, deleter, make, changed):
    """apply / get / list / idempotent re-apply / change / delete, with the
    timestamp relations stock guarantees."""

    def scenario(reg, rec):
        get = getattr(reg, getter)
        rec("get missing", get, make().name, P)
        rec("apply", getattr(reg, applier), make(), P)
        first = get(make().name, P)
        rec("get", get, make().name, P)
        rec("get cached", get, make().name, P, allow_cache=True)
        rec("list", getattr(reg, lister), P)
        rec("list cached", getattr(reg, lister), P, allow_cache=True)
        rec("list other project", getattr(reg, lister), "nope")
        rec("list tag match", getattr(reg, lister), P, tags={"team": make().tags["team"]})
        rec("list tag miss", getattr(reg, lister), P, tags={"team": "nobody"})
        time.sleep(1.1)  # timestamps in the database have 1 s resolution
        rec("re-apply same", getattr(reg, applier), make(), P)
        again = get(make().name, P)
        rec("created kept", lambda: again.created_timestamp == first.created_timestamp)
        rec(
            "unchanged not rewritten",
            lambda: getattr(again, "last_updated_timestamp", None)
            == getattr(first, "last_updated_timestamp", None),
        )
        rec("apply changed", getattr(reg, applier), changed(), P)
        third = get(make().name, P)
        rec("get changed", lambda: third)
        rec("created kept after change", lambda: third.created_timestamp == first.created_timestamp)
        rec(
            "last_updated moved",
            lambda: getattr(third, "last_updated_timestamp", None)
            != getattr(first, "last_updated_timestamp", None),
        )
        rec("delete", getattr(reg, deleter), make().name, P)
        rec("get deleted", get, make().name, P)
        rec("delete again", getattr(reg, deleter), make().name, P)
        rec("list after delete", getattr(reg, lister), P)

    return scenario


CASES = {
    "entity": crud(
        "get_entity",
        "list_entities",
        "apply_entity",
        "delete_entity",
        o.entity,
        lambda: o.entity(description="changed"),
    ),
    "data_source": crud(
        "get_data_source",
        "list_data_sources",
        "apply_data_source",
        "delete_data_source",
        o.file_source,
        lambda: o.file_source(description="changed"),
    ),
    "feature_service": crud(
        "get_feature_service",
        "list_feature_services",
        "apply_feature_service",
        "delete_feature_service",
        o.feature_service,
        lambda: o.feature_service(description="changed"),
    ),
    "saved_dataset": crud(
        "get_saved_dataset",
        "list_saved_datasets",
        "apply_saved_dataset",
        "delete_saved_dataset",
        o.saved_dataset,
        lambda: o.saved_dataset(tags={"team": "ml", "v": "2"}),
    ),
    "permission": crud(
        "get_permission",
        "list_permissions",
        "apply_permission",
        "delete_permission",
        o.permission,
        lambda: o.permission(name_patterns=["rider.*"]),
    ),
    "feature_view": crud(
        "get_feature_view",
        "list_feature_views",
        "apply_feature_view",
        "delete_feature_view",
        o.feature_view,
        lambda: o.feature_view(description="changed"),
    ),
    "stream_feature_view": crud(
        "get_stream_feature_view",
        "list_stream_feature_views",
        "apply_feature_view",
        "delete_feature_view",
        o.stream_feature_view,
        lambda: o.stream_feature_view(description="changed"),
    ),
    "on_demand_feature_view": crud(
        "get_on_demand_feature_view",
        "list_on_demand_feature_views",
        "apply_feature_view",
        "delete_feature_view",
        o.on_demand_feature_view,
        lambda: o.on_demand_feature_view(tags={"team": "odfv", "v": "2"}),
    ),
    "label_view": crud(
        "get_label_view",
        "list_label_views",
        "apply_feature_view",
        "delete_label_view",
        o.label_view,
        lambda: o.label_view(description="changed"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_object_lifecycle(make_registry, case):
    log = run_both(make_registry, CASES[case])
    # The scenario really exercised something: the object existed, then not.
    outcomes = dict(log)
    assert outcomes["get"][0] == "ok" and outcomes["get"][1] is not None
    assert outcomes["get deleted"][0] == "raised"
    assert outcomes["created kept"] == ("ok", True)


def test_projects(make_registry):
    def scenario(reg, rec):
        rec("list", reg.list_projects)
        rec("get auto-created", reg.get_project, P)
        rec("get missing", reg.get_project, "other")
        rec("apply", reg.apply_project, o.project("other"))
        rec("get", reg.get_project, "other")
        rec("list tags", reg.list_projects, tags={"env": "test"})
        rec("apply entity in new project", reg.apply_entity, o.entity(), "third")
        rec("auto-created by an object", reg.get_project, "third")
        rec("list after", reg.list_projects)
        rec("delete", reg.delete_project, "third")
        rec("entity gone with project", reg.get_entity, "driver", "third")
        rec("delete missing", reg.delete_project, "third")
        rec("list after delete", reg.list_projects)

    run_both(make_registry, scenario)


def test_feature_view_lookups(make_registry):
    def scenario(reg, rec):
        fv = o.feature_view()
        reg.apply_entity(o.entity(), P)
        reg.apply_data_source(o.file_source(), P)
        rec("apply fv", reg.apply_feature_view, fv, P)
        rec("apply odfv", reg.apply_feature_view, o.on_demand_feature_view(fv), P)
        rec("apply sfv", reg.apply_feature_view, o.stream_feature_view(), P)
        rec("apply label", reg.apply_feature_view, o.label_view(), P)
        for name in ["driver_hourly_stats", "conv_rate_plus_val", "driver_stream_stats", "driver_labels", "nope"]:
            rec(f"any {name}", reg.get_any_feature_view, name, P)
            rec(f"any cached {name}", reg.get_any_feature_view, name, P, allow_cache=True)
        rec("all", reg.list_all_feature_views, P)
        rec("all cached", reg.list_all_feature_views, P, allow_cache=True)
        rec("all tagged", reg.list_all_feature_views, P, tags={"team": "stream"})
        rec("wrong getter", reg.get_feature_view, "conv_rate_plus_val", P)
        rec("name clash across kinds", reg.apply_feature_view, o.stream_feature_view(name="driver_hourly_stats"), P)
        rec("delete odfv", reg.delete_feature_view, "conv_rate_plus_val", P)
        rec("all after delete", reg.list_all_feature_views, P)

    run_both(make_registry, scenario)


def test_infra_and_metadata(make_registry):
    def scenario(reg, rec):
        rec("infra missing", reg.get_infra, P)
        rec("update infra", reg.update_infra, o.infra(), P)
        rec("infra", reg.get_infra, P)
        rec("infra cached", reg.get_infra, P, allow_cache=True)
        rec("project metadata", lambda: [m.project_name for m in reg.list_project_metadata(P)])
        rec("uuid is set", lambda: bool(reg.list_project_metadata(P)[0].project_uuid))
        rec("metadata other", reg.list_project_metadata, "nope")
        rec("get custom missing", reg.get_project_metadata, P, "k")
        rec("set custom", reg.set_project_metadata, P, "k", "v1")
        rec("set custom again", reg.set_project_metadata, P, "k", "v2")
        rec("get custom", reg.get_project_metadata, P, "k")
        fv = o.feature_view()
        reg.apply_feature_view(fv, P)
        rec("user metadata empty", reg.get_user_metadata, P, fv)
        rec("set user metadata", reg.apply_user_metadata, P, fv, b"\x00\x01meta")
        rec("user metadata", reg.get_user_metadata, P, fv)
        rec("user metadata of missing", reg.apply_user_metadata, P, o.feature_view(name="nope"), b"x")
        rec("clear user metadata", reg.apply_user_metadata, P, fv, None)
        rec("user metadata cleared", reg.get_user_metadata, P, fv)

    run_both(make_registry, scenario)


def test_teardown(make_registry):
    def scenario(reg, rec):
        reg.apply_entity(o.entity(), P)
        reg.apply_feature_view(o.feature_view(), P)
        reg.apply_feature_service(o.feature_service(), P)
        rec("teardown", reg.teardown)
        rec("entities", reg.list_entities, P)
        rec("feature views", reg.list_feature_views, P)
        rec("services", reg.list_feature_services, P)
        rec("projects stay", lambda: [p.name for p in reg.list_projects()])
        rec("versions gone", reg.list_feature_view_versions, "driver_hourly_stats", P)

    run_both(make_registry, scenario)


def test_registry_proto_matches_stock(make_registry):
    """proto() assembled in C equals stock's, field by field, over several
    projects and every kind of object."""
    protos = []
    for kind in ("stock", "native"):
        reg = make_registry(kind)
        o.populate(reg, ("proj", "alpha", "beta"))
        protos.append(reg.proto())
    stock, native = protos
    assert len(native.projects) == 3 and len(native.feature_views) == 3
    assert native.HasField("last_updated") and native.infra.infra_objects
    for field in stock.DESCRIPTOR.fields:
        if field.json_name in TIMESTAMP_KEYS or field.name == "version_id":
            continue
        s = _strip(MessageToDict(stock).get(field.json_name))
        n = _strip(MessageToDict(native).get(field.json_name))
        if isinstance(s, list):
            s, n = sorted(s, key=repr), sorted(n or [], key=repr)
        assert s == n, f"Registry.{field.name} differs"
    # Every object is stamped with its project, as stock does.
    assert {fv.spec.project for fv in native.feature_views} == {"proj", "alpha", "beta"}
    assert {ds.project for ds in native.data_sources} == {"proj", "alpha", "beta"}


def test_updated_since(make_registry):
    from datetime import datetime, timezone

    def scenario(reg, rec):
        reg.apply_feature_view(o.feature_view(name="old_view"), P)
        time.sleep(1.1)  # the stored timestamps have 1 s resolution
        cut = datetime.now(timezone.utc)
        reg.apply_feature_view(o.feature_view(name="new_view"), P)
        reg.apply_feature_view(o.stream_feature_view(), P)
        rec("since cut", reg.list_all_feature_views, P, updated_since=cut)
        rec("since naive cut (UTC)", reg.list_all_feature_views, P, updated_since=cut.replace(tzinfo=None))
        rec("since cut, tagged", reg.list_all_feature_views, P, tags={"team": "stream"}, updated_since=cut)
        rec("since epoch", reg.list_all_feature_views, P, updated_since=datetime(1970, 1, 2))

    log = dict(run_both(make_registry, scenario))
    names = sorted(v[1]["spec"]["name"] for v in log["since cut"][1])
    assert names == ["driver_stream_stats", "new_view"]


def test_purge_feast_metadata(make_registry):
    """purge_feast_metadata: no feast_metadata rows are written, and those a
    registry without it wrote are removed when one with it starts."""
    from conftest import StockSqlRegistry, config, urls_of
    from feast_sqlreg.registry import NativeSqlRegistry

    outcomes = []
    for kind, cls in (("stock", StockSqlRegistry), ("native", NativeSqlRegistry)):
        plain = make_registry(kind)
        plain.apply_entity(o.entity(), P)
        before = [m.project_name for m in plain.list_project_metadata(P)]
        url = urls_of(plain)[0 if kind == "native" else 1]
        purging = cls(config(url, purge_feast_metadata=True), P, None)
        after = purging.list_project_metadata(P)
        purging.apply_entity(o.entity(name="other"), P)
        outcomes.append(
            (before, after, purging.list_project_metadata(P),
             sorted(e.name for e in purging.list_entities(P)), purging.get_project(P).name)
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[1] == ([P], [], [], ["driver", "other"], P)


def test_validation_references_as_stored_rows(make_registry):
    """Feast 0.67 cannot build ValidationReference objects without its `ge`
    extra, whose great_expectations pins pydantic 1 and so cannot be
    installed beside Feast. What works without it is compared here: rows
    stored by any writer appear in proto() stamped with their project, can
    be deleted, and listing them fails the same way in both registries."""
    from conftest import RawConnection
    from feast.protos.feast.core.ValidationProfile_pb2 import ValidationReference as VRProto

    data = VRProto(name="vr", reference_dataset_name="training_set", tags={"a": "b"}).SerializeToString()

    def scenario(reg, rec):
        reg.apply_entity(o.entity(), P)
        raw = RawConnection(reg)
        raw.execute(
            "INSERT INTO validation_references (validation_reference_name, project_id, "
            "last_updated_timestamp, validation_reference_proto) VALUES (?, ?, ?, ?)",
            ("vr", P, 1, data),
        )
        raw.close()
        reg.refresh()
        rec("in proto", lambda: [f"{v.name}@{v.project}" for v in reg.proto().validation_references])
        rec("list", reg.list_validation_references, P)
        rec("delete", reg.delete_validation_reference, "vr", P)
        rec("gone", lambda: list(reg.proto().validation_references))
        rec("delete missing", reg.delete_validation_reference, "vr", P)

    log = dict(run_both(make_registry, scenario))
    assert log["in proto"] == ("ok", [f"vr@{P}"])
    assert log["list"][0] == "raised"  # the same error in both, checked by run_both
