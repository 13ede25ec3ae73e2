"""The one table of kinds (src/common/kinds.h) against the installed Feast.

Each row's facts are checked where Feast keeps them: the table and its
columns in Feast's SQLAlchemy schema, the Registry field (number and
name), the project field's number in the object's proto, the classes and
exceptions, the RegistryServer RPCs and what they return. A Feast release
that moves any of these fails here, naming the kind and the fact.
"""

import feast.infra.registry.sql as stock_sql
import pytest
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.registry import RegistryServer_pb2 as pb

from feast_sqlreg import _kinds
from feast_sqlreg._sqlregistry import KINDS as ROWS

SERVICE = pb.DESCRIPTOR.services_by_name["RegistryServer"]
TABLES = stock_sql.metadata.tables


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_row_matches_feast(row):
    kind = _kinds.KINDS[row["id"]]
    assert kind.name == row["name"] and getattr(_kinds, row["name"]) == row["id"]
    table = TABLES[row["table"]]
    assert {row["name_col"], row["proto_col"], "project_id"} <= set(table.columns.keys())
    assert ("user_metadata" in table.columns) == row["user_meta"]
    field = RegistryProto.DESCRIPTOR.fields_by_name[row["reg_name"]]
    assert field.number == row["reg_field"]
    assert field.message_type is kind.py_proto.DESCRIPTOR
    meta = kind.py_proto.DESCRIPTOR.fields_by_name.get("meta")
    keeps = meta is not None and "materialization_intervals" in meta.message_type.fields_by_name
    assert keeps == row["intervals"]
    # The project field pb.c stamps: spec.project, or project at top level.
    proto = kind.py_proto.DESCRIPTOR
    if row["project_no"]:
        holder = proto.fields_by_name["spec"].message_type if row["in_spec"] else proto
        assert holder.fields_by_name["project"].number == row["project_no"]
    else:
        assert row["name"] in ("PROJECT", "INFRA")
    assert kind.py_class.__name__ == kind.py_proto.__name__
    if row["not_found"]:
        assert issubclass(kind.not_found, Exception)
    get = SERVICE.methods_by_name[row["get_rpc"]]
    assert get.output_type is proto or get.output_type.name == "Infra"
    if row["list_rpc"]:
        listed = SERVICE.methods_by_name[row["list_rpc"]].output_type
        assert listed.fields_by_name[row["reg_name"]].message_type is proto
    if row["view"]:
        assert pb.AnyFeatureView.DESCRIPTOR.fields_by_name[row["view"]].message_type is proto


def test_every_registry_object_field_has_a_kind():
    """A repeated field Feast adds to Registry (a new kind of object) fails
    here until src/common/kinds.h has its row."""
    # Neither is stored in a table of its own by Feast's SqlRegistry:
    # project metadata lives in feast_metadata, feature tables are Feast 0.9's.
    not_objects = {"project_metadata", "feature_tables"}
    repeated = {
        f.name
        for f in RegistryProto.DESCRIPTOR.fields
        if f.is_repeated and f.message_type is not None and f.name not in not_objects
    }
    assert repeated == set(_kinds.BY_REGISTRY_FIELD)


def test_every_object_table_has_a_kind():
    """The same for a table Feast adds to its schema."""
    not_objects = {"feast_metadata", "feature_view_version_history"}
    assert set(TABLES) - not_objects == set(_kinds.BY_TABLE)
