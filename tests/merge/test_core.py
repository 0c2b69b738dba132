"""End-to-end merges: chunking/thread invariance, resume after a crash, sharded I/O, transformers loading."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from merge_ckpt import param_shapes, qwen3_config
from merge_reference import load
from safetensors.torch import save_file

from m2rl_slime.merge import run_merge
from m2rl_slime.merge.writer import ShardWriter

SMALL = {"chunk_elems": 65536, "block_elems": 65536, "threads": 1, "read_ahead": 1}
LARGE = {"chunk_elems": 1 << 25, "block_elems": 1 << 18, "threads": 2}
INVARIANCE = [
    ("ties", {"density": 0.2}),
    ("ties", {"density": 0.2, "trim_scope": "model"}),
    ("ties_dare", {"drop": 0.5, "density": 0.3}),
    ("ta_dare", {"drop": 0.8}),
    ("sce", {"select_topk": 0.2}),
    ("average", {}),
]


def _shard_bytes(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("model-*.safetensors"))}


@pytest.mark.parametrize(("method", "params"), INVARIANCE, ids=[m for m, _ in INVARIANCE])
def test_chunked_equals_unchunked_bit_for_bit(family, config_of, quiet, tmp_path, method, params):
    cfg = config_of(family, method, params, seed=3)
    run_merge(cfg, tmp_path / "small", quiet(shard_bytes=150_000, **SMALL))
    run_merge(cfg, tmp_path / "large", quiet(shard_bytes=150_000, **LARGE))
    small, large = _shard_bytes(tmp_path / "small"), _shard_bytes(tmp_path / "large")
    assert len(small) > 1 and small == large
    assert (tmp_path / "small" / "model.safetensors.index.json").read_bytes() == (
        tmp_path / "large" / "model.safetensors.index.json"
    ).read_bytes()


def test_seed_changes_dare_and_only_dare(family, config_of, quiet, tmp_path):
    for seed in (0, 1):
        run_merge(config_of(family, "ta_dare", seed=seed), tmp_path / f"dare{seed}", quiet())
        run_merge(config_of(family, "ties", seed=seed), tmp_path / f"ties{seed}", quiet())
    assert _shard_bytes(tmp_path / "dare0") != _shard_bytes(tmp_path / "dare1")
    assert _shard_bytes(tmp_path / "ties0") == _shard_bytes(tmp_path / "ties1")


def test_resume_after_crash_is_byte_identical(family, config_of, quiet, tmp_path, monkeypatch):
    cfg = config_of(family, "ties", {"density": 0.2, "trim_scope": "model"})
    opts = quiet(shard_bytes=100_000, chunk_elems=65536)
    run_merge(cfg, tmp_path / "clean", opts)
    real_close, calls = ShardWriter.close, []

    def crashing_close(self):
        calls.append(self.path.name)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real_close(self)

    monkeypatch.setattr(ShardWriter, "close", crashing_close)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_merge(cfg, tmp_path / "crashed", opts)
    monkeypatch.setattr(ShardWriter, "close", real_close)
    out = tmp_path / "crashed"
    work = out / "incomplete_merge"
    assert [p.name for p in out.iterdir()] == ["incomplete_merge"]
    assert len(list(work.glob("model-*.safetensors"))) == 2
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("merge_manifest.json"))
    with pytest.raises(Exception, match="holds an interrupted merge"):
        run_merge(cfg, out, opts)
    (work / "model-00003-of-00003.safetensors.tmp").write_bytes(b"half a shard from a kill -9")
    report = run_merge(cfg, out, quiet(shard_bytes=100_000, chunk_elems=65536, resume=True))
    assert report.manifest["run"]["resumed"]
    assert not list(out.rglob("*.tmp")) and not work.exists()
    assert _shard_bytes(out) == _shard_bytes(tmp_path / "clean")
    for name in ("model.safetensors.index.json", "config.json"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    clean = json.loads((tmp_path / "clean" / "merge_manifest.json").read_text())
    assert report.manifest["statistics"] == clean["statistics"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())


def test_resume_redoes_a_corrupted_shard_and_refuses_other_merges(family, config_of, quiet, tmp_path, monkeypatch):
    cfg = config_of(family, "ta")
    opts = quiet(shard_bytes=100_000)
    run_merge(cfg, tmp_path / "clean", opts)
    real = ShardWriter.close
    calls = []

    def close_twice(self):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(ShardWriter, "close", close_twice)
    with pytest.raises(KeyboardInterrupt):
        run_merge(cfg, tmp_path / "out", opts)
    monkeypatch.undo()
    first = min((tmp_path / "out" / "incomplete_merge").glob("model-*.safetensors"))
    first.write_bytes(first.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(Exception, match="different inputs, parameters"):
        run_merge(config_of(family, "ta", {"lambda": 0.5}), tmp_path / "out", quiet(shard_bytes=100_000, resume=True))
    run_merge(cfg, tmp_path / "out", quiet(shard_bytes=100_000, resume=True))
    assert _shard_bytes(tmp_path / "out") == _shard_bytes(tmp_path / "clean")


def test_sharded_inputs_and_outputs(family, sharded_family, config_of, quiet, tmp_path):
    run_merge(config_of(sharded_family, "ties"), tmp_path / "a", quiet(shard_bytes=120_000))
    run_merge(config_of(family, "ties"), tmp_path / "b", quiet())
    index = json.loads((tmp_path / "a" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3
    assert len(list((tmp_path / "b").glob("model-*.safetensors"))) == 1
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_merged_checkpoint_loads_in_transformers(family, config_of, quiet, tmp_path):
    from transformers import Qwen3ForCausalLM

    report = run_merge(config_of(family, "ties_dare"), tmp_path / "out", quiet())
    assert report.manifest["validation"]["ok"] and report.manifest["validation"]["scanned"]
    assert {"config.json", "generation_config.json", "tokenizer_config.json"} <= set(report.manifest["copied_files"])
    model, info = Qwen3ForCausalLM.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.dtype == torch.bfloat16
    assert set(param_shapes(qwen3_config())) == set(load(tmp_path / "out"))
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 9, 200, 1000]])).logits
    assert logits.shape == (1, 5, 1536) and torch.isfinite(logits).all()


def test_tied_head_stored_by_an_expert_is_ignored(family, config_of, quiet, tmp_path):
    base, experts = family
    odd = tmp_path / "with_head"
    shutil.copytree(experts["math"], odd)
    tensors = load(odd)
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, str(odd / "model.safetensors"), metadata={"format": "pt"})
    fam = (base, {**experts, "math": odd})
    report = run_merge(config_of(fam, "ta"), tmp_path / "out", quiet())
    assert report.manifest["ignored_tensors"] == ["math:lm_head.weight"]
    assert "lm_head.weight" not in load(tmp_path / "out")


def test_manifest_records_provenance_and_statistics(family, config_of, quiet, tmp_path):
    report = run_merge(config_of(family, "average", seed=5), tmp_path / "out", quiet())
    m = json.loads((tmp_path / "out" / "merge_manifest.json").read_text())
    assert m == report.manifest
    assert m["method"] == "average" and m["seed"] == 5 and m["params"] == {"include_base": False, "base_weight": 1.0}
    assert [i["name"] for i in m["inputs"]] == ["base", "math", "code", "science"]
    assert all(i["fingerprint"].startswith("stat:") for i in m["inputs"])
    assert m["version"] and len(m["shards"][0]["sha256"]) == 64
    stats = m["statistics"]["experts"]["math"]
    assert 0.3 < stats["changed_fraction"] < 0.5
    assert stats["rounded_back"] > 0 and stats["rounded_back"] <= stats["vanished"] <= stats["changed"]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"


def test_fp32_output_keeps_every_change(family, config_of, quiet, tmp_path):
    report = run_merge(config_of(family, "average", dtype="fp32"), tmp_path / "out", quiet())
    assert all(s["rounded_back"] == 0 for s in report.manifest["statistics"]["experts"].values())
    assert load(tmp_path / "out")["model.norm.weight"].dtype == torch.float32


@pytest.mark.gpu
def test_cuda_output_equals_cpu(family, config_of, quiet, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for i, (method, params) in enumerate(INVARIANCE):
        cfg = config_of(family, method, params)
        run_merge(cfg, tmp_path / f"cpu{i}", quiet())
        run_merge(cfg, tmp_path / f"cuda{i}", quiet(device="cuda"))
        assert _shard_bytes(tmp_path / f"cpu{i}") == _shard_bytes(tmp_path / f"cuda{i}"), method
