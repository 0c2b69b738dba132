"""TFRecord framing: CRC-32C against published vectors, the vectorised checksum, damaged and partial files."""

from __future__ import annotations

import random
import struct

import pytest
from tfevents import crc32c_bitwise, masked, record

from m2rl_slime.analyze.curves.tfrecord import (
    crc32c,
    masked_crc32c,
    masked_crc32c_many,
    read_records,
)

# RFC 3720 (iSCSI) appendix B.4 and the common check value of CRC-32C
VECTORS = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0x0),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_crc32c_matches_published_vectors(data, expected):
    assert crc32c(data) == expected
    assert crc32c_bitwise(data) == expected  # the test writer's own implementation agrees


def test_vectorised_checksum_equals_the_byte_loop_for_every_length():
    rng = random.Random(7)
    chunks = [bytes(rng.getrandbits(8) for _ in range(n)) for n in [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 300, 1]]
    buf = b"".join(chunks)
    starts, pos = [], 0
    for chunk in chunks:
        starts.append(pos)
        pos += len(chunk)
    got = masked_crc32c_many(buf, starts, [len(c) for c in chunks])
    assert got == [masked_crc32c(c) for c in chunks] == [masked(c) for c in chunks]


def _file(payloads):
    return b"".join(record(p) for p in payloads)


def test_records_round_trip():
    payloads = [b"", b"a", b"hello world", bytes(range(256)) * 20]  # the last one is past the batch limit
    framing = read_records(_file(payloads))
    assert framing.records == tuple(payloads)
    assert (framing.bad_data, framing.truncated_tail, framing.bad_length_at) == (0, 0, None)


def test_a_file_cut_anywhere_yields_the_complete_records_before_the_cut():
    payloads = [b"first record", b"second", b"third one"]
    buf = _file(payloads)
    ends = [len(_file(payloads[: i + 1])) for i in range(len(payloads))]
    for cut in range(len(buf) + 1):
        framing = read_records(buf[:cut])
        complete = sum(end <= cut for end in ends)
        assert framing.records == tuple(payloads[:complete]), cut
        last_end = ends[complete - 1] if complete else 0
        assert framing.truncated_tail == cut - last_end
        assert framing.bad_length_at is None and framing.bad_data == 0


def test_a_record_with_a_bad_data_checksum_is_dropped_and_its_neighbours_kept():
    buf = bytearray(_file([b"keep one", b"broken!!", b"keep two"]))
    second = len(record(b"keep one"))
    buf[second + 12] ^= 0x01  # first data byte of the second record
    framing = read_records(bytes(buf))
    assert framing.records == (b"keep one", b"keep two")
    assert framing.bad_data == 1
    unchecked = read_records(bytes(buf), verify=False)
    assert unchecked.records == (b"keep one", bytes(buf[second + 12 : second + 20]), b"keep two")


@pytest.mark.parametrize("flip", [0, 8])  # the length itself (now past the end), or its checksum
def test_a_corrupt_length_stops_the_file_there(flip):
    good = record(b"kept")
    bad = bytearray(record(b"lost"))
    bad[flip] ^= 0xFF
    framing = read_records(good + bytes(bad) + record(b"unreachable"))
    assert framing.records == (b"kept",)
    assert framing.bad_length_at == len(good) and framing.truncated_tail == 0


def test_a_huge_bogus_length_with_a_valid_checksum_is_a_truncated_tail_not_a_crash():
    length = struct.pack("<Q", 1 << 40)
    buf = record(b"kept") + length + struct.pack("<I", masked(length)) + b"short"
    framing = read_records(buf)
    assert framing.records == (b"kept",)
    assert framing.truncated_tail == 8 + 4 + 5
