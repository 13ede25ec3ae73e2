"""Every field of every read request, from the descriptors.

The fast path answers a request only when every field set in it is one its
handler declares (feast_sqlreg.server.FAST_FIELDS); anything else goes to
Feast's own method. These tests build the requests from the RegistryServer
descriptors of the installed Feast, not from a list written here: each
read RPC's request with each of its fields set alone, then with every pair
of fields set, over a registry holding every kind of object, and compare
NativeRegistryServer's answers with Feast's RegistryServer's on the same
registry, on every backend. A field Feast adds to a request is covered the
day the installed Feast has it; a field type with no values here fails
the test until values are added.
"""

import itertools

import feast.registry_server as registry_server
import pytest
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf import message_factory
from google.protobuf.timestamp_pb2 import Timestamp

import objects as o
from answers import answer
from feast_sqlreg import server

StockRegistryServer = registry_server.StockRegistryServer
SERVICE = pb.DESCRIPTOR.services_by_name["RegistryServer"]

# Values per message type, by full name: an empty message, then settings
# that change an answer.
MESSAGE_VALUES = {
    "feast.registry.PaginationParams": (
        pb.PaginationParams(),
        pb.PaginationParams(page=1, limit=1),
        pb.PaginationParams(page=2, limit=1),
    ),
    "feast.registry.SortingParams": (
        pb.SortingParams(),
        pb.SortingParams(sort_by="  "),
        pb.SortingParams(sort_by="name", sort_order="desc"),
    ),
    "google.protobuf.Timestamp": (Timestamp(seconds=1), Timestamp(seconds=4102444800)),
}
TAG_VALUES = ({"team": "core"}, {"team": "nobody"}, {"env": "test"})


def read_rpcs():
    """The RPCs that read: Get*, List* and Proto (every other one writes or
    runs a job)."""
    return [m for m in SERVICE.methods if m.name.startswith(("Get", "List")) or m.name == "Proto"]


def string_values(names):
    """Every name in the registry, and one that names nothing."""
    return tuple(sorted(names)) + ("missing",)


def field_values(field, names):
    """The values tried for one request field, by its type."""
    if field.is_repeated:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return TAG_VALUES
        if field.type == FieldDescriptor.TYPE_STRING:
            return (["driver"], ["driver", "missing"])
    elif field.type == FieldDescriptor.TYPE_STRING:
        if field.name == "project":
            return ("proj", "other", "nowhere")
        return string_values(names)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        return (True,)
    elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        return (1, 2)
    elif field.message_type is not None and field.message_type.full_name in MESSAGE_VALUES:
        return MESSAGE_VALUES[field.message_type.full_name]
    raise AssertionError(
        f"no test values for {field.full_name} (type {field.type}): "
        "add some to test_request_fields.py"
    )


def make_request(method, fields):
    request = message_factory.GetMessageClass(method.input_type)()
    for name, value in fields.items():
        field = method.input_type.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(request, name).update(value)
        elif field.is_repeated:
            getattr(request, name).extend(value)
        elif field.message_type is not None:
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def requests(method, names):
    """method's requests: none set, each field alone with each of its
    values, then every pair of fields with their first two values each;
    all of it also on top of project "proj" (where there is a project
    field), so that filters have something to filter."""
    fields = method.input_type.fields
    values = {f.name: field_values(f, names) for f in fields}
    bases = [{}]
    if "project" in values:
        bases.append({"project": "proj"})
    for base in bases:
        yield dict(base)
        free = [f.name for f in fields if f.name not in base]
        for name in free:
            for value in values[name]:
                yield {**base, name: value}
        for a, b in itertools.combinations(free, 2):
            for va, vb in itertools.product(values[a][:2], values[b][:2]):
                yield {**base, a: va, b: vb}


def registry_names(reg):
    proto = reg.proto()
    names = {p.spec.name for p in proto.projects}
    for field in (
        "entities",
        "data_sources",
        "feature_views",
        "stream_feature_views",
        "on_demand_feature_views",
        "label_views",
        "feature_services",
        "saved_datasets",
        "permissions",
    ):
        for message in getattr(proto, field):
            has_spec = "spec" in message.DESCRIPTOR.fields_by_name
            names.add((message.spec if has_spec else message).name)
    for fv in proto.feature_views:
        names.update(f.name for f in fv.spec.features)
    return names


@pytest.fixture
def registry(make_registry):
    reg = make_registry("native")
    o.populate(reg)
    # A second service that uses another view, so a feature_view filter has
    # something to leave out; a rider entity, so an entity filter does.
    odfv = o.on_demand_feature_view(o.feature_view())
    reg.apply_feature_service(o.feature_service("odfv_service", views=[odfv]), "proj")
    reg.apply_entity(o.entity("rider"), "proj")
    reg.refresh()
    return reg


def test_every_field_of_every_read_request_answers_as_feast(registry):
    fast, stock = server.NativeRegistryServer(registry), StockRegistryServer(registry)
    names = registry_names(registry)
    compared, fast_taken, changed = 0, set(), {}
    for method in read_rpcs():
        handler = getattr(server.NativeRegistryServer, method.name)
        if method.name not in server.FAST_FIELDS:
            # Not a fast RPC: Feast's own method, untouched.
            assert handler is getattr(StockRegistryServer, method.name), method.name
            continue
        baseline = None
        for fields in requests(method, names):
            request = make_request(method, fields)
            got, want = answer(fast, method.name, request), answer(stock, method.name, request)
            assert got == want, f"{method.name}({fields}): {got[:3]} != {want[:3]}"
            compared += 1
            if fields == {"project": "proj"} or (baseline is None and not fields):
                baseline = want
            elif len(fields) == 2 and "project" in fields and want != baseline:
                changed.setdefault(method.name, set()).update(set(fields) - {"project"})
            if server.answerable(request, server.FAST_FIELDS[method.name]):
                fast_taken.add(method.name)
    assert compared > 1500
    # Every fast RPC took the fast path for some request...
    assert fast_taken == set(server.FAST_FIELDS)
    # ...and the filters really filtered: the feature_view filter of
    # ListFeatureServices (ignored by the fast path once) changes the answer.
    assert "feature_view" in changed["ListFeatureServices"]
    assert {"entity", "feature", "feature_service"} <= changed["ListAllFeatureViews"]


def test_declared_fields_are_the_descriptors_fields():
    """A handler's fields are checked against the installed Feast's request
    descriptor at import; a field Feast removed or renamed stops the import."""
    for rpc, fields in server.FAST_FIELDS.items():
        method = SERVICE.methods_by_name[rpc]
        assert set(fields) <= set(method.input_type.fields_by_name), rpc
    with pytest.raises(RuntimeError, match="GetEntityRequest has no field"):
        server._declare("GetEntity", {"name": True, "colour": True})
    with pytest.raises(RuntimeError, match="no GetColour RPC"):
        server._declare("GetColour", {})


def test_an_undeclared_field_goes_to_feasts_method(registry, monkeypatch):
    """The rule itself: take a field out of a handler's declaration and the
    requests that set it are answered by Feast's own method (which builds
    Feast objects; the fast path builds none), with the same answer."""
    from feast.feature_service import FeatureService

    built = []
    original = FeatureService.from_proto.__func__

    def counting(klass, *args, **kw):
        built.append(klass.__name__)
        return original(klass, *args, **kw)

    monkeypatch.setattr(FeatureService, "from_proto", classmethod(counting))
    fast, stock = server.NativeRegistryServer(registry), StockRegistryServer(registry)
    request = pb.ListFeatureServicesRequest(project="proj", feature_view="driver_hourly_stats")
    want = answer(stock, "ListFeatureServices", request)
    built.clear()
    assert answer(fast, "ListFeatureServices", request) == want
    assert built == []  # declared: the fast path's own filter
    names = [s.spec.name for s in fast.ListFeatureServices(request, None).feature_services]
    assert names == ["driver_activity"]
    monkeypatch.delitem(server.FAST_FIELDS["ListFeatureServices"], "feature_view")
    assert answer(fast, "ListFeatureServices", request) == want
    assert built  # undeclared: Feast's method answered
