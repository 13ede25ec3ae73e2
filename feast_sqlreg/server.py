"""The registry server's read fast path (``feast serve_registry``).

Feast's RegistryServer answers a read by asking the registry for Feast
objects, which the registry builds from stored protos (``from_proto``,
mostly typeguard's checks), and then serializing them straight back
(``to_proto``). Over NativeSqlRegistry, NativeRegistryServer answers the
read RPCs from the stored messages themselves (NativeSqlRegistry.get_proto,
list_protos): the same responses, field for field, without the object
round trip.

The fast path is taken only where it cannot change an answer:
- the registry is a NativeSqlRegistry. With auth configured, the Gets and
  Lists check permissions on the stored messages (feast_sqlreg._permissions,
  Feast's decisions without Feast's objects) with the permissions of the
  cached registry, while change detection keeps it fresh; with a stale
  cache, Feast's own method answers (it reads the permissions from the
  database);
- every field set in the request is one the fast handler implements. Each
  handler declares its fields (``@_fast(rpc, fields)``), checked at import
  against the request message's descriptor; a field it does not name (a
  filter Feast added, a sort order) sends the call to Feast's own method.
  So a request rule never has to be copied from Feast by hand: what is
  not declared is not answered here. The native front (src/front/front.c) gets
  its field numbers from the same declarations (FAST_FIELDS).
Every other call, and every write, is the stock method. The start-up hook
puts this class in place of feast.registry_server.RegistryServer.
"""

import logging
import os
import threading
import time
from concurrent import futures

import grpc
from feast.constants import PROTECTED_PROJECT_TAG
from feast.errors import FeastPermissionError, FeatureViewNotFoundException
from feast.permissions.action import AuthzedAction
from feast.permissions.user import User
from feast.permissions.security_manager import get_security_manager, is_auth_necessary
from feast.protos.feast.core.InfraObject_pb2 import Infra as InfraProto
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.registry import RegistryServer_pb2 as pb
from feast.registry_server import RegistryServer

from feast_sqlreg import _auth, _install, _internals, _kinds, _metrics, _permissions
from feast_sqlreg._config import with_connect_args
from feast_sqlreg._sqlregistry import Front
from feast_sqlreg.registry import NativeSqlRegistry, _carrier, _unstamped

logger = logging.getLogger(__name__)

SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["RegistryServer"]
SERVICE = SERVICE_DESCRIPTOR.full_name

GET_FIELDS = {"name": True, "project": True, "allow_cache": True}


def _unsorted(sorting) -> bool:
    """Stock sorts only when sort_by has more than blanks (sorting reads
    Feast objects' attributes, so a sorted list goes the stock way)."""
    return not sorting.sort_by.strip()


LIST_FIELDS = {
    "project": True,
    "allow_cache": True,
    "tags": True,
    "pagination": True,
    "sorting": _unsorted,
}


def _gets():
    """Get RPCs whose answer is the object's own message, found from the
    kinds table and the descriptors: the RPC returns the kind's proto and
    takes a name and a project (GetProject and GetInfra do not)."""
    gets = {}
    for k in _kinds.KINDS:
        method = SERVICE_DESCRIPTOR.methods_by_name.get(k.get_rpc)
        if (
            method is not None
            and method.output_type is k.py_proto.DESCRIPTOR
            and set(GET_FIELDS) <= set(method.input_type.fields_by_name)
        ):
            gets[k.get_rpc] = k.id
    return gets


def _lists():
    """List RPCs answered from stored messages: rpc -> (kind, response
    class, its repeated field: the kind's Registry field name). Those with
    a project to list (ListProjects has its own handler)."""
    lists = {}
    for k in _kinds.KINDS:
        method = SERVICE_DESCRIPTOR.methods_by_name.get(k.list_rpc)
        if method is not None and set(LIST_FIELDS) <= set(method.input_type.fields_by_name):
            response = getattr(pb, method.output_type.name)
            lists[k.list_rpc] = (k.id, response, k.reg_field)
    return lists


_GETS = _gets()
_LISTS = _lists()

# AnyFeatureView's field for each view kind.
_ANY_FIELD = {k.id: k.view for k in _kinds.KINDS if k.view}

# The order stock looks a view name up in: the cached registry proto
# (proto_registry_utils.get_any_feature_view), the database (SqlRegistry).
_ANY_ORDER_CACHED = (
    _kinds.FEATURE_VIEW,
    _kinds.STREAM_FEATURE_VIEW,
    _kinds.ON_DEMAND_FEATURE_VIEW,
    _kinds.LABEL_VIEW,
)
_ANY_ORDER_STORED = (
    _kinds.FEATURE_VIEW,
    _kinds.ON_DEMAND_FEATURE_VIEW,
    _kinds.STREAM_FEATURE_VIEW,
    _kinds.LABEL_VIEW,
)

# ListAllFeatureViews: these kinds, in this order (label views left out).
_ALL_VIEWS = (_kinds.FEATURE_VIEW, _kinds.STREAM_FEATURE_VIEW, _kinds.ON_DEMAND_FEATURE_VIEW)

# The Proto RPC's registry: field, kind, in stock's order within a project.
_PROTO_FIELDS = tuple(
    (_kinds.KINDS[kind].reg_field, kind)
    for kind in (
        _kinds.ENTITY,
        _kinds.DATA_SOURCE,
        _kinds.FEATURE_VIEW,
        _kinds.STREAM_FEATURE_VIEW,
        _kinds.ON_DEMAND_FEATURE_VIEW,
        _kinds.LABEL_VIEW,
        _kinds.FEATURE_SERVICE,
        _kinds.SAVED_DATASET,
        _kinds.VALIDATION_REFERENCE,
        _kinds.PERMISSION,
    )
)


#: The request fields each fast handler implements: rpc -> {field name:
#: True, or a test of the field's value that says whether this value is
#: implemented}. A request with any other field set goes to Feast's method.
FAST_FIELDS = {}


def answerable(request, fields) -> bool:
    """Whether every field set in request is implemented by fields (see
    FAST_FIELDS). Fields the installed Feast's descriptors do not know
    (a newer client's) are ignored, as Feast's own method ignores them."""
    for field, value in request.ListFields():
        implemented = fields.get(field.name)
        if implemented is None or (implemented is not True and not implemented(value)):
            return False
    return True


def _declare(rpc: str, fields) -> None:
    method = SERVICE_DESCRIPTOR.methods_by_name.get(rpc)
    if method is None:
        raise RuntimeError(f"feast_sqlreg: Feast's RegistryServer has no {rpc} RPC any more")
    unknown = set(fields) - set(method.input_type.fields_by_name)
    if unknown:
        raise RuntimeError(
            f"feast_sqlreg: {method.input_type.full_name} has no field(s) {sorted(unknown)}; "
            "the fast path was written for another Feast"
        )
    FAST_FIELDS[rpc] = dict(fields)


def _fresh(reg) -> bool:
    """Whether change detection keeps reg's cached registry fresh (then
    permissions are read from it, as they are stored within about half a
    second)."""
    return reg.feed_healthy() and reg.is_cache_valid()


def _fast(rpc: str, fields, guarded=None):
    """Makes answer(server, reg, request) the fast path of rpc: it runs with
    the native registry when answerable(request, fields) and no permission
    check is needed. When one is (auth configured), guarded(server, reg,
    request, context, sm) answers, checking permissions on the stored
    messages as Feast's method would, while the cached registry is fresh;
    otherwise (no guarded answer, or a stale cache) Feast's own method
    answers."""
    _declare(rpc, fields)

    def register(answer):
        stock = getattr(RegistryServer, rpc)
        fields_ = FAST_FIELDS[rpc]

        def handler(self, request, context):
            reg = self._native
            if reg is None or not answerable(request, fields_):
                return stock(self, request, context)
            sm = get_security_manager()
            if is_auth_necessary(sm):
                if guarded is None or not _fresh(reg):
                    return stock(self, request, context)
                return guarded(self, reg, request, context, sm)
            return answer(self, reg, request)

        handler.__name__ = handler.__qualname__ = rpc
        handler.__doc__ = f"{rpc} from stored messages (stock: {stock.__qualname__})."
        setattr(NativeRegistryServer, rpc, handler)
        return answer

    return register


def _page(protos, request):
    return _internals.paginate(protos, request.pagination)


# ---- permission checks on stored messages ------------------------------------
#
# With auth configured, Feast's methods build the object a call is about,
# then SecurityManager.assert_permissions lists the project's permissions
# from the database (list_permissions, allow_cache=False) and builds every
# one of them, on every call. The guarded answers below make the same
# decision (feast_sqlreg._permissions, checked against Feast's enforcer
# case by case in tests/test_permissions.py) on the stored messages, with
# the permissions of the cached registry while change detection keeps it
# fresh (a permission written anywhere is seen within about half a
# second); with a stale cache, Feast's own method answers.

_DESCRIBE = [AuthzedAction.DESCRIBE]


def _user(sm):
    user = sm.current_user
    return user if user is not None else User("", [])


def _check(server, reg, sm, resources, filter_only=False):
    """Feast's decision on DESCRIBE of resources [(kind, message)] for the
    current user: the indices of the permitted ones (filter_only), or
    FeastPermissionError as Feast raises it."""
    compiled = server._compiled_permissions(reg, _internals.permissions_project(sm))
    return _permissions.enforce(
        compiled, _user(sm), [_permissions.resource(k, m) for k, m in resources], _DESCRIBE,
        filter_only,
    )


def _permitted(server, reg, sm, kind, messages):
    """The messages the current user may see, as permitted_resources keeps
    them."""
    kept = _check(server, reg, sm, [(kind, m) for m in messages], filter_only=True)
    return [messages[i] for i in kept]


def _guarded_get(kind):
    """A Get answered as Feast's method answers it with auth: the object
    (Feast's not-found error when there is none), then the check. The
    decision for a cached Get is handed to the native front, which answers
    the caller's next such call itself (see _learn)."""

    def guarded(server, reg, request, context, sm):
        generation = server._front_generation()
        project = request.name if kind == _kinds.PROJECT else request.project
        message = reg.get_proto(kind, request.name, project, request.allow_cache)
        try:
            _check(server, reg, sm, [(kind, message)])
        finally:  # allowed or denied: the front learns it
            server._learn(reg, sm, kind, request, context, generation)
        return message

    return guarded


class NativeRegistryServer(RegistryServer):
    """feast.registry_server.RegistryServer, answering reads from stored
    protos when its registry is a NativeSqlRegistry (see the module)."""

    def __init__(self, registry, store=None) -> None:
        super().__init__(registry, store=store)
        self._native = registry if isinstance(registry, NativeSqlRegistry) else None
        #: The native front in front of this server, when it learns auth
        #: decisions (start_server sets it).
        self.front = None
        self._permission_memo = (None, {})
        self._compiled_by_bytes = {}
        if self._native is not None:
            logger.info("feast_sqlreg: the registry server answers reads from stored protos")

    def _compiled_permissions(self, reg, project: str):
        """The project's permissions in the cached registry, compiled once
        per cached registry."""
        lists, _ = reg._cached_index()
        memo_lists, compiled = self._permission_memo
        if memo_lists is not lists:
            compiled = {}
            self._permission_memo = (lists, compiled)
        found = compiled.get(project)
        if found is None:
            # The same permissions in a new cached registry (any write makes
            # one): the same compiled set, with what it has memoized.
            messages = list(lists.get((_kinds.PERMISSION, project), ()))
            key = (project, tuple(m.SerializeToString(deterministic=True) for m in messages))
            found = self._compiled_by_bytes.get(key)
            if found is None:
                found = _permissions.compile_permissions(messages)
                if len(self._compiled_by_bytes) >= 64:
                    self._compiled_by_bytes.clear()
                self._compiled_by_bytes[key] = found
            compiled[project] = found
        return found

    def _front_generation(self):
        front = self.front
        return None if front is None else front.generation()

    def _learn(self, reg, sm, kind, request, context, generation) -> None:
        """Tells the front the current caller's decisions on every object
        of kind in the request's project (the one asked for among them),
        for the same authorization header, while the caller's identity may
        be reused (_auth.identity_until): the caller's next cached Get of
        any of them is answered by the front. Only cached Gets the front
        answers; decided on the registry the front's table generation
        shows or a newer one."""
        method = _FRONT_METHOD.get(kind)  # the front answers kind's Get RPC
        if method is None or generation is None or not request.allow_cache:
            return
        until = _auth.identity_until.get()
        if until <= time.time():
            return
        values = [v for k, v in context.invocation_metadata() if k == "authorization"]
        if len(values) != 1 or not isinstance(values[0], str):
            return
        lists, _ = reg._cached_index()
        compiled = self._compiled_permissions(reg, _internals.permissions_project(sm))
        user, project, entries, seen = _user(sm), request.project, [], set()
        for message in lists.get((kind, project), ()):
            name = _carrier(kind, message).name
            if name in seen:  # the front's table holds the first of a name
                continue
            seen.add(name)
            try:
                _permissions.enforce(compiled, user, [_permissions.resource(kind, message)],
                                     _DESCRIBE, False)
                entries.append((method, project, name, 0, ""))
            except FeastPermissionError as e:
                entries.append((method, project, name, e.grpc_status_code().value[0],
                                e.to_error_detail()))
            except Exception:  # e.g. a stored permission Feast cannot read:
                return  # nothing learned; each call is decided here, as stock does
        self.front.learn(generation, values[0], until, entries)


def _any_view(reg, request):
    """(kind, message) of the view GetAnyFeatureView finds, in stock's order."""
    order = _ANY_ORDER_CACHED if request.allow_cache else _ANY_ORDER_STORED
    for kind in order:
        message = reg.find_proto(kind, request.name, request.project, request.allow_cache)
        if message is not None:
            return kind, message
    raise FeatureViewNotFoundException(request.name, request.project)


def _any_view_response(kind, message):
    return pb.GetAnyFeatureViewResponse(
        any_feature_view=pb.AnyFeatureView(**{_ANY_FIELD[kind]: message}))


def _guarded_any_view(server, reg, request, context, sm):
    kind, message = _any_view(reg, request)
    _check(server, reg, sm, [(kind, message)])
    return _any_view_response(kind, message)


@_fast("GetAnyFeatureView", GET_FIELDS, _guarded_any_view)
def _get_any_feature_view(server, reg, request):
    return _any_view_response(*_any_view(reg, request))


def _all_views(reg, request):
    tags = dict(request.tags)
    return [
        (kind, message)
        for kind in _ALL_VIEWS
        for message in reg.list_protos(kind, request.project, request.allow_cache, tags)
    ]


def _all_views_response(views, request):
    page, meta = _page([pb.AnyFeatureView(**{_ANY_FIELD[k]: m}) for k, m in views], request)
    return pb.ListAllFeatureViewsResponse(feature_views=page, pagination=meta)


def _guarded_all_views(server, reg, request, context, sm):
    views = _all_views(reg, request)
    kept = _check(server, reg, sm, views, filter_only=True)
    return _all_views_response([views[i] for i in kept], request)


@_fast("ListAllFeatureViews", LIST_FIELDS, _guarded_all_views)
def _list_all_feature_views(server, reg, request):
    return _all_views_response(_all_views(reg, request), request)


@_fast("GetProject", {"name": True, "allow_cache": True},
       _guarded_get(_kinds.PROJECT))
def _get_project(server, reg, request):
    return reg.get_proto(_kinds.PROJECT, request.name, request.name, request.allow_cache)


def _visible(projects):
    return [p for p in projects if p.spec.tags.get(PROTECTED_PROJECT_TAG) != "true"]


def _projects_response(projects, request):
    page, meta = _page(projects, request)
    return pb.ListProjectsResponse(projects=page, pagination=meta)


def _guarded_projects(server, reg, request, context, sm):
    # Stock checks permissions first, then leaves protected projects out.
    projects = reg.list_protos(_kinds.PROJECT, "", request.allow_cache, dict(request.tags))
    permitted = _permitted(server, reg, sm, _kinds.PROJECT, projects)
    return _projects_response(_visible(permitted), request)


@_fast("ListProjects", {k: v for k, v in LIST_FIELDS.items() if k != "project"},
       _guarded_projects)
def _list_projects(server, reg, request):
    projects = reg.list_protos(_kinds.PROJECT, "", request.allow_cache, dict(request.tags))
    return _projects_response(_visible(projects), request)


@_fast("GetInfra", {"project": True, "allow_cache": True})
def _get_infra(server, reg, request):
    # Stock reads infra from the database whatever allow_cache says.
    infra = reg.find_proto(_kinds.INFRA, "infra_obj", request.project)
    return InfraProto() if infra is None else infra


@_fast("ListProjectMetadata", {"project": True, "allow_cache": True})
def _list_project_metadata(server, reg, request):
    # Stock looks the project up only for its permission check.
    return pb.ListProjectMetadataResponse(
        project_metadata=[
            m.to_proto()
            for m in server.proxied_registry.list_project_metadata(
                project=request.project, allow_cache=request.allow_cache
            )
        ]
    )


@_fast("Proto", {})
def _proto(server, reg, request):
    """Stock builds this from one uncached list call per kind and project
    (objects without project stamps), then reads the whole registry again
    for last_updated and version_id; here one read gives all of it,
    regrouped in stock's order (project by project, in list_projects
    order)."""
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


def _get(rpc, kind):
    @_fast(rpc, GET_FIELDS, _guarded_get(kind))
    def get(server, reg, request):
        return reg.get_proto(kind, request.name, request.project, request.allow_cache)


def _uses_view(name):
    """Stock's ListFeatureServices feature_view filter (Feast 0.52 on): a
    service whose projections include a view of that name."""
    return lambda service: any(p.feature_view_name == name for p in service.spec.features)


# Request fields that filter a list on its stored messages: rpc -> {field:
# function of the field's value giving a test of one message}.
_LIST_FILTERS = {"ListFeatureServices": {"feature_view": _uses_view}}


def _list(rpc, kind, response, field):
    filters = _LIST_FILTERS.get(rpc, {})

    def listed(reg, request):
        protos = reg.list_protos(kind, request.project, request.allow_cache, dict(request.tags))
        for name, make_test in filters.items():
            value = getattr(request, name)
            if value:
                keep = make_test(value)
                protos = [p for p in protos if keep(p)]
        return protos

    def respond(protos, request):
        page, meta = _page(protos, request)
        return response(**{field: page, "pagination": meta})

    def guarded(server, reg, request, context, sm):
        # Stock filters first, then checks permissions, then pages.
        return respond(_permitted(server, reg, sm, kind, listed(reg, request)), request)

    @_fast(rpc, {**LIST_FIELDS, **{name: True for name in filters}}, guarded)
    def list_(server, reg, request):
        return respond(listed(reg, request), request)


for _rpc, _kind in _GETS.items():
    _get(_rpc, _kind)
for _rpc, _spec in _LISTS.items():
    _list(_rpc, *_spec)
del _rpc, _kind, _spec

# ---- the native front ------------------------------------------------------
#
# grpcio's Python server spends about 0.37 ms of CPU on every call here, even
# an empty one: more than everything else a cached Get costs. So start_server
# puts a native front (src/front/front.c) on the server's port. It answers cached
# Get calls from a table that _Answers keeps equal to what NativeRegistryServer
# would answer from the cached registry, and relays every other call, frame
# by frame, to Feast's own grpcio server (interceptors, health, reflection
# and all) listening on a loopback port behind it.
#
# With TLS (serve_registry --key --cert), the front terminates it, with the
# same certificate chain and key files Feast's own server would read, and
# picks up rotated files for new connections (front.h). The grpcio server
# behind it stays insecure: it listens on 127.0.0.1 only, so what reaches
# it has come through the front (or from this machine), and the relayed
# calls keep every header the client sent (authorization included).
# Auth is not combined with the front at all yet (_front_applies); when it
# is, Feast's interceptors on that grpcio server are what check it.

_FRONT_RPCS = list(_GETS)
_FRONT_METHOD = {kind: i for i, kind in enumerate(_GETS.values())}
# FEAST_SQLREG_FRONT=0 serves through grpcio alone. Uncached Gets are read
# by FRONT_WORKERS threads of the front, each with a connection of its own.
FRONT = os.environ.get("FEAST_SQLREG_FRONT", "1") != "0"
FRONT_WORKERS = int(os.environ.get("FEAST_SQLREG_FRONT_WORKERS", "4") or 4)
WATCH_SECONDS = 0.2


def _decision_basis(lists):
    """What the front's learned decisions depend on besides the caller and
    their key (method, project, name): each project's permissions, and the
    Feast class of each object whose class its message decides (a feature
    view: batch or not; a data source: its type). A new cached registry
    with the same basis (a materialization, a new object, a changed tag)
    keeps them."""
    basis = {}
    for (kind, project), messages in lists.items():
        if kind == _kinds.PERMISSION:
            basis[kind, project] = tuple(m.SerializeToString(deterministic=True) for m in messages)
        elif kind in (_kinds.FEATURE_VIEW, _kinds.DATA_SOURCE):
            classes = []
            for m in messages:
                try:
                    cls = _permissions.resource(kind, m).cls
                except Exception as e:  # decided (refused) the same way each time
                    cls = type(e)
                classes.append((_carrier(kind, m).name, cls))
            basis[kind, project] = tuple(classes)
    return basis


class _Answers:
    """Keeps a Front's table equal to the cached Get answers of registry:
    the cached registry's messages while change detection keeps the cache
    fresh (then a cached read never refreshes first), nothing otherwise
    (every call goes to the grpcio server, which follows cache_ttl_seconds)."""

    def __init__(self, registry: NativeSqlRegistry, front, auth=False):
        self._registry = registry
        self._front = front
        self._auth = auth
        self._basis = None  # with auth: the decision basis of the table shown
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
                    self._shown = self._basis = None
                return
            lists, by_name = reg._cached_index()
            proto = reg._proto_index[0]
            if proto is self._shown:
                return
            basis = _decision_basis(lists) if self._auth else None
            self._front.set_answers(
                [
                    (_FRONT_METHOD[kind], project, name, message.SerializeToString())
                    for (kind, project, name), message in by_name.items()
                    if kind in _FRONT_METHOD
                ],
                keep_decisions=basis is not None and basis == self._basis,
            )
            self._shown, self._basis = proto, basis

    def _watch(self):
        while not self._stopping.wait(WATCH_SECONDS):
            try:
                self.update()
            except Exception as e:  # the table is withdrawn; calls go to grpcio
                logger.warning("feast_sqlreg: front answers withdrawn: %s", e)
                with self._lock:
                    self._front.set_answers(None)
                    self._shown = self._basis = None

    def stop(self):
        with self._lock:
            self._stopping.set()
        if self.update in self._registry.cache_listeners:
            self._registry.cache_listeners.remove(self.update)


class FrontedServer:
    """What start_server returns when it does not wait: Feast's grpcio
    server (every attribute) behind the native front; stop() stops both."""

    def __init__(self, server, front, answers, identities=None, metrics=None):
        self._server = server
        self.front = front
        self._answers = answers
        #: The callers' identities (feast_sqlreg._auth.Identities), with auth.
        self.identities = identities
        self.port = front.port
        #: The HTTP server of the metrics (FEAST_SQLREG_METRICS_PORT; its
        #: server_port), or None.
        self.metrics = metrics

    def stop(self, grace=None):
        self._answers.stop()
        _metrics.forget_front(self)
        self.front.stop()
        if self.metrics is not None:
            _metrics.stop_serving(self.metrics)
        return self._server.stop(grace)

    def wait_for_termination(self, timeout=None):
        return self._server.wait_for_termination(timeout)

    def __getattr__(self, name):
        return getattr(self._server, name)


def _front_applies(store, tls_key_path, tls_cert_path) -> bool:
    """Whether start_server puts the native front on the port: over the
    native registry, unless FEAST_SQLREG_FRONT=0. TLS or not does not
    matter (the front terminates it), nor does auth (the front answers what
    it has learned; see NativeRegistryServer._learn); the paths are taken
    for the signature's sake."""
    return (
        FRONT
        and isinstance(store.registry, NativeSqlRegistry)
    )


def _request_fields(rpc):
    """The field numbers (name, project, allow_cache) of rpc's request message,
    as Front's request_fields wants them, from Feast's own descriptors and
    the fields the fast path declares (FAST_FIELDS): the front answers only
    requests whose every field is one of these (others go to grpcio). 0 for
    a field the handler does not declare, the message lacks, or that is not
    the singular string (bool) the front reads it as: a request carrying it
    is relayed then."""
    from google.protobuf.descriptor import FieldDescriptor

    fields = SERVICE_DESCRIPTOR.methods_by_name[rpc].input_type.fields_by_name
    declared = FAST_FIELDS[rpc]
    numbers = []
    for name, type_ in (("name", FieldDescriptor.TYPE_STRING),
                        ("project", FieldDescriptor.TYPE_STRING),
                        ("allow_cache", FieldDescriptor.TYPE_BOOL)):
        f = fields.get(name) if declared.get(name) is True else None
        usable = f is not None and f.type == type_ and not _kinds.is_repeated(f)
        numbers.append(f.number if usable else 0)
    return tuple(numbers)


def start_server(store, port: int, wait_for_termination: bool = True, tls_key_path: str = "",
                 tls_cert_path: str = ""):
    """feast.registry_server.start_server, with the native front on port
    when the registry is native (otherwise Feast's own start_server runs as
    it is). With tls_key_path and tls_cert_path both given (Feast's rule;
    one alone serves plaintext, as Feast does), the front serves TLS with
    those files, reloading them when they are replaced, and Feast's grpcio
    server listens insecure on 127.0.0.1 behind it. With auth, the callers'
    identities are cached per token (feast_sqlreg._auth) and the front
    answers a cached Get once it has learned the decision for that caller
    and object (NativeRegistryServer._learn).

    FEAST_SQLREG_METRICS_PORT=N also serves prometheus_client's default
    registry (feast_sqlreg's metrics among it) over HTTP on port N (0: any
    free port), stopped with the server: FrontedServer.metrics; over the
    stock server, it serves until the process exits when not waiting."""
    metrics_port = _metrics.port_setting()  # a bad value fails before anything starts
    metrics = _metrics.serve(metrics_port) if metrics_port is not None else None
    try:
        if not _front_applies(store, tls_key_path, tls_cert_path):
            server = _internals.stock_start_server(store, port, False, tls_key_path,
                                                   tls_cert_path)
        else:
            server = _start_fronted(store, port, tls_key_path, tls_cert_path, metrics)
    except BaseException:
        if metrics is not None:
            _metrics.stop_serving(metrics)
        raise
    if not wait_for_termination:
        return server
    try:
        server.wait_for_termination()
    finally:
        server.stop(None)
        if metrics is not None:
            _metrics.stop_serving(metrics)


def _start_fronted(store, port: int, tls_key_path: str, tls_cert_path: str, metrics):
    """start_server's native front before Feast's grpcio server; the
    FrontedServer, started."""
    from feast.permissions.server.utils import (
        AuthManagerType,
        ServerType,
        init_auth_manager,
        init_security_manager,
        str_to_auth_manager_type,
    )
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    _internals.sync_protected_project_tag(store)
    auth_type = str_to_auth_manager_type(store.config.auth_config.type)
    init_security_manager(auth_type=auth_type, fs=store)
    init_auth_manager(auth_type=auth_type, server_type=ServerType.GRPC,
                      auth_config=store.config.auth_config)
    interceptors, identities = _auth.interceptors(auth_type, store.config.auth_config)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=interceptors)
    servicer = _internals.add_registry_servicer(server, store)
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
    # Applies left waiting for commit() (commit=False) are not seen there
    # before it, as in another process.
    path, own = None, None
    if config.read_path:
        own = store.registry._raw_store
    else:
        connect_args = (config.sqlalchemy_config_kwargs or {}).get("connect_args")
        path = with_connect_args(config.path, connect_args)
    tls = bool(tls_cert_path and tls_key_path)
    try:
        front = Front(port, backend_port, [f"/{SERVICE}/{rpc}" for rpc in _FRONT_RPCS],
                      list(_GETS.values()), path, FRONT_WORKERS, own,
                      request_fields=[_request_fields(rpc) for rpc in _FRONT_RPCS],
                      tls_cert=tls_cert_path if tls else None,
                      tls_key=tls_key_path if tls else None)
    except Exception:
        server.stop(None)
        raise
    if auth_type != AuthManagerType.NONE:
        # Cached Gets are answered by the front only once their decision is
        # learned (NativeRegistryServer._learn); everything else goes to
        # grpcio, whose interceptors authenticate every call.
        front.set_auth(True)
        servicer.front = front
    answers = _Answers(store.registry, front, auth=auth_type != AuthManagerType.NONE)
    fronted = FrontedServer(server, front, answers, identities, metrics)
    _metrics.track_front(fronted)
    logger.info("feast_sqlreg: registry server on port %d (native front%s; grpcio on "
                "127.0.0.1:%d)", front.port, ", TLS" if tls else "", backend_port)
    return fronted


# Finishes the start-up hook's work when this module was imported before
# feast.registry_server.
_install.loaded(__name__, NativeRegistryServer)
