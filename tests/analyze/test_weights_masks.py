"""Changed masks, densities, Jaccard and both random references on planted masks with known answers."""

from __future__ import annotations

import math
import zlib

import pytest
import torch
from planted import EMBED, GATE1, build, dense_reference, visible

from m2rl_slime.analyze.weights import run_weights


def _pair(report, group, a, b, layer=None):
    w = report.weights
    if layer is None:
        return w["table"]["groups"][group]["pairs"][f"{a}|{b}"]
    return w["layers"][str(layer)][group]["pairs"][f"{a}|{b}"]


def test_planted_intervals_give_exact_counts(tmp_path, quiet):
    """A changes [0, 4000), B [3000, 7000), C the even indices of gate_proj in layer 1: all counts are known."""
    n = 8192

    def planter(i, name, b):
        if name != GATE1:
            return None
        flat = torch.zeros(n)
        if i == 0:
            flat[:4000] = 1
        elif i == 1:
            flat[3000:7000] = 1
        else:
            flat[::2] = 1
        return visible(b, flat.view_as(b))

    base, experts = build(tmp_path / "ck", planter, ("a", "b", "c"))
    report = run_weights(str(base), list(experts.items()), tmp_path / "out", quiet(layers="1", perm_draws=3))
    gate = report.weights["layers"]["1"]["gate"]
    assert gate["changed"] == {"a": 4000, "b": 4000, "c": 4096}
    ab, ac, bc = (_pair(report, "gate", x, y, 1) for x, y in (("a", "b"), ("a", "c"), ("b", "c")))
    assert (ab["intersection"], ab["union"]) == (1000, 7000)
    assert ab["jaccard"] == pytest.approx(1000 / 7000, abs=1e-15)
    p = q = 4000 / n
    assert ab["jaccard_indep"] == pytest.approx(p * q / (p + q - p * q), rel=1e-12)
    assert (ac["intersection"], ac["union"]) == (2000, 6096)
    assert (bc["intersection"], bc["union"]) == (2000, 6096)
    # the other layer-1 types did not move at all
    assert report.weights["layers"]["1"]["q"]["changed"] == {"a": 0, "b": 0, "c": 0}
    assert report.weights["layers"]["1"]["q"]["pairs"]["a|b"]["jaccard"] is None
    # three permutation draws, each a Jaccard of rotated masks
    assert len(ab["jaccard_perm_draws"]) == 3


def test_independent_masks_match_the_closed_form(tmp_path, quiet):
    """Independent masks with densities 0.6 and 0.3: J and both references agree with pq/(p+q-pq)."""

    def planter(i, name, b):
        if name != EMBED:
            return None
        g = torch.Generator().manual_seed(7 + i)
        return visible(b, (torch.rand(b.shape, generator=g) < (0.6, 0.3)[i]).float())

    base, experts = build(tmp_path / "ck", planter, ("p", "q"))
    report = run_weights(str(base), list(experts.items()), tmp_path / "out", quiet(perm_draws=4))
    pair = report.weights["model"][EMBED]["pairs"]["p|q"]
    p, q = pair["density_a"], pair["density_b"]
    assert p == pytest.approx(0.6, abs=0.01) and q == pytest.approx(0.3, abs=0.01)
    expected = p * q / (p + q - p * q)  # from the observed densities: exact
    assert pair["jaccard_indep"] == pytest.approx(expected, rel=1e-12)
    n = 1536 * 64
    sd = math.sqrt(p * q * (1 - p * q) / n) / (p + q - p * q)  # of the intersection, scaled
    assert abs(pair["jaccard"] - expected) < 5 * sd
    assert abs(pair["jaccard_perm"] - expected) < 5 * sd
    ca, cb, inter, numel, _ = dense_reference(base, experts, [EMBED], "p", "q")
    assert (pair["intersection"], numel) == (inter, n)
    assert pair["union"] == ca + cb - inter


def test_permutation_keeps_coarse_structure(tmp_path, quiet):
    """Masks that both live in the first 65536-element group only: the permutation reference (rotation
    inside each group) reproduces the observed overlap, the global independence reference does not."""

    def planter(i, name, b):
        if name != EMBED:
            return None
        g = torch.Generator().manual_seed(11 + i)
        flat = (torch.rand(b.numel(), generator=g) < 0.5).float()
        flat[65536:] = 0
        return visible(b, flat.view_as(b))

    base, experts = build(tmp_path / "ck", planter, ("x", "y"))
    report = run_weights(str(base), list(experts.items()), tmp_path / "out", quiet(perm_draws=4))
    pair = report.weights["model"][EMBED]["pairs"]["x|y"]
    assert pair["jaccard"] == pytest.approx(1 / 3, abs=0.01)  # independent at 0.5 inside the group
    assert pair["jaccard_perm"] == pytest.approx(pair["jaccard"], abs=0.01)
    assert pair["jaccard_indep"] == pytest.approx(0.2, abs=0.01)  # densities 1/3 over the whole tensor


def test_pooled_groups_sum_counts_over_tensors(tmp_path, quiet):
    """Attention/FFN pools are |∧|/|∨| over the union of their tensors; the reference is stratified by tensor."""

    def planter(i, name, b):
        if ".layers." not in name or "norm" in name:
            return None
        g = torch.Generator().manual_seed(zlib.crc32(f"{i}{name}".encode()))
        return visible(b, (torch.rand(b.shape, generator=g) < (0.2 + 0.1 * i)).float())

    base, experts = build(tmp_path / "ck", planter, ("a", "b"))
    report = run_weights(str(base), list(experts.items()), tmp_path / "out", quiet(layers="0"))
    layer = report.weights["layers"]["0"]
    attn = layer["attention"]["pairs"]["a|b"]
    parts = [layer[k]["pairs"]["a|b"] for k in ("q", "k", "v", "o")]
    inter = sum(p["intersection"] for p in parts)
    union = sum(p["union"] for p in parts)
    assert (attn["intersection"], attn["union"]) == (inter, union)
    assert attn["jaccard"] == pytest.approx(inter / union, rel=1e-12)
    assert attn["mean_of_types"]["jaccard"] == pytest.approx(sum(p["jaccard"] for p in parts) / 4, rel=1e-12)
    names = [f"model.layers.0.self_attn.{t}_proj.weight" for t in "qkvo"]
    ca, cb, inter_ref, n, cos = dense_reference(base, experts, names, "a", "b")
    assert attn["intersection"] == inter_ref
    assert attn["cosine"] == pytest.approx(cos, abs=1e-5)
    assert report.weights["table"]["scope"] == "layer 0"
