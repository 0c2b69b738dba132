"""Pins `prepare` on the shared example rows: contract rows, summary, filters, and all-or-nothing output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2rl_slime.data.cli import main
from m2rl_slime.data.config import PrepareConfig, PromptTemplate
from m2rl_slime.data.prepare import PrepareOptions, prepare_blend
from m2rl_slime.errors import ConfigError

from .conftest import check_prepared_row


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_examples_become_contract_rows_per_domain(blend_inputs, tmp_path):
    summary = prepare_blend(blend_inputs, tmp_path)
    assert sorted(summary.files) == ["agent", "code", "if", "math", "science"]
    for domain in summary.files:
        rows = read(tmp_path / f"{domain}.jsonl")
        assert len(rows) == summary.domains[domain].rows_out == 5
        for row in rows:
            assert row["metadata"]["domain"] == domain
            check_prepared_row(row)
    math_row = read(tmp_path / "math.jsonl")[0]
    assert math_row["prompt"][0]["content"].startswith("Solve the following math problem step by step.")
    assert "Answer: $Answer" in math_row["prompt"][0]["content"]
    assert read(tmp_path / "code.jsonl")[0]["metadata"]["source"] == "taco"
    report = json.loads((tmp_path / "prepare_summary.json").read_text())
    assert report["domains"]["agent"]["rows_out"] == 5 and report["domains"]["code"]["sources"] == {"taco": 5}
    assert leftovers(tmp_path) == [
        "agent.jsonl",
        "code.jsonl",
        "if.jsonl",
        "math.jsonl",
        "prepare_summary.json",
        "science.jsonl",
    ]


def _blend(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "blend.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _math(i, dataset="nano_v3_sft_profiled_dapo17k", answer="1"):
    row = {"dataset": dataset, "responses_create_params": {"input": [{"role": "user", "content": f"q{i}"}]}}
    if answer is not None:
        row["expected_answer"] = answer
    return row


def test_unknown_source_fails_and_writes_nothing(tmp_path):
    blend = _blend(tmp_path, [_math(0), _math(1, dataset="nano_v3_sft_profiled_chat")])
    out = tmp_path / "out"
    with pytest.raises(
        ConfigError, match=r"blend.jsonl:2: unknown data source 'nano_v3_sft_profiled_chat'.*skip-unknown"
    ):
        prepare_blend([str(blend)], out)
    assert leftovers(out) == []
    summary = prepare_blend([str(blend)], out, options=PrepareOptions(skip_unknown_sources=True))
    assert summary.skipped == {"unknown:nano_v3_sft_profiled_chat": 1}
    assert leftovers(out) == ["math.jsonl", "prepare_summary.json"]


def test_excluded_and_bad_rows_are_counted_by_reason(tmp_path, caplog):
    rows = [_math(0), _math(1, answer=None), "{not json", _math(2, dataset="nano_v3_sft_profiled_structured_outputs")]
    summary = prepare_blend([str(_blend(tmp_path, rows))], tmp_path / "out")
    assert summary.domains["math"].rows_in == 2 and summary.domains["math"].rows_out == 1
    assert summary.domains["math"].dropped == {"missing_label": 1}
    assert summary.skipped == {"invalid_json": 1, "excluded:nano_v3_sft_profiled_structured_outputs": 1}
    assert "blend.jsonl:2" in caplog.text and "expected_answer" in caplog.text
    table = summary.table()
    assert "missing_label=1" in table and "excluded:nano_v3_sft_profiled_structured_outputs" in table


def test_strict_names_file_line_and_field(tmp_path):
    blend = _blend(tmp_path, [_math(0), _math(1, answer=None)])
    with pytest.raises(ConfigError, match=r"blend.jsonl:2: math row: expected_answer: no gold answer"):
        prepare_blend([str(blend)], tmp_path / "out", options=PrepareOptions(strict=True))
    assert leftovers(tmp_path / "out") == []


def test_limit_and_dedup(tmp_path):
    blend = _blend(tmp_path, [_math(0), _math(0), _math(1), _math(2)])
    assert prepare_blend([str(blend)], tmp_path / "a", options=PrepareOptions(limit=3)).domains["math"].rows_in == 3
    summary = prepare_blend([str(blend)], tmp_path / "b", options=PrepareOptions(dedup=True))
    assert summary.domains["math"].rows_out == 3 and summary.domains["math"].dropped == {"duplicate": 1}


def test_max_prompt_tokens_uses_the_chat_template(tmp_path, tiny_tokenizer):
    long = _math(1)
    long["responses_create_params"]["input"][0]["content"] = "word " * 200
    blend = _blend(tmp_path, [_math(0), long])
    options = PrepareOptions(max_prompt_tokens=100, tokenizer=str(tiny_tokenizer))
    summary = prepare_blend([str(blend)], tmp_path / "out", options=options)
    assert summary.domains["math"].dropped == {"too_long": 1} and summary.domains["math"].rows_out == 1
    with pytest.raises(ConfigError, match="needs --tokenizer"):
        prepare_blend([str(blend)], tmp_path / "x", options=PrepareOptions(max_prompt_tokens=10))


def test_parquet_input(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [_math(i, answer=str(i)) for i in range(4)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "blend.parquet")
    summary = prepare_blend([str(tmp_path / "blend.parquet")], tmp_path / "out")
    assert [r["label"] for r in read(tmp_path / "out" / "math.jsonl")] == ["0", "1", "2", "3"]
    assert summary.domains["math"].rows_out == 4


def test_configured_sources_and_templates(tmp_path):
    blend = _blend(tmp_path, [_math(0, dataset="my_private_set")])
    config = PrepareConfig(sources={"my_private_set": "math"}, templates={"math": PromptTemplate("Q: {prompt}")})
    prepare_blend([str(blend)], tmp_path / "out", config)
    assert read(tmp_path / "out" / "math.jsonl")[0]["prompt"][0]["content"] == "Q: q0"


def test_cli_prints_summary_and_fails_in_one_line(blend_inputs, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("m2rl_data:\n  prepare:\n    sources: {taco: code}\n")
    assert (
        main(
            [
                "prepare",
                "--blend",
                *blend_inputs,
                "--out",
                str(tmp_path / "o"),
                "--config",
                str(config),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "domain" in out and "wrote" in out and "agent" in out
    bad = _blend(tmp_path, [_math(0, dataset="mystery")])
    assert main(["prepare", "--blend", str(bad), "--out", str(tmp_path / "p"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "mystery" in err[0]
    assert main(["prepare", "--blend", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "q")]) == 1


def test_prepared_rows_are_scored_by_the_reward_router(blend_inputs, tmp_path):
    from m2rl_slime.rewards import router
    from m2rl_slime.rewards.result import Reason

    prepare_blend(blend_inputs, tmp_path)
    for domain, answer in (("math", lambda r: r["label"]), ("science", lambda r: r["label"])):
        for row in read(tmp_path / f"{domain}.jsonl")[:2]:
            good = router.score(domain, f"<think>ok</think>\nAnswer: {answer(row)}", row["label"], row["metadata"])
            assert good.score == 1.0, (domain, good)
    row = read(tmp_path / "if.jsonl")[0]
    result = router.score("if", "<think>ok</think>\nA reply.", row["label"], row["metadata"])
    assert result.reason is not Reason.BAD_LABEL, result
