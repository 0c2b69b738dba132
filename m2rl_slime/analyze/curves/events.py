"""Scalars of TensorBoard event files (``events.out.tfevents.*``), decoded without TensorFlow or TensorBoard.

An event file is a TFRecord file (`tfrecord`) of ``Event`` protocol buffers. Only the fields that carry
scalars are decoded; every other field is skipped by its wire type:

* ``Event``: wall_time = 1 (double), step = 2 (int64), summary = 5;
* ``Summary``: repeated value = 1; ``Summary.Value``: tag = 1, simple_value = 2 (float), tensor = 8,
  metadata = 9 (``SummaryMetadata.plugin_data`` = 1, ``PluginData.plugin_name`` = 1);
* ``TensorProto``: dtype = 1, tensor_shape = 2 (``dim`` = 2, ``Dim.size`` = 1), tensor_content = 4,
  float_val = 5, double_val = 6, int_val = 7, int64_val = 10, bool_val = 11, half_val = 13,
  uint32_val = 16, uint64_val = 17 (packed or not).

A value is a scalar when it is a ``simple_value`` (what torch's ``SummaryWriter.add_scalar`` writes, hence
slime) or a numeric one-element tensor of the ``scalars`` plugin (TensorFlow 2 / TensorBoard writers; the
plugin name is sent only with a tag's first value, so it is remembered per tag).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from .tfrecord import Framing, read_records

EVENT_GLOB = "events.out.tfevents.*"
Point = tuple[str, int, float]  # (tag, step, value)

# TensorFlow DataType -> struct format of one element in tensor_content ("bf16" is special)
_CONTENT_FORMATS = {1: "<f", 2: "<d", 3: "<i", 4: "<B", 5: "<h", 6: "<b", 9: "<q", 10: "<?", 14: "bf16"}
_CONTENT_FORMATS |= {17: "<H", 19: "<e", 22: "<I", 23: "<Q"}
_VAL_FIELDS = {5: "<f", 6: "<d", 7: "int", 10: "int", 11: "int", 13: "half", 16: "int", 17: "int"}


class DecodeError(ValueError):
    """A record is not a well-formed protocol buffer."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # one byte: most keys, lengths and steps below 128
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value): an int for varints, bytes for the other wire types."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 5 or wire == 1:
            size = 4 if wire == 5 else 8
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise DecodeError(f"unsupported wire type {wire} (field {key >> 3})")
        if pos > end:
            raise DecodeError(f"field {key >> 3} runs past the end of its message")
        yield key >> 3, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_ints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def _repeated(fmt: str, wire: int, value: object) -> list[float]:
    if fmt in ("int", "half"):
        ints = [value] if wire == 0 else _packed_ints(value)  # type: ignore[arg-type]
        if fmt == "half":  # the 16 bits of an IEEE half (DT_HALF); bfloat16 is read through tensor_content
            return [struct.unpack("<e", struct.pack("<H", v & 0xFFFF))[0] for v in ints]
        return [float(_signed64(v)) for v in ints]
    size = struct.calcsize(fmt)
    data: bytes = value  # type: ignore[assignment]
    return [v for (v,) in struct.iter_unpack(fmt, data[: len(data) - len(data) % size])]


def _content(dtype: int, data: bytes) -> list[float] | None:
    fmt = _CONTENT_FORMATS.get(dtype)
    if fmt is None:
        return None
    if fmt == "bf16":
        return [struct.unpack("<f", struct.pack("<I", v << 16))[0] for (v,) in struct.iter_unpack("<H", data)]
    if len(data) % struct.calcsize(fmt):
        raise DecodeError(f"tensor_content of {len(data)} bytes is not a whole number of elements")
    return [float(v) for (v,) in struct.iter_unpack(fmt, data)]


def _shape_size(data: bytes) -> int:
    size = 1
    for number, _, dim in _fields(data):
        if number == 2:
            size *= next((_signed64(v) for n, w, v in _fields(dim) if n == 1 and w == 0), 0)  # type: ignore
    return size


def tensor_scalar(data: bytes) -> float | None:
    """The value of a one-element numeric TensorProto, or None for any other tensor."""
    dtype, size, values, content = 1, 1, [], None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 0:
            dtype = value  # type: ignore[assignment]
        elif number == 2 and wire == 2:
            size = _shape_size(value)  # type: ignore[arg-type]
        elif number == 4 and wire == 2:
            content = value
        elif number in _VAL_FIELDS:
            values += _repeated(_VAL_FIELDS[number], wire, value)
    if size != 1:
        return None
    if content:
        values = _content(dtype, content) or []  # type: ignore[arg-type]
    return float(values[0]) if len(values) == 1 else None


def _plugin_name(metadata: bytes) -> str:
    for number, _, plugin_data in _fields(metadata):
        if number == 1:
            for n, _, name in _fields(plugin_data):  # type: ignore[arg-type]
                if n == 1:
                    return bytes(name).decode("utf-8", "replace")  # type: ignore[arg-type]
    return ""


def _summary_values(summary: bytes, step: int, plugins: dict[str, str]) -> Iterator[Point]:
    for number, _, value_msg in _fields(summary):
        if number != 1:
            continue
        tag, simple, tensor, plugin = None, None, None, None
        for n, wire, value in _fields(value_msg):  # type: ignore[arg-type]
            if n == 1 and wire == 2:
                tag = bytes(value).decode("utf-8", "replace")  # type: ignore[arg-type]
            elif n == 2 and wire == 5:
                simple = struct.unpack("<f", value)[0]  # type: ignore[arg-type]
            elif n == 8 and wire == 2:
                tensor = value
            elif n == 9 and wire == 2:
                plugin = _plugin_name(value)  # type: ignore[arg-type]
        if tag is None:
            continue
        if plugin is not None:
            plugins.setdefault(tag, plugin)
        if simple is not None:
            yield tag, step, float(simple)
        elif tensor is not None and plugins.get(tag, "scalars") in ("scalars", ""):
            scalar = tensor_scalar(tensor)  # type: ignore[arg-type]
            if scalar is not None:
                yield tag, step, scalar


def event_scalars(record: bytes, plugins: dict[str, str]) -> list[Point]:
    """The scalar points of one serialized ``Event`` (`plugins` remembers each tag's plugin name)."""
    step, summary = 0, None
    for number, wire, value in _fields(record):
        if number == 2 and wire == 0:
            step = _signed64(value)  # type: ignore[arg-type]
        elif number == 5 and wire == 2:
            summary = value
    return list(_summary_values(summary, step, plugins)) if summary is not None else []  # type: ignore


def read_event_file(path: Path, verify: bool = True) -> tuple[list[Point], list[str]]:
    """All scalar points of one event file in file order, and one warning line per damage found."""
    framing: Framing = read_records(path.read_bytes(), verify=verify)
    warnings, points, plugins, undecodable = [], [], {}, 0
    for record in framing.records:
        try:
            points += event_scalars(record, plugins)
        except (DecodeError, struct.error):
            undecodable += 1
    if framing.truncated_tail:
        warnings.append(f"{path}: last record incomplete ({framing.truncated_tail} bytes; still being written?)")
    if framing.bad_data:
        warnings.append(f"{path}: {framing.bad_data} record(s) failed their checksum and were skipped")
    if framing.bad_length_at is not None:
        warnings.append(f"{path}: corrupt record length at byte {framing.bad_length_at}; the rest was not read")
    if undecodable:
        warnings.append(f"{path}: {undecodable} record(s) are not valid Event protos and were skipped")
    return points, warnings


def find_event_files(directory: Path) -> list[Path]:
    """Event files under `directory` (recursively), oldest first by their name's timestamp, then path."""

    def key(path: Path) -> tuple[int, str]:
        parts = path.name.split(".")
        stamp = parts[3] if len(parts) > 3 and parts[3].isdigit() else "0"
        return int(stamp), str(path)

    return sorted((p for p in directory.rglob(EVENT_GLOB) if p.is_file()), key=key)
