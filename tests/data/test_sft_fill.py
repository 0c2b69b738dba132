"""Pins the fill of the ``-`` placeholder user turns (`m2rl_slime.data.sft_fill`, `sft_fill_index`, and their
use in `prepare-sft`): exact statements from tiny TACO (arrow), APPS (jsonl), CodeContests and Codeforces
(parquet) shards, unresolved references dropped and counted, one-line errors, determinism, and memory bounded
by construction (only referenced problems are held, only statement columns and referenced lines are read)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from m2rl_slime.data import sft_fill_index
from m2rl_slime.data.cli import main
from m2rl_slime.data.sft_blend import SFTOptions, prepare_sft
from m2rl_slime.data.sft_fill import FillSource, Reference, fill_row, merge_fill, reference_of
from m2rl_slime.data.sft_fill_index import FillIndex
from m2rl_slime.data.sft_rules import SourceSpec
from m2rl_slime.data.sft_shards import BlendReader, read_manifest
from m2rl_slime.errors import ConfigError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

BIG_TESTS = {"input": ["1 2\n" * 200], "output": ["3\n" * 200]}


def _arrow(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)


def _parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1)


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def taco_question(i: int) -> str:
    return f"TACO train problem {i}: print the sum ü"


def cf_problem(i: int) -> dict:
    return {
        "id": f"{100 + i}/A",
        "description": f"Codeforces {i} statement",
        "input_format": "One line: n.",
        "output_format": "" if i == 2 else "Print n.",
        "examples": [{"input": "1\n", "output": "1\n"}, {"input": "5\n", "output": "5\n"}],
        "note": "Think." if i == 2 else None,
        "official_tests": [BIG_TESTS],
    }


@pytest.fixture
def raw(tmp_path) -> Path:
    """The four downloads in their Hugging Face layouts, and a competitive-programming file referencing them."""
    root = tmp_path / "raw"
    taco = root / "BAAI" / "TACO"
    big = {"solutions": json.dumps(["print(1)"] * 50), "input_output": json.dumps(BIG_TESTS)}
    _arrow(taco / "train" / "data-00000-of-00002.arrow", [{"question": taco_question(i), **big} for i in range(3)])
    _arrow(taco / "train" / "data-00001-of-00002.arrow", [{"question": taco_question(i), **big} for i in range(3, 5)])
    _arrow(taco / "test" / "data-00000-of-00001.arrow", [{"question": "TACO test 0", **big}])
    _parquet(taco / "ALL" / "train-00000-of-00001.parquet", [{"question": "parquet copy", **big}] * 5)
    apps = root / "codeparrot" / "apps"
    _jsonl(
        apps / "train.jsonl", [{"problem_id": i, "question": f"APPS train {i}", **big} for i in range(3)] + ["{broken"]
    )
    _jsonl(apps / "test.jsonl", [{"problem_id": 0, "question": "APPS test 0", **big}])
    cc = root / "deepmind" / "code_contests" / "data"
    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        rows = [
            {"name": f"{split}{i}", "description": f"CC {split} {i}", "private_tests": BIG_TESTS} for i in range(n)
        ]
        _parquet(cc / f"{split}-00000-of-00001-abc123.parquet", rows)
    cf = root / "open-r1" / "codeforces"
    _parquet(cf / "data" / "train-00000-of-00002.parquet", [cf_problem(i) for i in range(2)])
    _parquet(cf / "data" / "train-00001-of-00002.parquet", [cf_problem(i) for i in range(2, 4)])
    _parquet(cf / "verifiable" / "train-00000-of-00001.parquet", [cf_problem(9)])

    def row(tag, dataset, split, index, turns=1):
        messages = [{"role": "system", "content": ""}]
        for t in range(turns):
            messages += [{"role": "user", "content": "-"}, {"role": "assistant", "content": f"{tag} answer {t}"}]
        return {"uuid": tag, "messages": messages, "dataset": dataset, "split": split, "index": index}

    rows = [
        row("t1", "taco", "train", 1),
        row("a0", "apps", "test", "0"),
        row("c1", "code_contests", "valid", 1),
        row("f2", "open-r1/codeforces", "train", 2),
        {
            "uuid": "plain",
            "messages": [{"role": "user", "content": "Sum two numbers."}, {"role": "assistant", "content": "ok"}],
        },
        row("t99", "taco", "train", 99),
        row("m0", "mystery", "train", 0),
        row("t4", "TACO", "train", 4),
        row("a1", "apps", "train", 1, turns=2),
        row("t1b", "taco", "train", "1"),
    ]
    _jsonl(root / "cp" / "part_00.jsonl", rows)
    return root


ALL_FILL = (
    "taco=BAAI/TACO",
    "apps=codeparrot/apps",
    "code_contests=deepmind/code_contests",
    "codeforces=open-r1/codeforces/data",
)


def fill(*texts: str) -> tuple[FillSource, ...]:
    return tuple(FillSource.parse(t) for t in texts)


def options(root: Path, *fill_texts: str, **kw) -> SFTOptions:
    return SFTOptions(**{"progress": False, "root": root, "shard_rows": 4, "fill": fill(*fill_texts), **kw})


def rows_of(out: Path) -> dict[str, dict]:
    reader = BlendReader(out)
    return {row["uuid"]: row for _, row in reader.read(range(len(reader)))}


def users(row: dict) -> list[str]:
    return [m["content"] for m in row["messages"] if m["role"] == "user"]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_placeholder_turns_are_filled_with_each_sets_statement(raw, tmp_path, fmt):
    summary = prepare_sft([SourceSpec.parse("cp::code")], tmp_path / "o", options(raw, *ALL_FILL, fmt=fmt))
    rows = rows_of(tmp_path / "o")
    assert set(rows) == {"t1", "a0", "c1", "f2", "plain", "t4", "a1", "t1b"}
    assert users(rows["t1"]) == users(rows["t1b"]) == [taco_question(1)]  # the arrow copy, not ALL/*.parquet
    assert users(rows["t4"]) == [taco_question(4)]  # second shard: positions run across the split's files
    assert users(rows["a0"]) == ["APPS test 0"] and users(rows["a1"]) == ["APPS train 1", "APPS train 1"]
    assert users(rows["c1"]) == ["CC valid 1"]
    assert users(rows["f2"]) == [
        "Codeforces 2 statement\n\nInput\n\nOne line: n.\n\nExamples\n\nInput\n\n1\n\n\nOutput\n\n1\n\n\n"
        "Input\n\n5\n\n\nOutput\n\n5\n\n\nNote\n\nThink."
    ]
    assert users(rows["plain"]) == ["Sum two numbers."]
    assert rows["t1"]["dataset"] == "taco" and rows["t1"]["messages"][2]["content"] == "t1 answer 0"
    source = read_manifest(tmp_path / "o")["sources"][0]
    assert source["filled"] == {"apps": 2, "code_contests": 1, "codeforces": 1, "taco": 3}
    assert source["invalid"] == {"unresolved_placeholder:taco": 1, "unresolved_placeholder:unknown": 1}
    assert (source["rows_in"], source["placeholder_user"], source["valid"], source["rows_out"]) == (10, 9, 8, 8)
    report = read_manifest(tmp_path / "o")["fill_sources"]
    assert report["taco"]["problems_found"] == 2 and report["taco"]["problems_unresolved"] == 1
    assert (report["taco"]["rows_filled"], report["taco"]["rows_unresolved"]) == (3, 1)
    assert [Path(f["path"]).parent.name for f in report["taco"]["files"]] == ["train", "train"]
    assert report["unknown"]["rows_unresolved"] == 1
    table = summary.table()
    assert "filled the '-' placeholder user turn of 7 rows" in table and "fill source" in table


def test_without_fill_sources_placeholder_rows_are_dropped_with_one_warning(raw, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        summary = prepare_sft([SourceSpec.parse("cp::code")], tmp_path / "o", options(raw))
    assert set(rows_of(tmp_path / "o")) == {"plain"}
    source = read_manifest(tmp_path / "o")["sources"][0]
    assert source["invalid"] == {
        "unresolved_placeholder:apps": 2,
        "unresolved_placeholder:code_contests": 1,
        "unresolved_placeholder:codeforces": 1,
        "unresolved_placeholder:taco": 4,
        "unresolved_placeholder:unknown": 1,
    }
    assert source["filled"] == {} and read_manifest(tmp_path / "o")["fill_sources"] == {}
    summary_line = [r.getMessage() for r in caplog.records if "fills them" in r.getMessage()]
    assert len(summary_line) == 1 and "--fill-source taco=PATH" in summary_line[0] and "\n" not in summary_line[0]
    assert "9 rows with a '-' placeholder user turn were dropped" in summary.table()


def test_a_set_without_its_download_leaves_its_rows_unresolved(raw, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        prepare_sft([SourceSpec.parse("cp::code:sample=3")], tmp_path / "o", options(raw, "taco=BAAI/TACO"))
    source = read_manifest(tmp_path / "o")["sources"][0]
    assert source["filled"] == {"taco": 3} and source["rows_out"] == 3
    assert source["invalid"]["unresolved_placeholder:apps"] == 2
    assert any("no --fill-source apps=PATH given" in r.getMessage() for r in caplog.records)
    assert all(users(row) != ["-"] for row in rows_of(tmp_path / "o").values())


def test_strict_fails_on_an_unresolved_reference(raw, tmp_path):
    with pytest.raises(ConfigError, match=r"unresolved_placeholder:taco: taco train #99: position 99 is beyond the 5"):
        prepare_sft([SourceSpec.parse("cp::code")], tmp_path / "o", options(raw, *ALL_FILL, strict=True))
    with pytest.raises(ConfigError, match=r"part_00.jsonl:1: unresolved_placeholder:taco: .*--fill-source taco=PATH"):
        prepare_sft([SourceSpec.parse("cp::code")], tmp_path / "o", options(raw, strict=True))
    assert not (tmp_path / "o").exists()


def test_same_inputs_give_identical_blends_with_workers_and_chunking(raw, tmp_path, monkeypatch):
    from m2rl_slime.data import sft_scan

    sources = [SourceSpec.parse("cp::code:sample=5"), SourceSpec.parse("cp::again:repeat=2")]
    one = prepare_sft(sources, tmp_path / "one", options(raw, *ALL_FILL)).manifest
    monkeypatch.setattr(sft_scan, "CHUNK_BYTES", 300)  # chunks of one or two rows
    two = prepare_sft(sources, tmp_path / "two", options(raw, *ALL_FILL, workers=2)).manifest
    assert one == two and [s["rows_out"] for s in one["sources"]] == [5, 16]
    assert BlendReader(tmp_path / "one").read(range(21)) == BlendReader(tmp_path / "two").read(range(21))


def test_parquet_conversations_are_filled_in_process(raw, tmp_path):
    lines = (raw / "cp" / "part_00.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        row.setdefault("dataset", None), row.setdefault("split", None), row.setdefault("index", None)
        row["index"] = None if row["index"] is None else str(row["index"])
    _parquet(raw / "cpq" / "part.parquet", rows)
    prepare_sft([SourceSpec.parse("cpq::code")], tmp_path / "o", options(raw, *ALL_FILL))
    got = rows_of(tmp_path / "o")
    assert users(got["t4"]) == [taco_question(4)] and users(got["f2"])[0].startswith("Codeforces 2")
    assert read_manifest(tmp_path / "o")["sources"][0]["rows_out"] == 8


def test_a_missing_download_is_a_one_line_error_before_any_work(raw, tmp_path, capsys):
    with pytest.raises(
        ConfigError, match=r"fill source apps: .*nope matches no .*hf download codeparrot/apps .*raw/codeparrot/apps;"
    ):
        prepare_sft([SourceSpec.parse("cp::code")], tmp_path / "o", options(raw, "apps=nope"))
    assert not (tmp_path / "o").exists()
    argv = ["prepare-sft", "--source", "cp::code", "--inputs", str(raw), "--out", str(tmp_path / "p")]
    assert main([*argv, "--fill-source", "codeforces=gone/", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: fill source codeforces:") and "\n" not in err
    assert main([*argv, "--fill-source", "apps=codeparrot/apps", "--no-fill"]) == 1
    assert "exclude each other" in capsys.readouterr().err
    assert main([*argv, "--fill-source", "leetcode=x"]) == 1
    assert "unknown fill source 'leetcode'; known: taco, apps, code_contests, codeforces" in capsys.readouterr().err


def test_a_split_in_two_folders_of_one_format_is_refused(raw, tmp_path):
    index = FillIndex(fill("codeforces=open-r1/codeforces"), raw)
    with pytest.raises(ConfigError, match=r"split 'train' is in several folders .*data.*verifiable"):
        index.resolve([Reference("codeforces", "train", 0)])


def test_a_named_split_and_a_missing_split(raw, tmp_path):
    flat = _jsonl(tmp_path / "mine.jsonl", [{"question": "mine 0"}, {"question": ""}])
    index = FillIndex(fill(f"taco:train={flat}", "apps=codeparrot/apps"), raw)
    refs = [Reference("taco", "train", 0), Reference("taco", "train", 1), Reference("apps", "valid", 0)]
    index.resolve(refs)
    assert index.question(refs[0]) == "mine 0" and index.question(refs[1]) is None
    assert "has no statement" in index.why(refs[1]) and "no 'valid' split" in index.why(refs[2])


def test_only_referenced_problems_are_held_and_only_their_rows_read(raw, monkeypatch):
    reads = []
    real = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kw):
        reads.append((i, tuple(columns)))
        return real(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    index = FillIndex(fill(*ALL_FILL), raw)
    refs = [Reference("code_contests", "train", 2), Reference("apps", "train", 0), Reference("taco", "train", 3)]
    index.resolve(refs * 3)
    assert sorted(index.questions) == [("apps", "train", 0), ("code_contests", "train", 2), ("taco", "train", 3)]
    assert reads == [(2, ("description",))]  # one row group, the statement column only (never private_tests)
    assert index.question(refs[1]) == "APPS train 0"  # train.jsonl's broken last line was never parsed
    index.resolve(refs)
    assert len(reads) == 1  # already known: not read again


def test_reference_of_and_fill_row():
    assert reference_of({"dataset": "BAAI/TACO", "split": "train", "index": "12"}) == Reference("taco", "train", 12)
    assert reference_of({"dataset": "open-r1/codeforces", "split": "test", "index": 0}).source == "codeforces"
    bad = reference_of({"dataset": "apps", "split": "train", "index": -3})
    assert (bad.source, bad.index, bad.reason) == ("apps", -1, "unresolved_placeholder:apps")
    assert "index -3" in bad.note and reference_of({"dataset": "apps", "index": 1}).index == -1
    assert reference_of({"index": True}).reason == "unresolved_placeholder:unknown"
    row = {"messages": [{"role": "user", "content": "-"}, {"role": "assistant", "content": "-"}], "x": 1}
    assert fill_row(row, "Q") == {
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "-"}],
        "x": 1,
    }
    assert row["messages"][0]["content"] == "-"  # the input is not mutated


def test_fill_source_specs_and_merging():
    assert FillSource.parse("taco:train=a/b.parquet") == FillSource("taco", ("a/b.parquet",), "train")
    with pytest.raises(ConfigError, match="NAME"):
        FillSource.parse("taco")
    blend = fill("taco=x", "apps=y")
    assert merge_fill(blend, fill("apps=z")) == fill("taco=x", "apps=z")
    with pytest.raises(ConfigError, match="twice for apps"):
        merge_fill(blend, fill("apps=z", "apps=w"))


def test_cli_blend_yaml_fill_sources_are_variables(raw, tmp_path, capsys):
    blend = tmp_path / "b.yaml"
    blend.write_text(
        "sources:\n  code: {path: cp, rule: all}\n"
        "fill_sources:\n  taco: BAAI/TACO\n  apps: not/downloaded\n  code_contests: deepmind/code_contests\n"
    )
    argv = ["prepare-sft", "--blend", str(blend), "--inputs", str(raw), "--no-progress", "--format", "jsonl"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 1
    assert "fill source apps" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--fill-source", "apps=codeparrot/apps"]) == 0
    out = capsys.readouterr().out
    assert "fill source" in out and "unresolved_placeholder:codeforces=1" in out
    assert read_manifest(tmp_path / "b")["sources"][0]["filled"] == {"apps": 2, "code_contests": 1, "taco": 3}
    assert main([*argv, "--out", str(tmp_path / "c"), "--no-fill"]) == 0
    assert read_manifest(tmp_path / "c")["sources"][0]["rows_out"] == 1


def test_arrow_random_access_files_are_read_too(tmp_path, monkeypatch):
    path = tmp_path / "train" / "data-00000-of-00001.arrow"
    path.parent.mkdir()
    table = pa.Table.from_pylist([{"question": f"q{i}"} for i in range(4)])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=3)
    index = FillIndex(fill(f"taco={tmp_path}"))
    index.resolve([Reference("taco", "train", 3)])
    assert index.question(Reference("taco", "train", 3)) == "q3"
    monkeypatch.setattr(sft_fill_index, "_READERS", {})  # nothing is read for an already-known problem
    index.resolve([Reference("taco", "train", 3)])
    monkeypatch.undo()
    path.write_bytes(b"not arrow at all")
    with pytest.raises(ConfigError, match=r"fill source taco: cannot read .*data-00000-of-00001.arrow"):
        FillIndex(fill(f"taco={tmp_path}")).resolve([Reference("taco", "train", 0)])
