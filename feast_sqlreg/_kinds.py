"""The kinds of registry object, from the one table in src/common/kinds.h.

The C core is compiled from that table and hands it over as
``_sqlregistry.KINDS``; everything the Python package knows per kind is
read from here: the kind numbers (PROJECT, ENTITY, ... as module
constants), Feast's classes, proto classes and not-found exceptions, the
Registry proto's fields, the registry server's Get and List RPCs. To add a
kind, add its row to src/common/kinds.h.

Import Feast before this module (feast_sqlreg.registry and .server do):
Feast's import runs the start-up hook, which imports feast_sqlreg.registry,
which imports this module.
"""

import importlib
from typing import Any, Dict, NamedTuple, Optional, Tuple

from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

from feast_sqlreg._sqlregistry import KINDS as _ROWS


def is_repeated(field) -> bool:
    """Whether a protobuf field descriptor is a repeated field, on every
    protobuf Feast installs: ``is_repeated`` from 5.29 on (newer releases
    drop ``label``), ``label`` before."""
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        from google.protobuf.descriptor import FieldDescriptor

        repeated = field.label == FieldDescriptor.LABEL_REPEATED
    return bool(repeated)


def _resolve(path: str):
    """"module:Name" -> the object; "" -> None."""
    if not path:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Kind(NamedTuple):
    id: int
    name: str  # PROJECT, ENTITY, ...
    noun: str
    table: str
    reg_field: str  # its field of feast.core.Registry (the List response's too)
    repeated: bool  # that field is a repeated one (all but infra)
    user_meta: bool
    intervals: bool
    compared: bool  # an unchanged re-apply is skipped
    view: str  # AnyFeatureView field and version-history type, "" if no view
    py_class: Any
    py_proto: Any
    not_found: Optional[type]
    get_rpc: str
    list_rpc: str
    in_spec: bool  # name, project and tags live in spec (else at top level)


def _kind(row: Dict[str, Any]) -> Kind:
    field = RegistryProto.DESCRIPTOR.fields_by_name.get(row["reg_name"])
    if field is None:
        raise RuntimeError(
            f"feast_sqlreg: feast.core.Registry has no field {row['reg_name']!r} "
            f"for {row['noun']}s; src/common/kinds.h was written for another Feast"
        )
    if field.number != row["reg_field"]:
        raise RuntimeError(
            f"feast_sqlreg: feast.core.Registry.{field.name} is field {field.number}, "
            f"src/common/kinds.h says {row['reg_field']}"
        )
    return Kind(
        id=row["id"],
        name=row["name"],
        noun=row["noun"],
        table=row["table"],
        reg_field=row["reg_name"],
        repeated=is_repeated(field),
        user_meta=row["user_meta"],
        intervals=row["intervals"],
        compared=row["compared"],
        view=row["view"],
        py_class=_resolve(row["py_class"]),
        py_proto=_resolve(row["py_proto"]),
        not_found=_resolve(row["not_found"]),
        get_rpc=row["get_rpc"],
        list_rpc=row["list_rpc"],
        # Data sources and validation references keep name, project and
        # tags at top level; a kind that is never stamped has spec (project).
        in_spec=row["in_spec"] or not row["project_no"],
    )


KINDS: Tuple[Kind, ...] = tuple(_kind(row) for row in _ROWS)

PROJECT: int
ENTITY: int
DATA_SOURCE: int
FEATURE_VIEW: int
STREAM_FEATURE_VIEW: int
ON_DEMAND_FEATURE_VIEW: int
LABEL_VIEW: int
FEATURE_SERVICE: int
SAVED_DATASET: int
VALIDATION_REFERENCE: int
PERMISSION: int
INFRA: int
for _k in KINDS:
    globals()[_k.name] = _k.id
del _k
_missing = [n for n in __annotations__ if n not in globals()]
if _missing:
    raise RuntimeError(f"feast_sqlreg: src/common/kinds.h lost the kinds {_missing}")

#: The feature view kinds (those with an AnyFeatureView field).
VIEWS: Tuple[int, ...] = tuple(k.id for k in KINDS if k.view)
#: Registry proto repeated field name -> kind.
BY_REGISTRY_FIELD: Dict[str, int] = {k.reg_field: k.id for k in KINDS if k.repeated}
#: table -> kind.
BY_TABLE: Dict[str, int] = {k.table: k.id for k in KINDS}
