#!/usr/bin/env python3
"""Writes the seed corpus of the pb.c fuzz targets: real Feast objects of
every kind the registry stores, serialized by the Feast from PyPI, in the
input format of each target (see tests/fuzz/fuzz_checks.h).

    .venv/bin/python scripts/make_fuzz_corpus.py   # after `make install`

Output: tests/fuzz/corpus/{validate,merge,append,project}/*.bin, small
binary files that are committed. Re-running rewrites them.
"""

import os
import shutil
import struct
import sys
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import objects  # noqa: E402  tests/objects.py: every kind, built as users do
from feast.protos.feast.core.ValidationProfile_pb2 import (  # noqa: E402
    ValidationReference as ValidationReferenceProto,
)

# src/pb.h obj_kind
KINDS = [
    "project",
    "entity",
    "data_source",
    "feature_view",
    "stream_feature_view",
    "on_demand_feature_view",
    "label_view",
    "feature_service",
    "saved_dataset",
    "validation_reference",
    "permission",
    "infra",
]
K = {name: i for i, name in enumerate(KINDS)}

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def stamped(obj, created=T0, updated=T0 + DAY):
    """Sets the timestamps the registry keeps, where the kind has them."""
    for attr, value in (("created_timestamp", created), ("last_updated_timestamp", updated)):
        if hasattr(obj, attr):
            setattr(obj, attr, value)
    return obj


def with_intervals(fv, n):
    fv.materialization_intervals = [(T0 + i * DAY, T0 + (i + 1) * DAY) for i in range(n)]
    return fv


def ser(obj):
    proto = obj if hasattr(obj, "SerializeToString") else obj.to_proto()
    return proto.SerializeToString()


def project_stamp(kind, project):
    """pb_project_stamp's bytes: what the registry appends when it assembles
    rows, so stamped rows are realistic inputs too."""
    p = project.encode()

    def ld(field, data):
        return varint(field << 3 | 2) + varint(len(data)) + data

    if kind == "data_source":
        return ld(21, p)
    if kind == "validation_reference":
        return ld(3, p)
    if kind in ("project", "infra"):
        return b""
    return ld(1, ld(9 if kind == "entity" else 2, p))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def objects_by_kind():
    """(kind, label, serialized) for every kind, with variants."""
    o = objects
    fv0 = stamped(o.feature_view())
    fv2 = with_intervals(stamped(o.feature_view()), 2)
    fv3 = with_intervals(stamped(o.feature_view(), T0 + DAY, T0 + 3 * DAY), 3)
    sfv = stamped(o.stream_feature_view())
    sfv1 = with_intervals(stamped(o.stream_feature_view()), 1)
    vr = ValidationReferenceProto(
        name="ref", reference_dataset_name="training_set", project="proj", description="d"
    )
    vr.tags["team"] = "ml"
    rows = [
        ("project", "plain", ser(stamped(o.project()))),
        ("project", "unstamped", ser(o.project(name="other"))),
        ("entity", "driver", ser(stamped(o.entity()))),
        ("entity", "customer", ser(stamped(o.entity("customer", description="")))),
        ("data_source", "file", ser(stamped(o.file_source()))),
        ("data_source", "kafka", ser(stamped(o.kafka_source()))),
        ("data_source", "push", ser(stamped(o.push_source()))),
        ("data_source", "request", ser(stamped(o.request_source()))),
        ("feature_view", "no-intervals", ser(fv0)),
        ("feature_view", "two-intervals", ser(fv2)),
        ("feature_view", "three-intervals", ser(fv3)),
        ("stream_feature_view", "no-intervals", ser(sfv)),
        ("stream_feature_view", "one-interval", ser(sfv1)),
        ("on_demand_feature_view", "pandas", ser(stamped(o.on_demand_feature_view()))),
        ("label_view", "labels", ser(stamped(o.label_view()))),
        ("feature_service", "activity", ser(stamped(o.feature_service()))),
        ("saved_dataset", "training", ser(stamped(o.saved_dataset()))),
        ("validation_reference", "ref", vr.SerializeToString()),
        ("permission", "readers", ser(stamped(o.permission()))),
        ("infra", "sqlite-table", ser(o.infra())),
    ]
    rows += [
        (kind, label + "-stamped", data + project_stamp(kind, "proj"))
        for kind, label, data in rows
        if project_stamp(kind, "proj")
    ]
    return rows


def ts(dt):
    s = int(dt.timestamp())
    return struct.pack("<qi", s, dt.microsecond * 1000)


def main():
    out = os.path.join(ROOT, "tests", "fuzz", "corpus")
    targets = {t: {} for t in ("validate", "merge", "append", "project")}
    rows = objects_by_kind()
    by_kind = {}
    for kind, label, data in rows:
        by_kind.setdefault(kind, []).append((label, data))
        targets["validate"][f"{kind}-{label}"] = bytes([K[kind]]) + data
        if kind == "project":
            targets["project"][label] = data
        if kind in ("feature_view", "stream_feature_view"):
            head = bytes([K[kind] - K["feature_view"]])
            head += ts(T0 + 5 * DAY) + ts(T0 + 6 * DAY) + ts(T0 + 7 * DAY)
            targets["append"][f"{kind}-{label}"] = head + data
    # merge: every (new, stored) pair of one kind, e.g. a stale copy with
    # fewer intervals re-applied over the stored view.
    for kind, variants in by_kind.items():
        for ln, new in variants:
            for lo, old in variants:
                head = bytes([K[kind]]) + struct.pack("<H", len(new))
                targets["merge"][f"{kind}-{ln}-over-{lo}"] = head + new + old
    total = 0
    for target, files in targets.items():
        d = os.path.join(out, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name + ".bin"), "wb") as f:
                f.write(data)
            total += len(data)
        print(f"{target}: {len(files)} inputs")
    print(f"{total} bytes in {out}")


if __name__ == "__main__":
    main()
