"""Top-level fields of a serialized Registry, without parsing them.

The C core assembles the whole registry as one wire buffer (one field per
stored row). When protobuf refuses the buffer, NativeSqlRegistry walks it
field by field (registry_elements) to find the rows that are bad and keep
the rest.
"""

from typing import Tuple

from google.protobuf.message import DecodeError


def _varint(data: bytes, i: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise DecodeError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def registry_elements(data: bytes):
    """(field number, bytes of the whole field) of each top-level field of a
    serialized Registry."""
    i = 0
    while i < len(data):
        start = i
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 2:
            length, i = _varint(data, i)
            i += length
        elif wire == 0:
            _, i = _varint(data, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise DecodeError(f"wire type {wire} at byte {start}")
        if i > len(data):
            raise DecodeError(f"field at byte {start} runs past the end")
        yield key >> 3, data[start:i]
