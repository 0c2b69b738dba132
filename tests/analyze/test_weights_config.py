"""Options, layer selection, tensor classification and the dtype statement."""

from __future__ import annotations

import pytest

from m2rl_slime.analyze.weights import WeightsOptions
from m2rl_slime.analyze.weights.config import dtype_statement, parse_layers
from m2rl_slime.analyze.weights.names import TensorKind, classify
from m2rl_slime.errors import ConfigError


def test_parse_layers():
    assert parse_layers("all", 28) is None
    assert parse_layers("17", 28) == (17,)
    assert parse_layers("0-3, 17", 28) == (0, 1, 2, 3, 17)
    for bad in ("x", "3-1", "1,,2", "-1"):
        with pytest.raises(ConfigError, match="--layers"):
            parse_layers(bad, 28)
    with pytest.raises(ConfigError, match="layer 40 is not in the model"):
        parse_layers("40", 28)


@pytest.mark.parametrize(
    "kw",
    [
        {"eta": -1.0},
        {"eta": 1.0},
        {"chunk_elems": 1000},
        {"block_elems": 3 << 16},
        {"block_elems": 1 << 26},
        {"seeds": 0},
        {"advise_ahead": -1},
        {"read_ahead": 0},
    ],
)
def test_bad_options(kw):
    with pytest.raises(ConfigError):
        WeightsOptions(**kw).validate()


def test_classify():
    assert classify("model.layers.17.self_attn.q_proj.weight") == TensorKind(17, "q")
    assert classify("model.layers.3.mlp.down_proj.weight") == TensorKind(3, "down")
    assert classify("model.layers.3.mlp.experts.7.gate_proj.weight") == TensorKind(3, "gate")
    assert classify("model.layers.3.input_layernorm.weight") == TensorKind(3, "input_layernorm.weight")
    assert classify("model.layers.3.self_attn.q_proj.bias") == TensorKind(3, "self_attn.q_proj.bias")
    assert classify("lm_head.weight") == TensorKind(None, "lm_head.weight")
    assert classify("model.layers.3.self_attn.o_proj.weight").projection


def test_dtype_statement():
    bf16 = dtype_statement("BF16", 1e-3)
    assert bf16["bitwise_equivalent"] and bf16["min_relative_gap"] == 2**-8
    assert "bitwise inequality" in bf16["statement"]
    assert not dtype_statement("BF16", 0.004)["bitwise_equivalent"]
    assert not dtype_statement("F16", 1e-3)["bitwise_equivalent"]
    assert dtype_statement("F32", 0.0)["bitwise_equivalent"]
    assert "not the same as bitwise inequality" in dtype_statement("F32", 1e-3)["statement"]


def test_block_default_follows_the_kernel(monkeypatch):
    from m2rl_slime.analyze.weights import kernel

    assert WeightsOptions(block_elems=1 << 17).block() == 1 << 17  # explicit wins
    assert WeightsOptions(kernel="numpy").block() == 1 << 18
    assert WeightsOptions(kernel="numpy", chunk_elems=1 << 16).block() == 1 << 16  # never above the chunk
    monkeypatch.setattr(kernel, "_native", object())  # "built"
    assert WeightsOptions().block() == 1 << 20
    monkeypatch.setattr(kernel, "_native", None)
    assert WeightsOptions().block() == 1 << 18
