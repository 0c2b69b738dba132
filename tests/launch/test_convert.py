"""Pins the checkpoint-conversion commands slime documents, with paths and model flags from a recipe:
HF -> torch_dist (python or torchrun) and torch_dist -> HF (latest or chosen iteration, vocab padding
stripped), and the CLI's dry run."""

from __future__ import annotations

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.launch import cli
from m2rl_slime.launch.convert import hf_to_torch_dist, latest_iteration, torch_dist_to_hf
from m2rl_slime.launch.recipe import load_recipe

MODEL = ["--swiglu", "--num-layers", "36", "--hidden-size", "2560", "--ffn-hidden-size", "9728",
         "--num-attention-heads", "32", "--group-query-attention", "--num-query-groups", "8",
         "--use-rotary-position-embeddings", "--disable-bias-linear", "--normalization", "RMSNorm",
         "--norm-epsilon", "1e-6", "--rotary-base", "1000000", "--vocab-size", "151936", "--kv-channels", "128",
         "--qk-layernorm"]  # fmt: skip


@pytest.fixture
def recipes(repo_root, tmp_path, work_dir):
    env = {"WORK_DIR": str(work_dir)}

    def load(name, *sets):
        return load_recipe(repo_root / "recipes" / f"{name}.yaml", sets, environ=env, computed={"M2RL_DIR": "/m"})

    return load


def test_hf_to_torch_dist_uses_the_recipe_model_flags_and_paths(recipes, work_dir):
    command = hf_to_torch_dist(recipes("sft"))
    assert command.argv == ("python3", "/root/slime/tools/convert_hf_to_torch_dist.py", *MODEL,
                            "--hf-checkpoint", "/root/Qwen3-4B-Base", "--save", f"{work_dir}/checkpoints/base_torch_dist")  # fmt: skip
    assert command.env == {"PYTHONPATH": "/root/Megatron-LM:/root/slime"}
    multi = hf_to_torch_dist(recipes("rl_math"), hf_checkpoint="/hf", save="/out", nproc=8)
    assert multi.argv[:3] == ("torchrun", "--nproc-per-node=8", "/root/slime/tools/convert_hf_to_torch_dist.py")
    assert multi.argv[-4:] == ("--hf-checkpoint", "/hf", "--save", "/out")


def test_torch_dist_to_hf_latest_iteration(recipes, work_dir):
    save = work_dir / "checkpoints" / "rl_math"
    save.mkdir(parents=True)
    (save / "latest_checkpointed_iteration.txt").write_text("399\n")
    command = torch_dist_to_hf(recipes("rl_math"))
    assert command.argv == (
        "python3", "/root/slime/tools/convert_torch_dist_to_hf.py",
        "--input-dir", f"{save}/iter_0000399",
        "--output-dir", f"{work_dir}/checkpoints/rl_math_hf",
        "--origin-hf-dir", f"{work_dir}/checkpoints/sft_hf",
        "--vocab-size", "151936",
    )  # fmt: skip
    chosen = torch_dist_to_hf(recipes("rl_math"), iteration=199, output_dir="/x", force=True)
    assert chosen.argv[3] == f"{save}/iter_0000199" and chosen.argv[5] == "/x" and chosen.argv[-1] == "--force"


def test_latest_iteration_errors(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint saved yet; pass --iteration N or --input-dir"):
        latest_iteration(str(tmp_path))
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("release")
    assert latest_iteration(str(tmp_path)) == "release"
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("abc")
    with pytest.raises(ConfigError, match="expected an iteration number, got 'abc'"):
        latest_iteration(str(tmp_path))


def test_cli_dry_run(capsys, work_dir, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("WORK_DIR", str(work_dir))
    assert cli.main(["convert", "torch-dist-to-hf", "rl_science", "--iteration", "199", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(
        "PYTHONPATH=/root/Megatron-LM:/root/slime python3 /root/slime/tools/convert_torch_dist_to_hf.py"
    )
    assert f"--input-dir {work_dir}/checkpoints/rl_science/iter_0000199" in out
    assert cli.main(["convert", "hf-to-torch-dist", "sft", "--nproc", "0", "--dry-run"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err
