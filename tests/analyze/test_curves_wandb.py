"""wandb exports (offline files): history CSV/JSON/JSONL placed at slime's step metrics, panel CSVs."""

from __future__ import annotations

import csv
import json

import pytest

from m2rl_slime.analyze.cli import main
from m2rl_slime.analyze.curves.sources import load_runs
from m2rl_slime.errors import ConfigError

STEPS = 6


def history_rows():
    """What slime's wandb.log calls produce: a rollout row per step, an eval row every 3 steps; _step counts calls."""
    rows, call = [], 0
    for step in range(STEPS):
        rows.append(
            {
                "_step": call,
                "_runtime": 10.0 * call,
                "rollout/step": step,
                "rollout/m2rl/math/reward_mean": step / 8,
                "rollout/raw_reward": step / 4,
            }
        )
        call += 1
        if step % 3 == 0:
            rows.append({"_step": call, "eval/step": step, "eval/aime24": step / 16})
            call += 1
    return rows


def _write_csv(path, rows):
    columns = sorted({k for row in rows for k in row})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)  # cells of metrics not logged in a row stay empty, as in history().to_csv()
    return path


def _expected(run):
    reward = run.scalars["rollout/m2rl/math/reward_mean"]
    aime = run.scalars["eval/aime24"]
    assert reward.steps == tuple(range(STEPS)) and reward.values == tuple(s / 8 for s in range(STEPS))
    assert aime.steps == (0, 3) and aime.values == (0.0, 3 / 16)
    assert "_step" not in run.scalars and "rollout/step" not in run.scalars and "_runtime" not in run.scalars


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_history_exports_are_placed_at_rollout_and_eval_steps(tmp_path, fmt):
    rows = history_rows()
    path = tmp_path / f"rl_math.{fmt}"
    if fmt == "csv":
        _write_csv(path, rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    (run,) = load_runs([str(path)])
    assert (run.name, run.kind, run.warnings) == ("rl_math", "wandb", ())
    _expected(run)


def test_curves_from_a_wandb_csv(tmp_path):
    path = _write_csv(tmp_path / "export.csv", history_rows())
    out = tmp_path / "out"
    assert main(["curves", f"rl_math={path}", "--out", str(out), "--no-plot", "--smoothing", "0"]) == 0
    with (out / "curves.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["figure"] == "fig9_reward"]
    assert [(r["run"], r["line"], int(r["step"]), float(r["value"])) for r in rows] == [
        ("rl_math", "math", s, s / 8) for s in range(STEPS)
    ]


def test_without_step_columns_wandbs_counter_is_used_and_said(tmp_path):
    rows = [{k: v for k, v in r.items() if not k.endswith("/step")} for r in history_rows()]
    (run,) = load_runs([str(_write_csv(tmp_path / "x.csv", rows))])
    assert run.scalars["rollout/raw_reward"].steps == (0, 2, 3, 4, 6, 7)  # log calls, not rollout ids
    assert len(run.warnings) == 2 and all("_step (log calls, not rollout ids)" in w for w in run.warnings)


def test_a_panel_export_holds_one_run_per_prefix(tmp_path):
    path = tmp_path / "panel.csv"
    lines = [
        "Step,rl_math - rollout/raw_reward,rl_math - rollout/raw_reward__MIN,rl_math - rollout/raw_reward__MAX,"
        "rl_code - rollout/raw_reward"
    ]
    lines += [f"{s},{s / 4},0,1,{s / 2}" for s in range(3)] + ["3,,,,1.5"]
    path.write_text("\n".join(lines) + "\n")
    runs = {run.name: run for run in load_runs([str(path)])}
    assert set(runs) == {"rl_math", "rl_code"} and {r.kind for r in runs.values()} == {"wandb-panel"}
    assert runs["rl_math"].scalars["rollout/raw_reward"].values == (0.0, 0.25, 0.5)
    assert runs["rl_code"].scalars["rollout/raw_reward"].steps == (0, 1, 2, 3)
    assert set(runs["rl_math"].scalars) == {"rollout/raw_reward"}  # no __MIN/__MAX series
    with pytest.raises(ConfigError, match="holds 2 runs"):
        load_runs([f"one={path}"])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.jsonl", '{"_step": 0}\nnot json\n', r"bad.jsonl:2: not a JSON object"),
        ("bad.json", '[{"_step": 0}, 3]', "row 2 is not an object"),
        ("empty.csv", "_step,note\n0,hello\n", "no numeric metric found"),
    ],
)
def test_malformed_exports_name_the_file(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_runs([str(tmp_path / name)])
