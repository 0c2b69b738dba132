"""Post-write validation: NaN/Inf in the output is caught and reported by tensor; the index is checked."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from merge_reference import load
from safetensors.torch import load_file, save_file

from m2rl_slime.merge import run_merge
from m2rl_slime.merge.plan import build_plan
from m2rl_slime.merge.validate import MergeValidationError, validate_output


def test_nan_in_an_expert_fails_validation_naming_the_tensor(family, config_of, quiet, tmp_path):
    base, experts = family
    bad = shutil.copytree(experts["code"], tmp_path / "nan")
    tensors = load(bad)
    tensors["model.layers.1.self_attn.k_proj.weight"][3, 5] = float("nan")
    save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    fam = (base, {**experts, "code": bad})
    with pytest.raises(MergeValidationError, match="model.layers.1.self_attn.k_proj.weight"):
        run_merge(config_of(fam, "ta"), tmp_path / "out", quiet())
    assert not (tmp_path / "out" / "merge_manifest.json").exists()
    manifest = json.loads((tmp_path / "out" / "incomplete_merge" / "merge_manifest.json").read_text())
    assert manifest["validation"]["ok"] is False
    assert manifest["validation"]["nonfinite"] == {"model.layers.1.self_attn.k_proj.weight": 1}


def test_structure_checks_catch_a_tampered_output(family, config_of, quiet, tmp_path):
    cfg = config_of(family, "average")
    run_merge(cfg, tmp_path / "out", quiet())
    plan = build_plan(cfg, quiet())
    assert validate_output(tmp_path / "out", plan)["ok"]
    index = tmp_path / "out" / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"].pop("model.norm.weight")
    index.write_text(json.dumps(data))
    report = validate_output(tmp_path / "out", plan)
    assert not report["ok"] and "weight_map does not match" in report["errors"][0]
    shard = next((tmp_path / "out").glob("model-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-2])
    assert any("does not match" in e or "byte range" in e for e in validate_output(tmp_path / "out", plan)["errors"])


def test_overflow_to_inf_in_fp16_is_caught(family, config_of, quiet, tmp_path):
    with pytest.raises(MergeValidationError, match="NaN/Inf"):
        run_merge(config_of(family, "ta", {"lambda": 1e6}, dtype="fp16"), tmp_path / "out", quiet())
    work = tmp_path / "out" / "incomplete_merge"
    merged = {k: v for f in work.glob("model-*.safetensors") for k, v in load_file(str(f)).items()}
    assert torch.isinf(merged["model.embed_tokens.weight"].float()).any()
