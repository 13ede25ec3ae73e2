"""The registry server's read fast path (``feast serve_registry``).

Feast's RegistryServer answers a read by asking the registry for Feast
objects, which the registry builds from stored protos (``from_proto``,
mostly typeguard's checks), and then serializing them straight back
(``to_proto``). Over NativeSqlRegistry, NativeRegistryServer answers the
read RPCs from the stored messages themselves (NativeSqlRegistry.get_proto,
list_protos): the same responses, field for field, without the object
round trip.

The fast path is taken only where it cannot change an answer:
- the registry is a NativeSqlRegistry, and no permission check is needed
  (no security manager, or the intra-communication user): a check needs the
  object, so with auth configured every call goes the stock way;
- a list is not sorted (sorting reads Python object attributes) and carries
  no filter that reads objects (ListAllFeatureViews' entity, feature,
  feature_service, data_source and updated_since; ListSavedDatasets'
  namespace and collection).
Every other call, and every write, is the stock method. The start-up hook
puts this class in place of feast.registry_server.RegistryServer.
"""

import logging
import os
import threading
from concurrent import futures

import grpc
from feast.constants import PROTECTED_PROJECT_TAG
from feast.errors import FeatureViewNotFoundException
from feast.permissions.security_manager import get_security_manager, is_auth_necessary
from feast.protos.feast.core.InfraObject_pb2 import Infra as InfraProto
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from feast.registry_server import RegistryServer, apply_pagination_and_sorting

from feast_sqlreg import _install
from feast_sqlreg._sqlregistry import Front
from feast_sqlreg.registry import (
    DATA_SOURCE,
    with_connect_args,
    ENTITY,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    INFRA,
    LABEL_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    PERMISSION,
    PROJECT,
    SAVED_DATASET,
    STREAM_FEATURE_VIEW,
    VALIDATION_REFERENCE,
    NativeSqlRegistry,
    _carrier,
    _unstamped,
)

logger = logging.getLogger(__name__)

# Get RPCs whose answer is the object's own message.
_GETS = {
    "GetEntity": ENTITY,
    "GetDataSource": DATA_SOURCE,
    "GetFeatureView": FEATURE_VIEW,
    "GetStreamFeatureView": STREAM_FEATURE_VIEW,
    "GetOnDemandFeatureView": ON_DEMAND_FEATURE_VIEW,
    "GetLabelView": LABEL_VIEW,
    "GetFeatureService": FEATURE_SERVICE,
    "GetSavedDataset": SAVED_DATASET,
    "GetValidationReference": VALIDATION_REFERENCE,
    "GetPermission": PERMISSION,
}

# List RPCs: kind, response class, its repeated field, request fields that
# filter on objects (any of them set: the stock way).
_LISTS = {
    "ListEntities": (ENTITY, pb.ListEntitiesResponse, "entities", ()),
    "ListDataSources": (DATA_SOURCE, pb.ListDataSourcesResponse, "data_sources", ()),
    "ListFeatureViews": (FEATURE_VIEW, pb.ListFeatureViewsResponse, "feature_views", ()),
    "ListStreamFeatureViews": (
        STREAM_FEATURE_VIEW,
        pb.ListStreamFeatureViewsResponse,
        "stream_feature_views",
        (),
    ),
    "ListOnDemandFeatureViews": (
        ON_DEMAND_FEATURE_VIEW,
        pb.ListOnDemandFeatureViewsResponse,
        "on_demand_feature_views",
        (),
    ),
    "ListLabelViews": (LABEL_VIEW, pb.ListLabelViewsResponse, "label_views", ()),
    "ListFeatureServices": (
        FEATURE_SERVICE,
        pb.ListFeatureServicesResponse,
        "feature_services",
        (),
    ),
    "ListSavedDatasets": (
        SAVED_DATASET,
        pb.ListSavedDatasetsResponse,
        "saved_datasets",
        ("namespace", "collection"),
    ),
    "ListValidationReferences": (
        VALIDATION_REFERENCE,
        pb.ListValidationReferencesResponse,
        "validation_references",
        (),
    ),
    "ListPermissions": (PERMISSION, pb.ListPermissionsResponse, "permissions", ()),
}

# AnyFeatureView's field for each view kind.
_ANY_FIELD = {
    FEATURE_VIEW: "feature_view",
    STREAM_FEATURE_VIEW: "stream_feature_view",
    ON_DEMAND_FEATURE_VIEW: "on_demand_feature_view",
    LABEL_VIEW: "label_view",
}

# The order stock looks a view name up in: the cached registry proto
# (proto_registry_utils.get_any_feature_view), the database (SqlRegistry).
_ANY_ORDER_CACHED = (FEATURE_VIEW, STREAM_FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, LABEL_VIEW)
_ANY_ORDER_STORED = (FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, STREAM_FEATURE_VIEW, LABEL_VIEW)

# ListAllFeatureViews: these kinds, in this order (label views left out).
_ALL_VIEWS = (FEATURE_VIEW, STREAM_FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW)
_ALL_VIEWS_FILTERS = ("entity", "feature", "feature_service", "data_source")

# The Proto RPC's registry: field, kind, in stock's order within a project.
_PROTO_FIELDS = (
    ("entities", ENTITY),
    ("data_sources", DATA_SOURCE),
    ("feature_views", FEATURE_VIEW),
    ("stream_feature_views", STREAM_FEATURE_VIEW),
    ("on_demand_feature_views", ON_DEMAND_FEATURE_VIEW),
    ("label_views", LABEL_VIEW),
    ("feature_services", FEATURE_SERVICE),
    ("saved_datasets", SAVED_DATASET),
    ("validation_references", VALIDATION_REFERENCE),
    ("permissions", PERMISSION),
)


def _sorted(request) -> bool:
    return bool(request.sorting.sort_by.strip())


def _page(protos, request):
    return apply_pagination_and_sorting(protos, pagination=request.pagination, sorting=None)


class NativeRegistryServer(RegistryServer):
    """feast.registry_server.RegistryServer, answering reads from stored
    protos when its registry is a NativeSqlRegistry (see the module)."""

    def __init__(self, registry, store=None) -> None:
        super().__init__(registry, store=store)
        self._native = registry if isinstance(registry, NativeSqlRegistry) else None
        if self._native is not None:
            logger.info("feast_sqlreg: the registry server answers reads from stored protos")

    def _fast(self):
        """The native registry when this call may skip Feast's objects."""
        if self._native is None or is_auth_necessary(get_security_manager()):
            return None
        return self._native

    def GetAnyFeatureView(self, request, context):
        reg = self._fast()
        if reg is None:
            return super().GetAnyFeatureView(request, context)
        order = _ANY_ORDER_CACHED if request.allow_cache else _ANY_ORDER_STORED
        for kind in order:
            message = reg.find_proto(kind, request.name, request.project, request.allow_cache)
            if message is not None:
                return pb.GetAnyFeatureViewResponse(
                    any_feature_view=pb.AnyFeatureView(**{_ANY_FIELD[kind]: message})
                )
        raise FeatureViewNotFoundException(request.name, request.project)

    def ListAllFeatureViews(self, request, context):
        reg = self._fast()
        if (
            reg is None
            or _sorted(request)
            or request.HasField("updated_since")
            or any(getattr(request, f) for f in _ALL_VIEWS_FILTERS)
        ):
            return super().ListAllFeatureViews(request, context)
        tags = dict(request.tags)
        views = [
            pb.AnyFeatureView(**{_ANY_FIELD[kind]: message})
            for kind in _ALL_VIEWS
            for message in reg.list_protos(kind, request.project, request.allow_cache, tags)
        ]
        page, meta = _page(views, request)
        return pb.ListAllFeatureViewsResponse(feature_views=page, pagination=meta)

    def GetProject(self, request, context):
        reg = self._fast()
        if reg is None:
            return super().GetProject(request, context)
        return reg.get_proto(PROJECT, request.name, request.name, request.allow_cache)

    def ListProjects(self, request, context):
        reg = self._fast()
        if reg is None or _sorted(request):
            return super().ListProjects(request, context)
        projects = [
            p
            for p in reg.list_protos(PROJECT, "", request.allow_cache, dict(request.tags))
            if p.spec.tags.get(PROTECTED_PROJECT_TAG) != "true"
        ]
        page, meta = _page(projects, request)
        return pb.ListProjectsResponse(projects=page, pagination=meta)

    def GetInfra(self, request, context):
        reg = self._fast()
        if reg is None:
            return super().GetInfra(request, context)
        # Stock reads infra from the database whatever allow_cache says.
        infra = reg.find_proto(INFRA, "infra_obj", request.project)
        return InfraProto() if infra is None else infra

    def ListProjectMetadata(self, request, context):
        if self._fast() is None:
            return super().ListProjectMetadata(request, context)
        # Stock looks the project up only for its permission check.
        return pb.ListProjectMetadataResponse(
            project_metadata=[
                m.to_proto()
                for m in self.proxied_registry.list_project_metadata(
                    project=request.project, allow_cache=request.allow_cache
                )
            ]
        )

    def Proto(self, request, context):
        """Stock builds this from one uncached list call per kind and
        project (objects without project stamps), then reads the whole
        registry again for last_updated and version_id; here one read gives
        all of it, regrouped in stock's order (project by project, in
        list_projects order)."""
        reg = self._fast()
        if reg is None:
            return super().Proto(request, context)
        source = reg.proto()
        by_project = {}
        for field, kind in _PROTO_FIELDS:
            for message in getattr(source, field):
                project = _carrier(kind, message).project
                by_project.setdefault((field, project), []).append(_unstamped(kind, message))
        answer = RegistryProto()
        # The registry read lists the projects as list_projects does (same
        # query, same bad rows left out): no second round trip for them.
        for project in source.projects:
            answer.projects.append(project)
            for field, _ in _PROTO_FIELDS:
                getattr(answer, field).extend(by_project.get((field, project.spec.name), ()))
        answer.last_updated.CopyFrom(source.last_updated)
        answer.version_id = source.version_id
        return answer


def _get_handler(rpc, kind):
    stock = getattr(RegistryServer, rpc)

    def handler(self, request, context):
        reg = self._fast()
        if reg is None:
            return stock(self, request, context)
        return reg.get_proto(kind, request.name, request.project, request.allow_cache)

    handler.__name__ = handler.__qualname__ = rpc
    handler.__doc__ = f"{rpc} from the stored message (stock: {stock.__qualname__})."
    return handler


def _list_handler(rpc, kind, response, field, filters):
    stock = getattr(RegistryServer, rpc)

    def handler(self, request, context):
        reg = self._fast()
        if reg is None or _sorted(request) or any(getattr(request, f) for f in filters):
            return stock(self, request, context)
        protos = reg.list_protos(kind, request.project, request.allow_cache, dict(request.tags))
        page, meta = _page(protos, request)
        return response(**{field: page, "pagination": meta})

    handler.__name__ = handler.__qualname__ = rpc
    handler.__doc__ = f"{rpc} from the stored messages (stock: {stock.__qualname__})."
    return handler


for _rpc, _kind in _GETS.items():
    setattr(NativeRegistryServer, _rpc, _get_handler(_rpc, _kind))
for _rpc, _spec in _LISTS.items():
    setattr(NativeRegistryServer, _rpc, _list_handler(_rpc, *_spec))
del _rpc, _kind, _spec

# ---- the native front ------------------------------------------------------
#
# grpcio's Python server spends about 0.37 ms of CPU on every call here, even
# an empty one: more than everything else a cached Get costs. So start_server
# puts a native front (src/front.c) on the server's port. It answers cached
# Get calls from a table that _Answers keeps equal to what NativeRegistryServer
# would answer from the cached registry, and relays every other call, frame
# by frame, to Feast's own grpcio server (interceptors, health, reflection
# and all) listening on a loopback port behind it.

SERVICE = pb.DESCRIPTOR.services_by_name["RegistryServer"].full_name
_FRONT_RPCS = list(_GETS)
_FRONT_METHOD = {kind: i for i, kind in enumerate(_GETS.values())}
# FEAST_SQLREG_FRONT=0 serves through grpcio alone. Uncached Gets are read
# by FRONT_WORKERS threads of the front, each with a connection of its own.
FRONT = os.environ.get("FEAST_SQLREG_FRONT", "1") != "0"
FRONT_WORKERS = int(os.environ.get("FEAST_SQLREG_FRONT_WORKERS", "4") or 4)
WATCH_SECONDS = 0.2


class _Answers:
    """Keeps a Front's table equal to the cached Get answers of registry:
    the cached registry's messages while change detection keeps the cache
    fresh (then a cached read never refreshes first), nothing otherwise
    (every call goes to the grpcio server, which follows cache_ttl_seconds)."""

    def __init__(self, registry: NativeSqlRegistry, front):
        self._registry = registry
        self._front = front
        self._lock = threading.Lock()
        self._shown = None  # the registry proto the table holds, or None
        self._stopping = threading.Event()
        registry.cache_listeners.append(self.update)
        self.update()
        self._thread = threading.Thread(target=self._watch, name="feast_sqlreg-front", daemon=True)
        self._thread.start()

    def update(self):
        reg = self._registry
        with self._lock:
            if self._stopping.is_set():
                return
            fresh = reg.feed_healthy() and reg.is_cache_valid()
            if not fresh:
                if self._shown is not None:
                    self._front.set_answers(None)
                    self._shown = None
                return
            by_name = reg._cached_index()[1]
            proto = reg._proto_index[0]
            if proto is self._shown:
                return
            self._front.set_answers(
                [
                    (_FRONT_METHOD[kind], project, name, message.SerializeToString())
                    for (kind, project, name), message in by_name.items()
                    if kind in _FRONT_METHOD
                ]
            )
            self._shown = proto

    def _watch(self):
        while not self._stopping.wait(WATCH_SECONDS):
            try:
                self.update()
            except Exception as e:  # the table is withdrawn; calls go to grpcio
                logger.warning("feast_sqlreg: front answers withdrawn: %s", e)
                with self._lock:
                    self._front.set_answers(None)
                    self._shown = None

    def stop(self):
        with self._lock:
            self._stopping.set()
        if self.update in self._registry.cache_listeners:
            self._registry.cache_listeners.remove(self.update)


class FrontedServer:
    """What start_server returns when it does not wait: Feast's grpcio
    server (every attribute) behind the native front; stop() stops both."""

    def __init__(self, server, front, answers):
        self._server = server
        self.front = front
        self._answers = answers
        self.port = front.port

    def stop(self, grace=None):
        self._answers.stop()
        self.front.stop()
        return self._server.stop(grace)

    def wait_for_termination(self, timeout=None):
        return self._server.wait_for_termination(timeout)

    def __getattr__(self, name):
        return getattr(self._server, name)


def _front_applies(store, tls_key_path, tls_cert_path) -> bool:
    from feast.permissions.server.utils import AuthManagerType, str_to_auth_manager_type

    return (
        FRONT
        and isinstance(store.registry, NativeSqlRegistry)
        and not (tls_key_path and tls_cert_path)
        and str_to_auth_manager_type(store.config.auth_config.type) == AuthManagerType.NONE
    )


def _request_fields(rpc):
    """The field numbers (name, project, allow_cache) of rpc's request message,
    as Front's request_fields wants them, from Feast's own descriptors: the
    front answers only requests whose every field is one of these (others
    go to grpcio). 0 for a field the message lacks, or that is not the
    singular string (bool) the front reads it as: a request carrying it is
    relayed then."""
    from google.protobuf.descriptor import FieldDescriptor

    service = pb.DESCRIPTOR.services_by_name["RegistryServer"]
    fields = service.methods_by_name[rpc].input_type.fields_by_name
    numbers = []
    for name, type_ in (("name", FieldDescriptor.TYPE_STRING),
                        ("project", FieldDescriptor.TYPE_STRING),
                        ("allow_cache", FieldDescriptor.TYPE_BOOL)):
        f = fields.get(name)
        repeated = getattr(f, "is_repeated", None)
        if f is not None and repeated is None:  # protobuf before 5.29
            repeated = f.label == FieldDescriptor.LABEL_REPEATED
        numbers.append(f.number if f is not None and f.type == type_ and not repeated else 0)
    return tuple(numbers)


def start_server(store, port: int, wait_for_termination: bool = True, tls_key_path: str = "",
                 tls_cert_path: str = ""):
    """feast.registry_server.start_server, with the native front on port
    when the registry is native, without TLS and without auth (a permission
    check needs Feast's objects, so then nothing can be answered natively:
    Feast's own start_server runs as it is)."""
    from feast import registry_server as rs

    if not _front_applies(store, tls_key_path, tls_cert_path):
        return rs.stock_start_server(store, port, wait_for_termination, tls_key_path, tls_cert_path)
    from feast.permissions.server.utils import (
        ServerType,
        init_auth_manager,
        init_security_manager,
        str_to_auth_manager_type,
    )
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    rs._sync_protected_project_tag(store)
    auth_type = str_to_auth_manager_type(store.config.auth_config.type)
    init_security_manager(auth_type=auth_type, fs=store)
    init_auth_manager(auth_type=auth_type, server_type=ServerType.GRPC,
                      auth_config=store.config.auth_config)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10),
                         interceptors=rs._grpc_interceptors(auth_type))
    rs.RegistryServer_pb2_grpc.add_RegistryServerServicer_to_server(
        rs.RegistryServer(store.registry, store=store), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )
    backend_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = store.registry.registry_config
    # Uncached Gets from the database, where the front reads what the
    # registry would. Without a read_path, through a store of the front's
    # own (its workers' connections apart from the registry's pool); with
    # one, through the registry's own store, which knows this process's
    # writes and waits for the replica to replay them (read-your-writes).
    path, own = None, None
    if config.read_path:
        own = store.registry._store
    else:
        connect_args = (config.sqlalchemy_config_kwargs or {}).get("connect_args")
        path = with_connect_args(config.path, connect_args)
    try:
        front = Front(port, backend_port, [f"/{SERVICE}/{rpc}" for rpc in _FRONT_RPCS],
                      list(_GETS.values()), path, FRONT_WORKERS, own,
                      request_fields=[_request_fields(rpc) for rpc in _FRONT_RPCS])
    except Exception:
        server.stop(None)
        raise
    answers = _Answers(store.registry, front)
    fronted = FrontedServer(server, front, answers)
    logger.info("feast_sqlreg: registry server on port %d (native front; grpcio on 127.0.0.1:%d)",
                front.port, backend_port)
    if not wait_for_termination:
        return fronted
    try:
        server.wait_for_termination()
    finally:
        fronted.stop(None)


# Finishes the start-up hook's work when this module was imported before
# feast.registry_server.
_install.loaded(__name__, NativeRegistryServer)
