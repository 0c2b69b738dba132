"""`prepare-eval` for HLE (text-only filter, routing by answer_type, valid letters), AIME'24/'25 and the
GPQA option shuffle (stable per item and across regenerations), on self-written rows in the shipped formats
(tests/data/data/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2rl_slime.data.cli import main
from m2rl_slime.data.evalsets import EvalOptions, prepare_eval
from m2rl_slime.data.hle import choice_letters, has_image

from .conftest import check_prepared_row

DATA = Path(__file__).parent / "data"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hle_keeps_text_only_rows_and_routes_by_answer_type(tmp_path):
    tally = prepare_eval(DATA / "hle_sample.jsonl", tmp_path / "hle.jsonl", "hle")
    rows = read(tmp_path / "hle.jsonl")
    assert tally.rows_in == 9 and tally.rows_out == 6
    assert tally.dropped == {"has_image": 2, "bad_answer_type": 1}
    for row in rows:
        check_prepared_row(row)
        meta = row["metadata"]
        assert meta["benchmark"] == "hle" and meta["source"] == "hle_sample" and len(meta["uid"]) == 24
        assert meta["domain"] == {"exactMatch": "math", "multipleChoice": "science"}[meta["answer_type"]]
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    by_uid = {r["metadata"]["uid"]: r for r in rows}
    exact = by_uid["6687ffb1091058ff19128813"]
    assert exact["label"] == "101" and "Exact Answer:" in exact["prompt"][0]["content"]
    assert exact["prompt"][1]["content"] == "What is the smallest prime larger than 100?"
    choice = by_uid["66e8784d70625d8c7700315a"]
    assert (choice["label"], choice["metadata"]["valid_letters"], choice["metadata"]["letters_from"]) == (
        "C", "ABCDE", "answer_choices")  # fmt: skip
    assert "Answer: {the letter" in choice["prompt"][0]["content"]
    assert by_uid["66ea12d21684c1846037a28d"]["metadata"]["valid_letters"] == "ABC"
    assert by_uid["6711e2b1a3f4c0d0c7f1e2aa"]["metadata"]["letters_from"] == "fallback"
    assert by_uid["6711e2b1a3f4c0d0c7f1e2aa"]["metadata"]["valid_letters"] == "ABCDEFG"
    # --strict fails on a malformed row but never on an image row (a filter, not an error)
    with pytest.raises(Exception, match="answer_type"):
        prepare_eval(DATA / "hle_sample.jsonl", tmp_path / "s.jsonl", "hle", options=EvalOptions(strict=True))


def test_hle_rows_score_through_their_verifiers(tmp_path):
    from m2rl_slime.rewards import score

    prepare_eval(DATA / "hle_sample.jsonl", tmp_path / "hle.jsonl", "hle")
    rows = {r["metadata"]["uid"]: r for r in read(tmp_path / "hle.jsonl")}

    def graded(uid: str, answer_line: str) -> str:
        row = rows[uid]
        text = f"<think>working</think>Explanation: because.\n{answer_line}\nConfidence: 80%"
        return score(row["metadata"]["domain"], text, row["label"], row["metadata"]).reason.value

    assert graded("6687ffb1091058ff19128813", "Exact Answer: 101") == "ok"
    assert graded("6687ffb1091058ff19128813", "Exact Answer: 103") == "wrong"
    assert graded("6720a3b1c2d4e5f6a7b8c9d0", "Exact Answer: $\\frac{5}{6}$") == "ok"
    assert graded("66e8784d70625d8c7700315a", "Answer: C") == "ok"
    assert graded("66e8784d70625d8c7700315a", "Answer: E") == "wrong"
    assert graded("66ea12d21684c1846037a28d", "Answer: E") != "ok"  # E is not one of this question's letters


@pytest.mark.parametrize(
    "question,gold,letters,found",
    [
        ("Q?\nAnswer Choices:\nA. x\nB. y\nC. z", "B", "ABC", "answer_choices"),
        ("Q? A. not an option line\nAnswer Choices:\nA. x\nB. y", "A", "AB", "answer_choices"),
        ("Q?\n(A) x\n(B) y\n(C) z\n(D) w", "D", "ABCD", "option_lines"),
        ("Q?\nA: x\nB: y", "B", "AB", "option_lines"),
        ("Q?\nAnswer Choices:\nA. x\nC. y", "C", "ABCDE", "fallback"),  # no contiguous run holding C
        ("No options at all", "H", "ABCDEFGH", "fallback"),
    ],
)
def test_choice_letters(question, gold, letters, found):
    assert choice_letters(question, gold) == (letters, found)


def test_has_image():
    assert not has_image({"image": ""}) and not has_image({"image": None}) and not has_image({})
    assert not has_image({"image": "  "}) and not has_image({"image": {"bytes": None, "path": None}})
    assert has_image({"image": "data:image/png;base64,AAAA"}) and has_image({"image": {"bytes": b"x", "path": None}})


def test_aime25_from_both_exam_files_and_aime24_alias(tmp_path):
    inputs = [DATA / "aime2025-I.jsonl", DATA / "aime2025-II.jsonl"]
    tally = prepare_eval(inputs, tmp_path / "aime25.jsonl", "aime25")
    rows = read(tmp_path / "aime25.jsonl")
    assert tally.rows_out == 3 and dict(tally.sources) == {"aime2025-I": 2, "aime2025-II": 1}
    assert [r["label"] for r in rows] == ["70", "117", "49"]
    assert [r["metadata"]["benchmark"] for r in rows] == ["aime25"] * 3
    assert rows[2]["metadata"]["uid"] == "16"  # the file's own id
    assert len(rows[0]["metadata"]["uid"]) == 16  # a hash of the problem text: the same whatever the template
    for row in rows:
        check_prepared_row(row)
        assert "\\boxed{$Answer}" in row["prompt"][0]["content"]
    custom = tmp_path / "config.yaml"
    custom.write_text("m2rl_data:\n  prepare:\n    eval_math_template: 'Solve: {prompt}'\n")
    assert main(["prepare-eval", "--kind", "aime25", "--input", *map(str, inputs), "--out", str(tmp_path / "c.jsonl"),
                 "--config", str(custom), "--no-progress"]) == 0  # fmt: skip
    again = read(tmp_path / "c.jsonl")
    assert [r["metadata"]["uid"] for r in again] == [r["metadata"]["uid"] for r in rows]
    assert again[0]["prompt"][0]["content"].startswith("Solve: Find the sum")
    prepare_eval(inputs[0], tmp_path / "a24.jsonl", "aime24")
    assert read(tmp_path / "a24.jsonl")[0]["metadata"]["benchmark"] == "aime24"


def test_repeated_uids_are_dropped(tmp_path):
    tally = prepare_eval([DATA / "aime2025-I.jsonl"] * 2, tmp_path / "d.jsonl", "aime25")
    assert tally.rows_out == 2 and tally.dropped == {"duplicate_uid": 2}


def _gpqa(i: int) -> dict:
    return {"Record ID": f"rec{i}", "Question": f"Question {i}?", "Correct Answer": f"right {i}",
            "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}", "Incorrect Answer 3": f"wrong c{i}"}  # fmt: skip


def test_gpqa_shuffle_is_pinned_per_item(tmp_path):
    """The gold positions of these items under seed 0, recorded once: a change of the shuffle (RNG, key,
    algorithm) would silently change every prompt, and comparisons across models need identical ones."""
    src = tmp_path / "gpqa.jsonl"
    src.write_text("".join(json.dumps(_gpqa(i)) + "\n" for i in range(8)))
    prepare_eval(src, tmp_path / "g.jsonl", "gpqa")
    rows = read(tmp_path / "g.jsonl")
    assert "".join(r["label"] for r in rows) == PINNED_GPQA_LABELS
    assert all(r["metadata"]["benchmark"] == "gpqa" for r in rows)
    single = tmp_path / "one.jsonl"
    single.write_text(json.dumps(_gpqa(5)) + "\n")
    prepare_eval(single, tmp_path / "h.jsonl", "gpqa")
    assert read(tmp_path / "h.jsonl")[0]["prompt"] == rows[5]["prompt"]  # per item, wherever it sits


PINNED_GPQA_LABELS = "ADDBABCC"  # recorded with the shuffle as first released (seed 0)


def test_hle_from_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = read(DATA / "hle_sample.jsonl")
    columns = {
        key: [r.get(key) for r in rows] for key in ("id", "question", "image", "answer", "answer_type", "category")
    }
    pq.write_table(pa.table(columns), tmp_path / "test-00000-of-00001.parquet")
    tally = prepare_eval(tmp_path / "test-00000-of-00001.parquet", tmp_path / "hle.jsonl", "hle")
    assert (tally.rows_in, tally.rows_out, tally.dropped["has_image"]) == (9, 6, 2)
    assert read(tmp_path / "hle.jsonl")[0]["metadata"]["source"] == "test-00000-of-00001"
