"""Every use feast_sqlreg makes of Feast's and typeguard's internals.

feast_sqlreg plugs into Feast by swapping module attributes, copying or
forking a few Feast functions, reading and writing ``CachingRegistry``'s
cache attributes, calling some private or undocumented Feast functions, and
replacing a private typeguard counter; its metrics write prometheus_client
histograms' private value objects. None of that is a promised API: a
Feast, typeguard or prometheus_client release may change any of it. This module is the one
place (with feast_sqlreg.server, until it is switched over to the helpers
below) that touches them: each use is a small named function here, with
what it relies on and the versions it was checked against.

``FINGERPRINTS`` (at the end) holds a hash of the source, as seen in each
checked version, of every Feast/typeguard function or class we copy, fork,
patch, override or whose private attributes we read; ``REQUIRED`` names the
private attributes we need. tests/test_feast_internals.py recomputes both
against the installed packages and fails naming each change and what in
feast_sqlreg depends on it. ``python -m feast_sqlreg internals`` prints the
table for the installed versions, to refresh it after re-checking.

Checked against:
- Feast 0.67.0 (installed; the test suite passes on it).
- typeguard 4.6.1 (installed).
- prometheus_client 0.24.1 (installed).
- Not Feast 0.66.0: its wheel put ahead of 0.67.0 on sys.path, the native
  registry fails to start (``RegistryConfig`` has no
  ``serve_features_while_materializing``; REQUIRED catches it), and the
  source of ``RegistryConfig``, ``SqlRegistry.__init__``, ``_delete_object``,
  ``delete_data_source`` and ``delete_permission`` differs from 0.67.0's.
  Nor 0.60.0 (its wheel's source): no ``feast.version_utils``,
  ``feast.labeling`` nor ``SqlRegistry._warn_if_narrow_blob_columns``,
  which feast_sqlreg.registry imports or calls. So feast_sqlreg needs Feast
  0.67.0 whatever pyproject.toml's ``feast>=0.60`` says.

This module imports neither Feast nor typeguard at import time (the
start-up hook loads it while Feast's own modules are still loading); each
function imports what it needs.
"""

import importlib
import os
import sys

#: The versions every entry below was checked against.
CHECKED = {"feast": ("0.67.0",), "typeguard": ("4.6.1",), "prometheus_client": ("0.24.1",)}

# ---- plain Feast functions we call as they are -----------------------------
#
# Private (leading underscore) or undocumented module functions, handed out
# as Feast's own function objects (no wrapper, no cost): `from
# feast_sqlreg._internals import utc_now` is `from feast.utils import
# _utc_now`. Each must exist in every checked version (REQUIRED).

_FEAST_FUNCTIONS = {
    # feast.utils._utc_now (private): the timestamps stock writes.
    "utc_now": ("feast.utils", "_utc_now"),
    # feast.utils.has_all_tags (undocumented): stock's tag filter.
    "has_all_tags": ("feast.utils", "has_all_tags"),
    # feast.version_utils (undocumented): feature view version history.
    "generate_version_id": ("feast.version_utils", "generate_version_id"),
    "parse_version": ("feast.version_utils", "parse_version"),
    "version_tag": ("feast.version_utils", "version_tag"),
    # feast.permissions.permission._normalize_name_patterns and
    # _normalize_tags (private): how Permission strips its name patterns and
    # (required) tags; feast_sqlreg._permissions reads stored ones the same way.
    "normalize_name_patterns": ("feast.permissions.permission", "_normalize_name_patterns"),
    "normalize_tags": ("feast.permissions.permission", "_normalize_tags"),
}


def __getattr__(name):
    spec = _FEAST_FUNCTIONS.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(spec[0]), spec[1])
    globals()[name] = value
    return value


# ---- feast.infra.registry.sql: the class swap -------------------------------


def swap_sql_registry(module, native) -> None:
    """``feast.infra.registry.sql.SqlRegistry`` becomes native; the stock
    class stays reachable as ``StockSqlRegistry``. Feast modules that
    imported the stock class by name meanwhile (``feast.feature_store``
    does, at import time) get the native one too. Relies on Feast looking
    the class up by that module-level name (``feast.infra.registry.registry``
    and ``feast.feature_store`` do)."""
    stock = module.SqlRegistry
    module.StockSqlRegistry = stock
    module.SqlRegistry = native
    for name, other in list(sys.modules.items()):
        if name.startswith("feast.") and getattr(other, "SqlRegistry", None) is stock:
            other.SqlRegistry = native


def stock_blob_check(engine, registry_metadata=None):
    """Stock's ``SqlRegistry._warn_if_narrow_blob_columns(engine,
    registry_metadata)`` (private static method; metadata defaults to the
    module's private-by-convention ``feast.infra.registry.sql.metadata``)."""
    from feast.infra.registry import sql as stock_sql

    stock = getattr(stock_sql, "StockSqlRegistry", stock_sql.SqlRegistry)
    if registry_metadata is None:
        registry_metadata = stock_sql.metadata
    return stock._warn_if_narrow_blob_columns(engine, registry_metadata)


# ---- feast.infra.registry.caching_registry.CachingRegistry ------------------
#
# NativeSqlRegistry is a CachingRegistry and keeps its cache in the
# attributes CachingRegistry.__init__ sets (cached_registry_proto,
# cached_registry_proto_created, cache_mode; registry_refresh_thread in
# cache_mode thread), which CachingRegistry's cached reads,
# is_cache_valid and _refresh_cached_registry_if_necessary use.


def cached_proto(registry):
    """The cached registry proto (``cached_registry_proto``)."""
    return registry.cached_registry_proto


def install_cached_proto(registry, proto) -> None:
    """Makes proto the cached registry, created now (as
    ``CachingRegistry.__init__``/``refresh`` set ``cached_registry_proto``
    and ``cached_registry_proto_created``)."""
    from feast.utils import _utc_now

    registry.cached_registry_proto = proto
    registry.cached_registry_proto_created = _utc_now()


def cache_filled(registry) -> bool:
    """Whether a cached registry was ever installed and not expired by
    ``expire_cache`` (``cached_registry_proto_created`` is set)."""
    return registry.cached_registry_proto_created is not None


def expire_cache(registry) -> None:
    """The next cached read refreshes first: ``is_cache_valid()`` is false
    while ``cached_registry_proto_created`` is None."""
    registry.cached_registry_proto_created = None


def sync_cache_mode(registry) -> bool:
    """Whether cached reads refresh an expired cache themselves
    (``cache_mode == "sync"``, as ``_refresh_cached_registry_if_necessary``
    reads it)."""
    return registry.cache_mode == "sync"


def refresh_cache_if_needed(registry) -> None:
    """``CachingRegistry._refresh_cached_registry_if_necessary()`` (private):
    what every cached read does first."""
    registry._refresh_cached_registry_if_necessary()


def cancel_refresh_thread(registry) -> None:
    """Stops ``cache_mode: thread``'s timer (``registry_refresh_thread``,
    set by ``_start_thread_async_refresh``; absent in other modes)."""
    thread = getattr(registry, "registry_refresh_thread", None)
    if thread is not None:
        thread.cancel()


def view_name_rivals(feature_view) -> tuple:
    """What ``BaseRegistry._ensure_feature_view_name_is_unique`` (private),
    the check stock's apply_feature_view makes first, looks for: the view
    types (by class name) whose table must not hold feature_view's name, in
    the order it looks, which decides the type its
    ConflictingFeatureViewNames names. Its first isinstance match wins."""
    from feast.feature_view import FeatureView
    from feast.labeling.label_view import LabelView
    from feast.on_demand_feature_view import OnDemandFeatureView
    from feast.stream_feature_view import StreamFeatureView

    for cls, rivals in (
        (LabelView, ("FeatureView", "StreamFeatureView", "OnDemandFeatureView")),
        (StreamFeatureView, ("FeatureView", "OnDemandFeatureView", "LabelView")),
        (FeatureView, ("StreamFeatureView", "OnDemandFeatureView", "LabelView")),
        (OnDemandFeatureView, ("FeatureView", "StreamFeatureView", "LabelView")),
    ):
        if isinstance(feature_view, cls):
            return rivals
    return ()


def schema_or_udf_changed(new, old) -> bool:
    """``BaseFeatureView._schema_or_udf_changed`` (private; each view class
    has its own): whether a re-applied view makes a new version."""
    return new._schema_or_udf_changed(old)


# ---- feast.registry_server ---------------------------------------------------


def swap_registry_server(module, server_class, start_server) -> None:
    """``feast.registry_server.RegistryServer`` and ``start_server`` become
    ours; the stock ones stay reachable as ``StockRegistryServer`` and
    ``stock_start_server``. Relies on Feast's start_server building the
    servicer by the module-level name RegistryServer, and on ``feast
    serve_registry`` calling start_server by its module-level name."""
    module.StockRegistryServer = module.RegistryServer
    module.RegistryServer = server_class
    module.stock_start_server = module.start_server
    module.start_server = start_server


def stock_start_server(store, port, wait_for_termination=True, tls_key_path="",
                       tls_cert_path=""):
    """Feast's own ``feast.registry_server.start_server`` (saved by
    swap_registry_server), as it is."""
    from feast import registry_server as rs

    return rs.stock_start_server(store, port, wait_for_termination, tls_key_path, tls_cert_path)


def sync_protected_project_tag(store) -> None:
    """``feast.registry_server._sync_protected_project_tag(store)`` (private):
    the first step of Feast's start_server."""
    from feast import registry_server as rs

    rs._sync_protected_project_tag(store)


def grpc_interceptors(auth_type):
    """``feast.registry_server._grpc_interceptors(auth_type)`` (private): the
    interceptors Feast's start_server gives grpc.server()."""
    from feast import registry_server as rs

    return rs._grpc_interceptors(auth_type)


def add_registry_servicer(server, store):
    """Adds the registry servicer to a grpc server as Feast's start_server
    does: ``RegistryServer_pb2_grpc.add_RegistryServerServicer_to_server(
    RegistryServer(store.registry, store=store), server)``, with the class
    feast.registry_server holds now (NativeRegistryServer once swapped).
    Returns the servicer."""
    from feast import registry_server as rs

    servicer = rs.RegistryServer(store.registry, store=store)
    rs.RegistryServer_pb2_grpc.add_RegistryServerServicer_to_server(servicer, server)
    return servicer


# ---- feast.permissions: the security manager, the auth interceptor ----------


def permissions_project(sm) -> str:
    """The project whose permissions ``SecurityManager.permissions`` reads
    for the current call: the request's project as the auth interceptor set
    it (``_current_project``, private), or the server's own (``_project``,
    private) when the request has none."""
    return sm._current_project.get() or sm._project


def paginate(items, pagination):
    """``feast.registry_server.apply_pagination_and_sorting(items,
    pagination=..., sorting=None)`` (undocumented): a list RPC's page and
    its PaginationMetadata, unsorted, as stock pages it."""
    from feast.registry_server import apply_pagination_and_sorting

    return apply_pagination_and_sorting(items, pagination=pagination, sorting=None)


# ---- feast.cli.registry: `feast registry create-schema` ---------------------


def replace_create_schema_command(module, run) -> bool:
    """Gives ``feast registry create-schema`` (``feast.cli.registry.
    registry_cmd``'s command, the function ``registry_create_schema``) a new
    body: the steps of Feast's, copied (the repository from click's context
    object's CHDIR and FS_YAML_FILE, ``cli_check_repo``,
    ``load_repo_config``, the refusal of a registry that is not SQL, with
    Feast's message), then run(registry_config) instead of SQLAlchemy's
    create_all. False when this Feast has no such command."""
    import click

    command = module.registry_cmd.commands.get("create-schema")
    if command is None:
        return False

    @click.pass_context
    def create_schema(ctx):
        from feast.infra.registry.sql import SqlRegistryConfig
        from feast.repo_config import load_repo_config
        from feast.repo_operations import cli_check_repo

        repo = ctx.obj["CHDIR"]
        fs_yaml_file = ctx.obj["FS_YAML_FILE"]
        cli_check_repo(repo, fs_yaml_file)
        repo_config = load_repo_config(repo, fs_yaml_file)
        registry_config = repo_config.registry
        if not isinstance(registry_config, SqlRegistryConfig):
            raise click.ClickException(
                "This command only applies to SQL-based registries "
                f"(registry_type='sql'). Current type: '{registry_config.registry_type}'"
            )
        run(registry_config)

    command.callback = create_schema
    return True


# ---- feast.permissions, feast.data_source: permission decisions ------------
#
# feast_sqlreg._permissions decides as feast.permissions.enforcer.enforce_policy
# does, on stored messages; it needs the classes from_proto would build.


def permission_type_class(value: int):
    """The class ``Permission.from_proto`` makes of a stored
    ``PermissionSpec.Type`` value: ``get_type_class_from_permission_type(
    _PERMISSION_TYPES[PermissionSpec.Type.Name(value)])`` (the private
    table ``feast.permissions.permission._PERMISSION_TYPES``; the function is
    undocumented), raising what that raises (ValueError for a number the
    enum has no name for)."""
    from feast.permissions import permission
    from feast.protos.feast.core.Permission_pb2 import PermissionSpec

    return permission.get_type_class_from_permission_type(
        permission._PERMISSION_TYPES[PermissionSpec.Type.Name(value)]
    )


def data_source_class(message):
    """The class ``DataSource.from_proto`` builds for a stored DataSource
    message, without building it: the class its type names in the private
    ``feast.data_source._DATA_SOURCE_OPTIONS``, or for a CUSTOM_SOURCE its
    ``data_source_class_type``, imported by ``feast.repo_config.
    get_data_source_class_from_type`` (undocumented). Raises what
    from_proto raises before it builds: ValueError("Could not identify the
    source type being added.") for a type outside the table, Feast's import
    errors for a class it cannot import."""
    from feast import data_source
    from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
    from feast.repo_config import get_data_source_class_from_type

    options = data_source._DATA_SOURCE_OPTIONS
    source_type = message.type
    custom = DataSourceProto.SourceType.CUSTOM_SOURCE
    if not source_type or source_type not in list(options.keys()) + [custom]:
        raise ValueError("Could not identify the source type being added.")
    if source_type == custom:
        return get_data_source_class_from_type(message.data_source_class_type)
    return get_data_source_class_from_type(options[source_type])


# ---- Feast objects as feast_sqlreg._objects copies them ----------------------
#
# The cached getters (proto_registry_utils.get_entity, get_data_source,
# get_feature_view, get_stream_feature_view, get_on_demand_feature_view,
# get_label_view, get_feature_service) build a new object with from_proto on
# every call; get_any_feature_view (registry_proto_cache_name) and the
# cached lists (registry_proto_cache_with_tags) hand every caller the same
# objects while the proto is the same. feast_sqlreg._objects keeps the
# first contract with copies of a template, and relies on what from_proto
# builds (checked on 0.67.0 for every class the tests' objects reach):
# instances of plain Python classes keeping all their state in __dict__ (no
# __slots__, no C base but object), UDFs rehydrated from source
# (feast.transformation.udf_rehydrate.resolve_udf) as new functions in a new
# globals dict each time, and UDFs dill loads by reference (a module's
# function) as that one function for every caller.

_PLAIN: dict = {}


def plain_feast_object(value) -> bool:
    """Whether value is an instance of a Feast class (defined under
    ``feast.``, not a protobuf message of ``feast.protos``) that keeps all
    its state in its __dict__: every class of its MRO but object is
    defined in Python and declares no __slots__ beyond empty ones (ABC's),
    so ``object.__new__(cls)`` and a copied __dict__ make an equal object."""
    cls = type(value)
    plain = _PLAIN.get(cls)
    if plain is None:
        module = getattr(cls, "__module__", "") or ""
        plain = (
            (module == "feast" or module.startswith("feast."))
            and not module.startswith("feast.protos")
            and all(
                base is object
                or (
                    base.__flags__ & (1 << 9)  # Py_TPFLAGS_HEAPTYPE: defined in Python
                    and not [s for s in _slots(base) if s not in ("__dict__", "__weakref__")]
                )
                for base in cls.__mro__
            )
            and "__dict__" in dir(cls)
        )
        _PLAIN[cls] = plain
    return plain and isinstance(getattr(value, "__dict__", None), dict)


def _slots(cls):
    slots = cls.__dict__.get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def module_function(function) -> bool:
    """Whether function is its module's attribute under its qualified name:
    what pickle and dill load by reference, so a view's from_proto hands
    every caller that same function (a stream view's dill-loaded UDF)."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    if module is None or "<locals>" in function.__qualname__:
        return False
    found = module
    for part in function.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is function


def module_namespace(function) -> bool:
    """Whether function's globals are an imported module's namespace
    (shared, as by every function of that module), not a dict of its own
    (a UDF rehydrated from source gets a new one per from_proto)."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    return module is not None and getattr(module, "__dict__", None) is function.__globals__


# ---- typeguard._suppression ---------------------------------------------------


def replace_typeguard_counter(replace) -> bool:
    """Swaps typeguard's private process-wide suppression count,
    ``typeguard._suppression.type_checks_suppressed`` (an int that
    ``suppress_type_checks`` changes with ``+=``/``-=`` under
    ``type_checks_suppress_lock``, and that the instrumented checks in
    ``typeguard._functions`` only test for truth), under that lock:
    replace(current) returns the new value, or None to leave it. True when a
    new value is in. False (nothing changed) without typeguard."""
    try:
        from typeguard import _suppression
    except ImportError:
        return False
    with _suppression.type_checks_suppress_lock:
        new = replace(_suppression.type_checks_suppressed)
        if new is None:
            return False
        _suppression.type_checks_suppressed = new
    return True


# ---- feast.metrics: is anyone reading the multiprocess files? -----------------


def feast_metrics_dir_unread() -> bool:
    """Whether the multiprocess directory is Feast's own temporary one
    (``feast.metrics`` made it at import: ``_owns_mp_dir``, inherited by
    forked workers) while Feast's metrics are off in this process
    (``_config.enabled``, set by ``start_metrics_server``, which `feast
    serve --metrics` calls before gunicorn forks): then nothing reads the
    files. False when feast.metrics is not loaded (a directory someone else
    set)."""
    metrics = sys.modules.get("feast.metrics")
    if metrics is None:
        return False
    return bool(getattr(metrics, "_owns_mp_dir", False)) and not getattr(
        getattr(metrics, "_config", None), "enabled", False
    )


def in_feast_metrics_server() -> bool:
    """Whether this process is Feast's metrics server: the
    ``multiprocessing.Process`` named "feast-metrics-server" that
    ``start_metrics_server`` forks to serve the multiprocess directory. It
    inherits the parent's registries as copies it never uses."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.current_process().name == "feast-metrics-server"


# ---- prometheus_client: histograms written as counts --------------------------


def histogram_add(child, part, amount) -> None:
    """Adds amount to one part of a labelled prometheus_client Histogram
    (``child``: ``histogram.labels(...)``): to bucket number part (0 for the
    first bound, non-cumulative, as ``Histogram.observe`` adds 1 to the
    first bucket whose bound is >= the value), or to the sum when part is
    "sum". Histograms have no public call for "n observations in that
    bucket"; feast_sqlreg._metrics keeps its own counts (``observe`` costs
    more than a cached registry read) and writes them this way, into the
    value objects ``Histogram._metric_init`` makes (``_buckets``, ``_sum``:
    in multiprocess mode, the process's files)."""
    if part == "sum":
        child._sum.inc(amount)
    else:
        child._buckets[part].inc(amount)


# ---- fingerprints -------------------------------------------------------------
#
# A fingerprint is the sha256 (first 16 hex digits) of a definition's source
# as the source file has it: decorators included, dedented, trailing
# spaces and blank lines dropped. It is read from the file with ast, without
# importing it, so the same code fingerprints an unpacked wheel of another
# version (fingerprints(root=...)). A "uses" entry hashes, instead, every
# line of a package that names an attribute (sorted): how typeguard touches
# the counter we replace.
#
# Targets: (package, module, qualname or "*" for every method of a class
# or "uses:<name>" for a package-wide scan, who depends on it).

_REGISTRY = "feast_sqlreg.registry.NativeSqlRegistry"
_SERVER = "feast_sqlreg.server"

#: The RegistryServer methods feast_sqlreg.server.NativeRegistryServer
#: overrides (answers must stay Feast's, field for field).
SERVER_OVERRIDES = (
    "__init__", "GetAnyFeatureView", "ListAllFeatureViews", "GetProject", "ListProjects",
    "GetInfra", "ListProjectMetadata", "Proto",
    "GetEntity", "GetDataSource", "GetFeatureView", "GetStreamFeatureView",
    "GetOnDemandFeatureView", "GetLabelView", "GetFeatureService", "GetSavedDataset",
    "GetValidationReference", "GetPermission",
    "ListEntities", "ListDataSources", "ListFeatureViews", "ListStreamFeatureViews",
    "ListOnDemandFeatureViews", "ListLabelViews", "ListFeatureServices", "ListSavedDatasets",
    "ListValidationReferences", "ListPermissions",
)

_PERMISSIONS = "feast_sqlreg._permissions"
_OBJECTS = "feast_sqlreg._objects"
_OBJECT_GETS = (
    "entity", "data_source", "feature_view", "stream_feature_view",
    "on_demand_feature_view", "label_view", "feature_service",
)

#: What feast_sqlreg._permissions reproduces of Feast's permission checks.
_PERMISSION_RULES = (
    ("feast.permissions.enforcer", "enforce_policy"),
    ("feast.permissions.matcher", "is_a_feast_object"),
    ("feast.permissions.matcher", "resource_match_config"),
    ("feast.permissions.matcher", "_resource_name_matches_name_patterns"),
    ("feast.permissions.matcher", "actions_match_config"),
    ("feast.permissions.decision", "DecisionEvaluator"),
    ("feast.permissions.policy", "Policy.from_proto"),
    ("feast.permissions.policy", "RoleBasedPolicy"),
    ("feast.permissions.policy", "GroupBasedPolicy"),
    ("feast.permissions.policy", "NamespaceBasedPolicy"),
    ("feast.permissions.policy", "CombinedGroupNamespacePolicy"),
    ("feast.permissions.policy", "AllowAll"),
    ("feast.permissions.policy", "empty_policy"),
    ("feast.permissions.user", "User"),
    ("feast.permissions.action", "AuthzedAction"),
    ("feast.permissions.permission", "Permission.__init__"),
    ("feast.permissions.permission", "Permission.from_proto"),
    ("feast.permissions.permission", "Permission.match_resource"),
    ("feast.permissions.permission", "Permission.match_actions"),
    ("feast.permissions.permission", "Permission.required_tags"),
    ("feast.permissions.permission", "_normalize_name_patterns"),
    ("feast.permissions.permission", "_normalize_tags"),
    ("feast.permissions.permission", "get_type_class_from_permission_type"),
    ("feast.permissions.permission", "_PERMISSION_TYPES"),
    ("feast.feast_object", "FeastObject"),
    ("feast.feast_object", "ALL_RESOURCE_TYPES"),
    ("feast.errors", "FeastPermissionError"),
)

#: The from_proto of each kind's class: which class it builds, and its name.
_FROM_PROTO = (
    ("feast.project", "Project.from_proto"),
    ("feast.entity", "Entity.from_proto"),
    ("feast.data_source", "DataSource.from_proto"),
    ("feast.data_source", "_DATA_SOURCE_OPTIONS"),
    ("feast.repo_config", "get_data_source_class_from_type"),
    ("feast.feature_view", "FeatureView.from_proto"),
    ("feast.feature_view", "FeatureView._from_proto_internal"),
    ("feast.stream_feature_view", "StreamFeatureView.from_proto"),
    ("feast.on_demand_feature_view", "OnDemandFeatureView.from_proto"),
    ("feast.labeling.label_view", "LabelView.from_proto"),
    ("feast.feature_service", "FeatureService.from_proto"),
    ("feast.saved_dataset", "SavedDataset.from_proto"),
    ("feast.saved_dataset", "ValidationReference.from_proto"),
    ("feast.infra.infra_object", "Infra"),
)

_TARGETS: tuple[tuple[str, str, str, str], ...] = (
    # the registry server
    ("feast", "feast.registry_server", "start_server",
     f"{_SERVER}.start_server (a fork of it)"),
    ("feast", "feast.registry_server", "_grpc_interceptors",
     f"{_SERVER}.start_server (calls it; _internals.grpc_interceptors)"),
    ("feast", "feast.registry_server", "_sync_protected_project_tag",
     f"{_SERVER}.start_server (calls it; _internals.sync_protected_project_tag)"),
    ("feast", "feast.registry_server", "apply_pagination_and_sorting",
     f"{_SERVER} list answers (_page; _internals.paginate)"),
    *(("feast", "feast.registry_server", f"RegistryServer.{m}",
       f"{_SERVER}.NativeRegistryServer.{m} (answers as this does)") for m in SERVER_OVERRIDES),
    ("feast", "feast.infra.registry.proto_registry_utils", "get_any_feature_view",
     f"{_SERVER} _ANY_ORDER_CACHED (the cached lookup order)"),
    # cached gets as copies of templates: what Feast builds anew per call,
    # what it shares, and the fresh UDFs from_proto makes
    *(("feast", "feast.infra.registry.proto_registry_utils", f"get_{noun}",
       f"{_OBJECTS} (builds anew per call: copies, looked up as this does)")
      for noun in _OBJECT_GETS),
    ("feast", "feast.infra.registry.proto_registry_utils", "registry_proto_cache_name",
     f"{_OBJECTS} (get_any_feature_view shares its objects: left to Feast)"),
    ("feast", "feast.infra.registry.proto_registry_utils", "registry_proto_cache_with_tags",
     f"{_OBJECTS} (cached lists share their objects: left to Feast)"),
    ("feast", "feast.transformation.udf_rehydrate", "resolve_udf",
     "feast_sqlreg._internals.module_namespace (a UDF's globals are its own)"),
    # auth: the interceptor we fork, the security manager's state we read,
    # the checks the server's guarded answers make as these do
    ("feast", "feast.permissions.server.grpc", "AuthInterceptor.intercept_service",
     "feast_sqlreg._auth.CachingAuthInterceptor (a fork of it)"),
    ("feast", "feast.permissions.security_manager", "SecurityManager.permissions",
     "feast_sqlreg._internals.permissions_project (the project it reads)"),
    ("feast", "feast.permissions.security_manager", "SecurityManager.assert_permissions",
     f"{_SERVER} guarded answers (decide as this does)"),
    ("feast", "feast.permissions.security_manager", "permitted_resources",
     f"{_SERVER} guarded lists (filter as this does)"),
    ("feast", "feast.permissions.security_manager", "is_auth_necessary",
     f"{_SERVER}._fast (when a check is needed)"),
    ("feast", "feast.permissions.auth.oidc_token_parser",
     "OidcTokenParser.user_details_from_access_token",
     "feast_sqlreg._auth.Identities (what an identity depends on: the token alone)"),
    # the command line
    ("feast", "feast.cli.registry", "registry_create_schema",
     "feast_sqlreg._internals.replace_create_schema_command (a copy of its steps)"),
    # the registry: stock's class (parity), the cache it inherits
    ("feast", "feast.infra.registry.sql", "SqlRegistryConfig",
     f"{_REGISTRY}, feast_sqlreg.registry.open_store (the configuration keys)"),
    ("feast", "feast.repo_config", "RegistryConfig",
     f"{_REGISTRY}.__init__ (the configuration keys SqlRegistryConfig inherits)"),
    ("feast", "feast.infra.registry.sql", "SqlRegistry.*", _REGISTRY),
    ("feast", "feast.infra.registry.caching_registry", "CachingRegistry.*", _REGISTRY),
    ("feast", "feast.infra.registry.base_registry",
     "BaseRegistry._ensure_feature_view_name_is_unique",
     "feast_sqlreg._internals.view_name_rivals (its checks as a table: order, types)"),
    # permission decisions on stored messages
    *(("feast", module, qualname, f"{_PERMISSIONS} (decides as this does)")
      for module, qualname in _PERMISSION_RULES),
    *(("feast", module, qualname, f"{_PERMISSIONS}.resource (the class and name this builds), "
       f"{_OBJECTS} (copies what this builds: plain_feast_object)")
      for module, qualname in _FROM_PROTO),
    # feast serve --metrics: a process of its own reading every process's
    # multiprocess files, where feast_sqlreg._metrics._Mirror writes
    ("feast", "feast.metrics", "_run_metrics_server",
     "feast_sqlreg._metrics._Mirror (what it serves: MultiProcessCollector only)"),
    ("feast", "feast.metrics", "start_metrics_server",
     "feast_sqlreg._metrics._Mirror (the metrics server is another process), "
     "feast_sqlreg._internals.feast_metrics_dir_unread (it sets _config), "
     "in_feast_metrics_server (the name of its process)"),
    ("feast", "feast.metrics", "_cleanup_multiprocess_dir",
     "feast_sqlreg._internals.feast_metrics_dir_unread (_owns_mp_dir: Feast's own directory)"),
    # prometheus_client
    ("prometheus_client", "prometheus_client.metrics", "Histogram._metric_init",
     "feast_sqlreg._internals.histogram_add (writes _buckets and _sum)"),
    ("prometheus_client", "prometheus_client.metrics", "Histogram.observe",
     "feast_sqlreg._internals.histogram_add (adds to buckets as this does)"),
    # typeguard
    ("typeguard", "typeguard._suppression", "suppress_type_checks",
     "feast_sqlreg._typechecks (its counter stands in for the one this changes)"),
    ("typeguard", "typeguard", "uses:type_checks_suppressed",
     "feast_sqlreg._typechecks._Suppressed (supports truth, +=, -=, int() only)"),
)

#: The registry configuration keys NativeSqlRegistry and open_store read.
CONFIG_KEYS = (
    "path", "read_path", "cache_ttl_seconds", "cache_mode", "sqlalchemy_config_kwargs",
    "schema_mode", "purge_feast_metadata", "thread_pool_executor_worker_count",
    "enable_online_feature_view_versioning", "serve_features_while_materializing",
)

#: Private attributes we rely on: (package, module, attribute path). A
#: path ending in "self.X" means: some method of that class assigns self.X;
#: one ending in "field:X": that pydantic model has the field X.
REQUIRED: tuple[tuple[str, str, str], ...] = (
    *(("feast", "feast.infra.registry.sql", f"SqlRegistryConfig.field:{key}")
      for key in CONFIG_KEYS),
    ("feast", "feast.infra.registry.sql", "SqlRegistry"),
    ("feast", "feast.infra.registry.sql", "SqlRegistry._warn_if_narrow_blob_columns"),
    ("feast", "feast.infra.registry.sql", "metadata"),
    ("feast", "feast.registry_server", "RegistryServer"),
    ("feast", "feast.registry_server", "start_server"),
    ("feast", "feast.registry_server", "_sync_protected_project_tag"),
    ("feast", "feast.registry_server", "_grpc_interceptors"),
    ("feast", "feast.registry_server", "apply_pagination_and_sorting"),
    ("feast", "feast.registry_server", "RegistryServer_pb2_grpc"),
    ("feast", "feast.permissions.security_manager", "SecurityManager.self._current_project"),
    ("feast", "feast.permissions.security_manager", "SecurityManager.self._project"),
    ("feast", "feast.cli.registry", "registry_cmd"),
    ("feast", "feast.repo_operations", "cli_check_repo"),
    ("feast", "feast.repo_config", "load_repo_config"),
    ("feast", "feast.utils", "_utc_now"),
    ("feast", "feast.utils", "has_all_tags"),
    ("feast", "feast.version_utils", "generate_version_id"),
    ("feast", "feast.version_utils", "parse_version"),
    ("feast", "feast.version_utils", "version_tag"),
    ("feast", "feast.base_feature_view", "BaseFeatureView._schema_or_udf_changed"),
    ("feast", "feast.infra.registry.base_registry",
     "BaseRegistry._ensure_feature_view_name_is_unique"),
    ("feast", "feast.infra.registry.caching_registry",
     "CachingRegistry._refresh_cached_registry_if_necessary"),
    ("feast", "feast.infra.registry.caching_registry", "CachingRegistry.self.cached_registry_proto"),
    ("feast", "feast.infra.registry.caching_registry",
     "CachingRegistry.self.cached_registry_proto_created"),
    ("feast", "feast.infra.registry.caching_registry", "CachingRegistry.self.cache_mode"),
    ("feast", "feast.infra.registry.caching_registry",
     "CachingRegistry.self.registry_refresh_thread"),
    ("feast", "feast.permissions.permission", "_PERMISSION_TYPES"),
    ("feast", "feast.permissions.permission", "_normalize_name_patterns"),
    ("feast", "feast.permissions.permission", "_normalize_tags"),
    ("feast", "feast.permissions.permission", "get_type_class_from_permission_type"),
    ("feast", "feast.data_source", "_DATA_SOURCE_OPTIONS"),
    ("feast", "feast.repo_config", "get_data_source_class_from_type"),
    ("feast", "feast.metrics", "_owns_mp_dir"),
    ("feast", "feast.metrics", "_config"),
    ("feast", "feast.metrics", "_MetricsFlags.enabled"),
    ("prometheus_client", "prometheus_client.metrics", "Histogram.self._buckets"),
    ("prometheus_client", "prometheus_client.metrics", "Histogram.self._sum"),
    ("typeguard", "typeguard._suppression", "type_checks_suppressed"),
    ("typeguard", "typeguard._suppression", "type_checks_suppress_lock"),
)


def _package_dir(package: str, root: str | None) -> str:
    if root is not None:
        return os.path.join(root, package)
    import importlib.util

    spec = importlib.util.find_spec(package)  # imports nothing
    return list(spec.submodule_search_locations)[0]


def _module_file(package: str, module: str, root: str | None) -> str:
    base = _package_dir(package, root)
    parts = module.split(".")[1:]
    path = os.path.join(base, *parts)
    return os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"


def _parse(path: str):
    import ast

    with open(path, encoding="utf-8") as f:
        source = f.read()
    return source.splitlines(), ast.parse(source)


def _definitions(body):
    """name -> the last definition of it in a module or class body (as the
    running code sees it)."""
    import ast

    found = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    found[t.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] = node
    return found


def _node(tree, qualname: str):
    node = tree
    for part in qualname.split("."):
        node = _definitions(getattr(node, "body", ())).get(part)
        if node is None:
            return None
    return node


def _hash_lines(lines: list[str]) -> str:
    import hashlib

    text = "\n".join(line.rstrip() for line in lines if line.strip())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _hash_node(lines: list[str], node) -> str:
    import textwrap

    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
    return _hash_lines(textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno])).splitlines())


def _uses(package: str, name: str, root: str | None) -> str:
    base = _package_dir(package, root)
    found = []
    for folder, _, files in os.walk(base):
        for file in files:
            if file.endswith(".py"):
                with open(os.path.join(folder, file), encoding="utf-8") as f:
                    rel = os.path.relpath(os.path.join(folder, file), base)
                    found += [f"{rel}: {line.strip()}" for line in f if name in line]
    return _hash_lines(sorted(found))


def fingerprints(roots: dict[str, str] | None = None) -> dict[str, tuple[str | None, str]]:
    """{"module:qualname": (fingerprint, or None when absent; who depends
    on it)} for every target, read from the installed packages, or from
    roots[package] (a folder holding the package, an unpacked wheel)."""
    import ast

    roots = roots or {}
    out: dict[str, tuple[str | None, str]] = {}
    parsed = {}
    for package, module, qualname, users in _TARGETS:
        root = roots.get(package)
        if qualname.startswith("uses:"):
            out[f"{module}:{qualname}"] = (_uses(package, qualname[5:], root), users)
            continue
        path = _module_file(package, module, root)
        if path not in parsed:
            parsed[path] = _parse(path) if os.path.exists(path) else ([], None)
        lines, tree = parsed[path]
        if qualname.endswith(".*"):
            cls = _node(tree, qualname[:-2]) if tree is not None else None
            for name, node in (_definitions(cls.body) if cls is not None else {}).items():
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{module}:{qualname[:-2]}.{name}"] = (
                        _hash_node(lines, node), _method_users(users, qualname[:-2], name))
            continue
        node = _node(tree, qualname) if tree is not None else None
        out[f"{module}:{qualname}"] = (None if node is None else _hash_node(lines, node), users)
    return out


def _method_users(cls: str, stock_class: str, name: str) -> str:
    """Who depends on one method of the Feast registry class NativeSqlRegistry
    stands in for (SqlRegistry) or inherits from (CachingRegistry)."""
    try:
        from feast_sqlreg.registry import NativeSqlRegistry

        own = vars(NativeSqlRegistry).get(name)
    except ImportError:
        own = None
    if stock_class == "SqlRegistry":
        if own is not None:
            return f"{cls}.{name} (stands in for it: parity with stock)"
        return f"{cls} (its methods reimplement what this stock helper does)"
    if hasattr(own, "__wrapped__"):
        return (f"{cls}.{name} (inherited, wrapped by feast_sqlreg._typechecks or _metrics; "
                "reads the cache)")
    if own is not None:
        return f"{cls}.{name} (overrides it)"
    return f"{cls} (inherits it; its cache attributes are set through feast_sqlreg._internals)"


def describe(key: str) -> str:
    """A key ("module:qualname") as a dotted name."""
    module, qualname = key.split(":", 1)
    if qualname.startswith("uses:"):
        return f"the lines of {module} that name {qualname[5:]}"
    return f"{module}.{qualname}"


def versions() -> dict[str, str | None]:
    """The installed versions of Feast and typeguard (None when missing)."""
    from importlib import metadata

    found = {}
    for package in CHECKED:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def changes(current=None) -> list[str]:
    """One message for each target whose installed source matches none of
    the checked versions' (or that is new, or gone), naming what in
    feast_sqlreg depends on it. Empty when nothing changed."""
    current = fingerprints() if current is None else current
    messages = []
    for key, (digest, users) in sorted(current.items()):
        package = _package_of(key)
        seen = FINGERPRINTS.get(key)
        last = CHECKED[package][-1]
        if seen is None:
            if digest is not None:
                messages.append(f"{describe(key)} is new since {package} {last}: "
                                f"re-check {users} (then add it to FINGERPRINTS)")
            continue
        if digest in seen.values():
            continue
        what = "is gone" if digest is None else "changed"
        messages.append(f"{describe(key)} {what} since {package} {last}: re-check {users}")
    for key in sorted(set(FINGERPRINTS) - set(current)):
        messages.append(f"{describe(key)} is no longer a target: drop it from FINGERPRINTS")
    return messages


def missing() -> list[str]:
    """One message for each REQUIRED attribute the installed packages lack."""
    import ast

    messages = []
    for package, module, path in REQUIRED:
        where = f"{module}.{path}"
        try:
            obj = importlib.import_module(module)
        except ImportError as e:
            messages.append(f"{where}: cannot import {module} ({e})")
            continue
        parts = path.split(".")
        if "self" in parts:
            i = parts.index("self")
            lines, tree = _parse(_module_file(package, module, None))
            cls = _node(tree, ".".join(parts[:i]))
            attr = parts[i + 1]
            assigned = cls is not None and any(
                isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                and isinstance(n.value, ast.Name) and n.value.id == "self" and n.attr == attr
                for n in ast.walk(cls)
            )
            if not assigned:
                messages.append(f"{where}: no method of {'.'.join(parts[:i])} sets it any more")
            continue
        for part in parts:
            if part.startswith("field:"):
                if part[6:] not in getattr(obj, "model_fields", {}):
                    messages.append(f"{where}: no such configuration key")
                break
            if not hasattr(obj, part):
                messages.append(f"{where} is missing")
                break
            obj = getattr(obj, part)
    return messages


def _package_of(key: str) -> str:
    return key.split(":", 1)[0].split(".", 1)[0]


def _version_key(version: str):
    import re

    return [int(n) for n in re.findall(r"\d+", version)]


def table(snapshots) -> str:
    """FINGERPRINTS as Python source, from snapshots: [({package: version},
    fingerprints())], e.g. the installed packages' and an unpacked wheel's."""
    rows: dict[str, dict[str, str | None]] = {}
    for package_versions, digests in snapshots:
        for key, (digest, _) in digests.items():
            rows.setdefault(key, {})[package_versions[_package_of(key)]] = digest
    out = ["FINGERPRINTS: dict[str, dict[str, str | None]] = {"]
    for key in sorted(rows):
        row = dict(sorted(rows[key].items(), key=lambda kv: _version_key(kv[0])))
        out.append(f"    {key!r}: {row!r},")
    out.append("}")
    return "\n".join(out)


#: key -> {checked version: fingerprint of its source there (None: absent)}.
#: Versions are Feast's for feast.* keys, typeguard's for typeguard.* keys,
#: prometheus_client's for prometheus_client.* keys.
#: Refresh with `python -m feast_sqlreg internals` after re-checking what
#: the test names.
FINGERPRINTS: dict[str, dict[str, str | None]] = {
    'feast.cli.registry:registry_create_schema': {'0.67.0': '7869b9940dd6f91f'},
    'feast.data_source:DataSource.from_proto': {'0.67.0': 'a716a37626f2d313'},
    'feast.data_source:_DATA_SOURCE_OPTIONS': {'0.67.0': '98e5e0c076cbd16f'},
    'feast.entity:Entity.from_proto': {'0.67.0': 'd9af661fd50e99a0'},
    'feast.errors:FeastPermissionError': {'0.67.0': 'a53dd7fab7931776'},
    'feast.feast_object:ALL_RESOURCE_TYPES': {'0.67.0': '2682981b2480668a'},
    'feast.feast_object:FeastObject': {'0.67.0': '6eba2656d5667b5f'},
    'feast.feature_service:FeatureService.from_proto': {'0.67.0': '00d86747cb9678cc'},
    'feast.feature_view:FeatureView._from_proto_internal': {'0.67.0': '3f94b28cc6c90e40'},
    'feast.feature_view:FeatureView.from_proto': {'0.67.0': '590b6e5e6c2433fe'},
    'feast.infra.infra_object:Infra': {'0.67.0': 'ded0047578c41239'},
    'feast.infra.registry.base_registry:BaseRegistry._ensure_feature_view_name_is_unique': {'0.67.0': 'aec8205151c04aa4'},
    'feast.infra.registry.caching_registry:CachingRegistry.__init__': {'0.67.0': 'ffd51990aa3fbd37'},
    'feast.infra.registry.caching_registry:CachingRegistry._exit_handler': {'0.67.0': '9bd259f455d5affd'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_any_feature_view': {'0.67.0': 'cd25ab27197fcb5c'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_data_source': {'0.67.0': '6dc2a9a1714dbf95'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_entity': {'0.67.0': 'fb1efdae54d1e246'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_feature_service': {'0.67.0': 'e204d21c2ffa95e9'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_feature_view': {'0.67.0': '8c5af57aee0f5d7a'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_infra': {'0.67.0': '8766c3e5820963a5'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_label_view': {'0.67.0': '8aaf91a73f78426d'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_on_demand_feature_view': {'0.67.0': '5974e2bae0c08311'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_permission': {'0.67.0': '77df77a8994f35c7'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_project': {'0.67.0': '5fd2256e3be6573d'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_saved_dataset': {'0.67.0': 'd1f19129c15352b6'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_stream_feature_view': {'0.67.0': 'b477c2e045a0f0cf'},
    'feast.infra.registry.caching_registry:CachingRegistry._get_validation_reference': {'0.67.0': 'e3f7841cf435a473'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_all_feature_views': {'0.67.0': '9b384c9de8196ad0'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_data_sources': {'0.67.0': 'c62725c7e4bbad3a'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_entities': {'0.67.0': '5c98a13d930fb807'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_feature_services': {'0.67.0': 'ec948837dd460a74'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_feature_views': {'0.67.0': 'cbc64a57347693e3'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_label_views': {'0.67.0': '9659b3e3c9b0c568'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_on_demand_feature_views': {'0.67.0': '400882404b0d81d4'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_permissions': {'0.67.0': '49d71da92eb84d8b'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_project_metadata': {'0.67.0': 'cf8d2540e44755d6'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_projects': {'0.67.0': '8f139dc89b157d9e'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_saved_datasets': {'0.67.0': '2d816d69b9e21d90'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_stream_feature_views': {'0.67.0': '58cc5ec038c53cac'},
    'feast.infra.registry.caching_registry:CachingRegistry._list_validation_references': {'0.67.0': 'f4b17984940142bf'},
    'feast.infra.registry.caching_registry:CachingRegistry._refresh_cached_registry_if_necessary': {'0.67.0': '509b89f4b385e4f7'},
    'feast.infra.registry.caching_registry:CachingRegistry._start_thread_async_refresh': {'0.67.0': '660dda203b24855b'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_any_feature_view': {'0.67.0': 'd037045ab4fc6510'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_data_source': {'0.67.0': '9a8e90bbef0f188b'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_entity': {'0.67.0': '02104164fc67b4bb'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_feature_service': {'0.67.0': '18e212a04d1091cf'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_feature_view': {'0.67.0': '58f4d4034a3b7a29'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_infra': {'0.67.0': '882cfc72d28010b1'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_label_view': {'0.67.0': '190c32c6244d0af2'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_on_demand_feature_view': {'0.67.0': '6c3b1cd9c8a9d645'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_permission': {'0.67.0': '4139c53dc7b50df5'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_project': {'0.67.0': '886a45e1a9833e4d'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_saved_dataset': {'0.67.0': 'f585d8cd69dd2927'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_stream_feature_view': {'0.67.0': '2230eee91bcbec0a'},
    'feast.infra.registry.caching_registry:CachingRegistry.get_validation_reference': {'0.67.0': '6d6353a166e0ab94'},
    'feast.infra.registry.caching_registry:CachingRegistry.is_cache_valid': {'0.67.0': '347de2fbd919e6fb'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_all_feature_views': {'0.67.0': 'ecae2709c028744a'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_data_sources': {'0.67.0': '25914cbc05d07f36'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_entities': {'0.67.0': 'be68fbd4e4ee3ab9'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_feature_services': {'0.67.0': '4e89dee82a5de29a'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_feature_view_versions': {'0.67.0': 'bb50bebe76d75322'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_feature_views': {'0.67.0': '3383b43b2ec55bf6'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_label_views': {'0.67.0': '03c0aadcb3462bfc'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_on_demand_feature_views': {'0.67.0': 'de6131592b3fe3ea'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_permissions': {'0.67.0': '3794c376cfb68c2f'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_project_metadata': {'0.67.0': '583846b7ea8d501e'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_projects': {'0.67.0': 'f102f21cb89ba8d6'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_saved_datasets': {'0.67.0': 'f4d66360b62b1095'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_stream_feature_views': {'0.67.0': 'bd72fa0354a9986d'},
    'feast.infra.registry.caching_registry:CachingRegistry.list_validation_references': {'0.67.0': '33e51ee1083367f4'},
    'feast.infra.registry.caching_registry:CachingRegistry.refresh': {'0.67.0': '1d0d1599cf0ca880'},
    'feast.infra.registry.proto_registry_utils:get_any_feature_view': {'0.67.0': '33ecd241cc27ed52'},
    'feast.infra.registry.proto_registry_utils:get_data_source': {'0.67.0': '11d2b7913e284319'},
    'feast.infra.registry.proto_registry_utils:get_entity': {'0.67.0': '8c370811bb4bae9d'},
    'feast.infra.registry.proto_registry_utils:get_feature_service': {'0.67.0': '263d5fb1c122cdfb'},
    'feast.infra.registry.proto_registry_utils:get_feature_view': {'0.67.0': '12a98469af343087'},
    'feast.infra.registry.proto_registry_utils:get_label_view': {'0.67.0': '5b5fa89e52b1e6e8'},
    'feast.infra.registry.proto_registry_utils:get_on_demand_feature_view': {'0.67.0': '7b47550addd24b41'},
    'feast.infra.registry.proto_registry_utils:get_stream_feature_view': {'0.67.0': '13774b3f5a23ab03'},
    'feast.infra.registry.proto_registry_utils:registry_proto_cache_name': {'0.67.0': '567c5af5a64c9e7f'},
    'feast.infra.registry.proto_registry_utils:registry_proto_cache_with_tags': {'0.67.0': '67e769a074d2d717'},
    'feast.infra.registry.sql:SqlRegistry.__init__': {'0.67.0': '748014f32deca1f3'},
    'feast.infra.registry.sql:SqlRegistry._apply_object': {'0.67.0': '007e0d8f88347f3a'},
    'feast.infra.registry.sql:SqlRegistry._delete_object': {'0.67.0': 'e29ecfd37b83b893'},
    'feast.infra.registry.sql:SqlRegistry._get_any_feature_view': {'0.67.0': 'cb897a0b01a73b07'},
    'feast.infra.registry.sql:SqlRegistry._get_data_source': {'0.67.0': '37c77af834339476'},
    'feast.infra.registry.sql:SqlRegistry._get_entity': {'0.67.0': 'c92f83a0391b3af8'},
    'feast.infra.registry.sql:SqlRegistry._get_feature_service': {'0.67.0': '64b84ecbc8106fda'},
    'feast.infra.registry.sql:SqlRegistry._get_feature_view': {'0.67.0': 'b78bf635b27b85f0'},
    'feast.infra.registry.sql:SqlRegistry._get_infra': {'0.67.0': '3f27c853f7170429'},
    'feast.infra.registry.sql:SqlRegistry._get_label_view': {'0.67.0': 'df72251658a76d68'},
    'feast.infra.registry.sql:SqlRegistry._get_last_updated_metadata': {'0.67.0': '3490d7846d71c7a3'},
    'feast.infra.registry.sql:SqlRegistry._get_next_version_number': {'0.67.0': '06f4849ed02e3088'},
    'feast.infra.registry.sql:SqlRegistry._get_object': {'0.67.0': 'b672ecdfba36a2e1'},
    'feast.infra.registry.sql:SqlRegistry._get_on_demand_feature_view': {'0.67.0': '6c85a933b8e68ed8'},
    'feast.infra.registry.sql:SqlRegistry._get_permission': {'0.67.0': 'b3e3dd03ad33283d'},
    'feast.infra.registry.sql:SqlRegistry._get_project': {'0.67.0': '0e15fd5483174dfe'},
    'feast.infra.registry.sql:SqlRegistry._get_saved_dataset': {'0.67.0': '5921063d1ded9239'},
    'feast.infra.registry.sql:SqlRegistry._get_stream_feature_view': {'0.67.0': '807526410d13470f'},
    'feast.infra.registry.sql:SqlRegistry._get_validation_reference': {'0.67.0': '2c43353a5f8835ca'},
    'feast.infra.registry.sql:SqlRegistry._get_version_snapshot': {'0.67.0': 'f63acd5aec0de07b'},
    'feast.infra.registry.sql:SqlRegistry._infer_fv_classes': {'0.67.0': 'c88d973c2763eaea'},
    'feast.infra.registry.sql:SqlRegistry._infer_fv_table': {'0.67.0': 'd9533810269182bf'},
    'feast.infra.registry.sql:SqlRegistry._infer_fv_type_string': {'0.67.0': '0b61bf0a2ce651d8'},
    'feast.infra.registry.sql:SqlRegistry._initialize_project_if_not_exists': {'0.67.0': '1f98858d4866e8bf'},
    'feast.infra.registry.sql:SqlRegistry._list_all_feature_views': {'0.67.0': '179c2d5e310345e7'},
    'feast.infra.registry.sql:SqlRegistry._list_data_sources': {'0.67.0': 'd9a7631d0357bac9'},
    'feast.infra.registry.sql:SqlRegistry._list_entities': {'0.67.0': 'a326cfdeaf82eba8'},
    'feast.infra.registry.sql:SqlRegistry._list_feature_services': {'0.67.0': 'b66bd65d196610aa'},
    'feast.infra.registry.sql:SqlRegistry._list_feature_views': {'0.67.0': '492d17fd77914913'},
    'feast.infra.registry.sql:SqlRegistry._list_label_views': {'0.67.0': 'a082e48fcba170f4'},
    'feast.infra.registry.sql:SqlRegistry._list_objects': {'0.67.0': '80d3f771df3fefb2'},
    'feast.infra.registry.sql:SqlRegistry._list_on_demand_feature_views': {'0.67.0': '17fb4fb4caf1fce4'},
    'feast.infra.registry.sql:SqlRegistry._list_permissions': {'0.67.0': '8e861513c10b55bc'},
    'feast.infra.registry.sql:SqlRegistry._list_project_metadata': {'0.67.0': '11e9eb44568458fa'},
    'feast.infra.registry.sql:SqlRegistry._list_projects': {'0.67.0': 'd26634e3acb6184a'},
    'feast.infra.registry.sql:SqlRegistry._list_saved_datasets': {'0.67.0': '3d2c765152b228b1'},
    'feast.infra.registry.sql:SqlRegistry._list_stream_feature_views': {'0.67.0': '57b32b6d294eecb6'},
    'feast.infra.registry.sql:SqlRegistry._list_validation_references': {'0.67.0': '2dc395fccfeaf75e'},
    'feast.infra.registry.sql:SqlRegistry._maybe_init_project_metadata': {'0.67.0': '7f1aa9f0d4170d69'},
    'feast.infra.registry.sql:SqlRegistry._proto_class_for_type': {'0.67.0': '82c5d0832d4bdbb2'},
    'feast.infra.registry.sql:SqlRegistry._save_version_snapshot': {'0.67.0': '3a7011c98bdfd81c'},
    'feast.infra.registry.sql:SqlRegistry._set_last_updated_metadata': {'0.67.0': '7f8671778c04ddf2'},
    'feast.infra.registry.sql:SqlRegistry._sync_feast_metadata_to_projects_table': {'0.67.0': 'ed2be9602ab93415'},
    'feast.infra.registry.sql:SqlRegistry._verify_schema': {'0.67.0': 'f1b870a5a91b6410'},
    'feast.infra.registry.sql:SqlRegistry._warn_if_narrow_blob_columns': {'0.67.0': '085991fee891ab7b'},
    'feast.infra.registry.sql:SqlRegistry.apply_data_source': {'0.67.0': '5819b330e91c1ba2'},
    'feast.infra.registry.sql:SqlRegistry.apply_entity': {'0.67.0': '3ec29ee3977bdab8'},
    'feast.infra.registry.sql:SqlRegistry.apply_feature_service': {'0.67.0': 'dc2fef09d50e9b60'},
    'feast.infra.registry.sql:SqlRegistry.apply_feature_view': {'0.67.0': '2ccd9eae3dfdca7b'},
    'feast.infra.registry.sql:SqlRegistry.apply_materialization': {'0.67.0': 'aaeb540fd44a5ce3'},
    'feast.infra.registry.sql:SqlRegistry.apply_permission': {'0.67.0': 'da2b88b859b374d2'},
    'feast.infra.registry.sql:SqlRegistry.apply_project': {'0.67.0': 'c43fea1c92a10001'},
    'feast.infra.registry.sql:SqlRegistry.apply_saved_dataset': {'0.67.0': '31f5857be2483dc5'},
    'feast.infra.registry.sql:SqlRegistry.apply_user_metadata': {'0.67.0': '40c5990d7de2ab6e'},
    'feast.infra.registry.sql:SqlRegistry.apply_validation_reference': {'0.67.0': '24402c06d1f15d5a'},
    'feast.infra.registry.sql:SqlRegistry.commit': {'0.67.0': '984a129f7bf0a546'},
    'feast.infra.registry.sql:SqlRegistry.delete_data_source': {'0.67.0': 'c9e0f04ebf7c2382'},
    'feast.infra.registry.sql:SqlRegistry.delete_entity': {'0.67.0': 'c5055553d12f3248'},
    'feast.infra.registry.sql:SqlRegistry.delete_feature_service': {'0.67.0': '3f526f817e44e386'},
    'feast.infra.registry.sql:SqlRegistry.delete_feature_view': {'0.67.0': '39a3236aad71bbaa'},
    'feast.infra.registry.sql:SqlRegistry.delete_label_view': {'0.67.0': '2ca53b8d2955e72c'},
    'feast.infra.registry.sql:SqlRegistry.delete_permission': {'0.67.0': '5ebfe6e7ac3180d0'},
    'feast.infra.registry.sql:SqlRegistry.delete_project': {'0.67.0': 'dbfeae65db9003fa'},
    'feast.infra.registry.sql:SqlRegistry.delete_saved_dataset': {'0.67.0': '75271a6ac3bcd83b'},
    'feast.infra.registry.sql:SqlRegistry.delete_validation_reference': {'0.67.0': '911520fcfdd77d22'},
    'feast.infra.registry.sql:SqlRegistry.get_feature_view_by_version': {'0.67.0': '37fd1850cc5160bb'},
    'feast.infra.registry.sql:SqlRegistry.get_project_metadata': {'0.67.0': 'f355fc85e63caab4'},
    'feast.infra.registry.sql:SqlRegistry.get_user_metadata': {'0.67.0': '4128b59763863511'},
    'feast.infra.registry.sql:SqlRegistry.list_feature_view_versions': {'0.67.0': '9b423670eaf02792'},
    'feast.infra.registry.sql:SqlRegistry.proto': {'0.67.0': '53de83a2ede5e64d'},
    'feast.infra.registry.sql:SqlRegistry.set_project_metadata': {'0.67.0': 'e21a6e39569bbb7c'},
    'feast.infra.registry.sql:SqlRegistry.teardown': {'0.67.0': '0b710c0f5e5f7f4e'},
    'feast.infra.registry.sql:SqlRegistry.update_infra': {'0.67.0': 'bd5dea1308ba3dce'},
    'feast.infra.registry.sql:SqlRegistryConfig': {'0.67.0': '7ac3474a6df25df1'},
    'feast.labeling.label_view:LabelView.from_proto': {'0.67.0': '2d613dc6793a959b'},
    'feast.metrics:_cleanup_multiprocess_dir': {'0.67.0': '6f4ca23f0021932d'},
    'feast.metrics:_run_metrics_server': {'0.67.0': 'd3f5042fc2826cf5'},
    'feast.metrics:start_metrics_server': {'0.67.0': 'f9d503e5a9fb1d14'},
    'feast.on_demand_feature_view:OnDemandFeatureView.from_proto': {'0.67.0': 'b6a846e1bbe05a64'},
    'feast.permissions.action:AuthzedAction': {'0.67.0': '50e037fda0d1c2e2'},
    'feast.permissions.auth.oidc_token_parser:OidcTokenParser.user_details_from_access_token': {'0.67.0': '6d6831dcb771a8c6'},
    'feast.permissions.decision:DecisionEvaluator': {'0.67.0': '13936b8b06655550'},
    'feast.permissions.enforcer:enforce_policy': {'0.67.0': '6a9d91faa44b55f9'},
    'feast.permissions.matcher:_resource_name_matches_name_patterns': {'0.67.0': 'e5b2d84caa93b04a'},
    'feast.permissions.matcher:actions_match_config': {'0.67.0': 'd3e6c54803a1bbe4'},
    'feast.permissions.matcher:is_a_feast_object': {'0.67.0': 'cc153b95ac2ba10f'},
    'feast.permissions.matcher:resource_match_config': {'0.67.0': '3330d81a5074f027'},
    'feast.permissions.permission:Permission.__init__': {'0.67.0': 'cbab2706cc62b16a'},
    'feast.permissions.permission:Permission.from_proto': {'0.67.0': 'b18c70511b8be9e0'},
    'feast.permissions.permission:Permission.match_actions': {'0.67.0': '4b033d533fa42c2e'},
    'feast.permissions.permission:Permission.match_resource': {'0.67.0': 'a94e93cf96f4a97c'},
    'feast.permissions.permission:Permission.required_tags': {'0.67.0': '327292d462b7d24b'},
    'feast.permissions.permission:_PERMISSION_TYPES': {'0.67.0': '80d2aebcb637312a'},
    'feast.permissions.permission:_normalize_name_patterns': {'0.67.0': '1cc8e8862e13c85f'},
    'feast.permissions.permission:_normalize_tags': {'0.67.0': 'cf65e509a1f3c582'},
    'feast.permissions.permission:get_type_class_from_permission_type': {'0.67.0': '50022a8b60907e62'},
    'feast.permissions.policy:AllowAll': {'0.67.0': 'cba4c6af1638c2f6'},
    'feast.permissions.policy:CombinedGroupNamespacePolicy': {'0.67.0': '140a1f6957c14878'},
    'feast.permissions.policy:GroupBasedPolicy': {'0.67.0': '029c7a10c4126452'},
    'feast.permissions.policy:NamespaceBasedPolicy': {'0.67.0': '53344eff420dd176'},
    'feast.permissions.policy:Policy.from_proto': {'0.67.0': '978c193bd5707d4b'},
    'feast.permissions.policy:RoleBasedPolicy': {'0.67.0': '6517269bf4297736'},
    'feast.permissions.policy:empty_policy': {'0.67.0': '67256d8cd72bdb80'},
    'feast.permissions.security_manager:SecurityManager.assert_permissions': {'0.67.0': '9fbeef0a8fa3b247'},
    'feast.permissions.security_manager:SecurityManager.permissions': {'0.67.0': '95424ef725966150'},
    'feast.permissions.security_manager:is_auth_necessary': {'0.67.0': '357704e86e24cacb'},
    'feast.permissions.security_manager:permitted_resources': {'0.67.0': '61a72b409b795908'},
    'feast.permissions.server.grpc:AuthInterceptor.intercept_service': {'0.67.0': '7d4af0ad8c74df9b'},
    'feast.permissions.user:User': {'0.67.0': '1d496e470fadc11d'},
    'feast.project:Project.from_proto': {'0.67.0': 'bd8af1bc4eb28465'},
    'feast.registry_server:RegistryServer.GetAnyFeatureView': {'0.67.0': '5730b6eb922d9a5f'},
    'feast.registry_server:RegistryServer.GetDataSource': {'0.67.0': '48bb73d5060675d8'},
    'feast.registry_server:RegistryServer.GetEntity': {'0.67.0': '23ea4b67a29e3556'},
    'feast.registry_server:RegistryServer.GetFeatureService': {'0.67.0': 'bb6ac59e0762c203'},
    'feast.registry_server:RegistryServer.GetFeatureView': {'0.67.0': 'be657fb8829af5c6'},
    'feast.registry_server:RegistryServer.GetInfra': {'0.67.0': '207e5eeb540b54f7'},
    'feast.registry_server:RegistryServer.GetLabelView': {'0.67.0': '05574c0ede05059a'},
    'feast.registry_server:RegistryServer.GetOnDemandFeatureView': {'0.67.0': '096821cd8c4625a7'},
    'feast.registry_server:RegistryServer.GetPermission': {'0.67.0': '01f8e382c889eb17'},
    'feast.registry_server:RegistryServer.GetProject': {'0.67.0': 'd25353acd66140d1'},
    'feast.registry_server:RegistryServer.GetSavedDataset': {'0.67.0': 'e6569f2302b61aa4'},
    'feast.registry_server:RegistryServer.GetStreamFeatureView': {'0.67.0': '268415f77c5a9f23'},
    'feast.registry_server:RegistryServer.GetValidationReference': {'0.67.0': '007ce0e7d3790c7e'},
    'feast.registry_server:RegistryServer.ListAllFeatureViews': {'0.67.0': 'a98667209e5c6b42'},
    'feast.registry_server:RegistryServer.ListDataSources': {'0.67.0': '2febae13a7a19013'},
    'feast.registry_server:RegistryServer.ListEntities': {'0.67.0': '44fb10144e6c1742'},
    'feast.registry_server:RegistryServer.ListFeatureServices': {'0.67.0': '6b498a47a64995c9'},
    'feast.registry_server:RegistryServer.ListFeatureViews': {'0.67.0': 'b85e25f821462db5'},
    'feast.registry_server:RegistryServer.ListLabelViews': {'0.67.0': 'eb26172fab096592'},
    'feast.registry_server:RegistryServer.ListOnDemandFeatureViews': {'0.67.0': '3ee031b22447664e'},
    'feast.registry_server:RegistryServer.ListPermissions': {'0.67.0': '714e28f39fb14dcb'},
    'feast.registry_server:RegistryServer.ListProjectMetadata': {'0.67.0': '47ea9b425cc99fb2'},
    'feast.registry_server:RegistryServer.ListProjects': {'0.67.0': '0fca14bf4eb38550'},
    'feast.registry_server:RegistryServer.ListSavedDatasets': {'0.67.0': '7b722136157cb353'},
    'feast.registry_server:RegistryServer.ListStreamFeatureViews': {'0.67.0': 'bfd300b287026418'},
    'feast.registry_server:RegistryServer.ListValidationReferences': {'0.67.0': '573e107daf7a3fe7'},
    'feast.registry_server:RegistryServer.Proto': {'0.67.0': '793e8fc85001e0e4'},
    'feast.registry_server:RegistryServer.__init__': {'0.67.0': 'e348e33e60ee44aa'},
    'feast.registry_server:_grpc_interceptors': {'0.67.0': '401226bdc80ca767'},
    'feast.registry_server:_sync_protected_project_tag': {'0.67.0': '0b66cfc35697898a'},
    'feast.registry_server:apply_pagination_and_sorting': {'0.67.0': '23dba13b22c3317f'},
    'feast.registry_server:start_server': {'0.67.0': 'f6196584dbc81a15'},
    'feast.repo_config:RegistryConfig': {'0.67.0': 'bf7bc2e0d08373f1'},
    'feast.repo_config:get_data_source_class_from_type': {'0.67.0': '992c670212b4efa8'},
    'feast.saved_dataset:SavedDataset.from_proto': {'0.67.0': '854fb49eccd27364'},
    'feast.saved_dataset:ValidationReference.from_proto': {'0.67.0': 'd91cde0a3b825efb'},
    'feast.stream_feature_view:StreamFeatureView.from_proto': {'0.67.0': '198ca16bb19d7cd3'},
    'feast.transformation.udf_rehydrate:resolve_udf': {'0.67.0': 'e48d82b923347253'},
    'prometheus_client.metrics:Histogram._metric_init': {'0.24.1': '07b05f83f5bc70e2'},
    'prometheus_client.metrics:Histogram.observe': {'0.24.1': 'ab4502ec26905f72'},
    'typeguard._suppression:suppress_type_checks': {'4.6.1': '6b1f8dee6a7efeaf'},
    'typeguard:uses:type_checks_suppressed': {'4.6.1': 'ccd5da9bcbe52b64'},
}
