"""``analyze gains`` on hand-built items.jsonl files: exact gain vectors and cosines, NaN with a reason for a
zero vector, the noise floor, mismatched item sets reported, seeded bootstrap intervals, CSV and Fig. 5."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from m2rl_slime.analyze.cli import main
from m2rl_slime.analyze.gains.core import GainSettings, benchmark_gains, cosine

AIME = {  # per-item accuracy of items u0..u3
    "sft": [0.2, 0.5, 0.0, 1.0],
    "sft_reseed": [0.3, 0.5, 0.0, 0.9],
    "math": [0.6, 0.5, 0.2, 1.0],
    "code": [0.2, 0.9, 0.0, 1.0],
    "multi": [0.4, 0.7, 0.0, 0.5],
    "ties": [0.2, 0.5, 0.0, 1.0],
}
IFEVAL = {"sft": [0, 1, 0, 0], "sft_reseed": [0, 1, 1, 0], "math": [0, 1, 0, 1], "code": [1, 1, 0, 0],
          "multi": [1, 1, 0], "ties": [1, 0, 0, 1]}  # fmt: skip


def write_items(root: Path) -> dict[str, Path]:
    dirs = {}
    for name in AIME:
        d = root / name
        d.mkdir(parents=True)
        rows = [
            {"benchmark": "aime24", "uid": f"u{i}", "n": 4, "correct": 4 * a, "mean": a}
            for i, a in enumerate(AIME[name])
        ]
        rows += [{"benchmark": "ifeval", "uid": f"i{i}", "n": 1, "correct": a, "mean": float(a)}
                 for i, a in enumerate(IFEVAL[name])]  # fmt: skip
        (d / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        dirs[name] = d
    return dirs


def run_gains(tmp_path: Path, *extra: str) -> dict:
    d = write_items(tmp_path / "eval")
    out = tmp_path / "gains"
    code = main(["gains", f"--sft={d['sft']}", f"--sft-reseed={d['sft_reseed']}", f"--expert=math={d['math']}",
                 f"--expert=code={d['code']}", f"--model=multi={d['multi']}", f"--model=ties={d['ties']}",
                 "--benchmarks=aime24,ifeval,bfcl_v3", "--resamples=2000", f"--out={out}", *extra])  # fmt: skip
    assert code == 0
    return json.loads((out / "gains.json").read_text())


def test_cosines_noise_floor_and_reasons(tmp_path, capsys):
    report = run_gains(tmp_path)
    aime = report["results"]["aime24"]
    union = np.array([0.4, 0.4, 0.2, 0.0])
    multi = np.array([0.2, 0.2, 0.0, 0.0])
    assert aime["n_items"] == 4 and aime["k"]["multi"] == [4, 4]
    assert aime["models"]["multi"]["cos"] == pytest.approx(
        union @ multi / (np.linalg.norm(union) * np.linalg.norm(multi))
    )
    assert aime["models"]["multi"]["cos"] == pytest.approx(0.16 / (0.6 * math.sqrt(0.08)))
    assert aime["models"]["ties"]["cos"] is None and "g_ties is all zero" in aime["models"]["ties"]["reason"]
    assert aime["noise_floor"]["cos"] == pytest.approx(0.04 / (0.6 * 0.1))
    assert aime["union"]["nonzero"] == 3 and aime["models"]["multi"]["overlap"] == 2
    e = aime["models"]["multi"]
    assert e["low"] <= e["cos"] <= e["high"] and 0 < e["valid_resamples"] < 2000  # some resamples are all zero
    ifeval = report["results"]["ifeval"]
    assert ifeval["n_items"] == 3 and ifeval["mismatch"]["multi"]["missing"] == 1
    assert ifeval["mismatch"]["multi"]["missing_examples"] == ["i3"]
    # items i0..i2: union = max([0,0,0], [1,0,0]) = [1,0,0]; multi gains [1,0,0] -> cos 1; reseed gains [0,0,1] -> 0
    assert ifeval["models"]["multi"]["cos"] == pytest.approx(1.0) and ifeval["noise_floor"]["cos"] == 0.0
    assert report["results"]["bfcl_v3"] == {
        "n_items": 0,
        "reason": "not evaluated by sft, sft_reseed, math, code, multi, ties",
    }
    printed = capsys.readouterr().out
    assert "n/a" in printed and "multi lacks 1 item(s), e.g. i3" in printed
    csv = (tmp_path / "gains" / "gains.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,role,name,cos,low,high") and any(",noise_floor," in row for row in csv)


def test_bootstrap_is_seeded_and_paired(tmp_path):
    a = run_gains(tmp_path / "a")
    b = run_gains(tmp_path / "b")
    c = run_gains(tmp_path / "c", "--seed=5")
    key = lambda r: [r["results"]["aime24"]["models"]["multi"][k] for k in ("low", "high", "valid_resamples")]  # noqa: E731
    assert key(a) == key(b) != key(c)


def test_union_needs_some_gain():
    items = lambda v: {"b": {f"u{i}": (x, 1) for i, x in enumerate(v)}}  # noqa: E731
    res = benchmark_gains("b", items([1, 1]), None, {"e": items([0, 1])}, {"m": items([1, 1])}, GainSettings(10))
    assert res["models"]["m"]["cos"] is None and "g_union is all zero" in res["models"]["m"]["reason"]
    assert res["noise_floor"]["reason"].startswith("no second SFT")
    assert cosine(np.zeros(3), np.ones(3)) == (None, "all-zero vector")


def test_bad_input(tmp_path, capsys):
    d = write_items(tmp_path / "eval")
    assert main(["gains", f"--sft={d['sft']}", f"--model=m={d['multi']}", f"--out={tmp_path}"]) == 2
    assert "--expert" in capsys.readouterr().err
    assert main(["gains", f"--sft={tmp_path / 'nope'}", f"--expert=e={d['math']}", f"--model=m={d['multi']}",
                 f"--out={tmp_path}"]) == 2  # fmt: skip
    assert "items.jsonl" in capsys.readouterr().err
    assert main(["gains", f"--sft={d['sft']}", f"--expert=sft={d['math']}", f"--model=m={d['multi']}",
                 f"--out={tmp_path}"]) == 2  # fmt: skip
    assert "names must differ" in capsys.readouterr().err
    assert main(["gains", f"--sft={d['sft']}", f"--expert=e={d['math']}", f"--model=m={d['multi']}",
                 "--benchmarks=hle", f"--out={tmp_path}"]) == 2  # fmt: skip
    assert "no benchmark has items common" in capsys.readouterr().err
