"""Human-readable merge plan for ``--dry-run``: tensors, bytes, passes, shards, estimated peak memory."""

from __future__ import annotations

from dataclasses import asdict

from .io import DTYPES
from .plan import MergePlan, chunked, memory_estimate, read_volume


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _mergekit_note(plan: MergePlan) -> str | None:
    p = asdict(plan.params)
    if "drop" in p:
        return (
            f"mergekit equivalent: density: {1 - p['drop']:.4g} (= 1 - drop); mergekit rescales by an L1 match, "
            f"we by exactly 1/(1-p) = {1 / (1 - p['drop']):.4g}"
        )
    if plan.config.method == "ties":
        return f"mergekit equivalent: ties with density: {p['density']} (mergekit trims per tensor only)"
    return None


def describe(plan: MergePlan) -> str:
    """The plan as printed by ``--dry-run`` (nothing is written)."""
    cfg, opts = plan.config, plan.options
    tensors = plan.tensors
    big = max(tensors, key=lambda t: t.numel)
    params = " ".join(f"{k}={v}" for k, v in asdict(plan.params).items())
    in_bytes = sum(DTYPES[t.in_dtype][1] * t.numel for t in tensors)
    out_bytes = sum(s.nbytes for s in plan.shards)
    lines = [
        f"method:  {cfg.method} ({params}){' seed=' + str(cfg.seed) if plan.method.random else ''}",
        "formula: " + plan.method.formula.replace("\n", "\n         "),
        f"base:    {plan.base.path}  [{plan.fingerprints['base'][:20]}]",
    ]
    for spec, ckpt in zip(cfg.experts, plan.experts, strict=True):
        lines.append(
            f"expert:  {spec.name} = {ckpt.path}  weight={spec.weight}  [{plan.fingerprints[spec.name][:20]}]"
        )
    n_chunked = sum(1 for t in tensors if t.merge and chunked(plan, t))
    lines += [
        (
            f"tensors: {len(tensors)} ({sum(t.numel for t in tensors):,} elements; largest {big.name} "
            f"{big.numel:,}; {n_chunked} streamed in chunks of {opts.chunk_elems:,})"
        ),
        (
            f"input:   {1 + len(plan.experts)} x {_gb(in_bytes)} = {_gb(in_bytes * (1 + len(plan.experts)))}; "
            f"read incl. statistics passes: {_gb(read_volume(plan))}"
        ),
        f"output:  {cfg.dtype}, {_gb(out_bytes)} in {len(plan.shards)} shard(s) of <= {_gb(opts.shard_bytes)}: "
        + ", ".join(s.file for s in plan.shards[:3])
        + (" ..." if len(plan.shards) > 3 else ""),
    ]
    if plan.ignored:
        lines.append(f"ignored: {', '.join(plan.ignored)} (tied to the embeddings)")
    note = _mergekit_note(plan)
    if note:
        lines.append(note)
    mem = memory_estimate(plan)
    parts = ", ".join(f"{k.replace('_', ' ')} {_gb(v)}" for k, v in mem.items() if k != "total")
    lines.append(f"memory:  estimated peak {_gb(mem['total'])} ({parts})")
    lines.append(f"run:     device={opts.device} threads={opts.compute_threads()} read_ahead={opts.read_ahead}")
    return "\n".join(lines)
