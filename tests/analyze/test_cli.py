"""``python -m m2rl_slime.analyze weights|plot``: exit codes, one-line errors, figures from the JSON alone."""

from __future__ import annotations

import builtins
import importlib.util
import json
import logging
import subprocess
import sys

import pytest

from m2rl_slime.analyze import plot as plot_mod
from m2rl_slime.analyze.cli import SUBCOMMANDS, main


def _argv(family, out, *extra):
    base, experts = family
    argv = ["weights", "--base", str(base), "--out", str(out), "--no-progress", *extra]
    for name, path in experts.items():
        argv += ["--expert", f"{name}={path}"]
    return argv


def test_registered():
    assert SUBCOMMANDS["weights"][0] == "m2rl_slime.analyze.weights.cli"
    assert SUBCOMMANDS["plot"][0] == "m2rl_slime.analyze.plot"


def test_help_lists_the_generated_flags(capsys):
    with pytest.raises(SystemExit) as info:
        main(["weights", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--eta",
        "--layers",
        "--table-layer",
        "--proj-dim",
        "--seeds",
        "--perm-draws",
        "--resume",
        "--no-progress",
    ):
        assert flag in text


def test_import_does_no_heavy_work():
    code = "import sys, m2rl_slime.analyze.weights.cli, m2rl_slime.analyze.plot; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ok_run_prints_table5_and_exits_0(tmp_path, family, capsys):
    assert main(_argv(family, tmp_path / "o", "--layers", "1", "--seeds", "2")) == 0
    out = capsys.readouterr().out
    assert "Table 5 (layer 1)" in out and "math-code" in out
    assert (tmp_path / "o" / "weights.json").is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--layers", "9"], "layer 9 is not in the model"),
        (["--layers", "x"], "--layers"),
        (["--eta", "2"], "--eta"),
        (["--expert", "broken"], "expected NAME=DIR"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, family, capsys, extra, needle):
    assert main(_argv(family, tmp_path / "o", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("analyze weights:")


def test_missing_checkpoint_exit_2(tmp_path, family, capsys):
    argv = ["weights", "--base", str(tmp_path / "nope"), "--expert", f"m={family[0]}", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err


def test_nonfinite_input_exits_1_after_writing(tmp_path, family, capsys):
    from safetensors.torch import load_file, save_file

    base, experts = family
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in experts["math"].iterdir():
        bad.joinpath(f.name).write_bytes(f.read_bytes())
    tensors = load_file(str(bad / "model.safetensors"))
    tensors["model.norm.weight"] = tensors["model.norm.weight"].clone()
    tensors["model.norm.weight"][0] = float("nan")
    save_file(tensors, str(bad / "model.safetensors"))
    argv = ["weights", "--base", str(base), "--expert", f"bad={bad}", "--expert", f"code={experts['code']}"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "NaN/Inf" in err and "model.norm.weight" in err
    assert json.loads((tmp_path / "o" / "weights.json").read_text())["nonfinite"]["elements"] == 1


def test_plot_without_results_exit_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no analysis results to plot (looked for" in err and "weights.json" in err


def test_figures_regenerate_from_the_json(tmp_path, family, capsys):
    pytest.importorskip("matplotlib")
    assert main(_argv(family, tmp_path / "o", "--seeds", "2")) == 0
    out = tmp_path / "o"
    names = {"fig3_cosine.png", "fig3_cosine_projected.png", "fig3_jaccard.png", "layers.png"}
    assert names <= {p.name for p in out.iterdir()}
    for name in names:
        (out / name).unlink()
    capsys.readouterr()
    assert main(["plot", str(out), "--out", str(tmp_path / "figs")]) == 0
    printed = capsys.readouterr().out.split()
    assert {p.rsplit("/", 1)[-1] for p in printed} == names
    for name in names:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_registry_dispatches_on_the_file_found(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(plot_mod.PLOTTERS, "other.json", "tests_fake.plot")
    fake = type(sys)("tests_fake")
    fake.plot = lambda path, out: calls.append(path.name) or [out / "x.png"]
    monkeypatch.setitem(sys.modules, "tests_fake", fake)
    (tmp_path / "other.json").write_text("{}")
    assert plot_mod.plot_dir(tmp_path) == [tmp_path / "x.png"]
    assert calls == ["other.json"]


def test_without_matplotlib_numbers_are_written_and_one_line_says_how(tmp_path, family, monkeypatch, caplog):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real_find_spec(n, *a)
    )
    with caplog.at_level(logging.WARNING):
        assert main(_argv(family, tmp_path / "o", "--layers", "0")) == 0
    hint = [r.getMessage() for r in caplog.records if "matplotlib" in r.getMessage()]
    assert len(hint) == 1 and 'pip install -e ".[analysis]"' in hint[0] and "analyze plot" in hint[0]
    assert (tmp_path / "o" / "weights.json").is_file()
    assert not list((tmp_path / "o").glob("*.png"))
    assert main(["plot", str(tmp_path / "o")]) == 2
