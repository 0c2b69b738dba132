"""The command line: help with formulas, dry run, recipes with variables, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from merge_reference import load

from m2rl_slime.merge.cli import main, parse_size


def _args(family, *extra):
    base, experts = family
    out = ["--base", str(base)]
    for name, path in experts.items():
        out += ["--expert", f"{name}={path}"]
    return out + ["--no-progress", *extra]


def test_help_lists_every_method_formula(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ("ties_dare", "sce_fusechat", "sgn(sum_i tau_i)", "/ (1 - p)", "--select-topk", "--dare-drop"):
        assert needle in text, needle


def test_cli_merge_and_summary(family, tmp_path, capsys):
    code = main(_args(family, "--method", "ties", "--density", "0.3", "--lambda", "1.1", "--out", str(tmp_path / "o")))
    assert code == 0
    out = capsys.readouterr().out
    assert "merged ties" in out and "math: changed" in out
    manifest = json.loads((tmp_path / "o" / "merge_manifest.json").read_text())
    assert manifest["params"]["density"] == 0.3 and manifest["params"]["lam"] == 1.1


def test_dry_run_writes_nothing(family, tmp_path, capsys):
    assert main(_args(family, "--method", "ta_dare", "--drop", "0.8", "--dry-run", "--out", str(tmp_path / "o"))) == 0
    text = capsys.readouterr().out
    assert "density: 0.2 (= 1 - drop)" in text and "estimated peak" in text
    assert not (tmp_path / "o").exists()


BAD = [
    (["--method", "nope"], 2, "invalid choice"),
    (["--method", "ta", "--density", "0.2", "--out", "X"], 2, "--density does not apply to method ta"),
    (["--method", "ties", "--density", "1.5", "--out", "X"], 2, "density must be in (0, 1]"),
    (["--method", "ties", "--weight", "nobody=2", "--out", "X"], 2, "no expert named 'nobody'"),
    (["--method", "ties", "--expert", "broken", "--out", "X"], 2, "expected NAME=VALUE"),
    (["--method", "ties"], 2, "--out is required"),
    (["--method", "sce", "--weight", "math=2", "--out", "X"], 2, "sce has no per-expert weight"),
    (["--method", "ta", "--chunk-elems", "1000", "--out", "X"], 2, "multiple of 65536"),
    (["--method", "ta", "--shard-size", "lots", "--out", "X"], 2, "invalid size"),
    (["--method", "ta", "--device", "cuda", "--out", "X"], 2, "CUDA is not available"),
    (["--method", "ta", "--copy-from", "nowhere", "--out", "X"], 2, "copy_from 'nowhere' is neither"),
]


@pytest.mark.parametrize(("extra", "code", "message"), BAD, ids=[b[2][:20] for b in BAD])
def test_bad_input_exits_nonzero_with_one_line(family, tmp_path, capsys, extra, code, message):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("CUDA present")
    extra = [str(tmp_path / "o") if a == "X" else a for a in extra]
    try:
        got = main(_args(family, *extra))
    except SystemExit as exc:  # argparse errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_missing_base_and_nonempty_out(family, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("x")
    assert main(["--expert", f"m={family[1]['math']}", "--method", "ta", "--out", str(tmp_path / "o")]) == 2
    assert "missing base" in capsys.readouterr().err
    assert main(_args(family, "--method", "ta", "--out", str(tmp_path / "o"))) == 2
    assert "is not empty; pass --resume" in capsys.readouterr().err


def test_recipe_with_variables(family, tmp_path, monkeypatch, capsys):
    base, experts = family
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        'method: ta_dare\nbase: ${T_BASE}\nexperts:\n  math: ${T_MATH}\n  code: {path: "${T_CODE}", weight: 0.5}\n'
        "  science: ${T_SCI:-/nonexistent}\nparams: {drop: 0.5, lambda: 0.9}\nseed: 3\ndtype: fp16\n"
    )
    monkeypatch.setenv("T_BASE", str(base))
    monkeypatch.setenv("T_MATH", str(experts["math"]))
    monkeypatch.setenv("T_CODE", str(experts["code"]))
    monkeypatch.setenv("T_SCI", str(experts["science"]))
    assert main(["--config", str(recipe), "--no-progress", "--drop", "0.6", "--out", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "merge_manifest.json").read_text())
    assert m["params"] == {"lam": 0.9, "drop": 0.6, "rescale": True} and m["seed"] == 3 and m["dtype"] == "fp16"
    assert [i.get("weight") for i in m["inputs"]] == [None, 1.0, 0.5, 1.0]
    assert load(tmp_path / "o")["model.norm.weight"].dtype == torch.float16
    monkeypatch.delenv("T_MATH")
    assert main(["--config", str(recipe), "--out", str(tmp_path / "p")]) == 2
    assert "environment variable T_MATH is not set" in capsys.readouterr().err


def test_module_entry_point(family, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.merge", "--method", "bogus"], capture_output=True, check=False, text=True
    )
    assert proc.returncode == 2 and proc.stderr.startswith("m2rl-merge: error:")


def test_parse_size():
    assert parse_size("2GB") == 2_000_000_000 and parse_size("1GiB") == 1 << 30 and parse_size("500") == 500


def test_import_is_light():
    """No work at import: the package and its CLI module load without torch, numpy or yaml."""
    code = "import sys, m2rl_slime.merge, m2rl_slime.merge.cli; print(sorted({'torch', 'numpy', 'yaml'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
