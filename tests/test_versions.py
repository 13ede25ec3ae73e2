"""Feature view version history: the stock registry's behaviour."""

from feast import Field
from feast.types import Float32, String

import objects as o
from test_parity import run_both

P = "proj"


def test_version_history(make_registry):
    def scenario(reg, rec):
        rec("versions of missing", reg.list_feature_view_versions, "driver_hourly_stats", P)
        rec("apply v0", reg.apply_feature_view, o.feature_view(), P)
        rec("versions after first apply", reg.list_feature_view_versions, "driver_hourly_stats", P)
        rec("re-apply same: no version", reg.apply_feature_view, o.feature_view(), P)
        rec("description only: no version", reg.apply_feature_view, o.feature_view(description="d"), P)
        rec("versions", reg.list_feature_view_versions, "driver_hourly_stats", P)
        wider = o.feature_view(schema=o.feature_view().schema + [Field(name="x", dtype=String)])
        rec("schema change: v1", reg.apply_feature_view, wider, P)
        rec("versions after change", reg.list_feature_view_versions, "driver_hourly_stats", P)
        rec("active", reg.get_feature_view, "driver_hourly_stats", P)
        rec("active version number", lambda: reg.get_feature_view("driver_hourly_stats", P).current_version_number)
        rec("get v0", reg.get_feature_view_by_version, "driver_hourly_stats", P, 0)
        rec("get v1", reg.get_feature_view_by_version, "driver_hourly_stats", P, 1)
        rec("get v9", reg.get_feature_view_by_version, "driver_hourly_stats", P, 9)
        rec("pin v0", reg.apply_feature_view, o.feature_view(version="v0", schema=wider.schema), P)
        rec("after pin", lambda: [f.name for f in reg.get_feature_view("driver_hourly_stats", P).features])
        rec("pin with changed definition", reg.apply_feature_view, o.feature_view(version="v1", description="zzz"), P)
        rec("declare v7", reg.apply_feature_view, o.feature_view(name="other_fv", version="v7"), P)
        rec("declared versions", reg.list_feature_view_versions, "other_fv", P)
        rec("declare v7 again", reg.apply_feature_view, o.feature_view(name="other_fv", version="v7"), P)
        rec("delete", reg.delete_feature_view, "driver_hourly_stats", P)
        rec("history deleted with view", reg.list_feature_view_versions, "driver_hourly_stats", P)

    log = run_both(make_registry, scenario)
    versions = dict(log)["versions after change"][1]
    assert [v["version_number"] for v in versions] == [0, 1]


def test_no_promote_leaves_the_active_definition(make_registry):
    """apply_feature_view(no_promote=True) saves the change as the next
    version and leaves the active row as it was, as Feast documents ("saves
    the version snapshot without updating the active feature view
    definition") and its file registry does. Stock's SQL registry
    overwrites the active row: a documented difference."""
    wider = o.feature_view(schema=o.feature_view().schema + [Field(name="x", dtype=String)])
    narrower = o.feature_view(schema=[Field(name="conv_rate", dtype=Float32)])
    seen = {}
    for kind in ("native", "stock"):
        reg = make_registry(kind)
        reg.apply_feature_view(o.feature_view(), P)
        reg.apply_feature_view(wider, P)
        reg.apply_feature_view(narrower, P, no_promote=True)
        active = reg.get_feature_view("driver_hourly_stats", P)
        staged = reg.get_feature_view_by_version("driver_hourly_stats", P, 2)
        versions = [v["version_number"] for v in reg.list_feature_view_versions("driver_hourly_stats", P)]
        seen[kind] = ([f.name for f in active.features], [f.name for f in staged.features], versions)
    assert seen["native"] == ([f.name for f in wider.features], ["conv_rate"], [0, 1, 2])
    assert seen["stock"][0] == ["conv_rate"]  # stock: the active row was overwritten
    assert seen["stock"][1:] == seen["native"][1:]
    # An explicit pin (the active definition, only the version changed)
    # then promotes the staged version.
    native = make_registry("native")
    native.apply_feature_view(o.feature_view(), P)
    native.apply_feature_view(narrower, P, no_promote=True)
    assert len(native.get_feature_view("driver_hourly_stats", P).features) == 3
    native.apply_feature_view(o.feature_view(version="v1"), P)
    assert [f.name for f in native.get_feature_view("driver_hourly_stats", P).features] == ["conv_rate"]


def test_concurrent_first_apply_of_one_feature_view(make_registry):
    """Writers racing to create one feature view: no error, exactly one v0."""
    import threading

    reg = make_registry("native")
    errors, barrier = [], threading.Barrier(6)

    def work():
        try:
            barrier.wait()
            reg.apply_feature_view(o.feature_view(), P)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], [f"{type(e).__name__}: {e}" for e in errors]
    assert [v["version_number"] for v in reg.list_feature_view_versions("driver_hourly_stats", P)] == [0]
    assert reg.get_feature_view("driver_hourly_stats", P).name == "driver_hourly_stats"
