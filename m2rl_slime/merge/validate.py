"""Post-write validation of a merged checkpoint: every shard header against the plan, file sizes, a
NaN/Inf scan of every floating-point tensor as written on disk, and (for a published checkpoint) the
index against the plan. A merge validates its shards in the work directory, before any index exists.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import M2RLError
from .io import DTYPES, INDEX_NAME, FileCache, map_range, tensor_infos
from .plan import MergePlan

log = logging.getLogger(__name__)
# (integer view, exponent mask): a float is NaN or Inf exactly when all its exponent bits are set.
_EXP = {"BF16": ("int16", 0x7F80), "F16": ("int16", 0x7C00), "F32": ("int32", 0x7F800000)}
_SCAN_ELEMS = 1 << 24


class MergeValidationError(M2RLError):
    """The written checkpoint is not what was planned, or contains NaN/Inf."""


def _index(out: Path, plan: MergePlan) -> list[str]:
    try:
        index = json.loads((out / INDEX_NAME).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{INDEX_NAME}: unreadable ({exc})"]
    errors = []
    planned = {t.name: s.file for s in plan.shards for t in s.tensors}
    if index.get("weight_map") != planned:
        errors.append(f"{INDEX_NAME}: weight_map does not match the planned tensors")
    total = sum(s.nbytes for s in plan.shards)
    if index.get("metadata", {}).get("total_size") != total:
        errors.append(f"{INDEX_NAME}: total_size is not {total}")
    return errors


def _structure(out: Path, plan: MergePlan) -> list[str]:
    errors = []
    for shard in plan.shards:
        try:
            infos = {i.name: i for i in tensor_infos(out / shard.file)}
        except M2RLError as exc:
            errors.append(str(exc))
            continue
        if set(infos) != {t.name for t in shard.tensors}:
            errors.append(f"{shard.file}: tensors differ from the index")
            continue
        for t in shard.tensors:
            info = infos[t.name]
            if info.dtype != t.out_dtype or info.shape != t.shape:
                errors.append(
                    f"{shard.file}: {t.name} is {info.dtype}{list(info.shape)}, planned {t.out_dtype}{list(t.shape)}"
                )
        end = max((i.offset + i.nbytes for i in infos.values()), default=0)
        if infos and (out / shard.file).stat().st_size != end:
            errors.append(f"{shard.file}: file size does not match its header")
    return errors


def _nonfinite(out: Path, plan: MergePlan, progress: bool) -> dict[str, int]:
    import torch
    from tqdm.auto import tqdm

    bad: dict[str, int] = {}
    files = FileCache()
    total = sum(s.nbytes for s in plan.shards)
    try:
        with tqdm(
            total=total,
            desc="validate",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            for shard in plan.shards:
                for info in tensor_infos(out / shard.file):
                    if info.dtype not in _EXP:
                        bar.update(info.nbytes)
                        continue
                    view, mask = _EXP[info.dtype]
                    n = 0
                    for s in range(0, info.numel, _SCAN_ELEMS):
                        e = min(s + _SCAN_ELEMS, info.numel)
                        bits = map_range(files, info, s, e).view(getattr(torch, view))
                        n += int(torch.count_nonzero((bits & mask) == mask))
                        bar.update((e - s) * DTYPES[info.dtype][1])
                    if n:
                        bad[info.name] = n
    finally:
        files.close()
    return bad


def validate_output(
    out: Path, plan: MergePlan, scan: bool = True, progress: bool = False, index: bool = True
) -> dict[str, Any]:
    """Check the shards written in `out` (and its index, with `index`) against the plan.

    Returns:
        A report with ``ok`` and the errors; never raises for a bad checkpoint.
    """
    errors = (_index(out, plan) if index else []) + _structure(out, plan)
    bad = _nonfinite(out, plan, progress) if scan and not errors else {}
    if bad:
        first = next(iter(bad))
        errors.append(f"{len(bad)} tensor(s) contain NaN/Inf, first {first} ({bad[first]} elements)")
    return {
        "ok": not errors,
        "errors": errors,
        "nonfinite": bad,
        "scanned": bool(scan and not errors),
        "shards": len(plan.shards),
        "tensors": sum(len(s.tensors) for s in plan.shards),
    }


def validation_error(report: dict[str, Any], work: Path | None) -> MergeValidationError:
    """The one-line error of a failed validation report; `work` is the kept work directory (None: none)."""
    text = "merged checkpoint failed validation: " + "; ".join(report["errors"])
    if work is not None:
        text += (
            f"; nothing loadable was written; shards and manifest kept in {work} (fix the inputs and rerun "
            "in an empty directory, or --resume --no-scan to publish it unscanned)"
        )
    return MergeValidationError(text)
