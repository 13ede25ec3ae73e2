"""NativeSqlRegistry: Feast's SQL registry with its storage in C.

This is a Feast ``CachingRegistry``. It turns Feast objects into protobuf
bytes and back, and keeps Feast's semantics (idempotent re-apply, project
auto-creation, version history, exceptions). Everything that touches the
database is a call into ``feast_sqlreg._sqlregistry.Store``, which releases
the GIL and runs each write as one transaction. There is no SQL here.

Differences from the stock ``SqlRegistry`` are listed in README.md; each one
fixes a stock bug:
- materialization intervals are merged under a row lock, so concurrent
  ``feast materialize`` jobs never lose each other's intervals;
- in ``cache_mode: sync`` a write marks the cache stale instead of
  re-reading the whole registry at once (the next cached read refreshes it),
  which keeps ``feast apply`` linear;
- ``get_user_metadata`` looks in the given project only;
- each refresh gets a new ``version_id``, so cached reads in sync mode never
  return results memoized for an older registry;
- ``delete_project`` also deletes the project's feature view version history;
- an apply writes only over the row it decided on (else it decides again),
  in one transaction with its version history;
- applies with ``commit=False`` are written together at ``commit()`` (or the
  next other use of the store), as Feast documents that flag;
- ``update_infra`` of the same infra writes nothing.
"""

import atexit
import logging
import os
import random
import threading
import time
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from feast.base_feature_view import BaseFeatureView
from feast.data_source import DataSource
from feast.entity import Entity
from feast.errors import (
    ConcurrentVersionConflict,
    ConflictingFeatureViewNames,
    FeatureViewNotFoundException,
    FeatureViewPinConflict,
    FeatureViewVersionNotFound,
    PermissionObjectNotFoundException,
    ProjectObjectNotFoundException,
)
from feast.feature_service import FeatureService
from feast.feature_view import FeatureView
from feast.infra.infra_object import Infra
from feast.infra.registry.base_registry import BaseRegistry
from feast.infra.registry.caching_registry import CachingRegistry
from feast.infra.registry.sql import FeastRegistrySchemaError, SqlRegistryConfig
from feast.labeling.label_view import LabelView
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.permissions.permission import Permission
from feast.project import Project
from feast.project_metadata import ProjectMetadata
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.saved_dataset import SavedDataset, ValidationReference
from feast.stream_feature_view import StreamFeatureView

from google.protobuf.message import DecodeError

from feast_sqlreg import (
    _changes,
    _engines,
    _install,
    _internals,
    _metrics,
    _objects,
    _typechecks,
    errors,
)
from feast_sqlreg._config import store_options, with_connect_args
from feast_sqlreg._changes import ChangeFeed
from feast_sqlreg import _kinds
from feast_sqlreg._kinds import (  # noqa: F401  (the kind numbers, re-exported)
    BY_REGISTRY_FIELD,
    BY_TABLE,
    DATA_SOURCE,
    ENTITY,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    INFRA,
    KINDS,
    LABEL_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    PERMISSION,
    PROJECT,
    SAVED_DATASET,
    STREAM_FEATURE_VIEW,
    VALIDATION_REFERENCE,
    VIEWS,
)
from feast_sqlreg._internals import (
    generate_version_id,
    has_all_tags,
    parse_version,
    utc_now,
    version_tag,
)
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg._wire import registry_elements

logger = logging.getLogger(__name__)

# Object kinds and what is known of each: the one table in src/common/kinds.h
# (feast_sqlreg._kinds), under the names this module has always used.
_KINDS: Dict[int, Tuple[Any, Any, Any]] = {
    k.id: (k.py_proto, k.py_class, k.not_found) for k in KINDS
}
# Kinds whose re-apply is skipped when nothing changed (stock compares these
# with the stored object; validation references and infra are always written).
_COMPARED = {k.id for k in KINDS if k.compared}

# Kinds whose re-apply is found unchanged on the bytes (_definition): their
# equality (__eq__) reads no part of the message _definition leaves out,
# and their to_proto/from_proto round trip keeps what __eq__ reads. Not on
# demand feature views (a UDF pickled again is other bytes), nor the kinds
# feast apply rarely re-applies (saved datasets, validation references,
# permissions, label views, projects): those are compared as stock does.
_SAME_BYTES = {ENTITY, DATA_SOURCE, FEATURE_VIEW, STREAM_FEATURE_VIEW, FEATURE_SERVICE}
_VOLATILE_META = ("created_timestamp", "last_updated_timestamp", "current_version_number")


def _same_definition(kind: int, stored_proto, new) -> bool:
    """Whether an apply of new (to_proto()) over stored_proto writes
    nothing, decided on the bytes alone: the same infra, or, for the
    _SAME_BYTES kinds, the same definition. False means "not settled
    here", not "changed"."""
    if kind == INFRA:
        return stored_proto.SerializeToString(deterministic=True) == new.SerializeToString(
            deterministic=True
        )
    if kind not in _SAME_BYTES:
        return False
    return _definition_message(kind, stored_proto).SerializeToString(
        deterministic=True
    ) == _definition_message(kind, new).SerializeToString(deterministic=True)


def _definition(kind: int, message) -> bytes:
    """What an object's equality depends on, as bytes: message without the
    parts an apply of the same definition changes (the project stamp, the
    created and last-updated times, the version number), serialized
    deterministically (map entries in key order). Equal definitions are
    equal objects to Feast (tests/test_unchanged.py checks it against
    __eq__ object by object); unequal ones are compared as stock compares
    them."""
    return _definition_message(kind, message).SerializeToString(deterministic=True)


def _definition_message(kind: int, message):
    """A copy of message without what _definition leaves out."""
    copy = type(message)()
    copy.CopyFrom(message)
    carrier = _carrier(kind, copy)
    if "project" in carrier.DESCRIPTOR.fields_by_name:
        carrier.ClearField("project")
    _clear_volatile_meta(copy)
    _clear_source_times(copy)
    return copy


# Fields of the carrier (spec) that these classes' __eq__ compares as plain
# values (a dict of strings, a string): a difference in their bytes is a
# difference to Feast. BaseFeatureView.__eq__ (under FeatureView's, under
# StreamFeatureView's), Entity.__eq__ and FeatureService.__eq__ return
# False on any of them.
_PLAIN_FIELDS = ("tags", "description", "owner")  # tags first: a map
_INTERVALS = {FEATURE_VIEW, STREAM_FEATURE_VIEW}  # kinds with materialization intervals
_PLAIN_EQ = {Entity.__eq__, FeatureView.__eq__, StreamFeatureView.__eq__, FeatureService.__eq__}


def _surely_differs(kind: int, obj, old_def, new_def) -> bool:
    """True when Feast's __eq__ is sure to find obj (serialized as new_def)
    unlike the stored definition old_def: they differ in a plain field, or
    the new view has no materialization intervals and the stored one has
    some (FeatureView.__eq__ compares the lists). Whatever else differs,
    those settle it. False: not known without building the stored object."""
    if type(obj).__eq__ not in _PLAIN_EQ or _KINDS[kind][1].__eq__ not in _PLAIN_EQ:
        return False
    old, new = _carrier(kind, old_def), _carrier(kind, new_def)
    if dict(old.tags) != dict(new.tags) or any(
        getattr(old, field) != getattr(new, field) for field in _PLAIN_FIELDS[1:]
    ):
        return True
    return (
        kind in _INTERVALS
        and not new_def.meta.materialization_intervals
        and len(old_def.meta.materialization_intervals) > 0
    )


# Spec fields that no _schema_or_udf_changed of these kinds reads
# (FeatureView's: features, entities, entity_columns, source_views;
# StreamFeatureView's adds udf, udf_string, aggregations, timestamp_field,
# mode). Two specs equal in every other field make no new version.
_SCHEMA_KINDS = {FEATURE_VIEW, STREAM_FEATURE_VIEW}
_NOT_SCHEMA = (
    "name", "project", "tags", "description", "owner", "org", "ttl", "online", "offline",
    "batch_source", "stream_source", "enable_validation", "version",
)


def _schema_surely_same(kind: int, old, new) -> bool:
    """True when the stored view old and the new one new (messages) are sure
    to make no new version: every spec field a schema check reads is equal
    in bytes. False: decide with Feast's objects."""
    if kind not in _SCHEMA_KINDS:
        return False
    a, b = type(old.spec)(), type(new.spec)()
    a.CopyFrom(old.spec)
    b.CopyFrom(new.spec)
    for spec in (a, b):
        for field in _NOT_SCHEMA:
            if field in spec.DESCRIPTOR.fields_by_name:
                spec.ClearField(field)
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


# Kinds whose to_proto() writes created_timestamp and last_updated_timestamp
# (and current_version_number where its meta has one) into meta straight
# from the attributes of those names: their message after an apply's
# re-stamping is the first to_proto() with those fields set, not a second
# to_proto() (tests/test_write_path.py checks it kind by kind).
_RESTAMPED = {ENTITY, FEATURE_SERVICE, FEATURE_VIEW, STREAM_FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW}


def _restamped(kind: int, obj, message, created, updated, version=None):
    """obj.to_proto() after an apply set obj's created_timestamp and
    last_updated_timestamp (and current_version_number to version): a copy
    of message, obj's first to_proto(), with those set, for _RESTAMPED
    kinds; obj.to_proto() again for the others."""
    if kind not in _RESTAMPED:
        with _typechecks.thread_suppressed():
            return obj.to_proto()
    proto = type(message)()
    proto.CopyFrom(message)
    meta = proto.meta
    if created is not None:
        meta.created_timestamp.FromDatetime(created)
    if updated is not None:
        meta.last_updated_timestamp.FromDatetime(updated)
    if version is not None and "current_version_number" in meta.DESCRIPTOR.fields_by_name:
        meta.current_version_number = version
    return proto


def _clear_volatile_meta(message) -> None:
    meta = message.meta if "meta" in message.DESCRIPTOR.fields_by_name else None
    if meta is not None:
        for field in _VOLATILE_META:
            if field in meta.DESCRIPTOR.fields_by_name:
                meta.ClearField(field)


def _clear_source_times(message) -> None:
    """Clears the created and last-updated times of every data source
    nested in message (a stream source's batch source, a view's sources):
    each is stamped when its Python object is made, and DataSource.__eq__
    does not read them."""
    for name, repeated, is_source in _source_fields(message.DESCRIPTOR):
        if repeated:
            items = getattr(message, name)
        elif message.HasField(name):
            items = (getattr(message, name),)
        else:
            continue
        for item in items:
            if is_source:
                _clear_volatile_meta(item)
            _clear_source_times(item)


_DATA_SOURCE = "feast.core.DataSource"
_SOURCE_FIELDS: Dict[str, tuple] = {}


def _source_fields(descriptor) -> tuple:
    """The message fields of descriptor (no maps) that are, or may hold, a
    DataSource: (name, repeated, is a DataSource), worked out once per
    message type."""
    plan = _SOURCE_FIELDS.get(descriptor.full_name)
    if plan is None:
        plan = _SOURCE_FIELDS[descriptor.full_name] = tuple(
            (f.name, _kinds.is_repeated(f), f.message_type.full_name == _DATA_SOURCE)
            for f in descriptor.fields
            if f.message_type is not None
            and not f.message_type.GetOptions().map_entry
            and _may_hold_source(f.message_type, set())
        )
    return plan


def _may_hold_source(descriptor, seen: set) -> bool:
    if descriptor.full_name == _DATA_SOURCE:
        return True
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    return any(
        f.message_type is not None
        and not f.message_type.GetOptions().map_entry
        and _may_hold_source(f.message_type, seen)
        for f in descriptor.fields
    )


# The feature view kinds, in the order stock looks a name up.
_VIEW_LOOKUP_ORDER = (
    FEATURE_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    STREAM_FEATURE_VIEW,
    LABEL_VIEW,
)
assert set(_VIEW_LOOKUP_ORDER) == set(VIEWS)

_VERSION_TYPE = {k.id: k.view for k in KINDS if k.view}

# The view kinds by the class names Feast's name check and its
# ConflictingFeatureViewNames use (_internals.view_name_rivals).
_VIEW_TYPE_NAME = {
    FEATURE_VIEW: "FeatureView",
    STREAM_FEATURE_VIEW: "StreamFeatureView",
    ON_DEMAND_FEATURE_VIEW: "OnDemandFeatureView",
    LABEL_VIEW: "LabelView",
}
assert set(_VIEW_TYPE_NAME) == set(VIEWS)
_VIEW_KIND_OF_TYPE = {v: k for k, v in _VIEW_TYPE_NAME.items()}

# How many times an apply decides again when another writer changed the row
# between its read and its write (or took the version number it chose).
_APPLY_ATTEMPTS = 5
# How long rows read for applies with commit=False stay the ones their
# "unchanged" is decided on (NativeSqlRegistry._unchanged_in_snapshot).
SNAPSHOT_SECONDS = 1.0


def _intervals_of(message):
    """A stored view's materialization intervals as Feast's from_proto
    reads them."""
    return [
        (
            i.start_time.ToDatetime().replace(tzinfo=timezone.utc),
            i.end_time.ToDatetime().replace(tzinfo=timezone.utc),
        )
        for i in message.meta.materialization_intervals
    ]
_KIND_OF_VERSION_TYPE = {v: k for k, v in _VERSION_TYPE.items()}

# kind -> its table, for messages about stored rows.
_TABLE = {k.id: k.table for k in KINDS}

# Registry proto field name -> kind, for the objects proto() assembles.
_REGISTRY_FIELD_KIND = BY_REGISTRY_FIELD
_IN_SPEC = {k.id: k.in_spec for k in KINDS}


def _carrier(kind: int, message):
    """The part of a stored message that holds name, project and tags."""
    return message.spec if _IN_SPEC[kind] else message


def _not_found(kind: int, name: str, project: str, cached: bool) -> Exception:
    """The exception stock raises for a missing object of this kind, from
    the cached registry proto (proto_registry_utils) or the database."""
    if kind == PROJECT:
        return ProjectObjectNotFoundException(name=name)
    if kind == PERMISSION and cached:
        return PermissionObjectNotFoundException(name=name, project=project)
    return _KINDS[kind][2](name, project)


def _unstamped(kind: int, message):
    """message without a project stamp (see NativeSqlRegistry.get_proto);
    a copy when it had one."""
    if kind in (PROJECT, INFRA) or not _carrier(kind, message).project:
        return message
    copy = type(message)()
    copy.CopyFrom(message)
    _carrier(kind, copy).ClearField("project")
    return copy


def _index_registry(registry):
    """(lists, by_name) of a registry proto, holding unstamped copies of its
    objects; see NativeSqlRegistry._cached_index."""
    lists: Dict[Tuple[int, str], list] = {}
    by_name: Dict[Tuple[int, str, str], Any] = {}
    for field, kind in _REGISTRY_FIELD_KIND.items():
        for message in getattr(registry, field):
            carrier = _carrier(kind, message)
            name = carrier.name
            project = "" if kind == PROJECT else carrier.project
            message = _unstamped(kind, message)
            lists.setdefault((kind, project), []).append(message)
            by_name.setdefault((kind, name if kind == PROJECT else project, name), message)
    return lists, by_name


# Change log tables -> kind; the kinds a cached registry is patched for
# (a project or infra change means a full read); tables the registry proto
# does not hold; how many changed objects a patch takes at most.
_TABLE_KIND = BY_TABLE
_KIND_FIELD = {kind: field for field, kind in _REGISTRY_FIELD_KIND.items()}
_PATCHABLE = set(_KIND_FIELD) - {PROJECT}
_NOT_IN_REGISTRY = {"feast_metadata", "feature_view_version_history"}
PATCH_LIMIT = 50

# Read-your-writes when read_path is a replica (PostgreSQL hot standby): how
# long a read waits for the replica to replay this process's writes before
# it reads the primary instead; below 0, reads never wait (nor fall back).
REPLICA_WAIT_SECONDS = float(os.environ.get("FEAST_SQLREG_REPLICA_WAIT", "1.0") or 0)
# Registries that close their connections when the interpreter exits.
_open_registries: "weakref.WeakSet" = weakref.WeakSet()


@atexit.register
def _close_open_registries():
    for registry in list(_open_registries):
        registry.close()


PROJECT_UUID = "project_uuid"


class _Pending(NamedTuple):
    """An apply with commit=False, decided and waiting (NativeSqlRegistry._flush)."""

    kind: int
    project: str
    name: str
    obj: Any
    versioned: bool
    no_promote: bool
    item: Any  # Store.apply_batch's item; for an unchanged apply, the bytes it kept


def _once_per_project(pending) -> list:
    """The batch's items, with each project's bookkeeping done once in the
    transaction: the project row and project_uuid (if missing) with its
    first write, the last-updated time with its last."""
    items = [list(p.item) for p in pending]
    first, last = {}, {}
    for i, item in enumerate(items):
        first.setdefault(item[1], i)
        last[item[1]] = i
    for i, item in enumerate(items):
        if first[item[1]] != i:
            item[5] = item[6] = None  # project_proto, project_uuid
        if last[item[1]] != i:
            item[7] = False  # touch_metadata
    return [tuple(item) for item in items]


class _FlushingStore:
    """The Store, but every use of it other than an apply's read first
    writes the applies waiting for commit(): a read sees them, and writes
    keep their order."""

    __slots__ = ("_store", "_flush")
    _UNFLUSHED = frozenset({"read_for_apply", "apply_batch", "url", "close", "closed"})

    def __init__(self, store, flush):
        self._store = store
        self._flush = flush

    def __getattr__(self, name):
        if name not in self._UNFLUSHED:
            self._flush()
        return getattr(self._store, name)

    def __repr__(self):
        return repr(self._store)

def view_kind(feature_view) -> int:
    """The table kind of a feature view object (subclasses first)."""
    if isinstance(feature_view, LabelView):
        return LABEL_VIEW
    if isinstance(feature_view, StreamFeatureView):
        return STREAM_FEATURE_VIEW
    if isinstance(feature_view, FeatureView):
        return FEATURE_VIEW
    if isinstance(feature_view, OnDemandFeatureView):
        return ON_DEMAND_FEATURE_VIEW
    raise ValueError(f"Unexpected feature view type: {type(feature_view)}")


_SKIP_UDF: Dict[Any, bool] = {}


def _takes_skip_udf(python_class) -> bool:
    """Whether python_class.from_proto accepts skip_udf (as stock checks)."""
    if python_class not in _SKIP_UDF:
        import inspect

        params = inspect.signature(python_class.from_proto).parameters
        _SKIP_UDF[python_class] = "skip_udf" in params
    return _SKIP_UDF[python_class]


def _epoch(dt: datetime) -> Tuple[int, int]:
    """(seconds, nanos) as protobuf's Timestamp.FromDatetime reads dt:
    naive datetimes are UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    seconds = delta.days * 86400 + delta.seconds
    return seconds, delta.microseconds * 1000


def open_store(registry_config) -> Store:
    """The Store for a SqlRegistryConfig: its URLs with
    ``sqlalchemy_config_kwargs.connect_args`` added, its pool options, the
    warnings about ignored keys. NativeSqlRegistry and the command line
    (``feast registry create-schema``, ``python -m feast_sqlreg status``)
    both open it here, so an option the server needs works in all of them.
    Connections are opened lazily: a bad option raises on first use."""
    if not registry_config.path:
        raise errors.ConfigurationError(
            "registry path is empty: set registry.path to a database URL"
        )
    kwargs = registry_config.sqlalchemy_config_kwargs or {}
    connect_args = kwargs.get("connect_args")
    return Store(
        with_connect_args(registry_config.path, connect_args),
        with_connect_args(registry_config.read_path, connect_args),
        replica_wait=REPLICA_WAIT_SECONDS,
        **store_options(kwargs),
    )


class NativeSqlRegistry(CachingRegistry):
    """Feast's SQL registry (``registry_type: sql``) over the native core."""

    # The backend its calls are counted under (feast_sqlreg._metrics.timed).
    _metrics_backend = "unknown"
    # When (time.monotonic()) the cached registry was read or patched.
    _cache_read_at = None

    def __init__(self, registry_config, project: str, repo_path=None):
        if not isinstance(registry_config, SqlRegistryConfig):
            raise TypeError(
                "NativeSqlRegistry needs a SqlRegistryConfig "
                f"(registry_type: sql), got {type(registry_config).__name__}"
            )
        self.registry_config = registry_config
        self._proto_index = None
        self._swap_lock = threading.Lock()
        self._refresh_seq = self._installed_seq = 0
        #: How the cached registry was renewed: full reads, patches.
        self.cache_updates = {"full": 0, "patched": 0}
        #: Called with no arguments after each new cached registry is in.
        self.cache_listeners: List[Any] = []
        self._raw_store = open_store(registry_config)
        self._metrics_backend = self._raw_store.dialect
        #: Applies that decided again because another writer changed their
        #: row meanwhile (metrics: feast_sqlreg_retries{reason="apply_race"}).
        self.apply_races = 0
        self._races_lock = threading.Lock()
        # Applies with commit=False wait here, prepared, for one transaction
        # (_flush); any other use of the store writes them first.
        self._pending: List["_Pending"] = []
        self._pending_keys: Dict[Tuple[int, str, str], int] = {}
        self._pending_lock = threading.RLock()
        # What applies with commit=False decide "unchanged" on without a
        # read each (_unchanged_in_snapshot): (kind, project) -> (taken at,
        # {name: stored bytes, or None for a bad row}).
        self._snapshots: Dict[Tuple[int, str], Tuple[float, Dict[str, Optional[bytes]]]] = {}
        # Applies with commit=False found unchanged, checked at commit():
        # (kind, project, name) -> the latest such apply.
        self._unchanged: Dict[Tuple[int, str, str], "_Pending"] = {}
        self._store = _FlushingStore(self._raw_store, self._flush)
        mode = registry_config.schema_mode
        if mode == "auto":
            self._store.create_schema()
        elif mode == "verify":
            self._verify_schema()
        if type(self)._warn_if_narrow_blob_columns is not _stock_blob_check:
            # Replaced (a subclass, a patch): called as stock calls it, with
            # the SQLAlchemy engines, which are made for it.
            self._warn_if_narrow_blob_columns(self.write_engine)
            if self.read_engine is not self.write_engine:
                self._warn_if_narrow_blob_columns(self.read_engine)
        else:
            self._check_blob_columns(False)
            if self.registry_config.read_path:
                # A replica can be on another schema version (mid-migration).
                self._check_blob_columns(True)
        # Before the first read of the registry, so no write is missed.
        self._feed = self._open_change_feed(install=mode == "auto")
        self._poller = None
        self.thread_pool_executor_worker_count = (
            registry_config.thread_pool_executor_worker_count
        )
        self.purge_feast_metadata = registry_config.purge_feast_metadata
        self.enable_online_versioning = (
            registry_config.enable_online_feature_view_versioning
        )
        self.serve_features_while_materializing = (
            registry_config.serve_features_while_materializing
        )
        super().__init__(
            project=project,
            cache_ttl_seconds=registry_config.cache_ttl_seconds,
            cache_mode=registry_config.cache_mode,
        )
        self._cache_read_at = time.monotonic()  # CachingRegistry read it (proto())
        self._sync_feast_metadata_to_projects_table()
        if not self.purge_feast_metadata:
            self._maybe_init_project_metadata(project)
        self.bad_rows: List[Tuple[str, str, str, str]] = []
        self._reported_rows: set = set()
        self._reported_lock = threading.Lock()
        _open_registries.add(self)
        logger.info("feast_sqlreg: native SQL registry on %s", self._store.url)
        self._start_poller()
        #: This registry's ``registry`` label in the metrics (feast_sqlreg._metrics).
        self.metrics_label = _metrics.track_registry(self, project)

    def __repr__(self):
        return f"<NativeSqlRegistry {self._store.url}>"

    def close(self):
        """Closes every database connection of this registry (also done at
        interpreter exit). Later calls raise feast_sqlreg.errors.InterfaceError."""
        try:
            self._flush()
        finally:
            self._close()

    def _close(self):
        _metrics.forget_registry(self)
        _internals.cancel_refresh_thread(self)
        poller = getattr(self, "_poller", None)
        if poller is not None:
            poller.stop()
        self._store.close()
        _engines.dispose(self)

    @property
    def write_engine(self):
        """A SQLAlchemy engine on ``path``, as stock's (feast_sqlreg._engines):
        made on first use; the native registry itself never uses it."""
        return _engines.engines_of(self).write

    @property
    def read_engine(self):
        """A SQLAlchemy engine on ``read_path``, or write_engine when unset."""
        return _engines.engines_of(self).read

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _verify_schema(self):
        missing = set(self._store.missing_tables(False))
        if self.registry_config.read_path:
            missing |= set(self._store.missing_tables(True))
        if missing:
            raise FeastRegistrySchemaError(sorted(missing))

    @staticmethod
    def _warn_if_narrow_blob_columns(engine, registry_metadata=None):
        """Stock's check, on a SQLAlchemy engine: same signature, same log
        (Feast's own function runs). The registry's start-up does the same
        check through the native store (_check_blob_columns), making no
        engine, unless this method was replaced."""
        return _internals.stock_blob_check(engine, registry_metadata)

    def _check_blob_columns(self, read: bool):
        """Logs an ERROR, as stock does, when a MySQL/MariaDB registry still
        has 64 KB BLOB proto columns (tables created before Feast's LONGBLOB
        fix: create_all never widens them, and a large proto is truncated).
        Never refuses to start; a failed check is only logged at DEBUG."""
        try:
            stale = self._store.narrow_blob_columns(read)
        except Exception as e:
            logger.debug("Could not check registry BLOB column widths: %s", e)
            return
        if stale:
            url = self.registry_config.read_path if read else self.registry_config.path
            dialect = "mariadb" if url.startswith("mariadb") else "mysql"
            logger.error(
                "SQL registry has %d column(s) still typed BLOB (64 KB cap) "
                "on this %s database: %s. Large protos (e.g. a FeatureView) "
                "will be silently truncated and fail to deserialize. "
                "create_all() does not migrate existing columns; run the "
                "ALTER TABLE ... MODIFY ... LONGBLOB migration documented at "
                "docs/reference/registries/sql.md to fix this.",
                len(stale),
                dialect,
                ", ".join(sorted(f"{table}.{column}" for table, column in stale)),
            )

    # ---- freshness: change detection ---------------------------------------
    #
    # A cached registry follows the database's change log (_changes.py) from
    # a background thread: a look every _changes.POLL_SECONDS is one query; when
    # something changed, the registry is re-read there and swapped in whole.
    # While the feed is healthy the cache never expires, whatever
    # cache_ttl_seconds says, and no request waits on a refresh; when it is
    # not (no change log, errors), cache_ttl_seconds rules as in stock.

    def _open_change_feed(self, install: bool):
        if _changes.POLL_SECONDS <= 0:
            return None
        if install:
            try:
                self._store.install_change_log()
            except errors.DatabaseError as e:
                logger.warning(
                    "feast_sqlreg: cannot install the change log on %s (%s); other "
                    "processes' writes reach this registry's cache after cache_ttl_seconds",
                    self._store.url,
                    e,
                )
        try:
            return ChangeFeed(self._raw_store)  # the poller writes nothing waiting
        except errors.DatabaseError as e:
            logger.info(
                "feast_sqlreg: change detection is off on %s (%s); run `feast registry "
                "create-schema` with a user that may create triggers to turn it on",
                self._store.url,
                e,
            )
            return None

    def _start_poller(self):
        if self._feed is not None:
            self._poller = _changes.Poller(self)

    def feed_healthy(self) -> bool:
        """True while change detection keeps this registry's cache fresh."""
        poller = self._poller
        if poller is None:
            return False
        if poller.pid != os.getpid():  # a forked child: its own thread
            self._poller = _changes.Poller(self)
            return False
        return poller.healthy()

    def is_cache_valid(self) -> bool:
        if self.feed_healthy() and _internals.cache_filled(self):
            return True
        return super().is_cache_valid()

    def refresh(self, project: Optional[str] = None):
        """Re-reads the registry. Of two refreshes that overlap, the one that
        started last is kept: an older read never replaces a newer one."""
        seq, _ = self._begin_update()
        try:
            registry = self.proto()
        except Exception as e:  # stock: a failed refresh keeps the old cache
            logger.debug("Error while refreshing registry: %s", e, exc_info=True)
            return
        self._install(seq, registry, "full")

    def _begin_update(self):
        """(sequence number, cached registry now) for a cache update."""
        with self._swap_lock:
            self._refresh_seq += 1
            return self._refresh_seq, _internals.cached_proto(self)

    def _install(self, seq: int, registry, how: str) -> None:
        """Swaps registry in unless an update begun later is already in."""
        with self._swap_lock:
            if seq <= self._installed_seq:
                return
            self._installed_seq = seq
            _internals.install_cached_proto(self, registry)
            self._cache_read_at = time.monotonic()
            self.cache_updates[how] += 1
        for listener in list(self.cache_listeners):
            listener()

    def _on_changes(self, changed) -> None:
        """Called by the poller with the (table, project, name) keys that
        changed (None: unknown): patches the cached registry with those
        objects where that is cheaper than reading it all again."""
        if changed is None or not self._patch_cache(changed):
            self.refresh()

    def _patch_cache(self, changed) -> bool:
        """A copy of the cached registry with each changed object read again
        (or removed, when it is gone) is swapped in; False when only a full
        read will do (a project or infra changed, too many objects, a bad
        row)."""
        keys = [(t, p, n) for t, p, n in changed if t not in _NOT_IN_REGISTRY]
        if not keys:
            return True
        if len(keys) > PATCH_LIMIT or any(_TABLE_KIND.get(t) not in _PATCHABLE for t, _, _ in keys):
            return False
        seq, base = self._begin_update()
        try:
            fetched = [(_TABLE_KIND[t], p, n, self._store.get(_TABLE_KIND[t], p, n)) for t, p, n in keys]
        except errors.DataError:
            return False  # the full read names and leaves out the bad row
        registry = RegistryProto()
        registry.CopyFrom(base)
        projects = {p.spec.name for p in registry.projects}
        for kind, project, name, data in fetched:
            field = getattr(registry, _KIND_FIELD[kind])
            for i, message in enumerate(field):
                carrier = _carrier(kind, message)
                if carrier.name == name and carrier.project == project:
                    del field[i]
                    break
            if data is not None and project in projects:  # stock skips unlisted projects
                message = field.add()
                message.MergeFromString(data)
                _carrier(kind, message).project = project
        registry.version_id = str(uuid.uuid4())
        self._install(seq, registry, "patched")
        return True

    # ---- plumbing ---------------------------------------------------------

    def _written(self):
        """After a write: in sync mode the next cached read re-reads the
        registry (stock re-reads it at once, after every single write)."""
        if _internals.sync_cache_mode(self):
            _internals.expire_cache(self)

    def _get(self, kind: int, name: str, project: str, raise_not_found=True):
        proto_class, python_class, not_found = _KINDS[kind]
        data = self._store.get(kind, project, name)
        if data is None:
            if raise_not_found and not_found is not None:
                raise not_found(name, project)
            return None
        return python_class.from_proto(self._parse(kind, project, name, data))

    @staticmethod
    def _parse(kind: int, project: str, name: str, data: bytes):
        """The stored proto; DataError naming the row when Feast cannot parse
        it (the C core already checked its wire format)."""
        try:
            return _KINDS[kind][0].FromString(data)
        except DecodeError as e:
            raise errors.DataError(
                f"{_TABLE[kind]} row {name!r} in project {project!r}: "
                f"Feast cannot parse the stored proto ({e})"
            ) from None

    def _report_bad_rows(self, bad) -> None:
        """Logs each stored row left out of an answer (table, project, name,
        reason) once for this registry: a refresh every few seconds would
        otherwise repeat the same warning forever."""
        for row in bad:
            key = tuple(row)
            with self._reported_lock:
                if key in self._reported_rows:
                    continue
                self._reported_rows.add(key)
            table, project, name, reason = key
            logger.warning(
                "feast_sqlreg: left out %s row %r in project %r of %s: %s. The rest of "
                "the registry is served; re-apply or delete that object to repair it.",
                table,
                name,
                project,
                self._store.url,
                reason,
            )

    def _parsed_rows(self, kind: int, project: str, rows, bad):
        """Parses (name, proto) rows; rows Feast cannot parse join the bad
        ones, which are reported and left out."""
        bad = list(bad)
        protos = []
        for name, data in rows:
            try:
                protos.append(self._parse(kind, project, name, data))
            except errors.DataError as e:
                bad.append((_TABLE[kind], project, name, str(e).split(": ", 1)[1]))
        if bad:
            self._report_bad_rows(bad)
        return protos

    def _list(
        self,
        kind: int,
        project: str,
        tags: Optional[dict] = None,
        proto_only: bool = False,
        skip_udf: bool = False,
        updated_since: Optional[datetime] = None,
    ):
        proto_class, python_class, _ = _KINDS[kind]
        since = -1
        if updated_since is not None:
            if updated_since.tzinfo is None:
                updated_since = updated_since.replace(tzinfo=timezone.utc)
            since = int(updated_since.astimezone(timezone.utc).timestamp())
        protos = self._stored_protos(kind, project, since)
        if proto_only:
            return protos
        use_skip_udf = skip_udf and _takes_skip_udf(python_class)
        objects = []
        for proto in protos:
            obj = (
                python_class.from_proto(proto, skip_udf=True)
                if use_skip_udf
                else python_class.from_proto(proto)
            )
            if has_all_tags(obj.tags, tags):
                objects.append(obj)
        return objects

    def _stored_protos(self, kind: int, project: str, since: int = -1):
        """The parsed stored protos of one kind in one project (every
        project for PROJECT), bad rows reported and left out."""
        if kind == PROJECT:
            rows, bad = self._store.list_projects()
        else:
            rows, bad = self._store.list(kind, project, since)
        return self._parsed_rows(kind, project, rows, bad)

    # ---- stored protos, without Feast objects -----------------------------
    #
    # What the registry server's fast path (feast_sqlreg.server) answers
    # from: the messages Feast itself serialized, which its object round trip
    # (from_proto, then to_proto) gives back field for field, but for the
    # project stamp: no Feast object but Project carries its project into
    # to_proto(), so these messages never carry one either.

    def find_proto(self, kind: int, name: str, project: str, allow_cache: bool = False):
        """The stored message of one object, or None. For PROJECT, project
        is the name."""
        return self._find_proto(kind, name, project, allow_cache)

    def _find_proto(self, kind: int, name: str, project: str, allow_cache: bool):
        # find_proto, not counted again in the metrics when get_proto calls it
        if allow_cache:
            return self._cached_index()[1].get((kind, project, name))
        data = self._store.get(kind, project, name)
        return None if data is None else _unstamped(kind, self._parse(kind, project, name, data))

    def get_proto(self, kind: int, name: str, project: str, allow_cache: bool = False):
        """find_proto, raising what the stock get_* call raises when there
        is no such object."""
        message = self._find_proto(kind, name, project, allow_cache)
        if message is None:
            raise _not_found(kind, name, project, allow_cache)
        return message

    def list_protos(
        self, kind: int, project: str, allow_cache: bool = False, tags: Optional[dict] = None
    ) -> list:
        """The stored messages of one kind in one project ("" and every
        project for PROJECT) that carry all the given tags, in the order
        the stock list_* call returns their objects."""
        if allow_cache:
            protos = self._cached_index()[0].get((kind, project), ())
        else:
            protos = [_unstamped(kind, p) for p in self._stored_protos(kind, project)]
        if not tags:
            return list(protos)
        return [p for p in protos if has_all_tags(_carrier(kind, p).tags, tags)]

    def _cached_index(self):
        """(lists, by_name) over the cached registry proto, refreshed as
        cached reads are: lists maps (kind, project) to its messages in
        registry order, by_name maps (kind, project, name) to the first
        message of that name, as stock's cached lookups find it. Rebuilt once
        per new cached proto."""
        _internals.refresh_cache_if_needed(self)
        registry = _internals.cached_proto(self)
        index = self._proto_index
        if index is None or index[0] is not registry:
            index = (registry,) + _index_registry(registry)
            self._proto_index = index
        return index[1], index[2]

    # ---- cached gets: fresh objects without from_proto (feast_sqlreg._objects)
    #
    # Feast's cached get_<kind> of these kinds builds a new object from the
    # cached proto on every call, so each caller owns its object; these give
    # a new copy of a template made once per stored message, equal to what
    # from_proto builds. A name the cached proto lacks goes to Feast's own
    # lookup, which raises as stock does. get_any_feature_view and the
    # cached lists, which Feast shares between callers, stay Feast's.

    def _cached_object(self, kind: int, name: str, project: str):
        """A new object of the cached registry's (kind, project, name), or
        None when it has none; refreshed first as Feast's cached reads are."""
        _internals.refresh_cache_if_needed(self)
        templates = self.__dict__.get("_templates")
        if templates is None:
            templates = self.__dict__.setdefault("_templates", _objects.Templates())
        return templates.get(_internals.cached_proto(self), kind, project, name)

    def get_entity(self, name: str, project: str, allow_cache: bool = False) -> Entity:
        found = self._cached_object(ENTITY, name, project) if allow_cache else None
        return found if found is not None else super().get_entity(name, project, allow_cache)

    def get_data_source(self, name: str, project: str, allow_cache: bool = False) -> DataSource:
        found = self._cached_object(DATA_SOURCE, name, project) if allow_cache else None
        return found if found is not None else super().get_data_source(name, project, allow_cache)

    def get_feature_view(self, name: str, project: str, allow_cache: bool = False) -> FeatureView:
        found = self._cached_object(FEATURE_VIEW, name, project) if allow_cache else None
        return found if found is not None else super().get_feature_view(name, project, allow_cache)

    def get_stream_feature_view(
        self, name: str, project: str, allow_cache: bool = False
    ) -> StreamFeatureView:
        found = self._cached_object(STREAM_FEATURE_VIEW, name, project) if allow_cache else None
        return found if found is not None else super().get_stream_feature_view(name, project, allow_cache)

    def get_on_demand_feature_view(
        self, name: str, project: str, allow_cache: bool = False
    ) -> OnDemandFeatureView:
        found = self._cached_object(ON_DEMAND_FEATURE_VIEW, name, project) if allow_cache else None
        return found if found is not None else super().get_on_demand_feature_view(name, project, allow_cache)

    def get_label_view(self, name: str, project: str, allow_cache: bool = False) -> LabelView:
        found = self._cached_object(LABEL_VIEW, name, project) if allow_cache else None
        return found if found is not None else super().get_label_view(name, project, allow_cache)

    def get_feature_service(
        self, name: str, project: str, allow_cache: bool = False
    ) -> FeatureService:
        found = self._cached_object(FEATURE_SERVICE, name, project) if allow_cache else None
        return found if found is not None else super().get_feature_service(name, project, allow_cache)

    def _apply_object(
        self, kind: int, project: str, obj, name: Optional[str] = None, versioned=False,
        no_promote=False, commit=True,
    ):
        """Stock _apply_object (and, with versioned, the rest of stock's
        apply_feature_view: the name check across view tables, the version
        history) as one read and at most one transaction.

        The read (Store.read_for_apply, one statement on the write database)
        brings the stored row, whether another view table holds the name,
        and the next version number. Everything is decided on those bytes,
        building no Feast object in the common cases (_definition,
        _surely_differs, _schema_surely_same; Feast's from_proto and == or
        _schema_or_udf_changed otherwise). The write is one transaction that
        first checks that the row is still what was read (expect): if
        another writer changed it meanwhile, nothing is written and the
        decision is made again on a fresh read. The C core merges
        created_timestamp and intervals under the row lock.

        no_promote: a schema change is saved as the next version and the
        stored row stays as it is, as Feast documents.

        commit=False (what feast apply passes for every object, then calls
        commit()): decided now, written with the others waiting, in one
        transaction, at commit() or at the next other use of the store
        (any read, any other write, close, exit), whichever comes first.
        As Feast documents it: not persisted immediately."""
        name = name or getattr(obj, "name", None)
        assert name, f"name needs to be provided for {obj}"
        rivals = ()
        if versioned:
            rivals = tuple(_VIEW_KIND_OF_TYPE[t] for t in _internals.view_name_rivals(obj))
        with _typechecks.thread_suppressed():
            new = obj.to_proto()
        with self._pending_lock:
            if (kind, project, name) in self._pending_keys:
                self._flush()  # the read must see it
            for rival in rivals:
                if (rival, project, name) in self._pending_keys:
                    raise ConflictingFeatureViewNames(
                        name, _VIEW_TYPE_NAME[rival], type(obj).__name__
                    )
            if not commit:
                stored = self._unchanged_in_snapshot(kind, project, name, new, rivals)
                if stored is not None:  # as the read below would find it
                    self._check_at_commit(_Pending(kind, project, name, obj, versioned,
                                                   no_promote, stored))
                    return
        for attempt in range(_APPLY_ATTEMPTS + 1):
            if attempt:
                with self._races_lock:
                    self.apply_races += 1
                # Writers racing on one row: step aside a little, at random.
                time.sleep(random.uniform(0, 0.002 * attempt))
            stored, taken, next_version, has_project = self._store.read_for_apply(
                kind, project, name, rivals, versioned
            )
            if taken is not None:
                raise ConflictingFeatureViewNames(name, _VIEW_TYPE_NAME[taken], type(obj).__name__)
            now = utc_now()
            write = self._decide(kind, project, obj, new, stored, next_version, versioned, now)
            if write is None:
                if not commit:
                    self._check_at_commit(_Pending(kind, project, name, obj, versioned,
                                                   no_promote, stored))
                return  # unchanged: nothing written
            sent, extra = write
            if no_promote and extra.get("version_type") and stored is not None:
                extra["versions_only"] = True
            # The last attempt of a write that makes no new version does not
            # insist on the row it read: the core merges under the row lock
            # and the last writer wins, as in stock (whose read is not
            # checked at all). A new view's v0 is then recorded only by the
            # writer that inserted it.
            bump = extra.get("versions_only") or (extra.get("version_type") and stored is not None)
            if not commit:
                self._defer(kind, project, name, obj, versioned, no_promote, sent, now, stored,
                            extra)
                return
            if attempt < _APPLY_ATTEMPTS or bump:
                extra["expect"] = stored
            done = self._store.apply(
                kind,
                project,
                name,
                sent,
                int(now.timestamp()),
                **self._bookkeeping(kind, project, now, stored is not None and has_project == 3),
                **extra,
            )
            if done is not None:
                self._written()
                return
        raise ConcurrentVersionConflict(
            f"Failed to assign version for '{name}' after {_APPLY_ATTEMPTS} attempts "
            f"due to concurrent applies. Please retry."
        )

    def _unchanged_in_snapshot(self, kind: int, project: str, name: str, new, rivals):
        """The stored bytes when an apply with commit=False of new
        (to_proto()) is unchanged, told without a read of its own, else
        None: feast apply re-applies every object of a repository with
        commit=False, most of them unchanged, and one read per object is
        most of its time on a database server. The rows of the kind (and of the rival view
        tables) in the project are read in one statement each, from the
        write database, and kept for SNAPSHOT_SECONDS at most, until
        commit() or until any other use of the store (any read or write
        of this registry). Only "unchanged on the bytes" (_same_definition)
        is decided here, with no rival row of the name; everything else
        (new, changed, a name another view table holds, a bad row) reads
        its row and decides as a commit=True apply does. commit() checks
        that the row is still what was decided on (_check_at_commit)."""
        if kind not in _SAME_BYTES:
            return None
        stored = self._rows_for_applies(kind, project).get(name)
        if stored is None:
            return None
        for rival in rivals:
            if name in self._rows_for_applies(rival, project):
                return None
        with _typechecks.thread_suppressed():
            same = _same_definition(kind, _KINDS[kind][0].FromString(stored), new)
        return stored if same else None

    def _check_at_commit(self, unchanged: "_Pending") -> None:
        """An apply with commit=False found unchanged (item: the stored
        bytes it was found equal to) takes effect at commit() too: there
        the row is read again, and an apply whose row another writer
        changed meanwhile is made again, as with commit=True."""
        with self._pending_lock:
            self._unchanged[unchanged[:3]] = unchanged

    def _changed_since(self, unchanged) -> list:
        """Of the applies found unchanged, those whose row is no longer the
        bytes they were found equal to: one read per kind and project."""
        groups: Dict[Tuple[int, str], list] = {}
        for u in unchanged:
            groups.setdefault((u.kind, u.project), []).append(u)
        changed = []
        for (kind, project), group in groups.items():
            rows = self._primary_rows(kind, project)
            changed += [u for u in group if rows.get(u.name) != u.item]
        return changed

    def _rows_for_applies(self, kind: int, project: str) -> Dict[str, Optional[bytes]]:
        """_primary_rows, kept for SNAPSHOT_SECONDS (and until _flush)."""
        now = time.monotonic()
        with self._pending_lock:
            taken = self._snapshots.get((kind, project))
            if taken is not None and now - taken[0] < SNAPSHOT_SECONDS:
                return taken[1]
            rows = self._primary_rows(kind, project)
            self._snapshots[(kind, project)] = (now, rows)
            return rows

    def _primary_rows(self, kind: int, project: str) -> Dict[str, Optional[bytes]]:
        """{name: stored bytes, or None for a bad row} of a kind in a
        project, read from the write database in one statement."""
        rows, bad = self._raw_store.list(kind, project, -1, True)
        found: Dict[str, Optional[bytes]] = dict(rows)
        for _table, _project, bad_name, _reason in bad:
            found[bad_name] = None
        return found

    def _defer(self, kind, project, name, obj, versioned, no_promote, sent, now, stored, extra):
        """Keeps a decided write of an apply with commit=False for _flush."""
        book = self._bookkeeping(kind, project, now)
        item = (
            kind, project, name, sent, int(now.timestamp()), book.get("project_proto"),
            book.get("project_uuid"), book["touch_metadata"], extra.get("version_number", 0),
            extra.get("version_type"), extra.get("version_id"), stored,
            extra.get("old_version_id"), bool(extra.get("versions_only")),
        )
        with self._pending_lock:
            self._unchanged.pop((kind, project, name), None)  # this one is later
            self._pending_keys[(kind, project, name)] = len(self._pending)
            self._pending.append(_Pending(kind, project, name, obj, versioned, no_promote, item))
        self._written()  # a cached read first writes them (through the store)

    def _flush(self) -> None:
        """Writes the waiting applies in one transaction. When one of their
        rows changed since it was decided on (or its version number was
        taken), nothing of it is written and each apply decides again and
        writes alone, as if it had been made with commit=True; an error
        then comes from the apply that meets it, the others written. The
        applies found unchanged are checked too: one whose row another
        writer changed since is made again the same way."""
        with self._pending_lock:
            self._snapshots.clear()
            if not self._pending and not self._unchanged:
                return
            pending, unchanged = self._pending, list(self._unchanged.values())
            self._pending, self._pending_keys, self._unchanged = [], {}, {}
            redo = []
            if pending:
                try:
                    if self._raw_store.apply_batch(_once_per_project(pending)) is None:
                        redo = list(pending)
                except errors.DatabaseError:
                    redo = list(pending)  # decided again below, one by one
            if unchanged:
                redo += self._changed_since(unchanged)
            first_error = None
            for p in redo:
                try:
                    self._apply_object(p.kind, p.project, p.obj, p.name, p.versioned,
                                       p.no_promote)
                except Exception as e:  # raised once all are written
                    first_error = first_error or e
            if first_error is not None:
                raise first_error

    def _ensure_unique_view_name(self, kind: int, project: str, feature_view) -> None:
        """Stock's _ensure_feature_view_name_is_unique, in one statement."""
        rivals = tuple(_VIEW_KIND_OF_TYPE[t] for t in _internals.view_name_rivals(feature_view))
        _, taken, _, _ = self._store.read_for_apply(kind, project, feature_view.name, rivals)
        if taken is not None:
            raise ConflictingFeatureViewNames(
                feature_view.name, _VIEW_TYPE_NAME[taken], type(feature_view).__name__
            )

    def _bookkeeping(self, kind: int, project: str, now: datetime, known=False) -> dict:
        """The project row and metadata an object write creates if missing.
        known: an update of a row the read found, in a project whose row and
        project_uuid the same read found; the update only applies while that
        row is as read, so the project is still there (delete_project
        deletes its objects in the same transaction) and only the last
        updated time is recorded."""
        touch = dict(touch_metadata=not self.purge_feast_metadata)
        if known:
            return touch
        project_proto = None
        if kind != PROJECT:
            with _typechecks.thread_suppressed():
                project_proto = (
                    Project(name=project, created_timestamp=now, last_updated_timestamp=now)
                    .to_proto()
                    .SerializeToString()
                )
        return dict(
            project_proto=project_proto,
            project_uuid=None if self.purge_feast_metadata else str(uuid.uuid4()),
            **touch,
        )

    def _decide(self, kind, project, obj, new, stored, next_version, versioned, now):
        """What an apply of obj (new: its to_proto()) over the stored bytes
        writes: None when nothing (unchanged), else (bytes, Store.apply
        version arguments). Mutates obj as stock does (created and updated
        times, intervals, version number)."""
        proto_class, python_class, _ = _KINDS[kind]
        if stored is None:
            if hasattr(obj, "created_timestamp"):
                obj.created_timestamp = now
            if hasattr(obj, "last_updated_timestamp"):
                obj.last_updated_timestamp = now
            if versioned:
                obj.current_version_number = 0
            proto = _restamped(kind, obj, new, now, now, 0 if versioned else None)
            if hasattr(proto, "meta") and hasattr(proto.meta, "created_timestamp"):
                if not proto.meta.HasField("created_timestamp"):
                    proto.meta.created_timestamp.FromDatetime(now)
            if not versioned:
                return proto.SerializeToString(), {}
            # New: stored as its v0 snapshot and recorded as v0 in the same
            # transaction, the end state of stock's three writes.
            proto.spec.project = project
            return proto.SerializeToString(), dict(
                version_number=0, version_type=_VERSION_TYPE[kind], version_id=generate_version_id()
            )
        if kind == INFRA and _same_definition(kind, proto_class.FromString(stored), new):
            return None  # feast apply's update_infra of the same tables: stock rewrites it
        if kind not in _COMPARED:
            return new.SerializeToString(), {}  # stock writes these whatever they hold
        stored_proto = proto_class.FromString(stored)
        existing = None
        # The common re-apply (feast apply of an unchanged repo): equal
        # definitions, no Feast object built. Reading the stored object runs
        # without typeguard's checks of Feast's own return values, as reads
        # do (feast_sqlreg._typechecks).
        with _typechecks.thread_suppressed():
            differs = False
            if kind in _SAME_BYTES:
                if _same_definition(kind, stored_proto, new):
                    return None
                old_def = _definition_message(kind, stored_proto)
                differs = _surely_differs(kind, obj, old_def, _definition_message(kind, new))
            if not differs:
                existing = type(obj).from_proto(stored_proto)
        if existing is not None and existing == obj:
            return None
        created = stored_proto.meta.created_timestamp.ToDatetime().replace(tzinfo=timezone.utc)
        obj.created_timestamp = created
        updated = None
        if hasattr(obj, "last_updated_timestamp"):
            obj.last_updated_timestamp = updated = now
        if isinstance(obj, (FeatureView, StreamFeatureView)):
            obj.update_materialization_intervals(
                existing.materialization_intervals
                if existing is not None
                else _intervals_of(stored_proto)
            )
        proto = _restamped(kind, obj, new, created, updated)
        if not versioned or not self._schema_changed(kind, stored_proto, proto, existing):
            return proto.SerializeToString(), {}
        # A schema or UDF change: the next version, and v0 for the stored
        # definition when the view has no history yet.
        number = next_version or 1
        obj.current_version_number = number
        if "current_version_number" in proto.meta.DESCRIPTOR.fields_by_name:
            proto.meta.current_version_number = number
        proto.spec.project = project
        return proto.SerializeToString(), dict(
            version_number=number,
            version_type=_VERSION_TYPE[kind],
            version_id=generate_version_id(),
            old_version_id=generate_version_id() if next_version == 0 else None,
        )

    @staticmethod
    def _schema_changed(kind: int, stored_proto, proto, existing) -> bool:
        """Stock's decision, on the stored object and the one written as
        read back from its bytes: bytes when they settle it, else Feast's
        _schema_or_udf_changed."""
        if _schema_surely_same(kind, stored_proto, proto):
            return False
        proto_class, python_class, _ = _KINDS[kind]
        with _typechecks.thread_suppressed():
            old_fv = existing if existing is not None else python_class.from_proto(stored_proto)
            new_fv = python_class.from_proto(proto_class.FromString(proto.SerializeToString()))
        return _internals.schema_or_udf_changed(new_fv, old_fv)

    def _delete(self, kind: int, name: str, project: str) -> int:
        _, _, not_found = _KINDS[kind]
        deleted = self._store.delete(
            kind,
            project,
            name,
            int(utc_now().timestamp()),
            touch_metadata=not self.purge_feast_metadata,
        )
        if deleted < 1 and not_found is not None:
            raise not_found(name, project)
        self._written()
        return deleted

    def _maybe_init_project_metadata(self, project: str):
        self._store.meta_init(
            project, PROJECT_UUID, str(uuid.uuid4()), int(utc_now().timestamp())
        )

    def _sync_feast_metadata_to_projects_table(self):
        """Projects known only from feast_metadata (registries written by old
        Feast versions) get a projects row, as stock does."""
        known = dict(self._store.meta_by_key(PROJECT_UUID))
        if not known:
            return
        rows, _ = self._store.list_projects()
        have = {name for name, _ in rows}
        for name in sorted(set(known) - have):
            self.apply_project(
                Project(
                    name=name,
                    created_timestamp=datetime.fromtimestamp(known[name], tz=timezone.utc),
                )
            )
        if self.purge_feast_metadata:
            for name in known:
                self._store.meta_delete_project(name)

    # ---- projects ---------------------------------------------------------

    def _list_projects(self, tags: Optional[dict]) -> List[Project]:
        objects = []
        for proto in self._stored_protos(PROJECT, ""):
            obj = Project.from_proto(proto)
            if has_all_tags(obj.tags, tags):
                objects.append(obj)
        return objects

    def _get_project(self, name: str) -> Project:
        return self._get(PROJECT, name, name)

    def apply_project(self, project: Project, commit: bool = True):
        self._apply_object(PROJECT, project.name, project, commit=commit)

    def delete_project(self, name: str, commit: bool = True):
        self.get_project(name, allow_cache=False)  # ProjectObjectNotFoundException
        self._store.delete_project(name)
        self._written()

    def _list_project_metadata(self, project: str) -> List[ProjectMetadata]:
        rows = self._store.meta_list(project)
        if not rows:
            return []
        metadata = ProjectMetadata(project_name=project)
        for key, value, _ in rows:
            if key == PROJECT_UUID:
                metadata.project_uuid = value
                break
        return [metadata]

    def set_project_metadata(self, project: str, key: str, value: str):
        """Set a custom project metadata key-value pair in feast_metadata."""
        self._store.meta_set(project, key, value, int(utc_now().timestamp()))

    def get_project_metadata(self, project: str, key: str) -> Optional[str]:
        """Get a custom project metadata value by key from feast_metadata."""
        row = self._store.meta_get(project, key)
        return row[0] if row is not None else None

    # ---- entities, data sources, services, datasets, permissions ----------

    def apply_entity(self, entity: Entity, project: str, commit: bool = True):
        self._apply_object(ENTITY, project, entity, commit=commit)

    def _get_entity(self, name: str, project: str) -> Entity:
        return self._get(ENTITY, name, project)

    def _list_entities(self, project: str, tags: Optional[dict], **kwargs) -> List[Entity]:
        return self._list(ENTITY, project, tags, **kwargs)

    def delete_entity(self, name: str, project: str, commit: bool = True):
        return self._delete(ENTITY, name, project)

    def apply_data_source(self, data_source: DataSource, project: str, commit: bool = True):
        self._apply_object(DATA_SOURCE, project, data_source, commit=commit)

    def _get_data_source(self, name: str, project: str) -> DataSource:
        return self._get(DATA_SOURCE, name, project)

    def _list_data_sources(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[DataSource]:
        return self._list(DATA_SOURCE, project, tags, **kwargs)

    def delete_data_source(self, name: str, project: str, commit: bool = True):
        return self._delete(DATA_SOURCE, name, project)

    def apply_feature_service(
        self, feature_service: FeatureService, project: str, commit: bool = True
    ):
        feature_service.prepare_for_apply(self, project, allow_cache=True)
        self._apply_object(FEATURE_SERVICE, project, feature_service, commit=commit)

    def _get_feature_service(self, name: str, project: str) -> FeatureService:
        return self._get(FEATURE_SERVICE, name, project)

    def _list_feature_services(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[FeatureService]:
        return self._list(FEATURE_SERVICE, project, tags, **kwargs)

    def delete_feature_service(self, name: str, project: str, commit: bool = True):
        return self._delete(FEATURE_SERVICE, name, project)

    def apply_saved_dataset(
        self, saved_dataset: SavedDataset, project: str, commit: bool = True
    ):
        self._apply_object(SAVED_DATASET, project, saved_dataset, commit=commit)

    def _get_saved_dataset(self, name: str, project: str) -> SavedDataset:
        return self._get(SAVED_DATASET, name, project)

    def _list_saved_datasets(
        self,
        project: str,
        tags: Optional[dict] = None,
        namespace: Optional[str] = None,
        collection: Optional[str] = None,
        **kwargs,
    ) -> List[SavedDataset]:
        results = self._list(SAVED_DATASET, project, tags, **kwargs)
        if namespace is not None:
            results = [sd for sd in results if sd.namespace == namespace]
        if collection is not None:
            results = [sd for sd in results if sd.collection == collection]
        return results

    def delete_saved_dataset(self, name: str, project: str, commit: bool = True):
        return self._delete(SAVED_DATASET, name, project)

    def apply_validation_reference(
        self,
        validation_reference: ValidationReference,
        project: str,
        commit: bool = True,
    ):
        self._apply_object(VALIDATION_REFERENCE, project, validation_reference, commit=commit)

    def _get_validation_reference(self, name: str, project: str) -> ValidationReference:
        return self._get(VALIDATION_REFERENCE, name, project)

    def _list_validation_references(
        self, project: str, tags: Optional[dict] = None, **kwargs
    ) -> List[ValidationReference]:
        return self._list(VALIDATION_REFERENCE, project, tags, **kwargs)

    def delete_validation_reference(self, name: str, project: str, commit: bool = True):
        self._delete(VALIDATION_REFERENCE, name, project)

    def apply_permission(self, permission: Permission, project: str, commit: bool = True):
        self._apply_object(PERMISSION, project, permission, commit=commit)

    def _get_permission(self, name: str, project: str) -> Permission:
        return self._get(PERMISSION, name, project)

    def _list_permissions(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[Permission]:
        return self._list(PERMISSION, project, tags, **kwargs)

    def delete_permission(self, name: str, project: str, commit: bool = True):
        return self._delete(PERMISSION, name, project)

    def update_infra(self, infra: Infra, project: str, commit: bool = True):
        self._apply_object(INFRA, project, infra, name="infra_obj")

    def _get_infra(self, project: str) -> Infra:
        infra = self._get(INFRA, "infra_obj", project, raise_not_found=False)
        return infra if infra else Infra()

    # ---- feature views ----------------------------------------------------

    def _get_feature_view(self, name: str, project: str) -> FeatureView:
        return self._get(FEATURE_VIEW, name, project)

    def _get_stream_feature_view(self, name: str, project: str) -> StreamFeatureView:
        return self._get(STREAM_FEATURE_VIEW, name, project)

    def _get_on_demand_feature_view(self, name: str, project: str) -> OnDemandFeatureView:
        return self._get(ON_DEMAND_FEATURE_VIEW, name, project)

    def _get_label_view(self, name: str, project: str) -> LabelView:
        return self._get(LABEL_VIEW, name, project)

    def _get_any_feature_view(self, name: str, project: str) -> BaseFeatureView:
        for kind in _VIEW_LOOKUP_ORDER:
            fv = self._get(kind, name, project, raise_not_found=False)
            if fv:
                return fv
        raise FeatureViewNotFoundException(name, project)

    def _list_feature_views(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[FeatureView]:
        return self._list(FEATURE_VIEW, project, tags, **kwargs)

    def _list_stream_feature_views(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[StreamFeatureView]:
        return self._list(STREAM_FEATURE_VIEW, project, tags, **kwargs)

    def _list_on_demand_feature_views(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[OnDemandFeatureView]:
        return self._list(ON_DEMAND_FEATURE_VIEW, project, tags, **kwargs)

    def _list_label_views(
        self, project: str, tags: Optional[dict], **kwargs
    ) -> List[LabelView]:
        return self._list(LABEL_VIEW, project, tags, **kwargs)

    def _list_all_feature_views(
        self,
        project: str,
        tags: Optional[dict],
        updated_since: Optional[datetime] = None,
        **kwargs,
    ) -> List[BaseFeatureView]:
        views: List[BaseFeatureView] = []
        for kind in (FEATURE_VIEW, STREAM_FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, LABEL_VIEW):
            views += self._list(kind, project, tags, updated_since=updated_since, **kwargs)
        return views

    def delete_feature_view(self, name: str, project: str, commit: bool = True):
        deleted = self._store.delete_feature_view(
            project,
            name,
            int(utc_now().timestamp()),
            touch_metadata=not self.purge_feast_metadata,
        )
        if deleted == 0:
            raise FeatureViewNotFoundException(name, project)
        self._written()

    def delete_label_view(self, name: str, project: str, commit: bool = True):
        self._delete(LABEL_VIEW, name, project)

    def apply_feature_view(
        self,
        feature_view: BaseFeatureView,
        project: str,
        commit: bool = True,
        no_promote: bool = False,
    ):
        feature_view.ensure_valid()
        kind = view_kind(feature_view)
        is_latest, pin_version = parse_version(feature_view.version)
        if not is_latest:
            self._ensure_unique_view_name(kind, project, feature_view)
            return self._apply_pinned_version(feature_view, kind, project, pin_version)
        self._apply_object(
            kind, project, feature_view, versioned=True, no_promote=no_promote, commit=commit
        )

    def _apply_pinned_version(self, feature_view, kind: int, project: str, pin_version: int):
        snapshot = self._store.version_get(project, feature_view.name, pin_version)
        if snapshot is not None:
            # Pin (or revert) to a stored version; the definition itself must
            # be the active one, apart from the version.
            try:
                active = self._get_any_feature_view(feature_view.name, project)
                mine = feature_view.__copy__()
                mine.version = "latest"
                active.version = "latest"
                mine.created_timestamp = active.created_timestamp
                mine.last_updated_timestamp = active.last_updated_timestamp
                mine.current_version_number = active.current_version_number
                if hasattr(active, "materialization_intervals"):
                    mine.materialization_intervals = active.materialization_intervals
                if mine != active:
                    raise FeatureViewPinConflict(feature_view.name, version_tag(pin_version))
            except FeatureViewNotFoundException:
                pass
            snap_type, snap_bytes = snapshot
            snap_kind = _KIND_OF_VERSION_TYPE[snap_type]
            proto_class, python_class, _ = _KINDS[snap_kind]
            restored = python_class.from_proto(proto_class.FromString(snap_bytes))
            restored.version = feature_view.version
            restored.current_version_number = pin_version
            self._apply_object(kind, project, restored)
            return
        # A version that does not exist yet: declare it.
        feature_view.current_version_number = pin_version
        try:
            self._save_version(
                feature_view.name,
                project,
                pin_version,
                kind,
                self._snapshot(feature_view, project),
            )
        except errors.IntegrityError:
            raise ConcurrentVersionConflict(
                f"Version v{pin_version} of '{feature_view.name}' was just created by "
                f"another concurrent apply. Pull latest and retry."
            )
        self._apply_object(kind, project, feature_view)

    @staticmethod
    def _snapshot(feature_view, project: str) -> bytes:
        proto = feature_view.to_proto()
        proto.spec.project = project
        return proto.SerializeToString()

    def _save_version(self, name: str, project: str, number: int, kind: int, data: bytes):
        self._store.version_save(
            project,
            name,
            number,
            _VERSION_TYPE[kind],
            data,
            int(utc_now().timestamp()),
            generate_version_id(),
        )

    def get_feature_view_by_version(
        self, name: str, project: str, version_number: int, allow_cache: bool = False
    ) -> BaseFeatureView:
        snapshot = self._store.version_get(project, name, version_number)
        if snapshot is None:
            raise FeatureViewVersionNotFound(name, version_tag(version_number), project)
        snap_type, snap_bytes = snapshot
        proto_class, python_class, _ = _KINDS[_KIND_OF_VERSION_TYPE[snap_type]]
        fv = python_class.from_proto(proto_class.FromString(snap_bytes))
        fv.current_version_number = version_number
        return fv

    def list_feature_view_versions(self, name: str, project: str) -> List[Dict[str, Any]]:
        return [
            {
                "version": version_tag(number),
                "version_number": number,
                "feature_view_type": fv_type,
                "created_timestamp": datetime.fromtimestamp(created, tz=timezone.utc),
                "version_id": version_id,
            }
            for number, fv_type, created, version_id in self._store.version_list(
                project, name
            )
        ]

    def apply_materialization(
        self,
        feature_view,
        project: str,
        start_date: datetime,
        end_date: datetime,
        commit: bool = True,
    ):
        kind = view_kind(feature_view)
        if kind in (ON_DEMAND_FEATURE_VIEW, LABEL_VIEW):
            raise ValueError(
                f"Cannot apply materialization for feature {feature_view.name} "
                f"of type {_KINDS[kind][1]}"
            )
        found = self._store.apply_materialization(
            kind,
            project,
            feature_view.name,
            _epoch(start_date),
            _epoch(end_date),
            _epoch(utc_now()),
            touch_metadata=not self.purge_feast_metadata,
        )
        if not found:
            raise FeatureViewNotFoundException(feature_view.name, project)
        self._written()

    def apply_user_metadata(
        self,
        project: str,
        feature_view: BaseFeatureView,
        metadata_bytes: Optional[bytes],
    ):
        found = self._store.set_user_metadata(
            view_kind(feature_view),
            project,
            feature_view.name,
            metadata_bytes,
            int(utc_now().timestamp()),
        )
        if not found:
            raise FeatureViewNotFoundException(feature_view.name, project=project)

    def get_user_metadata(
        self, project: str, feature_view: BaseFeatureView
    ) -> Optional[bytes]:
        found, data = self._store.get_user_metadata(
            view_kind(feature_view), project, feature_view.name
        )
        if not found:
            raise FeatureViewNotFoundException(feature_view.name, project=project)
        return data

    # ---- whole registry ---------------------------------------------------

    def proto(self) -> RegistryProto:
        """The whole registry, assembled from the stored bytes by the C core
        in one read transaction and parsed once.

        Each one gets a fresh version_id: Feast memoizes cached lookups on
        (id(proto), version_id), and with stock's empty version_id a new
        proto that reuses a freed one's id() serves stale results."""
        data, bad = self._store.registry()
        try:
            registry = RegistryProto.FromString(data)
        except DecodeError:
            registry, more = self._salvage(data)
            bad = list(bad) + more
        if bad:
            self._report_bad_rows(bad)
        self.bad_rows = [tuple(row) for row in bad]
        registry.version_id = str(uuid.uuid4())
        return registry

    def _salvage(self, data: bytes):
        """The registry without the objects Feast cannot parse, and those
        rows, named. Only reached when a row passed the C core's wire check
        but not Feast's parser (invalid UTF-8 in a string, say)."""
        kept = bytearray()
        broken = set()
        fields = RegistryProto.DESCRIPTOR.fields_by_number
        for number, element in registry_elements(data):
            try:
                RegistryProto.FromString(element)
            except DecodeError:
                field = fields.get(number)
                broken.add(field.name if field else str(number))
                continue
            kept += element
        bad = []
        projects, _ = self._store.list_projects()
        for field in sorted(broken):
            kind = _REGISTRY_FIELD_KIND.get(field)
            if kind is None:
                bad.append(("registry", "", field, "Feast cannot parse it"))
                continue
            for project, project_proto in projects:
                if kind == PROJECT:
                    rows = [(project, project_proto)]
                else:
                    rows, _ = self._store.list(kind, project)
                for name, row in rows:
                    try:
                        _KINDS[kind][0].FromString(row)
                    except DecodeError as e:
                        reason = f"Feast cannot parse the stored proto ({e})"
                        bad.append((_TABLE[kind], project, name, reason))
        return RegistryProto.FromString(bytes(kept)), bad

    def teardown(self):
        self._store.teardown()
        self._store.release_idle()
        self._written()

    def commit(self):
        """Writes what applies with commit=False left waiting, in one
        transaction; every other write is committed when its call returns."""
        self._flush()


# The calls the metrics count (feast_sqlreg._metrics): Feast's registry API
# (BaseRegistry's public methods, inherited ones included) and the registry
# server's reads of stored messages. Not is_cache_valid (every cached read
# asks it) nor the static deserialize_registry_values.
_UNTIMED = {"is_cache_valid", "deserialize_registry_values"}
_TIMED = (
    {n for n in dir(BaseRegistry) if not n.startswith("_") and callable(getattr(BaseRegistry, n))}
    - _UNTIMED
    | {"find_proto", "get_proto", "list_protos", "teardown"}
)
# Reads build Feast objects from protos Feast itself serialized: without
# typeguard's checks in the reading thread (feast_sqlreg._typechecks); a
# read that is also timed gets both from one wrapper (one frame less on a
# cached get).
for _name in sorted(set(dir(NativeSqlRegistry)) | _TIMED):
    _read = _name.startswith(("get_", "list_")) and callable(getattr(NativeSqlRegistry, _name))
    if _name in _TIMED:
        _method = _metrics.timed(_name, getattr(NativeSqlRegistry, _name), checks_off=_read)
    elif _read:
        _method = _typechecks.without_type_checks(getattr(NativeSqlRegistry, _name))
    else:
        continue
    setattr(NativeSqlRegistry, _name, _method)
del _name, _read, _method

# The staticmethod's function: a class whose _warn_if_narrow_blob_columns is
# something else had it replaced (see NativeSqlRegistry.__init__).
_stock_blob_check = NativeSqlRegistry.__dict__["_warn_if_narrow_blob_columns"].__func__

# Finishes the start-up hook's work when this module was imported before
# Feast (its Feast imports loaded feast.infra.registry.sql first).
_install.loaded(__name__, NativeSqlRegistry)

