"""Pins `prepare-eval`: raw AIME/GPQA/IFEval rows and NeMo-Gym rows, and the seeded GPQA option shuffle."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from m2rl_slime.data.cli import main
from m2rl_slime.data.evalsets import EvalOptions, last_boxed, prepare_eval
from m2rl_slime.errors import ConfigError, UnknownNameError

from .conftest import check_prepared_row


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def gpqa(i: int) -> dict:
    return {
        "Record ID": f"rec{i}",
        "Question": f"Question {i}?",
        "Correct Answer": f"right {i}",
        "Incorrect Answer 1": f"wrong a{i}",
        "Incorrect Answer 2": f"wrong b{i}",
        "Incorrect Answer 3": f"wrong c{i}",
    }


def test_gpqa_shuffle_is_seeded_per_row_and_label_points_at_the_right_answer(tmp_path):
    src = write(tmp_path / "gpqa.jsonl", [gpqa(i) for i in range(40)])
    prepare_eval(src, tmp_path / "a.jsonl", "gpqa", options=EvalOptions(seed=1))
    prepare_eval(src, tmp_path / "b.jsonl", "gpqa", options=EvalOptions(seed=1))
    prepare_eval(src, tmp_path / "c.jsonl", "gpqa", options=EvalOptions(seed=2))
    a, b, c = (read(tmp_path / f"{n}.jsonl") for n in "abc")
    assert a == b and a != c
    assert len(Counter(r["label"] for r in a)) == 4  # gold spread over positions
    for i, row in enumerate(a):
        check_prepared_row(row)
        letter = row["label"]
        assert next(o[letter] for o in row["metadata"]["options"] if letter in o) == f"right {i}"
        assert f"{letter}) right {i}" in row["prompt"][0]["content"]
        assert row["metadata"]["valid_letters"] == "ABCD"
    # the same row gets the same order wherever it sits in the file
    prepare_eval(
        write(tmp_path / "rev.jsonl", [gpqa(i) for i in reversed(range(40))]),
        tmp_path / "d.jsonl",
        "gpqa",
        options=EvalOptions(seed=1, name="gpqa"),
    )
    assert list(reversed(read(tmp_path / "d.jsonl"))) == a


def test_aime_raw_rows(tmp_path):
    rows = [
        {"id": 1, "problem": "Find x.", "answer": "42"},
        {"id": 2, "problem": "Find y.", "solution": "so \\boxed{\\frac{1}{2}}"},
    ]
    tally = prepare_eval(write(tmp_path / "aime.jsonl", rows), tmp_path / "out.jsonl", "aime")
    out = read(tmp_path / "out.jsonl")
    assert tally.rows_out == 2 and [r["label"] for r in out] == ["42", "\\frac{1}{2}"]
    assert out[0]["prompt"][0]["content"].endswith("Find x.") and "\\boxed{$Answer}" in out[0]["prompt"][0]["content"]
    assert out[0]["metadata"] == {"domain": "math", "source": "aime", "uid": "1"}
    assert last_boxed("\\boxed{a{b}c} and \\boxed{d}") == "d" and last_boxed("\\boxed{open") is None


def test_gym_rows_keep_their_prompt(example_data, tmp_path):
    tally = prepare_eval(example_data / "nemo_gym_examples/gpqa_diamond.jsonl", tmp_path / "g.jsonl", "gpqa")
    rows = read(tmp_path / "g.jsonl")
    assert tally.rows_out == len(rows) == 5
    raw = json.loads((example_data / "nemo_gym_examples/gpqa_diamond.jsonl").read_text().splitlines()[0])
    assert rows[0]["prompt"][0]["content"] == raw["responses_create_params"]["input"][0]["content"]
    assert rows[0]["label"] == raw["expected_answer"]
    prepare_eval(example_data / "nemo_gym_examples/ifbench.jsonl", tmp_path / "i.jsonl", "ifbench")
    for row in read(tmp_path / "i.jsonl"):
        check_prepared_row(row)
        assert all(None not in k.values() for k in row["metadata"]["kwargs"])


def test_ifeval_raw_rows_and_drops(tmp_path):
    rows = [
        {"key": 7, "prompt": "Write a poem.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
        {"key": 8, "prompt": "Broken."},
    ]
    tally = prepare_eval(write(tmp_path / "ifeval.jsonl", rows), tmp_path / "o.jsonl", "ifeval")
    assert tally.rows_out == 1 and tally.dropped == {"missing_instructions": 1}
    with pytest.raises(ConfigError, match=r"ifeval.jsonl:2: instruction_id_list"):
        prepare_eval(tmp_path / "ifeval.jsonl", tmp_path / "p.jsonl", "ifeval", options=EvalOptions(strict=True))
    assert not (tmp_path / "p.jsonl").exists()


def test_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="eval kind"):
        prepare_eval(tmp_path / "x.jsonl", tmp_path / "o.jsonl", "mmlu")
    write(tmp_path / "bad.jsonl", [{"problem": "no answer"}])
    with pytest.raises(ConfigError, match="no usable aime rows"):
        prepare_eval(tmp_path / "bad.jsonl", tmp_path / "o.jsonl", "aime")
    assert not (tmp_path / "o.jsonl").exists()


def test_cli(tmp_path, capsys):
    src = write(tmp_path / "gpqa.jsonl", [gpqa(0)])
    assert (
        main(
            ["prepare-eval", "--kind", "gpqa", "--input", str(src), "--out", str(tmp_path / "o.jsonl"), "--seed", "3"]
        )
        == 0
    )
    assert "rows out 1" in capsys.readouterr().out
    assert main(["prepare-eval", "--kind", "aime", "--input", str(src), "--out", str(tmp_path / "p.jsonl")]) == 1
    assert capsys.readouterr().err.startswith("error:")


def _ifbench_row(key: str, ids: list[str], kwargs: list[dict]) -> dict:
    names = ["N", "keyword", "keyword1", "min_words", "max_words", "options", "small_n", "sep", "prompt_to_repeat"]
    return {
        "key": key,
        "prompt": f"Prompt {key}. Follow the constraints.",
        "instruction_id_list": ids,
        "kwargs": [{name: None for name in names} | k for k in kwargs],  # IFBench's null-filled kwargs
    }


def test_ifbench_rows_prepare_and_score_with_the_ifbench_checkers(tmp_path):
    from m2rl_slime.rewards import score

    rows = [
        _ifbench_row("0", ["count:word_count_range"], [{"min_words": 2.0, "max_words": 4.0}]),
        _ifbench_row("1", ["words:no_consecutive", "punctuation:no_comma"], [{}, {}]),
        _ifbench_row("2", ["format:made_up"], [{}]),
    ]
    tally = prepare_eval(write(tmp_path / "IFBench_test.jsonl", rows), tmp_path / "o.jsonl", "ifbench")
    assert tally.rows_out == 2 and tally.dropped == {"unknown_instruction": 1}
    prepared = read(tmp_path / "o.jsonl")
    for row in prepared:
        check_prepared_row(row)
    assert [row["metadata"]["uid"] for row in prepared] == ["0", "1"]
    results = [score("if", "<think>x</think>The cat ate.", row["label"], row["metadata"]) for row in prepared]
    assert [r.reason.value for r in results] == ["ok", "ok"]
    assert [c["id"] for c in results[1].details["constraints"]] == ["words:no_consecutive", "punctuation:no_comma"]
