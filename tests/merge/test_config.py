"""Recipes (the paper's six merges), variable expansion, and the mergekit-style YAML translation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from merge_reference import load

from m2rl_slime.errors import ConfigError
from m2rl_slime.merge import run_merge
from m2rl_slime.merge.config import build_config, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "merge"
EXPECTED = {
    "average": {"include_base": False, "base_weight": 1.0},
    "ta": {"lam": 1.0},
    "ties": {"density": 0.2, "trim_scope": "model", "lam": 1.0, "normalize": True},
    "ties_dare": {"drop": 0.8, "rescale": True, "density": 1.0, "trim_scope": "tensor", "lam": 1.0, "normalize": True},
    "ta_dare": {"lam": 1.0, "drop": 0.8, "rescale": True},
    "sce": {"select_topk": 1.0, "min_energy": 0.0},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_paper_recipes(name, family, monkeypatch):
    from dataclasses import asdict

    base, experts = family
    for var, path in zip(
        ("SFT_HF", "MATH_HF", "CODE_HF", "SCIENCE_HF", "IF_HF", "AGENT_HF"),
        [base, *experts.values(), experts["math"], experts["code"]],
    ):
        monkeypatch.setenv(var, str(path))
    fields, warnings = load_recipe(RECIPES / f"{name}.yaml")
    cfg = build_config(fields, name)
    assert not warnings and cfg.method == name and cfg.dtype == "bf16" and cfg.seed == 0
    assert [e.name for e in cfg.experts] == ["math", "code", "science", "if", "agent"]
    assert cfg.experts[3].path == str(experts["math"]) and cfg.base == str(base)
    assert asdict(cfg.method_params()) == EXPECTED[name]


def test_recipe_defaults_without_environment(monkeypatch):
    for var in ("SFT_HF", "MATH_HF"):
        monkeypatch.delenv(var, raising=False)
    fields, _ = load_recipe(RECIPES / "ta.yaml")
    assert fields["base"] == "checkpoints/sft_hf" and fields["experts"][0].path == "checkpoints/rl_math_hf"


def test_ties_dare_recipe_trim_is_a_no_op_at_p08(family, config_of, quiet, tmp_path):
    """The recipe drops the code's post-DARE top-20% trim because at p = 0.8 it keeps everything."""
    run_merge(config_of(family, "ties_dare", {"drop": 0.8}), tmp_path / "a", quiet())
    run_merge(
        config_of(family, "ties_dare", {"drop": 0.8, "density": 0.2, "trim_scope": "model"}), tmp_path / "b", quiet()
    )
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert all(a[k].equal(b[k]) for k in a)


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, message in [
        ("method: ta\nbase: x\nexperts: {a: y}\nlambda: 1\n", "unknown key(s) lambda"),
        ("method: ta\nbase: x\nexperts: [y]\n", "experts must map names"),
        ("method: ta\nbase: [\n", "invalid YAML"),
        ("method: ta\nbase: ${NOPE_NOT_SET}\n", "NOPE_NOT_SET is not set"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_recipe(bad)
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown merge method 'magic'"):
        build_config({"method": "magic", "base": "b", "experts": [{"name": "a", "path": "p"}]}, "x")
    with pytest.raises(ConfigError, match="used twice"):
        build_config({"method": "ta", "base": "b", "experts": [{"name": "a", "path": "p"}] * 2}, "x")
    with pytest.raises(ConfigError, match="unknown key"):
        build_config(
            {"method": "ta", "base": "b", "params": {"density": 0.2}, "experts": [{"name": "a", "path": "p"}]}, "x"
        ).method_params()


def _mergekit(tmp_path, text):
    path = tmp_path / "mk.yaml"
    path.write_text(text)
    return load_recipe(path)


def test_mergekit_dare_ties_mapping(tmp_path):
    fields, warnings = _mergekit(
        tmp_path,
        """
merge_method: dare_ties
base_model: /ckpt/sft
models:
  - model: /ckpt/sft
  - model: /ckpt/math_rl
    parameters: {weight: 1.0, density: 0.2}
  - model: /ckpt/code_rl
    parameters: {weight: 1.0, density: 0.2}
parameters: {int8_mask: true}
dtype: bfloat16
out_dtype: bfloat16
""",
    )
    cfg = build_config(fields, "mk")
    assert cfg.method == "ties_dare" and [e.name for e in cfg.experts] == ["math_rl", "code_rl"]
    p = cfg.method_params()
    assert p.drop == pytest.approx(0.8) and p.normalize is False and p.rescale is True and p.density == 1.0
    text = " ".join(warnings)
    for needle in ("L1-norm", "sums agreeing deltas", "we always compute in fp32", "int8_mask"):
        assert needle in text, needle


def test_mergekit_linear_ties_and_sce(tmp_path):
    fields, _ = _mergekit(
        tmp_path,
        "merge_method: linear\nbase_model: /b\nmodels:\n  - model: /b\n    parameters: {weight: 2}\n  - model: /e\n",
    )
    assert fields["params"] == {"include_base": True, "base_weight": 2.0} and fields["method"] == "average"
    fields, warnings = _mergekit(
        tmp_path,
        "merge_method: ties\nbase_model: /b\nmodels:\n  - model: /e\n"
        "    parameters: {weight: 0.5, density: 0.3}\nparameters: {lambda: 1.2}\n",
    )
    assert fields["params"] == {"lambda": 1.2, "normalize": True, "density": 0.3}
    assert any("weight-scaled" in w for w in warnings)
    fields, _ = _mergekit(
        tmp_path,
        "merge_method: sce\nbase_model: /b\nmodels: [{model: /e}, {model: /f}]\nparameters: {select_topk: 0.1}\n",
    )
    assert fields["params"] == {"select_topk": 0.1, "min_energy": 1e-6}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("merge_method: slerp\nbase_model: /b\nmodels: [{model: /e}]\n", "no equivalent"),
        ("merge_method: ties\nbase_model: /b\nslices: []\nmodels: [{model: /e}]\n", "unsupported mergekit key"),
        ("merge_method: dare_ties\nmodels: [{model: /e}]\n", "base_model is required for dare_ties"),
        (
            "merge_method: ties\nbase_model: /b\nmodels: [{model: /e, parameters: {density: [0.1, 0.5]}}]\n",
            "gradients",
        ),
        ("merge_method: ties\nbase_model: /b\ntokenizer_source: union\nmodels: [{model: /e}]\n", "tokenizer_source"),
        (
            (
                "merge_method: ties\nbase_model: /b\nmodels: [{model: /e, parameters: {density: 0.1}}, "
                "{model: /f, parameters: {density: 0.5}}]\n"
            ),
            "densities differ",
        ),
        (
            "merge_method: task_arithmetic\nbase_model: /b\nmodels: [{model: /e}]\nparameters: {normalize: true}\n",
            "scale lambda instead",
        ),
        ("merge_method: ties\nbase_model: /b\nmodels: [{model: /b}]\n", "no model besides base_model"),
    ],
)
def test_mergekit_refusals(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        _mergekit(tmp_path, text)


def test_mergekit_yaml_end_to_end_records_its_warnings(family, tmp_path):
    import json

    from m2rl_slime.merge.cli import main

    base, experts = family
    models = "".join(f"  - model: {p}\n    parameters: {{weight: 1.0, density: 0.5}}\n" for p in experts.values())
    path = tmp_path / "mk.yaml"
    path.write_text(f"merge_method: dare_ties\nbase_model: {base}\nmodels:\n{models}out_dtype: bfloat16\n")
    assert main(["--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "out" / "merge_manifest.json").read_text())
    assert manifest["method"] == "ties_dare" and manifest["params"]["drop"] == 0.5
    assert manifest["params"]["normalize"] is False
    assert any("L1-norm" in w for w in manifest["config_warnings"])


def test_mergekit_linear_without_base_model_averages_every_model(family, tmp_path):
    """A plain average needs no base: every model is averaged, the first one gives the layout and config."""
    from merge_reference import average

    from m2rl_slime.merge.cli import main

    _, experts = family
    paths = list(experts.values())
    models = "".join(f"  - model: {p}\n    parameters: {{weight: {w}}}\n" for p, w in zip(paths, (1.0, 2.0, 1.0)))
    path = tmp_path / "mk.yaml"
    path.write_text(f"merge_method: linear\nmodels:\n{models}dtype: float32\nout_dtype: bfloat16\n")
    fields, warnings = load_recipe(path)
    assert fields["base"] == str(paths[0]) and [e["path"] for e in fields["experts"]] == [str(p) for p in paths]
    assert any("without base_model" in w for w in warnings) and "include_base" not in fields["params"]
    assert main(["--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    merged = load(tmp_path / "out")
    ref = average(load(paths[0]), [load(p) for p in paths], [1.0, 2.0, 1.0], {})
    assert merged.keys() == ref.keys() and all(torch.equal(merged[k], ref[k].to(torch.bfloat16)) for k in ref)
    with pytest.raises(ConfigError, match="base_model is required for ties"):
        _mergekit(tmp_path, "merge_method: ties\nmodels: [{model: /e}]\n")
