"""Pins `prepare-sft` (`m2rl_slime.data.sft_blend`): exact counts per rule from jsonl and parquet inputs,
determinism, bad rows, all-or-nothing output, the shard formats and random access by row id."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from m2rl_slime.data import sft_blend
from m2rl_slime.data.cli import main
from m2rl_slime.data.sft_blend import SFTOptions, prepare_sft
from m2rl_slime.data.sft_rules import SourceSpec
from m2rl_slime.data.sft_shards import BlendReader, read_manifest
from m2rl_slime.errors import ConfigError

pq = pytest.importorskip("pyarrow.parquet")


def chat(tag: str, i: int, **extra) -> dict:
    return {
        "uuid": f"{tag}{i}",
        "messages": [{"role": "user", "content": f"{tag} question {i} ü"}, {"role": "assistant", "content": f"a{i}"}],
        **extra,
    }


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture
def inputs(tmp_path) -> Path:
    """math.jsonl: 20 valid (2 need a fix) + 3 bad; chat/: 2 parquet files, 12 valid + 1 bad; tools.jsonl: 5."""
    root = tmp_path / "raw"
    root.mkdir()
    math = [chat("m", i) for i in range(18)]
    math += [chat("m", 18, tools=None), chat("m", 19, tools=json.dumps([{"name": "calc"}]))]
    math += ["{broken", json.dumps({"uuid": "no-messages"}), json.dumps(chat("m", 99) | {"messages": []})]
    write_jsonl(root / "math.jsonl", math[:10] + ["", *math[10:]])
    (root / "chat").mkdir()
    for part, rows in enumerate([[chat("c", i) for i in range(7)], [chat("c", i) for i in range(7, 12)]]):
        if part == 1:
            rows.append({"uuid": "bad", "messages": [{"role": "robot", "content": "x"}]})
        pq.write_table(_table(rows), root / "chat" / f"part{part}.parquet")
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    tools = [
        chat("t", i, tools=[{"type": "function", "function": {"name": "f"}}])
        | {
            "messages": [
                {"role": "user", "content": f"use f {i}"},
                {"role": "assistant", "content": "", "tool_calls": json.dumps([call])},
                {"role": "tool", "content": {"ok": i}},
                {"role": "assistant", "content": "done"},
            ]
        }
        for i in range(5)
    ]
    write_jsonl(root / "tools.jsonl", tools)
    return root


def _table(rows: list):
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def specs(*texts: str) -> list[SourceSpec]:
    return [SourceSpec.parse(t) for t in texts]


def options(root: Path, **kw) -> SFTOptions:
    return SFTOptions(**{"progress": False, "root": root, "shard_rows": 7, "row_group_rows": 3, **kw})


def all_rows(out: Path) -> list[tuple[str, dict]]:
    reader = BlendReader(out)
    return reader.read(range(len(reader)))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
@pytest.mark.parametrize(
    ("rules", "counts"),
    [
        (("all", "all", "all"), (20, 12, 5)),
        (("repeat=3", "repeat=2", "all"), (60, 24, 5)),
        (("sample=7", "sample=30", "sample=5"), (7, 30, 5)),
        (("fraction=0.5", "fraction=0.25", "fraction=1"), (10, 3, 5)),
    ],
)
def test_every_rule_gives_exact_counts(inputs, tmp_path, fmt, rules, counts):
    sources = specs(f"math.jsonl::math:{rules[0]}", f"chat::chat:{rules[1]}", f"tools.jsonl::tools:{rules[2]}")
    summary = prepare_sft(sources, tmp_path / "out", options(inputs, fmt=fmt))
    manifest = read_manifest(tmp_path / "out")
    assert [s["rows_out"] for s in manifest["sources"]] == list(counts)
    assert [s["valid"] for s in manifest["sources"]] == [20, 12, 5]
    assert manifest["total_rows"] == sum(counts) and manifest["format"] == fmt
    rows = all_rows(tmp_path / "out")
    assert Counter(source for source, _ in rows) == dict(zip(("math", "chat", "tools"), counts))
    shares = [s["share"] for s in manifest["sources"]]
    assert shares == [round(100 * c / sum(counts), 4) for c in counts]
    assert "total" in summary.table()


def test_sample_draws_distinct_rows_and_upsampling_repeats_evenly(inputs, tmp_path):
    prepare_sft(specs("math.jsonl::math:sample=7", "chat::chat:sample=30"), tmp_path / "o", options(inputs))
    uids = Counter((source, row["uuid"]) for source, row in all_rows(tmp_path / "o"))
    math = [n for (source, _), n in uids.items() if source == "math"]
    chat_counts = sorted(n for (source, _), n in uids.items() if source == "chat")
    assert len(math) == 7 and set(math) == {1}
    assert len(chat_counts) == 12 and chat_counts == [2] * 6 + [3] * 6  # 30 = 2 x 12 + 6 more


def test_repeat_copies_are_adjacent_and_in_input_order(inputs, tmp_path):
    prepare_sft(specs("tools.jsonl::tools:repeat=3"), tmp_path / "o", options(inputs))
    assert [row["uuid"] for _, row in all_rows(tmp_path / "o")] == [f"t{i}" for i in range(5) for _ in range(3)]


def test_same_inputs_and_seed_give_identical_blends(inputs, tmp_path):
    sources = specs("math.jsonl::math:sample=9", "chat::chat:fraction=0.5")
    first = prepare_sft(sources, tmp_path / "a", options(inputs, seed=5)).manifest
    second = prepare_sft(sources, tmp_path / "b", options(inputs, seed=5)).manifest
    other = prepare_sft(sources, tmp_path / "c", options(inputs, seed=6)).manifest
    assert first == second
    assert first["blend_sha256"] != other["blend_sha256"]
    assert all_rows(tmp_path / "a") == all_rows(tmp_path / "b") != all_rows(tmp_path / "c")


def test_valid_lines_are_copied_verbatim_and_fixed_rows_decoded(inputs, tmp_path):
    prepare_sft(specs("math.jsonl::math", "tools.jsonl::tools"), tmp_path / "o", options(inputs, fmt="jsonl"))
    manifest = read_manifest(tmp_path / "o")
    math = manifest["sources"][0]
    assert (math["clean"], math["fixed"], math["invalid"]) == (18, 2, {"invalid_json": 1, "no_messages": 2})
    source_lines = (inputs / "math.jsonl").read_text(encoding="utf-8").splitlines()
    shard_lines = (tmp_path / "o" / "math" / "part-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert shard_lines[:7] == source_lines[:7]
    rows = dict((row["uuid"], row) for _, row in all_rows(tmp_path / "o"))
    assert rows["m18"]["tools"] == [] and rows["m19"]["tools"] == [{"name": "calc"}]
    tool_turns = rows["t3"]["messages"]
    assert tool_turns[1]["tool_calls"][0]["function"]["name"] == "f" and tool_turns[2]["content"] == '{"ok": 3}'


def test_shards_rotate_and_parquet_row_groups_are_uniform(inputs, tmp_path):
    prepare_sft(specs("math.jsonl::math"), tmp_path / "o", options(inputs, shard_rows=8, row_group_rows=3))
    shards = read_manifest(tmp_path / "o")["sources"][0]["shards"]
    assert [s["rows"] for s in shards] == [8, 8, 4]
    meta = pq.ParquetFile(tmp_path / "o" / shards[0]["file"]).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 2]
    reader = BlendReader(tmp_path / "o")
    picked = reader.read([19, 0, 8, 8, 5])
    assert [row["uuid"] for _, row in picked] == ["m19", "m0", "m8", "m8", "m5"]
    with pytest.raises(IndexError):
        reader.read([20])


def test_limit_and_strict(inputs, tmp_path):
    prepare_sft(specs("math.jsonl::math"), tmp_path / "o", options(inputs, limit=5))
    assert read_manifest(tmp_path / "o")["sources"][0]["rows_in"] == 5
    with pytest.raises(ConfigError, match=r"math.jsonl:22: invalid_json"):
        prepare_sft(specs("math.jsonl::math"), tmp_path / "s", options(inputs, strict=True))
    assert not (tmp_path / "s").exists()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_failed_run_leaves_nothing_and_keeps_a_previous_blend(inputs, tmp_path, monkeypatch):
    out = tmp_path / "o"
    with pytest.raises(ConfigError, match="matches no"):
        prepare_sft(specs("math.jsonl::math", "missing.jsonl::gone"), out, options(inputs))
    assert not out.exists()
    prepare_sft(specs("math.jsonl::math"), out, options(inputs))
    before = read_manifest(out)

    def explode(self):
        raise OSError("disk full")

    monkeypatch.setattr(sft_blend._Source, "single_pass", explode)
    with pytest.raises(OSError, match="disk full"):
        prepare_sft(specs("math.jsonl::math", "chat::chat"), out, options(inputs))
    assert read_manifest(out) == before and _leftovers(tmp_path) == []
    monkeypatch.undo()
    prepare_sft(specs("chat::chat"), out, options(inputs))
    assert [s["name"] for s in read_manifest(out)["sources"]] == ["chat"] and not (out / "math").exists()
    assert _leftovers(tmp_path) == []


def test_interrupting_the_write_pass_leaves_no_output(inputs, tmp_path, monkeypatch):
    real = sft_blend.ShardWriter.write_rows  # every write goes through it (runs of rows and single rows)
    calls = Counter()

    def interrupted(self, data, ends):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(self, data, ends)

    monkeypatch.setattr(sft_blend.ShardWriter, "write_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_sft(specs("math.jsonl::math:sample=6"), tmp_path / "o", options(inputs))
    assert not (tmp_path / "o").exists() and _leftovers(tmp_path) == []


def test_refuses_a_directory_that_is_not_a_blend_and_a_blend_without_rows(inputs, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a prepare-sft blend"):
        prepare_sft(specs("math.jsonl::math"), other, options(inputs))
    assert (other / "notes.txt").read_text() == "keep me"
    write_jsonl(inputs / "bad.jsonl", ["{", json.dumps({"x": 1})])
    with pytest.raises(ConfigError, match="no rows"):
        prepare_sft(specs("bad.jsonl::bad"), tmp_path / "empty", options(inputs))
    assert not (tmp_path / "empty").exists()


def test_cli_builds_a_blend_from_a_yaml_and_reports_errors_in_one_line(inputs, tmp_path, capsys):
    blend = tmp_path / "blend.yaml"
    blend.write_text(
        "seed: 3\nsources:\n  math: {path: math.jsonl, rule: sample=10, share: 40, rows: 10}\n"
        "  chat: {paths: [chat], rule: repeat=2, share: 60, rows: 25}\n"
    )
    argv = ["prepare-sft", "--blend", str(blend), "--inputs", str(inputs), "--out", str(tmp_path / "o")]
    assert main([*argv, "--no-progress", "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert "math" in out and "40.00" in out and "(!)" in out  # chat: 24 rows out, 25 expected
    manifest = read_manifest(tmp_path / "o")
    assert manifest["seed"] == 3 and [s["rows_out"] for s in manifest["sources"]] == [10, 24]
    assert manifest["sources"][1]["share_requested"] == 60
    assert main(["prepare-sft", "--source", "nope.jsonl::x", "--out", str(tmp_path / "p"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: source x:") and "\n" not in err


def test_worker_processes_and_chunking_do_not_change_the_blend(inputs, tmp_path, monkeypatch):
    from m2rl_slime.data import sft_scan

    sources = specs("math.jsonl::math:sample=9", "tools.jsonl::tools:repeat=2", "chat::chat")
    one = prepare_sft(sources, tmp_path / "one", options(inputs)).manifest
    monkeypatch.setattr(sft_scan, "CHUNK_BYTES", 200)  # many chunks, lines longer than a read block
    two = prepare_sft(sources, tmp_path / "two", options(inputs, workers=2)).manifest
    assert one == two
    assert all_rows(tmp_path / "one") == all_rows(tmp_path / "two")


def test_chunks_keep_line_numbers_crlf_and_long_lines(tmp_path, monkeypatch):
    from m2rl_slime.data import sft_scan

    monkeypatch.setattr(sft_scan, "CHUNK_BYTES", 16)
    path = tmp_path / "x.jsonl"
    long = json.dumps(chat("l", 0) | {"pad": "y" * 500})
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(chat("a", 1)).encode() + b"\r\n\n  \n" + long.encode() + b"\n{bad")
    records = list(sft_scan.jsonl_records(path, None, True, False))
    assert [(r.where.rsplit(":", 1)[1], r.code, r.error and r.error[0]) for r in records] == [
        ("1", 1, None),
        ("4", 1, None),
        ("5", 0, "invalid_json"),
    ]
    assert records[1].raw == long.encode() + b"\n"  # stored as read (JSON allows the trailing newline)
    assert records[0].raw.endswith(b"}\r\n") and not records[0].raw.startswith(b"\xef")
    assert records[2].raw == b"{bad\n"  # the last line gets its newline


def test_cli_with_worker_processes(inputs, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "m2rl_slime.data",
        "prepare-sft",
        "--source",
        f"{inputs / 'math.jsonl'}::math:sample=5",
    ]
    done = subprocess.run([*cmd, "--out", str(out), "--workers", "2", "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert read_manifest(out)["total_rows"] == 5 and "wrote" in done.stdout


def test_workers_default_leaves_a_core_to_the_main_process():
    from m2rl_slime.data.sft_cli import default_workers

    assert [default_workers(n) for n in (1, 2, 3, 4, 16, 64)] == [1, 1, 2, 3, 8, 8]
    assert 1 <= default_workers() <= 8
