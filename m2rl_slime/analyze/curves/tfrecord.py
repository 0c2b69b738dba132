"""TFRecord framing (the container of TensorBoard event files), read with CRC32C checks.

Each record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``, all
little-endian; the mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). The data checksums of
a whole file are verified in one vectorised pass over the records (numpy), since a byte loop in Python
runs at a few MB/s.

Damage is reported, never fatal, because a run still training appends to its newest file:
* a last record cut short at end of file is dropped (`Framing.truncated_tail` bytes);
* a record whose data checksum fails is dropped (`Framing.bad_data`), its neighbours are kept;
* a length whose checksum fails makes the rest of the file unreadable (`Framing.bad_length_at`).
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_BATCH_MAX_LEN = 4096  # longer records (graphs, text) go through the byte loop


@lru_cache(maxsize=1)
def _table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of `data` (byte loop; see `crc32c_many` for many records at once)."""
    table, crc = _table(), 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC-32C that TFRecord stores."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _mask(crcs: Any) -> Any:
    import numpy as np

    crcs = crcs.astype(np.uint64)
    return ((((crcs >> 15) | (crcs << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c_many(buf: bytes, starts: list[int], lengths: list[int]) -> list[int]:
    """Masked CRC-32C of the slices ``buf[s:s+n]``, computed for all slices at once.

    Records are sorted by length (longest first), so at byte position j the records still running are a
    prefix of the batch: one table lookup per position over that prefix.
    """
    import numpy as np

    n = len(starts)
    if n == 0:
        return []
    table = np.array(_table(), dtype=np.uint32)
    lens = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    lens_sorted = lens[order]
    data = np.frombuffer(buf, dtype=np.uint8)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    base = np.asarray(starts, dtype=np.int64)[order]
    active = n
    for j in range(int(lens_sorted[0])):
        while active and lens_sorted[active - 1] <= j:
            active -= 1
        head = crc[:active]
        crc[:active] = table[(head ^ data[base[:active] + j]) & 0xFF] ^ (head >> 8)
    out = np.empty(n, dtype=np.uint64)
    out[order] = _mask(crc ^ np.uint32(0xFFFFFFFF))
    return [int(v) for v in out]


@dataclass(frozen=True, slots=True)
class Framing:
    """The records of one file and what was wrong with it."""

    records: tuple[bytes, ...]
    bad_data: int = 0  # records dropped for a data checksum mismatch
    truncated_tail: int = 0  # bytes of an incomplete last record (a writer still appending)
    bad_length_at: int | None = None  # offset of a corrupt length: the rest of the file was not read


def read_records(buf: bytes, verify: bool = True) -> Framing:
    """Split a TFRecord byte string into its records (see the module docstring for damage handling).

    Args:
        buf: The whole file.
        verify: Check the data checksums (the length checksums are always checked).
    """
    headers: list[int] = []  # offsets of the records' headers
    spans: list[tuple[int, int, int, int]] = []  # (data start, length, stored length crc, stored data crc)
    offset, end, tail, stopped_at = 0, len(buf), 0, None
    while offset < end:
        if end - offset < _HEADER.size:
            tail = end - offset
            break
        length, length_crc = _HEADER.unpack_from(buf, offset)
        data_start = offset + _HEADER.size
        if end - data_start < length + _FOOTER.size:  # an incomplete record, or a corrupt length
            tail = end - offset
            stopped_at = offset if masked_crc32c(buf[offset : offset + 8]) != length_crc else None
            break
        (stored,) = _FOOTER.unpack_from(buf, data_start + length)
        headers.append(offset)
        spans.append((data_start, length, length_crc, stored))
        offset = data_start + length + _FOOTER.size
    # Lengths are checked after the walk, in one pass: records from the first bad length on are not records.
    length_crcs = masked_crc32c_many(buf, headers, [8] * len(headers))
    bad_length_at = next((h for h, crc, span in zip(headers, length_crcs, spans) if crc != span[2]), stopped_at)
    if bad_length_at is not None:
        spans, tail = spans[: bisect.bisect_left(headers, bad_length_at)], 0
    ok = [True] * len(spans)
    if verify:
        short = [i for i, span in enumerate(spans) if span[1] <= _BATCH_MAX_LEN]
        crcs = masked_crc32c_many(buf, [spans[i][0] for i in short], [spans[i][1] for i in short])
        for i, crc in zip(short, crcs):
            ok[i] = crc == spans[i][3]
        for i, (start, n, _, stored) in enumerate(spans):
            if n > _BATCH_MAX_LEN:
                ok[i] = masked_crc32c(buf[start : start + n]) == stored
    records = tuple(buf[s : s + n] for (s, n, _, _), good in zip(spans, ok) if good)
    return Framing(records, bad_data=ok.count(False), truncated_tail=tail, bad_length_at=bad_length_at)
