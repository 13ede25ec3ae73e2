"""The registry server's read fast path (feast_sqlreg.server).

Every read RPC of NativeRegistryServer is compared with Feast's own
RegistryServer method on the same native registry, request by request:
cached and uncached, tags, pagination, sorting, filters, missing names and
projects. Answers must be equal field for field, errors of the same class
with the same message. Then: the fast path builds no Feast objects, auth
sends every call the stock way, and `feast serve_registry` runs it.
"""

import itertools

import feast.registry_server as registry_server
import pytest
from feast.permissions.security_manager import SecurityManager, set_security_manager
from feast.permissions.user import User
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from google.protobuf.empty_pb2 import Empty
from google.protobuf.timestamp_pb2 import Timestamp

import objects as o
from answers import answer
from feast_sqlreg.server import NativeRegistryServer

StockRegistryServer = registry_server.StockRegistryServer

PROJECTS = ("proj", "other", "nowhere")
VIEWS = ("driver_hourly_stats", "conv_rate_plus_val", "driver_stream_stats", "driver_labels")
NAMES = {
    "GetEntity": ("driver", "rider"),
    "GetDataSource": ("driver_stats_source", "label_batch", "missing"),
    "GetFeatureView": VIEWS,
    "GetStreamFeatureView": VIEWS,
    "GetOnDemandFeatureView": VIEWS,
    "GetLabelView": VIEWS,
    "GetAnyFeatureView": VIEWS + ("missing",),
    "GetFeatureService": ("driver_activity", "missing"),
    "GetSavedDataset": ("training_set", "missing"),
    "GetValidationReference": ("missing",),
    "GetPermission": ("readers", "missing"),
}
LISTS = (
    "ListEntities",
    "ListDataSources",
    "ListFeatureViews",
    "ListStreamFeatureViews",
    "ListOnDemandFeatureViews",
    "ListLabelViews",
    "ListFeatureServices",
    "ListSavedDatasets",
    "ListPermissions",
    "ListAllFeatureViews",
)
TAGS = ({}, {"team": "core"}, {"team": "nobody"})
PAGES = (None, pb.PaginationParams(page=1, limit=1), pb.PaginationParams(page=2, limit=1))


def _request(rpc, **fields):
    return getattr(pb, rpc + "Request")(**{k: v for k, v in fields.items() if v is not None})


def requests():
    """(rpc, request) pairs covering what clients send."""
    for rpc, names in NAMES.items():
        for name, project, cache in itertools.product(names, PROJECTS, (False, True)):
            yield rpc, _request(rpc, name=name, project=project, allow_cache=cache)
    for rpc in LISTS:
        for project, cache, tags, page in itertools.product(PROJECTS, (False, True), TAGS, PAGES):
            yield rpc, _request(rpc, project=project, allow_cache=cache, tags=tags, pagination=page)
        sort = pb.SortingParams(sort_by="name", sort_order="desc")
        yield rpc, _request(rpc, project="proj", sorting=sort)
    for cache, tags, page in itertools.product((False, True), TAGS + ({"env": "test"},), PAGES):
        yield "ListProjects", _request("ListProjects", allow_cache=cache, tags=tags, pagination=page)
    for name, cache in itertools.product(("proj", "other", "nowhere"), (False, True)):
        yield "GetProject", _request("GetProject", name=name, allow_cache=cache)
        yield "GetInfra", _request("GetInfra", project=name, allow_cache=cache)
        yield "ListProjectMetadata", _request("ListProjectMetadata", project=name, allow_cache=cache)
    # Filters that read Feast objects: the stock way, same answers.
    for field, value in (("entity", "driver"), ("feature", "conv_rate"), ("data_source", "x")):
        yield "ListAllFeatureViews", _request("ListAllFeatureViews", project="proj", **{field: value})
    since = Timestamp(seconds=1)
    yield "ListAllFeatureViews", _request("ListAllFeatureViews", project="proj", updated_since=since)
    yield "ListSavedDatasets", _request("ListSavedDatasets", project="proj", namespace="ns")
    yield "Proto", Empty()


@pytest.fixture
def registry(make_registry):
    reg = make_registry("native")
    o.populate(reg)
    reg.refresh()
    return reg


def test_every_read_rpc_answers_as_stock(registry):
    fast, stock = NativeRegistryServer(registry), StockRegistryServer(registry)
    compared = errors = 0
    for rpc, request in requests():
        got, want = answer(fast, rpc, request), answer(stock, rpc, request)
        assert got == want, f"{rpc}({request}): {got[:3]} != {want[:3]}"
        compared += 1
        errors += got[0] == "error"
    assert compared > 700 and 0 < errors < compared // 2


def test_answers_follow_writes(registry):
    """Uncached reads see a write at once; cached ones after a refresh,
    as stock's do."""
    fast, stock = NativeRegistryServer(registry), StockRegistryServer(registry)
    registry.apply_entity(o.entity("rider", tags={"team": "core"}), "proj")
    registry.delete_feature_service("driver_activity", "proj")
    for cache in (False, True):
        if cache:
            registry.refresh()
        for rpc, request in (
            ("GetEntity", _request("GetEntity", name="rider", project="proj", allow_cache=cache)),
            ("ListEntities", _request("ListEntities", project="proj", allow_cache=cache)),
            ("ListFeatureServices", _request("ListFeatureServices", project="proj", allow_cache=cache)),
        ):
            assert answer(fast, rpc, request) == answer(stock, rpc, request)
        names = [e.spec.name for e in fast.ListEntities(_request("ListEntities", project="proj", allow_cache=cache), None).entities]
        assert "rider" in names


def test_fast_path_builds_no_feast_objects(registry, monkeypatch):
    """The point of the fast path: no from_proto/to_proto per request."""
    from feast.entity import Entity
    from feast.feature_view import FeatureView
    from feast.project import Project

    built = []
    for cls in (Entity, FeatureView, Project):
        original = cls.from_proto.__func__

        def counting(klass, *args, _original=original, **kw):
            built.append(klass.__name__)
            return _original(klass, *args, **kw)

        monkeypatch.setattr(cls, "from_proto", classmethod(counting))
    fast, stock = NativeRegistryServer(registry), StockRegistryServer(registry)
    for cache in (False, True):
        fast.GetFeatureView(_request("GetFeatureView", name=VIEWS[0], project="proj", allow_cache=cache), None)
        fast.ListFeatureViews(_request("ListFeatureViews", project="proj", allow_cache=cache), None)
        fast.ListEntities(_request("ListEntities", project="proj", allow_cache=cache), None)
        fast.ListProjects(_request("ListProjects", allow_cache=cache), None)
        fast.GetAnyFeatureView(_request("GetAnyFeatureView", name=VIEWS[1], project="proj", allow_cache=cache), None)
    fast.Proto(Empty(), None)
    assert built == []
    stock.ListFeatureViews(_request("ListFeatureViews", project="proj"), None)
    assert "FeatureView" in built  # the counter does see stock's objects


@pytest.fixture
def security_manager(registry):
    """A security manager as `feast serve_registry` sets one up under auth,
    with the registry's permission (readers may DESCRIBE driver.* views)."""
    sm = SecurityManager(project="proj", registry=registry)
    set_security_manager(sm)
    yield sm
    set_security_manager(None)


@pytest.mark.parametrize("roles", [["reader"], ["nobody"]])
def test_auth_checks_permissions_the_stock_way(registry, security_manager, roles):
    security_manager.set_current_user(User("alice", roles))
    fast, stock = NativeRegistryServer(registry), StockRegistryServer(registry)
    for rpc, request in (
        ("GetFeatureView", _request("GetFeatureView", name=VIEWS[0], project="proj")),
        ("ListFeatureViews", _request("ListFeatureViews", project="proj", allow_cache=True)),
        ("ListEntities", _request("ListEntities", project="proj")),
        ("ListProjects", _request("ListProjects")),
        ("Proto", Empty()),
    ):
        assert answer(fast, rpc, request) == answer(stock, rpc, request)
    got = answer(fast, "GetFeatureView", _request("GetFeatureView", name=VIEWS[0], project="proj"))
    assert (got[0] == "ok") == (roles == ["reader"])


def test_hook_puts_the_fast_server_in_place():
    assert registry_server.RegistryServer is NativeRegistryServer
    assert issubclass(NativeRegistryServer, StockRegistryServer)


def test_stock_registry_keeps_stock_answers(make_registry):
    """Over a registry that is not native, every call is the stock one."""
    reg = make_registry("stock")
    reg.apply_entity(o.entity(), "proj")
    fast, stock = NativeRegistryServer(reg), StockRegistryServer(reg)
    request = _request("ListEntities", project="proj")
    assert answer(fast, "ListEntities", request) == answer(stock, "ListEntities", request)
