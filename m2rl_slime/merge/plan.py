"""Open and cross-check the inputs, then fix the output layout before anything is written.

Every expert must have exactly the base's tensors with the same shapes and dtypes; the first mismatch is
refused by name. With tied word embeddings (``tie_word_embeddings: true``, e.g. Qwen3-4B) the output has
no ``lm_head.weight``: an input that stores one anyway (some exporters do) has it ignored, with a log line.
The output layout (tensor order = the base's shard/offset order, shard boundaries by bytes) is a pure
function of the inputs and options, which is what makes ``--resume`` byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from .. import __version__
from ..errors import ConfigError
from .config import MergeConfig, MergeOptions
from .io import DTYPES, FLOAT_CODES, OUT_CODES, Checkpoint, read_header, sha256_file
from .methods import MergeMethod, get_method

log = logging.getLogger(__name__)
TIED_HEAD = "lm_head.weight"
_BASELINE_BYTES = 400 << 20  # interpreter + torch, measured


@dataclass(frozen=True, slots=True)
class PlannedTensor:
    """One output tensor. `merge` is False for non-float tensors, which are copied from the base."""

    name: str
    shape: tuple[int, ...]
    in_dtype: str
    out_dtype: str
    merge: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def out_bytes(self) -> int:
        return self.numel * DTYPES[self.out_dtype][1]


@dataclass(frozen=True, slots=True)
class PlannedShard:
    """One output shard: its file name and tensors, in write order."""

    file: str
    tensors: tuple[PlannedTensor, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.out_bytes for t in self.tensors)


@dataclass(frozen=True, slots=True)
class MergePlan:
    """Everything decided before the first byte is written."""

    config: MergeConfig
    options: MergeOptions
    method: MergeMethod
    params: Any
    base: Checkpoint
    experts: tuple[Checkpoint, ...]
    shards: tuple[PlannedShard, ...]
    ignored: tuple[str, ...]
    fingerprints: dict[str, str]
    plan_id: str

    @property
    def tensors(self) -> list[PlannedTensor]:
        return [t for s in self.shards for t in s.tensors]

    @property
    def merged_numel(self) -> int:
        return sum(t.numel for t in self.tensors if t.merge)


def _tied(ckpt: Checkpoint) -> bool:
    tie = ckpt.config.get("tie_word_embeddings")
    if tie is None:
        return TIED_HEAD not in ckpt.tensors
    return bool(tie)


def check_experts(base: Checkpoint, experts: dict[str, Checkpoint]) -> tuple[list[str], list[str]]:
    """Check every expert against the base; return (tensor names to write, ignored tied-head names).

    Raises:
        ConfigError: naming the first mismatching expert and tensor.
    """
    tied = _tied(base)
    ignored = [TIED_HEAD] if tied and TIED_HEAD in base.tensors else []
    names = [n for n in base.tensors if not (tied and n == TIED_HEAD)]
    for ename, exp in experts.items():
        where = f"expert {ename!r} ({exp.path})"
        if exp.config and base.config and _tied(exp) != tied:
            raise ConfigError(f"{where}: tie_word_embeddings={_tied(exp)} but the base has {tied}")
        for name in names:
            info, ref = exp.tensors.get(name), base.tensors[name]
            if info is None:
                raise ConfigError(f"{where}: tensor {name} is missing (present in the base)")
            if info.shape != ref.shape:
                raise ConfigError(f"{where}: tensor {name} has shape {list(info.shape)}, base {list(ref.shape)}")
            if info.dtype != ref.dtype:
                raise ConfigError(f"{where}: tensor {name} has dtype {info.dtype}, base {ref.dtype}")
        extra = [n for n in exp.tensors if n not in base.tensors and not (tied and n == TIED_HEAD)]
        if extra:
            raise ConfigError(f"{where}: tensor {extra[0]} is not in the base")
        if tied and TIED_HEAD in exp.tensors:
            head, emb = exp.tensors[TIED_HEAD], exp.tensors.get("model.embed_tokens.weight")
            if emb is not None and head.shape != emb.shape:
                raise ConfigError(
                    f"{where}: tied {TIED_HEAD} has shape {list(head.shape)}, embeddings {list(emb.shape)}"
                )
            ignored.append(f"{ename}:{TIED_HEAD}")
    return names, ignored


def _layout(base: Checkpoint, names: list[str], out_code: str, shard_bytes: int) -> tuple[PlannedShard, ...]:
    groups: list[list[PlannedTensor]] = [[]]
    size = 0
    for name in names:
        info = base.tensors[name]
        merge = info.dtype in FLOAT_CODES and info.numel > 0
        t = PlannedTensor(name, info.shape, info.dtype, out_code if merge else info.dtype, merge)
        if groups[-1] and size + t.out_bytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(t)
        size += t.out_bytes
    n = len(groups)
    return tuple(PlannedShard(f"model-{i + 1:05d}-of-{n:05d}.safetensors", tuple(g)) for i, g in enumerate(groups))


def fingerprint(ckpt: Checkpoint, mode: str) -> str:
    """``stat``: sha256 over each shard's name, size, mtime and header; ``content``: over every byte."""
    sha = hashlib.sha256()
    for f in ckpt.files:
        st = f.stat()
        if mode == "content":
            sha.update(f"{f.name}\0{sha256_file(f)}\0".encode())
        else:
            start, header = read_header(f)
            sha.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0{start}\0".encode())
            sha.update(json.dumps(header, sort_keys=True).encode())
    return f"{mode}:{sha.hexdigest()}"


def build_plan(config: MergeConfig, options: MergeOptions) -> MergePlan:
    """Open every input, check them against each other and fix the output layout.

    Raises:
        ConfigError: unreadable input, mismatching expert, bad parameters.
    """
    method = get_method(config.method)
    params = config.method_params()
    base = Checkpoint(config.base)
    experts = {e.name: Checkpoint(e.path) for e in config.experts}
    names, ignored = check_experts(base, experts)
    if ignored:
        log.info("tied word embeddings: ignoring %s (the output ties lm_head to the embeddings)", ", ".join(ignored))
    shards = _layout(base, names, OUT_CODES[config.dtype], options.shard_bytes)
    prints = {"base": fingerprint(base, options.fingerprint)}
    prints.update({n: fingerprint(c, options.fingerprint) for n, c in experts.items()})
    ident = {
        "version": __version__,
        "method": config.method,
        "params": asdict(params),
        "seed": config.seed,
        "dtype": config.dtype,
        "experts": [[e.name, e.weight] for e in config.experts],
        "inputs": prints,
        "shards": [[s.file, [t.name for t in s.tensors]] for s in shards],
    }
    plan_id = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    return MergePlan(
        config, options, method, params, base, tuple(experts.values()), shards, tuple(ignored), prints, plan_id
    )


def chunked(plan: MergePlan, t: PlannedTensor) -> bool:
    """Whether a tensor is streamed in several chunks (statistics passes then re-read it)."""
    return t.numel > plan.options.chunk_elems


def memory_estimate(plan: MergePlan) -> dict[str, int]:
    """Estimated peak host memory by component, in bytes (the read window dominates)."""
    o = plan.options
    big = max(plan.tensors, key=lambda t: t.numel)
    window = min(big.numel, o.chunk_elems)
    in_item = DTYPES[big.in_dtype][1] * (1 + len(plan.experts))
    out_item = DTYPES[OUT_CODES[plan.config.dtype]][1]
    block = window if o.device == "cuda" else min(o.block_elems, window)
    compute = o.compute_threads() * block * 4 * (len(plan.experts) + 8)
    est = {
        "read_window": (o.read_ahead + 1) * window * in_item,
        "output_buffers": 3 * window * out_item,
        "compute": 0 if o.device == "cuda" else compute,
        "runtime": _BASELINE_BYTES,
    }
    est["total"] = sum(est.values())
    if o.device == "cuda":
        est["device_compute"] = compute
    return est


def read_volume(plan: MergePlan) -> int:
    """Input bytes read, counting statistics passes that re-read chunked tensors and whole-model passes."""
    per_input = sum(DTYPES[t.in_dtype][1] * t.numel for t in plan.tensors) * (1 + len(plan.experts))
    extra = 0
    tensor_passes = plan.method.tensor_passes(plan.params)
    for t in plan.tensors:
        if t.merge and chunked(plan, t):
            extra += tensor_passes * DTYPES[t.in_dtype][1] * t.numel * (1 + len(plan.experts))
    return per_input * (1 + plan.method.model_passes(plan.params)) + extra
