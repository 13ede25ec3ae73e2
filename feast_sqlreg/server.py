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

from feast.constants import PROTECTED_PROJECT_TAG
from feast.errors import FeatureViewNotFoundException
from feast.permissions.security_manager import get_security_manager, is_auth_necessary
from feast.protos.feast.core.InfraObject_pb2 import Infra as InfraProto
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from feast.registry_server import RegistryServer, apply_pagination_and_sorting

from feast_sqlreg import _install
from feast_sqlreg.registry import (
    DATA_SOURCE,
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

# Finishes the start-up hook's work when this module was imported before
# feast.registry_server.
_install.loaded(__name__, NativeRegistryServer)
