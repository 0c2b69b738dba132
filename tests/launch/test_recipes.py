"""Pins the shipped recipes to the paper's settings, the hook paths (the `m2rl_slime.hooks` index), and the
paper-vs-code decisions (no zero-coefficient KL loss; stop by token id; step counts 400 / 1000 / 200)."""

from __future__ import annotations

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch.recipe import load_recipe
from m2rl_slime.launch.render import render

from .conftest import RECIPES

GRPO_RUNS = ("rl_math", "rl_code", "rl_science", "rl_if", "rl_agent", "rl_multi")
OPD_RUNS = ("opd", "opd_custom_loss")


@pytest.fixture
def load(repo_root, work_dir):
    def load_one(name):
        return load_recipe(repo_root / "recipes" / f"{name}.yaml", environ={"WORK_DIR": str(work_dir)})

    return load_one


def flags(recipe) -> dict:
    return {flag: value for group in recipe.slime.values() for flag, value in group.items()}


@pytest.mark.parametrize("name", GRPO_RUNS)
def test_grpo_paper_settings(load, name):
    f = flags(load(name))
    assert f["num-rollout"] == (1000 if name == "rl_multi" else 400)
    assert (f["rollout-batch-size"], f["n-samples-per-prompt"], f["global-batch-size"]) == (128, 16, 2048)
    assert f["rollout-max-response-len"] == 32768 and f["rollout-temperature"] == 1.0
    assert f["advantage-estimator"] == "grpo" and (f["eps-clip"], f["eps-clip-high"]) == (0.2, 0.28)
    assert f["use-tis"] is True
    assert (f["lr"], f["lr-decay-style"], f["weight-decay"]) == ("2e-6", "constant", 0.1)
    assert (f["optimizer"], f["adam-beta1"], f["adam-beta2"]) == ("adam", 0.9, 0.98)
    assert (f["tensor-model-parallel-size"], f["context-parallel-size"], f["max-tokens-per-gpu"]) == (2, 2, 17600)


@pytest.mark.parametrize("name", (*GRPO_RUNS, *OPD_RUNS))
def test_paper_vs_code_decisions(load, name):
    f = flags(load(name))
    assert "use-kl-loss" not in f and "kl-loss-coef" not in f  # no zero-coefficient KL loss
    assert "rollout-stop" not in f and f["rollout-stop-token-ids"] == [151645]  # stop by token id
    assert f["ref-load"].endswith("/checkpoints/sft")  # init from the SFT checkpoint
    assert f["apply-chat-template"] is True and f["balance-data"] is True
    assert (f["attention-dropout"], f["hidden-dropout"]) == (0.0, 0.0)


@pytest.mark.parametrize("name", OPD_RUNS)
def test_opd_paper_settings(load, name):
    recipe = load(name)
    f = flags(recipe)
    assert f["num-rollout"] == 200
    assert (f["rollout-batch-size"], f["n-samples-per-prompt"], f["global-batch-size"]) == (256, 4, 1024)
    assert f["rollout-max-response-len"] == 16384 and f["lr"] == "1e-6"
    assert "use-tis" not in f and "eps-clip-high" not in f and f["tensor-model-parallel-size"] == 8
    assert f["rollout-sample-hook-path"] == ["m2rl_slime.hooks.attach_teacher_log_probs"]
    assert f["data-source-path"] == "m2rl_slime.hooks.MultiDomainDataSource"
    opd = recipe.plugin["m2rl_opd"]
    assert opd["task_reward"] == "zero" and sorted(opd["teachers"]) == ["agent", "code", "if", "math", "science"]
    if name == "opd":
        assert (f["use-opd"], f["opd-type"], f["opd-kl-coef"]) == (True, "sglang", 1.0)
        assert "loss-type" not in f and "use-rollout-logprobs" not in f  # slime's shaping needs old log-probs
    else:
        assert "use-opd" not in f and f["loss-type"] == "custom_loss"
        assert f["custom-loss-function-path"] == "m2rl_slime.hooks.opd_loss"
        assert f["use-rollout-logprobs"] is True  # opd_loss never reads the old-policy forward slime would run
    (service,) = recipe.services
    assert service.command[:4] == ("python3", "-m", "m2rl_slime.opd", "serve-teachers")
    assert service.wait_command[:4] == ("python3", "-m", "m2rl_slime.opd", "wait-teachers")


@pytest.mark.parametrize("name", RECIPES)
def test_fixed_hook_paths(load, name):
    recipe = load(name)
    f = flags(recipe)
    if name != "sft":
        assert f["custom-rm-path"] == "m2rl_slime.hooks.reward"
    if name not in ("sft", "eval"):  # an eval-only run has no training rollouts to log
        assert f["custom-rollout-log-function-path"] == "m2rl_slime.hooks.log_rollout"
    if name in ("rl_agent", "rl_multi", *OPD_RUNS):
        assert f["custom-generate-function-path"] == "m2rl_slime.hooks.generate"
        assert recipe.plugin["m2rl_agent"]["max_turns"] == 6
    if name in ("rl_multi", *OPD_RUNS):
        assert f["data-source-path"] == "m2rl_slime.hooks.MultiDomainDataSource" and "prompt-data" not in f
        assert sorted(recipe.plugin["m2rl_data"]["prompt_files"]) == ["agent", "code", "if", "math", "science"]
        assert recipe.plugin["m2rl_data"]["mixture"] == "natural"
    elif name.startswith("rl_"):
        assert f["prompt-data"].endswith(f"/data/{name[3:]}.jsonl")
    assert all(key.startswith("m2rl_") for key in recipe.plugin)


def test_eval_settings(load):
    evals = {name: load(name).eval for name in ("rl_math", "rl_code", "rl_science", "rl_if", "rl_multi")}
    n = {name: {d["name"]: d["n_samples_per_eval_prompt"] for d in cfg["datasets"]} for name, cfg in evals.items()}
    assert n == {"rl_math": {"aime24": 8}, "rl_code": {"lcb_v6": 2}, "rl_science": {"gpqa_diamond": 4},
                 "rl_if": {"ifbench": 1, "ifeval": 1},
                 "rl_multi": {"aime24": 16, "gpqa_diamond": 4, "ifbench": 1, "ifeval": 1, "lcb_v6": 2}}  # fmt: skip
    domains = {d["name"]: d["metadata_overrides"]["domain"] for cfg in evals.values() for d in cfg["datasets"]}
    assert domains == {"aime24": "math", "lcb_v6": "code", "gpqa_diamond": "science", "ifbench": "if", "ifeval": "if"}
    for cfg in evals.values():
        assert cfg["defaults"] == {"max_response_len": 32768, "top_p": 0.7}
    for name in ("rl_agent", "opd"):
        assert load(name).eval is None


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_renders_on_one_and_four_nodes(repo_root, work_dir, name):
    for nnodes in ("1", "4"):
        recipe = load_recipe(
            repo_root / "recipes" / f"{name}.yaml", environ={"WORK_DIR": str(work_dir), "NNODES": nnodes}
        )
        out = render(recipe, has_nvlink=False)
        assert out.args[:2] == ("--actor-num-nodes", nnodes)


def test_sandbox_server_switch(load, repo_root, work_dir):
    path = repo_root / "recipes" / "rl_code.yaml"
    assert "code" not in load("rl_code").plugin["m2rl_reward"]  # the embedded sandbox by default
    sets = ["plugin.m2rl_reward.code.sandbox_url=http://10.0.0.3:8080"]
    recipe = load_recipe(path, sets, environ={"WORK_DIR": str(work_dir)})
    assert recipe.plugin["m2rl_reward"]["code"] == {"sandbox_url": "http://10.0.0.3:8080"}
    with pytest.raises(ConfigError, match=r"rl_code\.yaml: plugin\.m2rl_reward.*sandbox_ur"):
        load_recipe(path, ["plugin.m2rl_reward.code.sandbox_ur=x"], environ={"WORK_DIR": str(work_dir)})
