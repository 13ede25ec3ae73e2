"""A database written by either registry is read correctly by the other, and
both can run side by side on it."""

from datetime import datetime, timezone

from google.protobuf.json_format import MessageToDict

import objects as o
from conftest import urls_of
from test_parity import _strip

T0, T1 = o.T0, o.T1
T2 = datetime(2026, 3, 3, tzinfo=timezone.utc)


def same_registry(a, b):
    """Equal but for version_id, which ours sets anew on every refresh."""
    a.version_id = b.version_id = ""
    return a == b


def snapshot(reg):
    """Everything a reader can see, in comparable form."""

    def d(obj):
        # Top-level timestamps must match exactly; those nested in a spec
        # (request sources inside an on-demand view) Feast makes up anew on
        # every from_proto, whichever registry read the bytes.
        msg = MessageToDict(obj.to_proto())
        if "spec" in msg:
            msg["spec"] = _strip(msg["spec"])
        return msg

    out = {}
    for project in ("proj", "other"):
        out[project] = {
            "project": d(reg.get_project(project)),
            "entities": sorted(map(repr, map(d, reg.list_entities(project)))),
            "sources": sorted(map(repr, map(d, reg.list_data_sources(project)))),
            "views": sorted(map(repr, map(d, reg.list_all_feature_views(project)))),
            "services": sorted(map(repr, map(d, reg.list_feature_services(project)))),
            "datasets": sorted(map(repr, map(d, reg.list_saved_datasets(project)))),
            "permissions": sorted(map(repr, map(d, reg.list_permissions(project)))),
            "infra": d(reg.get_infra(project)),
            "intervals": reg.get_feature_view("driver_hourly_stats", project).materialization_intervals,
            "versions": [
                (v["version_number"], v["feature_view_type"], v["version_id"])
                for v in reg.list_feature_view_versions("driver_hourly_stats", project)
            ],
            "v0": d(reg.get_feature_view_by_version("driver_hourly_stats", project, 0)),
            "owner": reg.get_project_metadata(project, "owner"),
            "uuid": [m.project_uuid for m in reg.list_project_metadata(project)],
        }
    return out


def test_native_reads_stock(make_registry):
    stock = make_registry("stock")
    o.populate(stock)
    native = make_registry("native", urls_of(stock))
    assert snapshot(native) == snapshot(stock)
    assert same_registry(native.proto(), stock.proto())
    assert len(snapshot(native)["proj"]["versions"]) == 2


def test_stock_reads_native(make_registry):
    native = make_registry("native")
    o.populate(native)
    urls = urls_of(native)
    # verify: the stock registry finds every table it expects in our schema.
    stock = make_registry("stock", urls, schema_mode="verify")
    assert snapshot(stock) == snapshot(native)
    assert same_registry(stock.proto(), native.proto())


def test_side_by_side_writes(make_registry):
    """Writes by either one are seen by the other, on one database."""
    native = make_registry("native")
    stock = make_registry("stock", urls_of(native))
    fv = o.feature_view()
    native.apply_entity(o.entity(), "proj")
    stock.apply_feature_view(fv, "proj")
    native.apply_materialization(fv, "proj", T0, T1)
    stock.apply_materialization(native.get_feature_view(fv.name, "proj"), "proj", T1, T2)
    for reg in (native, stock):
        got = reg.get_feature_view(fv.name, "proj")
        assert got.materialization_intervals == [(T0, T1), (T1, T2)]
        assert reg.get_entity("driver", "proj").join_key == "driver_id"
    stock.delete_entity("driver", "proj")
    assert native.list_entities("proj") == []
