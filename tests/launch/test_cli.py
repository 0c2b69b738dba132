"""Pins the CLI: --help everywhere, one-line errors with a non-zero exit naming the key and the recipe file
before anything is started, the real launch path (with a scripted runner), `list`, and that importing the
launcher pulls in neither torch nor slime nor ray."""

from __future__ import annotations

import subprocess
import sys

import pytest

from m2rl_slime.launch import cli

from .test_cluster import FakeRunner


class NoRunner:
    def __init__(self, *args, **kwargs):
        raise AssertionError("nothing may be started on bad input")


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch):
    monkeypatch.setattr(cli, "SystemRunner", NoRunner)


def test_import_does_not_pull_heavy_dependencies(repo_root):
    code = "import sys, m2rl_slime.launch; bad = {'torch', 'slime', 'ray', 'transformers'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["serve", "--help"],
        ["convert", "--help"],
        ["convert", "hf-to-torch-dist", "--help"],
        ["convert", "torch-dist-to-hf", "--help"],
        ["list", "--help"],
    ],
)
def test_help(argv, capsys):
    assert cli.main(argv) == 0
    assert "usage:" in capsys.readouterr().out


def test_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "rl_math" in out and "GRPO on math (paper settings)" in out and "opd" in out


def run_bad(argv, capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("m2rl-launch: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize(
    ("text", "sets", "expected"),
    [
        ("output_dir: /o\nslimee: {}\n", [], "bad.yaml: unknown recipe key(s) slimee"),
        (
            "output_dir: /o\nvariables: {SFT: null}\nslime: {ckpt: {ref-load: '${SFT}'}}\n",
            [],
            "bad.yaml: slime.ckpt.ref-load needs variable SFT",
        ),
        (
            "output_dir: /o\nslime: {rollout: {num-rollout: 4}}\n",
            ["--set", "slime.rollout.num-rolout=3"],
            "--set slime.rollout.num-rolout: --num-rolout is not a flag of slime",
        ),
        ("output_dir: /o\nslime: {rollout: {num-rollout: 4}}\n", ["--set", "plugins.x=1"], "--set plugins.x"),
        (
            "output_dir: /o\nslime: {grpo: {use-tiss: true}}\n",
            [],
            "bad.yaml: slime.grpo.use-tiss: --use-tiss is not a flag",
        ),
    ],
)
def test_bad_input_exits_non_zero_before_anything_starts(tmp_path, capsys, text, sets, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    err = run_bad([str(path), *sets], capsys)
    assert expected in err and "bad.yaml" in err


def test_bad_option(capsys):
    assert "--ray-timeout must be > 0" in run_bad(["rl_math", "--ray-timeout", "0"], capsys)


def test_unknown_recipe_name(capsys):
    err = run_bad(["rl_maths", "--dry-run"], capsys)
    assert "recipe rl_maths not found" in err and "rl_math" in err


def test_missing_input_path_is_checked_before_launch(fixed_env, monkeypatch, capsys, repo_root):
    monkeypatch.chdir(repo_root)
    for key, value in fixed_env.items():
        monkeypatch.setenv(key, value)
    err = run_bad(["rl_math"], capsys)
    assert "recipes/rl_math.yaml: slime.ckpt.hf-checkpoint (set in recipes/base/qwen3_4b.yaml):" in err
    assert "does not exist" in err


def test_real_launch_path_with_a_scripted_runner(tmp_path, monkeypatch, capsys):
    for sub in ("slime", "megatron", "hf"):
        (tmp_path / sub).mkdir()
    (tmp_path / "slime" / "train.py").write_text("")
    (tmp_path / "math.jsonl").write_text("{}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"output_dir: {tmp_path}/out\n"
        f"slime: {{ckpt: {{hf-checkpoint: {tmp_path}/hf}}, rollout: {{prompt-data: {tmp_path}/math.jsonl}}}}\n"
    )
    runner = FakeRunner(rc={("ray", "job"): 0})
    monkeypatch.setattr(cli, "SystemRunner", lambda: runner)
    sets = [
        "--set",
        f"SLIME_DIR={tmp_path}/slime",
        "--set",
        f"MEGATRON_DIR={tmp_path}/megatron",
        "--set",
        "HAS_NVLINK=0",
    ]
    assert cli.main([str(recipe), *sets]) == 0
    submit = next(c for c in runner.kinds("call") if c[:3] == ("ray", "job", "submit"))
    assert submit[-6:] == ("python3", f"{tmp_path}/slime/train.py", "--hf-checkpoint", f"{tmp_path}/hf",
                           "--prompt-data", f"{tmp_path}/math.jsonl")  # fmt: skip


def test_has_nvlink_setting():
    assert cli.has_nvlink("1") and not cli.has_nvlink("0")
    with pytest.raises(Exception, match="HAS_NVLINK='yes' must be 0, 1 or auto"):
        cli.has_nvlink("yes")
