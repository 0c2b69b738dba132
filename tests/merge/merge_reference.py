"""Dense in-memory reference merges: whole tensors, torch.kthvalue thresholds, math.fsum energies.

Written straight from the formulas in docs/merge.md, independently of the streaming code (no blocks,
chunks, radix select or tree sums). Only the DARE mask generator is shared: its own invariances are
tested in test_dare.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from m2rl_slime.merge.methods.dare import keep_mask


def load(path: Path) -> dict[str, torch.Tensor]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(str(path / f)))
    return out


def f32(x: float) -> float:
    return float(np.float32(x))


def kth_largest(values: torch.Tensor, k: int) -> float:
    flat = values.reshape(-1)
    return float(torch.kthvalue(flat, flat.numel() - k + 1).values)


def keep(density: float, n: int) -> int:
    return max(1, int(density * n))


def average(base, experts, weights, p):
    out = {}
    for name, b in base.items():
        terms = ([(b, p.get("base_weight", 1.0))] if p.get("include_base") else []) + [
            (e[name], w) for e, w in zip(experts, weights)
        ]
        acc = None
        total = 0.0
        for x, w in terms:
            t = x.float() * f32(w) if w != 1.0 else x.float()
            acc = t.clone() if acc is None else acc + t
            total += w
        out[name] = acc / f32(total)
    return out


def _deltas(base, experts, name):
    b = base[name].float()
    return b, [e[name].float() - b for e in experts]


def _dare(d, seed, name, expert, p, rescale):
    m = keep_mask(seed, name, expert, 0, d.numel(), p).reshape(d.shape)
    d = d * m
    return d / f32(1 - p) if rescale else d


def ta(base, experts, weights, p, names=None, seed=0, dare=False):
    lam = p.get("lam", 1.0)
    out = {}
    for name in base:
        b, ds = _deltas(base, experts, name)
        if dare:
            ds = [_dare(d, seed, name, n, p.get("drop", 0.8), p.get("rescale", True)) for d, n in zip(ds, names)]
        acc = None
        for d, w in zip(ds, weights):
            t = d * f32(w) if w != 1.0 else d
            acc = t if acc is None else acc + t
        if lam != 1.0:
            acc = acc * f32(lam)
        out[name] = acc + b
    return out


def ties(base, experts, weights, p, names=None, seed=0, dare=False):
    density = p.get("density", 1.0 if dare else 0.2)
    all_d = {}
    for name in base:
        b, ds = _deltas(base, experts, name)
        if dare:
            ds = [_dare(d, seed, name, n, p.get("drop", 0.8), p.get("rescale", True)) for d, n in zip(ds, names)]
        all_d[name] = (b, ds)
    n_exp = len(experts)
    if density < 1 and p.get("trim_scope", "tensor") == "model":
        flat = [torch.cat([all_d[n][1][i].abs().reshape(-1) for n in base]) for i in range(n_exp)]
        global_t = [kth_largest(f, keep(density, f.numel())) for f in flat]
    out = {}
    for name, (b, ds) in all_d.items():
        if density < 1:
            if p.get("trim_scope", "tensor") == "model":
                ts = global_t
            else:
                ts = [kth_largest(d.abs(), keep(density, d.numel())) for d in ds]
            ds = [torch.where(d.abs() >= t, d, torch.zeros_like(d)) for d, t in zip(ds, ts)]
        total = ds[0]
        for d in ds[1:]:
            total = total + d
        gamma = torch.sign(total)
        num = torch.zeros_like(b)
        den = torch.zeros_like(b)
        for d, w in zip(ds, weights):
            agree = torch.sign(d) == gamma
            agree &= gamma != 0
            num = num + torch.where(agree, d * f32(w) if w != 1.0 else d, torch.zeros_like(d))
            den = den + torch.where(agree, f32(w), 0.0)
        tau = (
            torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))
            if p.get("normalize", True)
            else num
        )
        lam = p.get("lam", 1.0)
        out[name] = (tau * f32(lam) if lam != 1.0 else tau) + b
    return out


def sce(base, experts, weights, p, names, fusechat=False):
    """SCE with every sum over the experts in name order (the documented canonical order)."""
    experts = [e for _, e in sorted(zip(names, experts, strict=True), key=lambda pair: pair[0])]
    topk = p.get("select_topk", 1.0)
    out = {}
    for name in base:
        b, ds = _deltas(base, experts, name)
        n = len(ds)
        if topk < 1:
            stacked = torch.stack(ds)
            mean = ds[0].clone()
            for d in ds[1:]:
                mean = mean + d
            mean = mean / float(n)
            var = None
            for d in ds:
                sq = (d - mean) * (d - mean)
                var = sq if var is None else var + sq
            var = var / float(n)
            del stacked
            k = int(topk * int(torch.count_nonzero(var)))
            mask = var >= kth_largest(var, k) if k > 0 else torch.zeros_like(var, dtype=torch.bool)
            masked = [d * mask for d in ds]
        else:
            masked = ds
        energy = [math.fsum((x.double() ** 2).reshape(-1).tolist()) for x in masked]
        total = math.fsum(energy)
        if total == 0 or total / b.numel() <= p.get("min_energy", 0.0):
            eta = [f32(1.0 / n)] * n
        else:
            eta = [f32(e / total) for e in energy]
        xs = ds if fusechat else masked
        s = xs[0]
        for x in xs[1:]:
            s = s + x
        gamma = torch.where(s >= 0, 1.0, -1.0)
        num = torch.zeros_like(b)
        den = torch.zeros_like(b)
        for x, w in zip(xs, eta):
            agree = torch.sign(x) == gamma
            num = num + torch.where(agree, x * w, torch.zeros_like(x))
            den = den + torch.where(agree, w, 0.0)
        out[name] = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), 0.0) + b
    return out


def reference(method: str, base, experts, weights, params, names, seed=0):
    """Merged fp32 tensors of `method` by the dense formulas."""
    if method == "average":
        return average(base, experts, weights, params)
    if method in ("ta", "ta_dare"):
        return ta(base, experts, weights, params, names, seed, dare=method == "ta_dare")
    if method in ("ties", "ties_dare"):
        return ties(base, experts, weights, params, names, seed, dare=method == "ties_dare")
    return sce(base, experts, weights, params, names, fusechat=method == "sce_fusechat")
