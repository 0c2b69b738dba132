"""Reports on synthetic evaluation directories whose Avg@K, standard errors and rankings are known:
`summarize` (pending and missing benchmarks never become 0), `compare` (best/second, paired bootstrap
seeded and within-noise marks, averages, Table 4 from merge manifests, Table 2 from run records), the
paper layout against a golden file, the CSV/JSON/PNG outputs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from synthetic import write_manifest, write_model, write_record

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval.cli import main
from m2rl_slime.eval.compare import CompareOptions, compare
from m2rl_slime.eval.report import markdown, write_outputs
from m2rl_slime.eval.stats import avg_at_k, paired_bootstrap
from m2rl_slime.eval.summary import summarize

DATA = Path(__file__).parent / "data"


def test_avg_at_k_and_its_standard_error():
    est = avg_at_k([0, 0.5, 0, 0.5, 0, 0.5])
    assert est.avg == pytest.approx(0.25) and est.n == 6
    assert est.stderr == pytest.approx(math.sqrt(0.075 / 6))  # sample variance 0.075 over 6 items
    assert avg_at_k([0.7]).stderr is None
    with pytest.raises(ValueError):
        avg_at_k([])


def test_paired_bootstrap_is_seeded_and_detects_noise():
    a = {f"u{i}": float(i % 2) for i in range(200)}
    same = paired_bootstrap(a, dict(a), seed=1)
    assert (same.diff, same.low, same.high, same.within_noise) == (0.0, 0.0, 0.0, True)
    b = {u: v * 0.2 for u, v in a.items()}
    far = paired_bootstrap(a, b, seed=1)
    assert far.diff == pytest.approx(0.4) and far.low > 0 and not far.within_noise
    assert paired_bootstrap(a, b, seed=1) == far  # same seed, same interval
    close = {u: (1 - v if u in ("u0", "u1") else v) for u, v in a.items()}
    assert paired_bootstrap(a, close, seed=2).within_noise
    with pytest.raises(ValueError):
        paired_bootstrap({"a": 1.0}, {"b": 1.0})


def test_summarize_known_values_pending_and_missing(tmp_path):
    out = write_model(tmp_path / "m", "m", {"aime24": [[1, 1], [1, 0], [0, 0], [None, None]], "gpqa_diamond": [[1], [0]]})  # fmt: skip
    summary = summarize(out)
    aime = summary["benchmarks"]["aime24"]
    assert aime["n_items"] == 3 and aime["pending"] == 2 and aime["k"] == 2 and aime["complete"] is False
    assert aime["avg"] == pytest.approx(0.5) and aime["stderr"] == pytest.approx(math.sqrt(0.25 / 3))
    assert aime["sampling"]["top_p"] == 0.7 and aime["scorer_version"] == "v1"
    assert summary["benchmarks"]["gpqa_diamond"]["avg"] == pytest.approx(0.5)
    assert summary["benchmarks"]["hle"]["missing"] is True  # in the suite, never run: missing, not 0
    assert json.loads((out / "summary.json").read_text()) == summary


def build_fixture(root: Path) -> list[Path]:
    spec = json.loads((DATA / "paper_fixture.json").read_text())
    ckpt = root / "checkpoints"
    for name, hours in spec["hours"].items():
        write_record(ckpt / name, name, hours)
        (ckpt / f"{name}_hf").mkdir()
    experts = {"math": ckpt / "rl_math_hf", "code": ckpt / "rl_code_hf"}
    dirs = []
    for label, rewards in spec["models"].items():
        if label in spec["merges"]:
            path = write_manifest(ckpt / "merged" / label, spec["merges"][label], experts)
        else:
            path = ckpt / f"{label}_hf"
        dirs.append(write_model(root / "eval" / label, label, rewards, model_path=str(path)))
    return dirs


def test_compare_ranks_noise_averages_merges_and_cost(tmp_path):
    result = compare(build_fixture(tmp_path), CompareOptions(seed=0, resamples=2000))
    assert result["models"] == ["sft", "rl_math", "rl_multi", "ties", "ta"]
    aime = result["scores"]["aime24"]
    assert aime["rl_math"]["avg"] == pytest.approx(5 / 6) and aime["sft"]["avg"] == pytest.approx(0.25)
    assert result["rank"]["aime24"] == {"best": ["rl_math"], "second": ["rl_multi"]}
    assert result["rank"]["gpqa_diamond"] == {"best": ["rl_multi"], "second": ["ties"]}
    assert result["noise"]["aime24"]["rl_multi"]["within_noise"] is True  # differs on one item only
    assert result["noise"]["aime24"]["sft"]["within_noise"] is False
    assert result["average"]["values"]["rl_multi"] == pytest.approx((0.75 + 0.875) / 2)
    assert result["merges"] == ["ties", "ta"] and result["merge_methods"] == {"ties": "ties", "ta": "ta"}
    cost = result["cost"]
    assert cost["ties"]["gpu_hours"] == pytest.approx(352) and len(cost["ties"]["records"]) == 2
    assert cost["rl_multi"]["gpu_hours"] == pytest.approx(224.2) and cost["sft"] is None  # no record: no cost
    assert "63.7%" in markdown(result)  # the mixed run with 63.7% of the merge's GPU hours


def test_paper_layout_matches_the_golden_file(tmp_path):
    result = compare(build_fixture(tmp_path), CompareOptions(seed=0, resamples=2000))
    text = markdown(result)
    golden = DATA / "paper_layout.md"
    if os.environ.get("M2RL_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text()
    assert "| AIME'24 | 6 | 2 | 25.00 ±11.2 | **83.33** ±10.5 | <u>75.00</u> ±11.2 †" in text


def test_compare_cli_writes_csv_json_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    dirs = build_fixture(tmp_path)
    out = tmp_path / "report"
    assert main(["compare", *map(str, dirs), "--layout", "paper", "--out", str(out), "--resamples", "500"]) == 0
    printed = capsys.readouterr().out
    assert "Table 3" in printed and "Table 4" in printed and "Table 2" in printed
    assert {p.name for p in out.iterdir()} == {"compare.json", "tables.md", "table3.csv", "table4.csv", "chart.png"}
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "table3.csv").read_text().splitlines()
    assert rows[0].startswith("model,benchmark,title,k,n_items,avg,stderr") and len(rows) == 1 + 5 * 2
    table4 = (out / "table4.csv").read_text().splitlines()
    assert table4[0] == "model,method,aime24,gpqa_diamond,average" and len(table4) == 3
    assert json.loads((out / "compare.json").read_text())["bootstrap"]["resamples"] == 500
    assert main(["compare", *map(str, dirs), "--layout", "long"]) == 0
    assert capsys.readouterr().out.startswith("model,benchmark")


def test_compare_input_errors_are_one_line(tmp_path, capsys):
    dirs = [write_model(tmp_path / n, "same", {"aime24": [[1, 0]]}) for n in ("a", "b")]
    result = compare(dirs)
    assert result["models"] == ["same (a)", "same (b)"]  # two runs of one model stay apart
    with pytest.raises(ConfigError, match="--names gives 1 names for 2"):
        compare(dirs, CompareOptions(names=("x",)))
    assert main(["compare", *map(str, dirs), "--cost", "nobody=/x"]) == 2
    assert "--cost names unknown model(s) nobody" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "empty")]) == 2
    assert write_outputs(result, tmp_path / "o", png=False)
