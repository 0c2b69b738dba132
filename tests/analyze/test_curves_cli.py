"""``analyze curves`` end to end on event files written here: CSV values, panels, missing metrics, figures."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import pytest
from tfevents import record, scalars_event, write_run

from m2rl_slime.analyze.cli import main

DOMAINS = ("math", "code", "science", "if", "agent")
MULTI_STEPS, MATH_STEPS, CODE_STEPS = 10, 6, 4


def reward(domain: str, step: int) -> float:
    """Exactly representable in float32, different per domain and step."""
    return (DOMAINS.index(domain) + step % 3) / 8


def tb_ema(values, weight):
    """TensorBoard's smoothing, written out here independently of the package."""
    out, last = [], 0.0
    for n, v in enumerate(values, 1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def _segment(start, end, nodes, status):
    return {"start": start, "end": end, "nodes": nodes, "gpus_per_node": 8, "status": status}


@pytest.fixture()
def study(tmp_path):
    """Three runs: a multi-task run (with a run record), a shorter math run, a code run still being written."""
    multi = {}
    for s in range(MULTI_STEPS):
        row = {}
        for d in DOMAINS:
            row |= {f"rollout/m2rl/{d}/reward_mean": reward(d, s), f"rollout/m2rl/{d}/truncated_ratio": s / 16}
            row[f"rollout/m2rl/{d}/response_len_mean"] = 1000.0 + 10 * s
        if s % 5 == 0:
            row |= {
                "eval/aime24": s / 32,
                "eval/gpqa_diamond": 0.5,
                "eval/step": s,
                "eval/aime24-truncated_ratio": 0.25,
            }
        multi[s] = row
    write_run(tmp_path / "rl_multi", multi)
    segments = [
        _segment("2025-05-01T08:00:00Z", "2025-05-01T20:00:00Z", nodes=4, status="failed"),  # 12 h x 32 GPUs
        _segment("2025-05-02T08:00:00Z", "2025-05-02T09:30:00Z", nodes=2, status="ok"),  # 1.5 h x 16 GPUs
    ]
    run_record = {"run_name": "rl_multi", "recipe": "recipes/rl_multi.yaml", "segments": segments}
    (tmp_path / "rl_multi" / "m2rl_run_record.json").write_text(json.dumps(run_record))
    math_rows = {s: {"rollout/m2rl/math/reward_mean": reward("math", s)} for s in range(MATH_STEPS)}
    for s in (0, 5):
        math_rows[s]["eval/aime24"] = s / 16
    write_run(tmp_path / "rl_math", math_rows)
    code_rows = {
        s: {"rollout/raw_reward": s / 4, "rollout/truncated_ratio": 0.0, "rollout/response_len/mean": 500.0}
        for s in range(CODE_STEPS)
    }
    events = write_run(tmp_path / "rl_code", code_rows)
    with events.open("ab") as f:  # the writer is in the middle of the next record
        f.write(record(scalars_event(CODE_STEPS, {"rollout/raw_reward": 9.0}))[:-5])
    return tmp_path


def _curves(study, out, *extra, plot=False):
    runs = [str(study / "rl_multi"), str(study / "rl_math"), f"code={study / 'rl_code' / 'tensorboard'}"]
    return main(["curves", *runs, "--out", str(out), *extra, *([] if plot else ["--no-plot"])])


def _rows(out, **match):
    with (out / "curves.csv").open() as f:
        return [r for r in csv.DictReader(f) if all(r[k] == v for k, v in match.items())]


def test_csv_holds_the_logged_values_aligned_by_step_and_smoothed(study, tmp_path, capsys):
    out = tmp_path / "out"
    assert _curves(study, out, "--smoothing", "0.5") == 0
    for domain in DOMAINS:
        rows = _rows(out, figure="fig9_reward", run="rl_multi", line=domain)
        raw = [reward(domain, s) for s in range(MULTI_STEPS)]
        assert [int(r["step"]) for r in rows] == list(range(MULTI_STEPS))
        assert [float(r["value"]) for r in rows] == raw
        assert [float(r["smoothed"]) for r in rows] == pytest.approx(tb_ema(raw, 0.5))
        assert {r["tag"] for r in rows} == {f"rollout/m2rl/{domain}/reward_mean"}
    math_rows = _rows(out, figure="fig9_reward", run="rl_math")
    assert [int(r["step"]) for r in math_rows] == list(range(MATH_STEPS))  # its own, shorter step range
    code = _rows(out, figure="fig9_reward", run="code")
    assert [(int(r["step"]), float(r["value"]), r["line"]) for r in code] == [(s, s / 4, "all") for s in range(4)]
    aime = _rows(out, figure="fig2_benchmarks", panel="aime24")
    assert [(r["run"], int(r["step"]), float(r["value"]), float(r["smoothed"])) for r in aime] == [
        ("rl_multi", 0, 0.0, 0.0),
        ("rl_multi", 5, 5 / 32, 5 / 32),
        ("rl_math", 0, 0.0, 0.0),
        ("rl_math", 5, 5 / 16, 5 / 16),
    ]
    assert {r["gpu_hours"] for r in _rows(out, run="rl_multi")} == {str(12 * 32 + 1.5 * 16)}
    assert {r["gpu_hours"] for r in _rows(out, run="rl_math")} == {""}
    printed = capsys.readouterr().out.split()
    assert str(out / "curves.json") in printed and str(out / "curves.csv") in printed


def test_json_describes_the_panels_and_legends_carry_gpu_hours(study, tmp_path):
    out = tmp_path / "out"
    assert _curves(study, out) == 0
    desc = json.loads((out / "curves.json").read_text())
    figures = {f["id"]: f for f in desc["figures"]}
    assert set(figures) == {"fig9_reward", "fig2_benchmarks", "truncation", "response_len"}
    fig9 = figures["fig9_reward"]["panels"]
    assert [p["run"] for p in fig9] == ["rl_multi", "rl_math", "code"]
    assert [line["key"] for line in fig9[0]["lines"]] == list(DOMAINS)  # the multi-task run: one line per domain
    assert fig9[0]["legend_title"] == "rl_multi (408 GPU-h)"
    fig2 = figures["fig2_benchmarks"]["panels"]
    assert [p["key"] for p in fig2] == ["aime24", "gpqa_diamond"]  # not eval/step nor eval/aime24-truncated_ratio
    assert [line["label"] for line in fig2[0]["lines"]] == ["rl_multi (408 GPU-h)", "rl_math"]
    assert [p["run"] for p in figures["truncation"]["panels"]] == ["rl_multi", "code"]
    runs = {r["name"]: r for r in desc["runs"]}
    assert runs["rl_multi"]["gpu_hours"] == 408.0 and runs["rl_multi"]["gpu_hours_partial"] is False
    assert runs["code"]["last_step"] == CODE_STEPS - 1
    assert any("last record incomplete" in w for w in runs["code"]["warnings"])
    with (out / "runs.csv").open() as f:
        assert {r["run"]: r["gpu_hours"] for r in csv.DictReader(f)} == {
            "rl_multi": "408.0",
            "rl_math": "",
            "code": "",
        }


def test_each_missing_metric_is_one_line_and_no_panel_is_empty(study, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        assert _curves(study, out, "--benchmarks", "gpqa_diamond,lcb") == 0
    missing = [r.getMessage() for r in caplog.records if r.getMessage().startswith("missing: ")]
    assert "missing: fig2_benchmarks: run rl_math has no eval/gpqa_diamond" in missing
    assert "missing: fig2_benchmarks: run code has no eval/gpqa_diamond" in missing
    assert "missing: fig2_benchmarks: no run has eval/lcb: no panel" in missing
    assert any(
        m.startswith("missing: truncation: run rl_math has no rollout/m2rl/<domain>/truncated_ratio") for m in missing
    )
    desc = json.loads((out / "curves.json").read_text())
    assert {(m["figure"], m["run"], m["metric"]) for m in desc["missing"]} >= {
        ("fig2_benchmarks", "rl_math", "eval/gpqa_diamond"),
        ("fig2_benchmarks", None, "eval/lcb"),
    }
    for figure in desc["figures"]:
        assert all(panel["lines"] and all(line["steps"] for line in panel["lines"]) for panel in figure["panels"])
    assert [p["key"] for p in next(f for f in desc["figures"] if f["id"] == "fig2_benchmarks")["panels"]] == [
        "gpqa_diamond"
    ]
    notes = [r.getMessage() for r in caplog.records]
    assert "fig9_reward: run code has no rollout/m2rl/<domain>/reward_mean; drew rollout/raw_reward as 'all'" in notes


def test_figures_are_pngs_and_plot_redraws_them_from_the_json(study, tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="figures need the optional matplotlib ([analysis])")
    out = tmp_path / "out"
    assert _curves(study, out, plot=True) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["fig2_benchmarks.png", "fig9_reward.png", "response_len.png", "truncation.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.imread(out / name).shape[2] in (3, 4)
        (out / name).unlink()
    assert main(["plot", str(out), "--out", str(tmp_path / "again")]) == 0
    assert sorted(p.name for p in (tmp_path / "again").glob("*.png")) == pngs


def test_without_matplotlib_the_numbers_are_written_and_one_line_says_how(
    study, tmp_path, monkeypatch, caplog, capsys
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    from m2rl_slime.analyze.curves import plot

    monkeypatch.setattr(plot, "have_matplotlib", lambda: False)
    out = tmp_path / "out"
    assert _curves(study, out, plot=True) == 0
    assert (out / "curves.json").is_file() and (out / "curves.csv").is_file() and not list(out.glob("*.png"))
    hints = [r.getMessage() for r in caplog.records if "not installed" in r.getMessage()]
    assert len(hints) == 1 and 'pip install -e ".[analysis]"' in hints[0] and str(out) in hints[0]
    capsys.readouterr()
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matplotlib" in err[0]


def test_list_prints_each_runs_metrics_and_the_figure_they_feed(study, capsys):
    assert main(["curves", str(study / "rl_math"), str(study / "rl_multi"), "--list"]) == 0
    text = capsys.readouterr().out
    assert "rl_multi (408 GPU-h)  [tensorboard:" in text
    assert "-> fig9_reward:math" in text and "-> fig2_benchmarks:aime24" in text
    line = next(x for x in text.splitlines() if "eval/aime24-truncated_ratio" in x)
    assert "->" not in line and "2 points" in line


def test_metric_patterns_can_be_replaced(study, tmp_path):
    out = tmp_path / "out"
    assert _curves(study, out, "--metric", r"fig9_reward=^rollout/(?P<key>raw_reward)$") == 0
    desc = json.loads((out / "curves.json").read_text())
    fig9 = next(f for f in desc["figures"] if f["id"] == "fig9_reward")
    assert [(p["run"], [line["key"] for line in p["lines"]]) for p in fig9["panels"]] == [("code", ["raw_reward"])]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curves", "{tmp}/nowhere", "--out", "{tmp}/o"], "no such file or directory"),
        (["curves", "{tmp}", "--out", "{tmp}/o"], "no TensorBoard event files"),
        (["curves", "{study}/rl_math"], "--out DIR is required"),
        (["curves", "{study}/rl_math", "--out", "{tmp}/o", "--metric", "fig7=x"], "unknown figure 'fig7'"),
        (["curves", "{study}/rl_math", "--out", "{tmp}/o", "--metric", "fig9_reward=("], "not a regular expression"),
        (["curves", "{study}/rl_math", "--out", "{tmp}/o", "--smoothing", "1"], "must be in [0, 1)"),
        (["curves", "{study}/rl_math", "{study}/rl_math", "--out", "{tmp}/o"], "both named rl_math"),
        (["curves", "{study}/rl_math", "--out", "{tmp}/o", "--record", "x={tmp}/r.json"], "unknown run(s) x"),
        (
            [
                "curves",
                "{study}/rl_math",
                "--out",
                "{tmp}/o",
                "--metric",
                "fig9_reward=^nothing$",
                "--metric",
                "fig2_benchmarks=^nothing$",
                "--metric",
                "truncation=^x$",
                "--metric",
                "response_len=^x$",
            ],
            "none of the runs has a metric",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(study, tmp_path, capsys, argv, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(tmp=empty, study=study) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("analyze curves: ") and message in err[0]
    assert not (empty / "o" / "curves.json").exists()


def test_an_unwritable_out_dir_is_one_line(study, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _curves(study, blocker / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the results" in err[0]


def test_plot_without_results_and_the_command_line_help(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no analysis results to plot (looked for curves.json" in capsys.readouterr().err
    code = (
        "import sys; from m2rl_slime.analyze import cli; help = cli._parser(None).format_help(); "
        "print('curves' in help, 'm2rl_slime.analyze.curves' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]  # listed, not imported
    helped = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.analyze", "curves", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--benchmarks" in helped.stdout and "--metric FIGURE=REGEX" in helped.stdout
