"""A minimal writer of TensorBoard event files for the tests (independent of the reader under test).

It encodes ``Event`` protos by hand and frames them as TFRecords with a bit-by-bit CRC-32C, so a shared
bug with `m2rl_slime.analyze.curves.tfrecord` (table-driven and vectorised) is unlikely.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

PLUGIN_SCALARS = "scalars"


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def vint(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


def simple_value(tag: str, value: float) -> bytes:
    """A ``Summary.Value`` with a float ``simple_value`` (what torch's add_scalar writes)."""
    return ld(1, tag.encode()) + key(2, 5) + struct.pack("<f", value)


def plugin_metadata(name: str) -> bytes:
    return ld(9, ld(1, ld(1, name.encode())))


def tensor_value(tag: str, tensor: bytes, plugin: str | None = PLUGIN_SCALARS) -> bytes:
    """A ``Summary.Value`` holding a TensorProto (`plugin` None: no metadata, as after a tag's first value)."""
    return ld(1, tag.encode()) + ld(8, tensor) + (plugin_metadata(plugin) if plugin is not None else b"")


def tensor(dtype: int, *, dims: Sequence[int] = (), content: bytes | None = None, fields: bytes = b"") -> bytes:
    shape = b"".join(ld(2, vint(1, d)) for d in dims)
    out = vint(1, dtype) + ld(2, shape)
    if content is not None:
        out += ld(4, content)
    return out + fields


def event(step: int, values: Iterable[bytes], wall_time: float = 1.7e9, extra: bytes = b"") -> bytes:
    """An ``Event`` with a summary of the given ``Summary.Value`` messages (`extra`: more raw fields)."""
    summary = b"".join(ld(1, v) for v in values)
    return key(1, 1) + struct.pack("<d", wall_time) + vint(2, step) + ld(5, summary) + extra


def file_version() -> bytes:
    return key(1, 1) + struct.pack("<d", 1.7e9) + ld(3, b"brain.Event:2")


def scalars_event(step: int, scalars: dict[str, float]) -> bytes:
    return event(step, [simple_value(tag, v) for tag, v in scalars.items()])


def write_events(path: Path, events: Iterable[bytes]) -> Path:
    """Write an event file of `events` (a file_version record first, as every writer does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(record(e) for e in [file_version(), *events]))
    return path


def write_run(directory: Path, rows: dict[int, dict[str, float]], stamp: int = 1700000000) -> Path:
    """One event file under ``directory/tensorboard`` with a scalars event per step (steps in order)."""
    name = f"events.out.tfevents.{stamp}.host.1.0"
    return write_events(directory / "tensorboard" / name, [scalars_event(s, rows[s]) for s in sorted(rows)])
