"""Stored rows that are not valid objects, and keys a collation folds.

A row can be damaged by a broken tool, a truncating server or a bad manual
edit. Whatever it holds, the native registry must never turn it into a wrong
answer (an object with no name or no project, or one that vanishes without a
word): get() raises a DataError naming table, project and object; list and
proto() leave the row out, log it once and serve everything else.
"""

import logging

import pytest
from feast.errors import EntityNotFoundException
from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto

import objects as o
from conftest import RawConnection, urls_of
from feast_sqlreg import errors
from feast_sqlreg.registry import ENTITY, FEATURE_VIEW


def _write_raw(reg, table, proto_col, name_col, name, value):
    raw = RawConnection(reg)
    raw.execute(f"UPDATE {table} SET {proto_col} = ? WHERE {name_col} = ?", (value, name))
    raw.close()


def _populated(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    reg.apply_entity(o.entity("rider"), "proj")
    fv = o.feature_view()
    reg.apply_data_source(fv.batch_source, "proj")
    reg.apply_feature_view(fv, "proj")
    return reg


def _served_entities(reg):
    return sorted(
        (e.spec.name, e.spec.project) for e in reg.proto().entities
    )


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"", "empty"),
        (b"\x0a\x05driv", "not a valid"),  # spec runs past the end
        (b"\x00\x01", "not a valid"),  # field number 0
        (b"\x0a\x02\x0a\xff", "not a valid"),  # truncated inside spec
    ],
)
def test_bad_entity_row_is_named_left_out_and_reported(make_registry, caplog, value, reason):
    reg = _populated(make_registry)
    _write_raw(reg, "entities", "entity_proto", "entity_name", "driver", value)

    with pytest.raises(errors.DataError, match=f"entities row 'driver' in project 'proj': .*{reason}"):
        reg._store.get(ENTITY, "proj", "driver")
    with pytest.raises(errors.DataError, match="entities row 'driver'"):
        reg.get_entity("driver", "proj")

    caplog.set_level(logging.WARNING, logger="feast_sqlreg.registry")
    # list: the bad row is left out, the good one is served, the bad one named
    assert [e.name for e in reg.list_entities("proj")] == ["rider"]
    # proto(): the same, and the feature view that uses the entity is still there
    assert _served_entities(reg) == [("rider", "proj")]
    assert [v.spec.name for v in reg.proto().feature_views] == ["driver_hourly_stats"]
    assert [row[:3] for row in reg.bad_rows] == [("entities", "proj", "driver")]
    reg.refresh()
    warnings = [r for r in caplog.records if "left out entities row 'driver'" in r.getMessage()]
    assert all("left out entities row 'driver' in project 'proj'" in r.getMessage() for r in warnings)
    assert len(warnings) == 1, "logged once per process, not once per refresh"
    # A cached read of a good object still works with the bad row in place.
    assert reg.get_entity("rider", "proj", allow_cache=True).name == "rider"
    # Deleting the bad object repairs the registry.
    reg.delete_entity("driver", "proj")
    reg.apply_entity(o.entity(), "proj")
    assert reg.get_entity("driver", "proj").name == "driver"


def test_truncated_rows_never_become_wrong_objects(make_registry):
    """Every truncation of a stored entity and feature view: either the
    prefix is itself a valid object (then get, list and proto() agree on it,
    under its own name and project) or it is named as bad everywhere. The
    project stamp that proto() appends must never complete a truncated
    field."""
    reg = _populated(make_registry)
    entity = o.entity().to_proto().SerializeToString()
    raw = RawConnection(reg)
    fv_data = raw.execute(
        "SELECT feature_view_proto FROM feature_views WHERE feature_view_name = ?",
        ("driver_hourly_stats",),
    )[0][0]
    raw.close()
    cases = [("entities", "entity_proto", "entity_name", "driver", ENTITY, entity, 1)]
    cases.append(
        ("feature_views", "feature_view_proto", "feature_view_name", "driver_hourly_stats",
         FEATURE_VIEW, bytes(fv_data), 7)
    )
    checked = bad = 0
    for table, col, name_col, name, kind, full, step in cases:
        for cut in range(1, len(full), step):
            _write_raw(reg, table, col, name_col, name, full[:cut])
            try:
                reg._store.get(kind, "proj", name)
                ok = True
            except errors.DataError as e:
                assert f"{table} row '{name}' in project 'proj'" in str(e)
                ok = False
            registry = reg.proto()
            field = registry.entities if kind == ENTITY else registry.feature_views
            served = [(x.spec.name, x.spec.project) for x in field]
            for served_name, project in served:
                assert project == "proj", f"cut {cut}: an object with project {project!r}"
            listed = {row[:3] for row in reg.bad_rows}
            if ok:
                assert (table, "proj", name) not in listed
                assert sum(1 for n, _ in served if n != name and n not in ("rider",)) == 0
            else:
                bad += 1
                assert (table, "proj", name) in listed, f"cut {cut}: left out silently"
                assert name not in [n for n, _ in served], f"cut {cut}: bad row served"
            checked += 1
        _write_raw(reg, table, col, name_col, name, full)
    assert checked > 60 and bad > 40


def test_a_value_of_the_wrong_type_is_a_bad_row(make_registry):
    """SQLite keeps whatever it is given: an INTEGER or TEXT in a proto
    column used to read back as an empty object named ''. The other
    databases refuse such writes, so the case is SQLite's; there the test
    checks both types, elsewhere it checks a value that is valid bytes but
    not an object (the same code path)."""
    reg = _populated(make_registry)
    raw = RawConnection(reg)
    if raw.kind == "sqlite":
        values = [(42, "an integer"), ("text", "text, not bytes")]
    else:
        values = [(b"\xff", "not a valid")]
    raw.close()
    for value, reason in values:
        _write_raw(reg, "entities", "entity_proto", "entity_name", "driver", value)
        with pytest.raises(errors.DataError, match=reason):
            reg.get_entity("driver", "proj")
        assert _served_entities(reg) == [("rider", "proj")]
        assert ("entities", "proj", "driver") in {row[:3] for row in reg.bad_rows}
        assert "" not in [e.name for e in reg.list_entities("proj")]


def test_row_that_only_feast_rejects_is_salvaged(make_registry):
    """Wire-valid bytes that Feast's parser rejects (invalid UTF-8 in a
    string field): the C core cannot know the field is a string, so proto()
    falls back to parsing object by object, names the row and serves the
    rest."""
    reg = _populated(make_registry)
    spec = b"\x0a\x02\xc3\x28"  # EntitySpecV2.name = invalid UTF-8
    _write_raw(reg, "entities", "entity_proto", "entity_name", "driver", b"\x0a" + bytes([len(spec)]) + spec)
    assert _served_entities(reg) == [("rider", "proj")]
    assert [v.spec.name for v in reg.proto().feature_views] == ["driver_hourly_stats"]
    assert ("entities", "proj", "driver") in {row[:3] for row in reg.bad_rows}
    with pytest.raises(errors.DataError, match="entities row 'driver' in project 'proj': Feast cannot parse"):
        reg.get_entity("driver", "proj")
    assert [e.name for e in reg.list_entities("proj")] == ["rider"]


def _fold_entity_names(reg):
    """Gives entities.entity_name a collation that equates 'Driver' and
    'driver', as MariaDB's default utf8mb4_general_ci does."""
    raw = RawConnection(reg)
    if raw.kind == "mysql":
        raw.execute(
            "ALTER TABLE entities MODIFY entity_name VARCHAR(255) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL"
        )
    elif raw.kind == "postgresql":
        raw.execute(
            "CREATE COLLATION fsr_ci (provider = icu, locale = 'und-u-ks-level2', "
            "deterministic = false)"
        )
        raw.execute("ALTER TABLE entities ALTER COLUMN entity_name TYPE VARCHAR(255) COLLATE fsr_ci")
    else:
        raw.execute("ALTER TABLE entities RENAME TO entities_old")
        raw.execute(
            "CREATE TABLE entities (entity_name VARCHAR(255) COLLATE NOCASE NOT NULL, "
            "project_id VARCHAR(255) NOT NULL, last_updated_timestamp BIGINT NOT NULL, "
            "entity_proto BLOB NOT NULL, PRIMARY KEY (entity_name, project_id))"
        )
        raw.execute("INSERT INTO entities SELECT * FROM entities_old")
        raw.execute("DROP TABLE entities_old")
    raw.close()


def test_case_folding_collation_never_overwrites_another_object(make_registry):
    first = make_registry("native")
    first.apply_entity(o.entity("Driver"), "proj")
    _fold_entity_names(first)
    reg = make_registry("native", urls_of(first))  # statements prepared after the change
    # The database now says 'driver' is taken by 'Driver': refuse, don't overwrite.
    with pytest.raises(errors.IntegrityError, match="collides with the stored 'Driver'.*utf8mb4_bin"):
        reg.apply_entity(o.entity("driver", description="another"), "proj")
    assert reg.get_entity("Driver", "proj").description == "a driver"
    # Reads and deletes by the other spelling do not reach 'Driver'.
    with pytest.raises(EntityNotFoundException):
        reg.get_entity("driver", "proj")
    with pytest.raises(EntityNotFoundException):
        reg.delete_entity("driver", "proj")
    assert [e.name for e in reg.list_entities("proj")] == ["Driver"]
    # Re-applying the stored spelling still works.
    reg.apply_entity(o.entity("Driver", description="updated"), "proj")
    stored = EntityProto.FromString(reg._store.get(ENTITY, "proj", "Driver"))
    assert stored.spec.description == "updated"
