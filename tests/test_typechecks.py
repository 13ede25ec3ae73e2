"""Registry reads skip typeguard's checks in their own thread only.

Feast's object classes are @typechecked; most of FeatureView.from_proto's
time is typeguard re-checking values Feast itself serialized. The native
registry builds objects from stored protos without those checks in the
reading thread, while every other thread (a user building a wrongly typed
object at the same time) keeps them. FEAST_SQLREG_TYPE_CHECKS=1 keeps them
everywhere.
"""

import os
import subprocess
import sys
import threading
import time

import pytest
from feast import Entity
from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto
from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto
from typeguard import TypeCheckError, suppress_type_checks

import objects as o
from feast_sqlreg import _typechecks


def _populated(make_registry):
    reg = make_registry("native")
    fv = o.feature_view()
    reg.apply_entity(o.entity(), "proj")
    reg.apply_data_source(fv.batch_source, "proj")
    reg.apply_feature_view(fv, "proj")
    return reg


def _bad_entity():
    return Entity(name=123, join_keys=["id"])  # name must be a str


def test_other_threads_keep_their_checks_while_the_registry_reads(make_registry):
    assert _typechecks.ACTIVE
    reg = _populated(make_registry)
    stop = threading.Event()
    reads = []

    def reader():
        while not stop.is_set():
            reads.append(reg.get_feature_view("driver_hourly_stats", "proj", allow_cache=False))
            reads.append(reg.list_feature_views("proj", allow_cache=True))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    tried = raised = 0
    deadline = time.monotonic() + 20
    try:
        # Check while the readers run (they stop only below), at least 200
        # times and until they have done 20 reads.
        while (len(reads) < 20 or tried < 200) and time.monotonic() < deadline:
            tried += 1
            try:
                _bad_entity()
            except TypeCheckError:
                raised += 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(reads) >= 20 and tried >= 200
    assert raised == tried, f"{tried - raised} of {tried} wrongly typed objects got through"


def test_typeguards_own_suppression_still_works():
    with suppress_type_checks():
        assert _bad_entity().name == 123
    with pytest.raises(TypeCheckError):
        _bad_entity()
    with _typechecks.thread_suppressed():
        assert _bad_entity().name == 123
    with pytest.raises(TypeCheckError):
        _bad_entity()


def test_objects_read_are_the_same_with_checks_on(make_registry):
    """The objects themselves do not depend on the checks: the same reads in
    a process with FEAST_SQLREG_TYPE_CHECKS=1 (checks kept, typeguard left
    alone) give the same protos."""
    reg = _populated(make_registry)
    url = reg.registry_config.path
    code = (
        "import sys\n"
        "from feast.infra.registry.sql import SqlRegistryConfig\n"
        "from feast_sqlreg.registry import NativeSqlRegistry\n"
        "from feast_sqlreg import _typechecks\n"
        "from typeguard import _suppression\n"
        f"r = NativeSqlRegistry(SqlRegistryConfig(registry_type='sql', path={url!r}), 'proj', None)\n"
        "fv = r.get_feature_view('driver_hourly_stats', 'proj')\n"
        "ents = r.list_entities('proj', allow_cache=True)\n"
        "print(_typechecks.ACTIVE, type(_suppression.type_checks_suppressed).__name__)\n"
        "sys.stdout.flush(); sys.stdout.buffer.write(fv.to_proto().SerializeToString().hex().encode())\n"
        "print(); print(ents[0].to_proto().SerializeToString().hex())\n"
    )
    env = {**os.environ, "FEAST_SQLREG_TYPE_CHECKS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    flag, fv_hex, ent_hex = out.stdout.split("\n")[:3]
    assert flag == "False int"
    fv = reg.get_feature_view("driver_hourly_stats", "proj")
    assert fv.to_proto() == FeatureViewProto.FromString(bytes.fromhex(fv_hex))
    entity = reg.list_entities("proj", allow_cache=True)[0]
    assert entity.to_proto() == EntityProto.FromString(bytes.fromhex(ent_hex))
