"""The eval-only recipe: its `suite:` section rendered into slime's eval config (K, sampling and data keys
explicit, the m2rl_eval record in each dataset's metadata, the deferred hook for out-of-slime scorers,
driver benchmarks left out), the suite's reward settings in the plugin config, benchmarks whose prepared
file is missing dropped at launch with one line each, and --emit-script."""

from __future__ import annotations

import logging

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval.slime_config import DEFERRED_RM, drop_missing
from m2rl_slime.launch.emit import script_text
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render


@pytest.fixture
def load(repo_root, work_dir):
    def load_eval(*sets):
        return load_recipe(repo_root / "recipes" / "eval.yaml", list(sets), environ={"WORK_DIR": str(work_dir)})

    return load_eval


def flags(recipe) -> dict:
    return {flag: value for group in recipe.slime.values() for flag, value in group.items()}


def test_eval_only_flags(load, work_dir):
    recipe = load("HF_MODEL=/models/ties", f"OUT={work_dir}/eval/ties")
    f = flags(recipe)
    assert f["debug-rollout-only"] is True and f["num-rollout"] == 0 and f["eval-interval"] == 1
    assert f["save-debug-rollout-data"] == f"{work_dir}/eval/ties/raw/{{rollout_id}}.pt"
    assert f["hf-checkpoint"] == "/models/ties" and "load" not in f and "save" not in f and "ref-load" not in f
    assert f["custom-rm-path"] == "m2rl_slime.hooks.reward"
    assert recipe.plugin == {"m2rl_reward": {"require_thinking": True}}
    assert recipe.output_dir == f"{work_dir}/eval/ties/launch"
    assert recipe.suite["out"] == f"{work_dir}/eval/ties" and recipe.suite["skipped"].keys() == {"bfcl_v3"}
    assert "--eval-config" in render(recipe, has_nvlink=False).args


def test_the_suite_becomes_explicit_eval_datasets(load, work_dir):
    datasets = {d["name"]: d for d in load("HF_MODEL=/models/ties", "MODEL_ID=TIES").eval["datasets"]}
    assert list(datasets) == ["aime24", "aime25", "lcb_v5", "lcb_v6", "hle", "gpqa_diamond", "ifeval", "ifbench"]
    k = {name: d["n_samples_per_eval_prompt"] for name, d in datasets.items()}
    assert k == {"aime24": 64, "aime25": 64, "lcb_v5": 2, "lcb_v6": 2, "hle": 1, "gpqa_diamond": 4, "ifeval": 1,
                 "ifbench": 1}  # fmt: skip
    for d in datasets.values():  # nothing falls back to slime's rollout settings
        assert (d["temperature"], d["top_p"], d["max_response_len"]) == (1.0, 0.7, 32768)
        assert (d["input_key"], d["label_key"], d["metadata_key"], d["tool_key"]) == ("prompt", "label", "metadata", "tools")  # fmt: skip
        info = d["metadata_overrides"]["m2rl_eval"]
        assert info["model_id"] == "TIES" and info["model_path"] == "/models/ties" and info["k"] == d["n_samples_per_eval_prompt"]  # fmt: skip
    assert datasets["aime24"]["path"] == f"{work_dir}/data/eval/aime24.jsonl"
    assert datasets["gpqa_diamond"]["metadata_overrides"]["domain"] == "science"
    assert datasets["hle"]["custom_rm_path"] == DEFERRED_RM and "custom_rm_path" not in datasets["aime24"]


def test_quick_suite_subset_and_limits(load, work_dir):
    recipe = load("SUITE=quick", "ONLY=aime24,ifeval", "EVAL_DATA_DIR=/data/eval")
    paths = [d["path"] for d in recipe.eval["datasets"]]
    assert paths == ["/data/eval/aime24.jsonl@[0:5]", "/data/eval/ifeval.jsonl@[0:10]"]
    assert recipe.suite["skipped"] == {}


def test_suite_errors_name_the_key(load, write_recipe, repo_root):
    with pytest.raises(ConfigError, match="suite nope not found"):
        load("SUITE=nope")
    with pytest.raises(ConfigError, match="unknown benchmark of suite quick 'lcb_v6'"):
        load("SUITE=quick", "ONLY=lcb_v6")
    base = repo_root / "recipes" / "eval.yaml"
    path = write_recipe("both.yaml", f"extends: {base}\neval: {{datasets: [{{name: a, path: /a}}]}}\n")
    with pytest.raises(ConfigError, match="either `suite` or `eval`, not both"):
        load_recipe(path)


def test_missing_prepared_files_are_dropped_with_one_line_each(load, work_dir, caplog):
    recipe = load("SUITE=quick")
    with pytest.raises(ConfigError, match="none of the suite's prepared files exists"):
        drop_missing(recipe)
    data = work_dir / "data" / "eval"
    data.mkdir(parents=True)
    (data / "ifeval.jsonl").write_text("{}\n")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        kept = drop_missing(recipe)
    assert [d["name"] for d in kept.eval["datasets"]] == ["ifeval"]
    missing = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert len(missing) == 2 and missing[0].startswith("benchmark aime24: missing (")
    assert kept.raw["eval"]["datasets"] == kept.eval["datasets"]
    assert render(kept, has_nvlink=False).files[-1].content.count("- name:") == 1


def test_emit_script_writes_the_rendered_eval_config(load):
    text = script_text(load("SUITE=quick"))
    assert 'cat > "${OUTPUT_DIR}/eval_config.yaml" <<EOF' in text or "eval_config.yaml" in text
    assert "n_samples_per_eval_prompt: 2" in text and "--debug-rollout-only" in text
