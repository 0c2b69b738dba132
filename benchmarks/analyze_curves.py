"""Reading TensorBoard event files for ``analyze curves``: our reader vs TensorBoard's, in one run.

Input: a synthetic run shaped like the study's multi-task run (``--steps`` rollouts x ``--tags`` scalars a
step, written as torch's ``SummaryWriter.add_scalar`` does: one event per scalar, ``simple_value``).

1. ours, checksums verified (the default of ``analyze curves``): `events.read_event_file` + `series.collect`;
2. ours with ``--no-verify`` (lengths still checked);
3. the data checksums alone, vectorised (`tfrecord.masked_crc32c_many`) vs the byte loop (`crc32c`), the
   reason the reader verifies checksums in one numpy pass per file;
4. anchor: TensorBoard's ``EventAccumulator`` (all scalars kept), when the tensorboard package is importable;
   the values of both readers are compared.

Prints one JSON object per measurement (CPU seconds, best of ``--repeat``).
Run: ``python benchmarks/analyze_curves.py [--steps 1000] [--tags 150] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from m2rl_slime.analyze.curves.events import read_event_file
from m2rl_slime.analyze.curves.series import collect
from m2rl_slime.analyze.curves.tfrecord import crc32c, masked_crc32c, masked_crc32c_many, read_records

HARDWARE = {
    "cpu": platform.processor() or platform.machine(),
    "cores": os.cpu_count(),
    "python": platform.python_version(),
}


def emit(**record) -> None:
    print(json.dumps({**record, "hardware": HARDWARE}), flush=True)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def write_run(path: Path, steps: int, tags: int) -> int:
    names = [f"rollout/m2rl/domain{t % 5}/metric_{t:03d}" for t in range(tags)]
    records = []
    for step in range(steps):
        for t, name in enumerate(names):
            value = _ld(1, name.encode()) + b"\x15" + struct.pack("<f", (step * 7 + t) % 101 / 100)
            event = b"\x09" + struct.pack("<d", 1.7e9 + step) + b"\x10" + _varint(step) + _ld(5, _ld(1, value))
            records.append(_record(event))
    path.write_bytes(b"".join(records))
    return len(records)


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.out.tfevents.1700000000.bench.1.0"
        n_events = write_run(path, args.steps, args.tags)
        size_mb = path.stat().st_size / 1e6
        common = {"events": n_events, "file_mb": round(size_mb, 2)}

        def ours(verify: bool) -> dict:
            return collect(read_event_file(path, verify=verify)[0])[0]

        t_ours, series = best(lambda: ours(True), args.repeat)
        emit(name="ours (checksums verified)", cpu_s=round(t_ours, 3), events_per_s=round(n_events / t_ours), **common)
        t_fast, _ = best(lambda: ours(False), args.repeat)
        emit(name="ours --no-verify", cpu_s=round(t_fast, 3), ratio_vs_verified=round(t_ours / t_fast, 2), **common)

        buf = path.read_bytes()
        spans = read_records(buf, verify=False).records
        starts, pos = [], 0
        for rec in spans:
            starts.append(pos + 12)
            pos += 16 + len(rec)
        t_vec, _ = best(lambda: masked_crc32c_many(buf, starts, [len(r) for r in spans]), args.repeat)
        sample = spans[: max(1, len(spans) // 20)]  # the byte loop on 5% of the records, scaled up
        t_loop, _ = best(lambda: [crc32c(r) for r in sample], 1)
        t_loop *= len(spans) / len(sample)
        emit(
            name="data checksums: vectorised vs byte loop",
            vectorised_cpu_s=round(t_vec, 3),
            byte_loop_cpu_s=round(t_loop, 2),
            speedup=round(t_loop / t_vec, 1),
            **common,
        )

        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            emit(name="anchor: TensorBoard EventAccumulator", skipped="tensorboard is not installed", **common)
            return

        def theirs() -> EventAccumulator:
            acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
            acc.Reload()
            return acc

        t_tb, acc = best(theirs, args.repeat)
        same = all(
            list(series[tag].steps) == [e.step for e in acc.Scalars(tag)]
            and list(series[tag].values) == [e.value for e in acc.Scalars(tag)]
            for tag in acc.Tags()["scalars"]
        ) and set(series) == set(acc.Tags()["scalars"])
        emit(
            name="anchor: TensorBoard EventAccumulator",
            cpu_s=round(t_tb, 3),
            ours_speedup=round(t_tb / t_ours, 2),
            identical_values=same,
            **common,
        )


if __name__ == "__main__":
    main()
