#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: for the pb.c targets, real
Feast objects of every kind the registry stores, serialized by the Feast
from PyPI, in the input format of each target (see
tests/fuzz/fuzz_checks.h); for the front's (tests/fuzz/front_checks.h),
what an HTTP/2 gRPC client sends on one connection: the preface, SETTINGS,
HEADERS of a call and DATA carrying Feast's own serialized Get request.

    .venv/bin/python scripts/make_fuzz_corpus.py   # after `make install`
    .venv/bin/python scripts/make_fuzz_corpus.py front   # only these targets

Output: tests/fuzz/corpus/{validate,merge,append,project,front}/*.bin, small
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
from feast.protos.feast.registry import RegistryServer_pb2 as pb  # noqa: E402

# src/common/kinds.h obj_kind
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


# ---- the front's inputs: HTTP/2 from a gRPC client -------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, WINDOW_UPDATE = 0, 1, 3, 4, 6, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SERVICE = "/feast.registry.RegistryServer/"


def frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(
        ">I", stream) + payload


def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer with a prefix of prefix_bits (RFC 7541 5.1)."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out, value = bytearray([first | top]), value - top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + bytes([value]))


def hpack_string(s):
    return hpack_int(len(s), 7) + s  # no Huffman


def request_headers(path):
    """A gRPC call's request headers: static-table entries and literals
    without indexing, as a client sends them."""
    block = bytes([0x83, 0x86])  # :method POST, :scheme http (static 3, 6)
    block += hpack_int(4, 4) + hpack_string(path.encode())  # :path, literal
    block += hpack_int(1, 4) + hpack_string(b"localhost")  # :authority
    block += hpack_int(31, 4) + hpack_string(b"application/grpc")  # content-type
    block += hpack_int(0, 4) + hpack_string(b"te") + hpack_string(b"trailers")
    return block


def grpc_message(message, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def call(stream, rpc, message, split=False, compressed=False):
    """HEADERS, then the framed request in one DATA frame (two if split);
    rpc is a method of Feast's RegistryServer, or a whole :path."""
    path = rpc if rpc.startswith("/") else SERVICE + rpc
    out = frame(HEADERS, END_HEADERS, stream, request_headers(path))
    body = grpc_message(message, compressed)
    if split:
        out += frame(DATA, 0, stream, body[:3]) + frame(DATA, END_STREAM, stream, body[3:])
    else:
        out += frame(DATA, END_STREAM, stream, body)
    return out


def get(rpc, name, project="proj", allow_cache=True):
    return getattr(pb, rpc + "Request")(name=name, project=project,
                                        allow_cache=allow_cache).SerializeToString()


def front_inputs():
    """name -> bytes of one client connection (see tests/fuzz/front_checks.h
    for the front's table and methods)."""
    hello = PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 20)) + frame(
        SETTINGS, ACK, 0)
    entity = get("GetEntity", "driver")
    return {
        "get-entity-cached": hello + call(1, "GetEntity", entity),
        "get-feature-view-cached": hello + call(1, "GetFeatureView",
                                                get("GetFeatureView", "driver_hourly_stats")),
        "get-entity-uncached": hello + call(1, "GetEntity", get("GetEntity", "driver",
                                                                 allow_cache=False)),
        "get-entity-missing": hello + call(1, "GetEntity", get("GetEntity", "nobody")),
        "get-empty-message": hello + call(1, "GetFeatureView", b""),  # allow_cache unset
        "get-only-allow-cache": hello + call(1, "GetFeatureView", b"\x18\x01"),
        "get-unknown-field": hello + call(1, "GetEntity", entity + b"\x20\x01"),
        "get-repeated-name": hello + call(1, "GetEntity", get("GetEntity", "x") + entity),
        "get-other-fields": hello + call(1, "/t.S/GetOther", b"\x3a\x03svc\x28\x01"),
        "get-compressed": hello + call(1, "GetEntity", entity, compressed=True),
        "list-relayed": hello + call(1, "ListEntities", pb.ListEntitiesRequest(
            project="proj", allow_cache=True).SerializeToString()),
        "two-calls": hello + call(1, "GetEntity", entity) + call(
            3, "GetFeatureView", get("GetFeatureView", "driver_hourly_stats", allow_cache=False)),
        "split-data-ping-window": hello + frame(PING, 0, 0, b"12345678") + call(
            1, "GetEntity", entity, split=True) + frame(WINDOW_UPDATE, 0, 0,
                                                        struct.pack(">I", 1 << 16)),
        "reset-after-request": hello + call(1, "GetEntity", entity) + frame(
            RST_STREAM, 0, 1, struct.pack(">I", 8)),
    }


def main():
    out = os.path.join(ROOT, "tests", "fuzz", "corpus")
    targets = {t: {} for t in ("validate", "merge", "append", "project", "front")}
    targets["front"] = front_inputs()
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
        if sys.argv[1:] and target not in sys.argv[1:]:
            continue
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
