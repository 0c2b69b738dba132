"""Checkpoints whose answers are known: chosen changed masks and chosen shift vectors, per tensor.

Built on the merge tests' tiny Qwen3 builder (`merge_ckpt`): same names, shapes and config; only the
expert deltas are planted here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from merge_ckpt import base_weights, param_shapes, qwen3_config, save_checkpoint

GATE1 = "model.layers.1.mlp.gate_proj.weight"  # 128 x 64 = 8192 elements
EMBED = "model.embed_tokens.weight"  # 1536 x 64 = 98304 elements (one full 65536 group + a partial one)

# delta(expert index, tensor name, base tensor fp32) -> fp32 delta (0 where unchanged), or None for no change
Planter = Callable[[int, str, torch.Tensor], torch.Tensor | None]


def visible(base: torch.Tensor, mask: torch.Tensor, signs: torch.Tensor | None = None) -> torch.Tensor:
    """A delta that changes exactly `mask` in bf16 and in fp32: 10% of each weight (at least 0.01)."""
    mag = torch.maximum(base.abs(), torch.full_like(base, 0.1)) * 0.1
    s = torch.ones_like(base) if signs is None else signs
    return mag * s * mask


def build(
    root: Path, planter: Planter, experts: tuple[str, ...], dtype: torch.dtype = torch.bfloat16
) -> tuple[Path, dict[str, Path]]:
    """Write base + experts under root; the base is merge_ckpt's random base."""
    config = qwen3_config()
    base = base_weights(param_shapes(config), 0, dtype)
    base_dir = save_checkpoint(root / "base", base, config)
    dirs = {}
    for i, name in enumerate(experts):
        tensors = {}
        for tname, b in base.items():
            delta = planter(i, tname, b.float())
            tensors[tname] = b.clone() if delta is None else (b.float() + delta).to(dtype)
        dirs[name] = save_checkpoint(root / name, tensors, config)
    return base_dir, dirs


def load(path: Path, name: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return f.get_tensor(name)


def dense_reference(base: Path, experts: Mapping[str, Path], names: list[str], a: str, b: str, eta: float = 1e-3):
    """Whole-tensor torch reference: (|m_a|, |m_b|, |m_a ∧ m_b|, numel, cosine on the overlap) over `names`."""
    ca = cb = inter = n = 0
    dot = na = nb = 0.0
    for name in names:
        w0 = load(base, name).double()
        wa, wb = load(experts[a], name).double(), load(experts[b], name).double()
        da, db = wa - w0, wb - w0
        ma = da.abs() > eta * torch.maximum(wa.abs(), w0.abs())
        mb = db.abs() > eta * torch.maximum(wb.abs(), w0.abs())
        both = ma & mb
        ca, cb, inter, n = ca + int(ma.sum()), cb + int(mb.sum()), inter + int(both.sum()), n + w0.numel()
        dot += float((da * db)[both].sum())
        na += float((da * da)[both].sum())
        nb += float((db * db)[both].sum())
    return ca, cb, inter, n, dot / (na * nb) ** 0.5
