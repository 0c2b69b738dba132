"""Refused inputs, NaN/Inf reporting, output-directory rules, resume, threads and chunking."""

from __future__ import annotations

import json
import math

import pytest
import torch
from merge_ckpt import base_weights, param_shapes, qwen3_config, save_checkpoint

from m2rl_slime.analyze.weights import engine as engine_mod
from m2rl_slime.analyze.weights import run_weights
from m2rl_slime.analyze.weights.engine import PARTIAL
from m2rl_slime.errors import ConfigError


def _variant(root, family, edit, name="bad"):
    """A copy of the family's first expert with `edit(tensors)` applied."""
    from safetensors.torch import load_file

    _, experts = family
    src = next(iter(experts.values()))
    tensors = load_file(str(src / "model.safetensors"))
    edit(tensors)
    return save_checkpoint(root / name, tensors, qwen3_config())


QPROJ = "model.layers.0.self_attn.q_proj.weight"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.update({QPROJ: t[QPROJ][:32]}), "has shape"),
        (lambda t: t.update({QPROJ: t[QPROJ].float()}), "has dtype F32, base BF16"),
        (lambda t: t.pop(QPROJ), "is missing"),
        (lambda t: t.update({"model.extra.weight": torch.zeros(2)}), "is not in the base"),
    ],
    ids=["shape", "dtype", "missing", "extra"],
)
def test_mismatching_experts_are_refused_before_writing(tmp_path, family, quiet, edit, message):
    base, experts = family
    bad = _variant(tmp_path, family, edit)
    with pytest.raises(ConfigError, match=message) as info:
        run_weights(str(base), [("math", str(experts["math"])), ("bad", str(bad))], tmp_path / "out", quiet())
    assert "\n" not in str(info.value) and "'bad'" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_other_base_is_refused(tmp_path, family, quiet):
    """A base of another model (other vocabulary) does not match the experts."""
    _, experts = family
    config = qwen3_config(vocab=1024)
    other = save_checkpoint(tmp_path / "other", base_weights(param_shapes(config), 0, torch.bfloat16), config)
    with pytest.raises(ConfigError, match="model.embed_tokens.weight has shape"):
        run_weights(str(other), list((n, str(p)) for n, p in experts.items()), tmp_path / "out", quiet())


@pytest.mark.parametrize(
    ("experts", "message"),
    [([], "no experts"), ([("a", "x"), ("a", "y")], "used twice"), ([("a|b", "x")], "must match")],
)
def test_bad_expert_names(tmp_path, family, quiet, experts, message):
    with pytest.raises(ConfigError, match=message):
        run_weights(str(family[0]), experts, tmp_path / "out", quiet())


def test_nan_and_inf_are_reported_and_excluded(tmp_path, family, quiet):
    base, experts = family

    def poison(t):
        t[QPROJ] = t[QPROJ].clone()
        t[QPROJ].view(-1)[:3] = float("nan")
        t[QPROJ].view(-1)[3] = float("inf")

    bad = _variant(tmp_path, family, poison)
    report = run_weights(str(base), [("math", str(experts["math"])), ("bad", str(bad))], tmp_path / "out", quiet())
    assert report.nonfinite == 4
    assert report.weights["nonfinite"]["tensors"] == {QPROJ: {"base": 0, "math": 0, "bad": 4}}
    pair = report.weights["layers"]["0"]["q"]["pairs"]["math|bad"]
    assert math.isfinite(pair["cosine"]) and pair["union"] > 0


def test_output_directory_rules(tmp_path, family, quiet):
    base, experts = family
    args = (str(base), [(n, str(p)) for n, p in experts.items()], tmp_path / "out")
    run_weights(*args, quiet(layers="0"), figures=False)
    with pytest.raises(ConfigError, match="already holds a weights analysis"):
        run_weights(*args, quiet(layers="0"), figures=False)
    run_weights(*args, quiet(layers="0", overwrite=True), figures=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        run_weights(args[0], args[1], tmp_path / "file", quiet())


def _strip(weights):
    return {k: v for k, v in weights.items() if k != "run"}


def test_resume_after_an_interruption_gives_the_same_numbers(tmp_path, family, quiet, monkeypatch):
    base, experts = family
    args = (str(base), [(n, str(p)) for n, p in experts.items()])
    clean = run_weights(*args, tmp_path / "clean", quiet(), figures=False)
    calls = {"n": 0}
    original = engine_mod.PartialFile.add

    def crash_after_five(self, record):
        if calls["n"] == 5:
            raise KeyboardInterrupt
        calls["n"] += 1
        original(self, record)

    monkeypatch.setattr(engine_mod.PartialFile, "add", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        run_weights(*args, tmp_path / "out", quiet(), figures=False)
    monkeypatch.undo()
    out = tmp_path / "out"
    assert not (out / "weights.json").exists()
    lines = (out / PARTIAL).read_text().splitlines()
    assert len(lines) == 6  # the header and five tensors
    (out / PARTIAL).write_text("\n".join(lines) + '\n{"name": "cut sh')  # a torn last line
    with pytest.raises(ConfigError, match="add --resume"):
        run_weights(*args, out, quiet(), figures=False)
    with pytest.raises(ConfigError, match="other inputs or options"):
        run_weights(*args, out, quiet(resume=True, eta=2e-3), figures=False)
    resumed = run_weights(*args, out, quiet(resume=True), figures=False)
    assert resumed.weights["run"]["resumed_tensors"] == 5
    assert _strip(resumed.weights) == _strip(clean.weights)
    assert not (out / PARTIAL).exists()


def test_threads_and_chunking_do_not_change_the_numbers(tmp_path, family, quiet):
    base, experts = family
    args = (str(base), [(n, str(p)) for n, p in experts.items()])
    one = run_weights(*args, tmp_path / "a", quiet(threads=1, project="all"), figures=False).weights
    many = run_weights(
        *args, tmp_path / "b", quiet(threads=2, chunk_elems=1 << 16, block_elems=1 << 16, project="all"), figures=False
    ).weights
    emb_a, emb_b = one["model"]["model.embed_tokens.weight"], many["model"]["model.embed_tokens.weight"]
    assert emb_a["changed"] == emb_b["changed"]
    for key, pa in emb_a["pairs"].items():
        pb = emb_b["pairs"][key]
        assert (pa["intersection"], pa["jaccard_perm_draws"]) == (pb["intersection"], pb["jaccard_perm_draws"])
        assert pa["cosine"] == pytest.approx(pb["cosine"], abs=1e-6)
    for key, pa in one["table"]["groups"]["ffn"]["pairs"].items():
        pb = many["table"]["groups"]["ffn"]["pairs"][key]
        assert pa["cosine_projected_seeds"] == pytest.approx(pb["cosine_projected_seeds"], abs=1e-6)


def test_layer_selection_and_table_scope(tmp_path, family, quiet):
    base, experts = family
    args = (str(base), [(n, str(p)) for n, p in experts.items()])
    w = run_weights(*args, tmp_path / "a", quiet(layers="1"), figures=False).weights
    assert list(w["layers"]) == ["1"] and w["model"] == {} and w["table"]["scope"] == "layer 1"
    assert w["table"]["groups"]["q"]["pairs"]["math|code"]["cosine_projected"] is not None
    w = run_weights(*args, tmp_path / "b", quiet(other=False, project="none"), figures=False).weights
    assert w["table"]["scope"] == "layers 0, 1 pooled" and w["model"] == {}
    assert w["table"]["groups"]["q"]["pairs"]["math|code"]["cosine_projected"] is None
    w = run_weights(*args, tmp_path / "c", quiet(table_layer=0), figures=False).weights
    assert w["table"]["layers"] == [0] and "model.embed_tokens.weight" in w["model"]
    assert "lm_head.weight" not in w["model"]  # tied to the embeddings
    assert "input_layernorm.weight" in w["layers"]["0"]["other"]
    with pytest.raises(ConfigError, match="--table-layer 5"):
        run_weights(*args, tmp_path / "d", quiet(table_layer=5), figures=False)
    with pytest.raises(ConfigError, match="layer 7 is not in the model"):
        run_weights(*args, tmp_path / "d", quiet(layers="7"), figures=False)


def test_outputs_layout(tmp_path, family, quiet):
    import csv

    base, experts = family
    report = run_weights(str(base), [(n, str(p)) for n, p in experts.items()], tmp_path / "o", quiet(), figures=False)
    names = {p.name for p in report.files}
    assert names == {"weights.json", "table5.csv", "table5.json", "layers.csv"}
    rows = list(csv.DictReader((tmp_path / "o" / "table5.csv").open()))
    assert list(rows[0]) == ["a", "b", "metric", "q", "k", "v", "o", "down", "up", "gate", "attention", "ffn"]
    assert len(rows) == 3 * 8  # three pairs x eight metrics
    t5 = json.loads((tmp_path / "o" / "table5.json").read_text())
    assert t5["reference"]["paper_random_jaccard"] == pytest.approx(0.176, abs=1e-3)
    curves = list(csv.DictReader((tmp_path / "o" / "layers.csv").open()))
    assert {r["layer"] for r in curves} == {"0", "1"} and len(curves) == 2 * 9 * 3
    assert json.loads((tmp_path / "o" / "weights.json").read_text())["rule"].startswith("|w_rl - w_sft|")


def test_a_single_expert_gets_densities_only(tmp_path, family, quiet):
    base, experts = family
    report = run_weights(str(base), [("math", str(experts["math"]))], tmp_path / "o", quiet(layers="0"))
    w = report.weights
    assert w["pairs"] == [] and w["table"]["groups"]["q"]["pairs"] == {}
    assert 0.3 < w["table"]["groups"]["q"]["density"]["math"] < 0.5  # merge_ckpt moves 40% of the elements
    assert report.figures == ()


def test_the_read_schedule_alone_reads_every_selected_byte(family, quiet):
    """`Streamer.read_all` (the benchmark's reader-only run): every chunk of the base and the experts, once."""
    from m2rl_slime.analyze.weights.analysis import open_inputs
    from m2rl_slime.analyze.weights.engine import Streamer

    base, experts = family
    options = quiet(chunk_elems=1 << 16)
    inputs = open_inputs(str(base), [(n, str(p)) for n, p in experts.items()], options)
    read = Streamer(inputs, options).read_all(inputs.targets)
    assert read == sum(t.info.nbytes for t in inputs.targets) * (1 + len(experts)) > 0
