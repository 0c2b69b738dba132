"""Shift cosines on planted correlated shifts: exact cosine = the construction, projected within JL noise."""

from __future__ import annotations

import math
import zlib

import pytest
import torch
from planted import GATE1, build, dense_reference, load

from m2rl_slime.analyze.weights import run_weights

N_GATE = 128 * 64


def _correlated(sign: float):
    """Experts a, b change independent 70% masks; on them d_a = s(z + u_a), d_b = s(sign*z + u_b): cos -> sign/2."""

    def planter(i, name, b):
        if ".layers.1." not in name or "norm" in name:
            return None
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        z = torch.randn(b.shape, generator=g)
        u = [torch.randn(b.shape, generator=g) for _ in range(2)]
        masks = [(torch.rand(b.shape, generator=g) < 0.7).float() for _ in range(2)]
        scale = 0.02 * torch.maximum(b.abs(), torch.full_like(b, 0.1))
        shift = z if i == 0 else sign * z
        return scale * (shift + u[i]) * masks[i]

    return planter


@pytest.fixture(scope="module", params=[0.5, -0.5], ids=["positive", "negative"])
def correlated(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("corr")
    base, experts = build(root / "ck", _correlated(2 * request.param), ("a", "b"), dtype=torch.float32)
    from m2rl_slime.analyze.weights import WeightsOptions

    opts = WeightsOptions(progress=False, layers="1", eta=0.0, seeds=8)
    return (
        request.param,
        base,
        experts,
        run_weights(str(base), list(experts.items()), root / "out", opts, figures=False),
    )


def test_exact_cosine_matches_the_construction(correlated):
    target, base, experts, report = correlated
    pair = report.weights["layers"]["1"]["gate"]["pairs"]["a|b"]
    _, _, inter, _, cos = dense_reference(base, experts, [GATE1], "a", "b", eta=0.0)
    assert pair["intersection"] == inter
    assert pair["cosine"] == pytest.approx(cos, abs=1e-6)  # the exact cosine of the stored shifts
    assert abs(pair["cosine"] - target) < 4 * (1 - target**2) / math.sqrt(inter)  # and of the construction
    # cosine_full uses the whole shift vectors: the non-overlap parts only add norm
    assert abs(pair["cosine_full"]) < abs(pair["cosine"])


def test_projected_cosine_is_the_exact_one_plus_jl_noise(correlated):
    target, _, _, report = correlated
    for kind in ("q", "gate", "down"):
        pair = report.weights["layers"]["1"][kind]["pairs"]["a|b"]
        seeds = pair["cosine_projected_seeds"]
        assert len(seeds) == 8 and pair["projection_rows"] == 256
        jl = math.sqrt((1 - pair["cosine"] ** 2) / 256)
        assert pair["jl_sd"] == pytest.approx(jl)
        assert abs(pair["cosine_projected"] - pair["cosine"]) < 4 * jl / math.sqrt(8)
        assert 0.3 * jl < pair["cosine_projected_sd"] < 3 * jl
    ffn = report.weights["layers"]["1"]["ffn"]["pairs"]["a|b"]
    assert ffn["projection_rows"] == 3 * 256  # concatenated projections of gate, up and down


def test_type_means_and_concatenation(correlated):
    _, base, experts, report = correlated
    layer = report.weights["layers"]["1"]
    attn = layer["attention"]["pairs"]["a|b"]
    per_type = [layer[k]["pairs"]["a|b"]["cosine"] for k in ("q", "k", "v", "o")]
    assert attn["mean_of_types"]["cosine"] == pytest.approx(sum(per_type) / 4, rel=1e-12)
    names = [f"model.layers.1.self_attn.{t}_proj.weight" for t in "qkvo"]
    assert attn["cosine"] == pytest.approx(dense_reference(base, experts, names, "a", "b", eta=0.0)[4], abs=1e-6)


def test_bf16_and_fp32_storage_of_the_same_values_agree(tmp_path, quiet):
    """bf16 checkpoints and their exact fp32 upcasts give the same masks; only the dtype statement differs."""
    from safetensors.torch import save_file

    base, experts = build(tmp_path / "bf16", _correlated(1.0), ("a", "b"), dtype=torch.bfloat16)
    up = {}
    for name, path in {"base": base, **experts}.items():
        dst = tmp_path / "fp32" / name
        dst.mkdir(parents=True)
        for f in path.iterdir():
            if f.suffix != ".safetensors":
                dst.joinpath(f.name).write_bytes(f.read_bytes())
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), "pt") as fh:
            save_file({k: fh.get_tensor(k).float() for k in fh.keys()}, str(dst / "model.safetensors"))
        up[name] = dst
    r16 = run_weights(str(base), list(experts.items()), tmp_path / "o16", quiet(layers="1"), figures=False)
    r32 = run_weights(
        str(up["base"]), [("a", str(up["a"])), ("b", str(up["b"]))], tmp_path / "o32", quiet(layers="1"), figures=False
    )
    assert r16.weights["dtypes"]["BF16"]["bitwise_equivalent"] is True
    assert r32.weights["dtypes"]["F32"]["bitwise_equivalent"] is False
    assert "bitwise inequality" in r16.weights["dtypes"]["BF16"]["statement"]
    for kind in ("q", "gate", "attention", "ffn"):
        p16, p32 = (r.weights["layers"]["1"][kind]["pairs"]["a|b"] for r in (r16, r32))
        assert (p16["intersection"], p16["union"]) == (p32["intersection"], p32["union"])
        assert p16["cosine"] == pytest.approx(p32["cosine"], abs=1e-6)
        assert p16["cosine_projected"] == pytest.approx(p32["cosine_projected"], abs=1e-5)


def test_fp32_changes_below_eta_are_not_counted(tmp_path, quiet):
    """fp32 storage: relative changes of 1e-4 are real (bits differ) but below eta = 1e-3."""

    def planter(i, name, b):
        if name != GATE1:
            return None
        rel = torch.full(b.shape, 1e-4)
        rel.view(-1)[: N_GATE // 4] = 1e-2
        return b * rel

    base, experts = build(tmp_path / "ck", planter, ("a", "b"), dtype=torch.float32)
    w_b, w_a = load(base, GATE1), load(experts["a"], GATE1)
    assert int((w_a != w_b).sum()) > N_GATE * 0.9
    strict = run_weights(str(base), list(experts.items()), tmp_path / "o1", quiet(layers="1"), figures=False)
    assert strict.weights["layers"]["1"]["gate"]["changed"]["a"] == N_GATE // 4
    loose = run_weights(str(base), list(experts.items()), tmp_path / "o2", quiet(layers="1", eta=1e-6), figures=False)
    assert loose.weights["layers"]["1"]["gate"]["changed"]["a"] == int((w_a != w_b).sum())
