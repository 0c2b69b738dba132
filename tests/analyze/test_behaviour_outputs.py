"""Shared pieces of the behaviour analyses: the keyed append-only log (torn tail cut, duplicates refused,
stored records re-read by key), the NaN-free JSON and CSV, the judge metrics on a hand example, and
``analyze plot DIR`` redrawing Figs. 4-8 from the JSON alone (matplotlib, the [analysis] extra)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from test_gains import run_gains

from m2rl_slime.analyze.cli import main
from m2rl_slime.analyze.keyed_log import KeyedLog, read_records
from m2rl_slime.analyze.outputs import finite, save_csv
from m2rl_slime.analyze.selfverify.report import judge_metrics

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib (the [analysis] extra) is not installed")


def test_keyed_log_refuses_duplicates_cuts_a_torn_tail_and_reads_by_key(tmp_path):
    path = tmp_path / "r.jsonl"
    with KeyedLog(path, ("a", "b")) as log:
        assert log.append({"a": "x", "b": 0, "v": 1}) and log.append({"a": "x", "b": 1, "v": 2})
        assert not log.append({"a": "x", "b": 0, "v": 3})
        assert log.read_at(("x", 1))["v"] == 2
    with path.open("ab") as handle:
        handle.write(b'{"a": "x", "b": 2, "v"')
    assert [r["v"] for _, r in read_records(path, ("a", "b"))] == [1, 2]
    with KeyedLog(path, ("a", "b")) as log:
        assert len(log) == 2 and ("x", 2) not in log
        assert log.append({"a": "x", "b": 2, "v": 4}) and log.read_at(("x", 0))["v"] == 1
    assert path.read_bytes().endswith(b"\n") and len(path.read_text().splitlines()) == 3


def test_no_nan_in_json_and_empty_cells_in_csv(tmp_path):
    assert finite({"a": [math.nan, 1.0, {"b": math.inf}]}) == {"a": [None, 1.0, {"b": None}]}
    save_csv(tmp_path / "t.csv", ("x", "y"), [[math.nan, 0.123456789], [None, "s"]])
    assert (tmp_path / "t.csv").read_text() == "x,y\n,0.123457\n,s\n"


def test_judge_metrics_by_hand():
    rec = lambda uid, idx, gold, v: {"uid": uid, "sample_idx": idx, "gold": gold, "verdict": v,  # noqa: E731
                                     "parse_error": None if v else "no_boxed"}  # fmt: skip
    records = [rec("a", 0, "correct", "correct"), rec("a", 0, "correct", None),  # agreement 1/2
               rec("a", 1, "incorrect", "incorrect"), rec("a", 1, "incorrect", "incorrect"),  # 1
               rec("b", 0, "incorrect", "correct"), rec("b", 0, "incorrect", "correct")]  # 0  # fmt: skip
    m = judge_metrics(records)
    assert m["accuracy"] == pytest.approx(0.5) and m["n_trajectories"] == 3 and m["n_items"] == 2
    assert m["tpr"] == 0.5 and m["tnr"] == 0.5 and m["balanced_accuracy"] == 0.5
    assert m["always_correct"] == pytest.approx(1 / 3) and m["says_correct"] == pytest.approx(1 / 2)
    assert m["unparsable"] == 1 and m["unparsable_by_cause"] == {"no_boxed": 1}
    # item-level standard error: items a (0.75) and b (0)
    assert m["accuracy_se"] == pytest.approx(math.sqrt(((0.75 - 0.375) ** 2 * 2) / 1 / 2))


@needs_matplotlib
def test_plot_dir_redraws_every_figure_from_json(tmp_path, capsys):
    run_gains(tmp_path / "g")
    gains_dir = tmp_path / "g" / "gains"
    for png in gains_dir.glob("*.png"):
        png.unlink()
    kl = {"analysis": "kl", "rule": {"estimator": "k1", "normalisation": "token", "rule": "relative"},
          "experts": ["math", "code"], "domains": ["math", "code"], "multis": ["rl multi"], "perf": {"ref": "sft"},
          "matrices": {"rl multi": {"cells": {b: {a: {"value": 0.1 * (i + j), "se": 0.01, "neighbour": i != j,
                                                       "diagonal": i == j, "delta_perf": 1.5}
                                                   for j, a in enumerate(["math", "code"])}
                                               for i, b in enumerate(["math", "code"])}}}}  # fmt: skip
    (gains_dir / "kl.json").write_text(json.dumps(kl))
    capsys.readouterr()
    assert main(["plot", str(gains_dir), f"--out={tmp_path / 'figs'}"]) == 0
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["fig4_kl_rl_multi.png", "fig5_gains.png"]
    assert all((tmp_path / "figs" / n).read_bytes().startswith(b"\x89PNG") for n in names)


def test_plot_dir_without_results_is_one_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no analysis results" in err and "kl.json" in err and "selfverify.json" in err
