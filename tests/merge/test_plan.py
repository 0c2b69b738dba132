"""Mismatched experts are refused before anything is written, naming the first mismatch."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from merge_reference import load
from safetensors.torch import save_file

from m2rl_slime.errors import ConfigError
from m2rl_slime.merge import run_merge
from m2rl_slime.merge.describe import describe
from m2rl_slime.merge.plan import build_plan, memory_estimate


def _variant(src, dst, edit):
    shutil.copytree(src, dst)
    tensors = load(dst)
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


EDITS = {
    "missing": (
        lambda t: t.pop("model.layers.1.mlp.up_proj.weight"),
        "tensor model.layers.1.mlp.up_proj.weight is missing",
    ),
    "shape": (
        lambda t: t.update({"model.norm.weight": torch.ones(65, dtype=torch.bfloat16)}),
        "has shape [65], base [64]",
    ),
    "dtype": (lambda t: t.update({"model.norm.weight": t["model.norm.weight"].float()}), "has dtype F32, base BF16"),
    "extra": (
        lambda t: t.update({"model.extra.bias": torch.zeros(3, dtype=torch.bfloat16)}),
        "model.extra.bias is not in the base",
    ),
}


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_mismatched_expert_is_refused_before_writing(family, config_of, quiet, tmp_path, kind):
    base, experts = family
    edit, message = EDITS[kind]
    bad = _variant(experts["code"], tmp_path / "bad", edit)
    cfg = config_of((base, {**experts, "code": bad}), "ties")
    with pytest.raises(ConfigError) as err:
        run_merge(cfg, tmp_path / "out", quiet())
    assert "expert 'code'" in str(err.value) and message in str(err.value)
    assert not (tmp_path / "out").exists()


def test_tie_mismatch_and_missing_dirs_are_refused(family, config_of, quiet, tmp_path):
    base, experts = family
    untied = shutil.copytree(experts["math"], tmp_path / "untied")
    cfg = json.loads((untied / "config.json").read_text())
    cfg["tie_word_embeddings"] = False
    (untied / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="tie_word_embeddings=False but the base has True"):
        build_plan(config_of((base, {"math": untied}), "ta"), quiet())
    with pytest.raises(ConfigError, match="not a checkpoint directory"):
        build_plan(config_of((base, {"math": tmp_path / "nope"}), "ta"), quiet())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no safetensors weights"):
        build_plan(config_of((tmp_path / "empty", experts), "ta"), quiet())


def test_plan_layout_and_dry_run_description(family, config_of, quiet):
    plan = build_plan(config_of(family, "ties_dare", {"drop": 0.8}), quiet(shard_bytes=100_000, chunk_elems=65536))
    n = len(plan.shards)
    assert n > 1 and plan.shards[0].file == f"model-00001-of-{n:05d}.safetensors"
    assert all(s.nbytes <= 100_000 or len(s.tensors) == 1 for s in plan.shards)
    assert plan.tensors[0].name == "model.embed_tokens.weight"
    text = describe(plan)
    for needle in (
        "ties_dare",
        "density: 0.2 (= 1 - drop)",
        "1 streamed in chunks",
        "estimated peak",
        "expert:  math",
    ):
        assert needle in text, needle
    assert memory_estimate(plan)["total"] > memory_estimate(plan)["read_window"] > 0


def test_plan_id_tracks_what_changes_the_bytes(family, config_of, quiet):
    a = build_plan(config_of(family, "ta"), quiet()).plan_id
    assert a == build_plan(config_of(family, "ta"), quiet(threads=1, chunk_elems=65536)).plan_id
    assert a != build_plan(config_of(family, "ta", {"lambda": 2.0}), quiet()).plan_id
    assert a != build_plan(config_of(family, "ta", dtype="fp16"), quiet()).plan_id
    assert a != build_plan(config_of(family, "ta"), quiet(shard_bytes=100_000)).plan_id
