"""`prepare-eval --kind bfcl` on small self-written files in BFCL's shipped layout (data/bfcl/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from m2rl_slime.data.cli import main as data_main
from m2rl_slime.errors import ConfigError, UnknownNameError
from m2rl_slime.eval.bfcl.prepare import BfclOptions, prepare_bfcl, select_categories

DATA = Path(__file__).parent / "data" / "bfcl"
SINGLE = "simple,parallel,java,javascript,irrelevance,live_irrelevance,live_relevance,live_multiple"
ALL = SINGLE + ",multi_turn_base,multi_turn_miss_func"


def _rows(path: Path) -> dict[str, dict]:
    return {r["metadata"]["uid"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_rows_follow_the_eval_contract(tmp_path):
    tally = prepare_bfcl(DATA, tmp_path / "bfcl.jsonl", BfclOptions(categories=(ALL,)))
    rows = _rows(tmp_path / "bfcl.jsonl")
    assert tally.rows_out == len(rows) == 12 and tally.sources["live_multiple"] == 2
    for uid, row in rows.items():
        meta = row["metadata"]
        assert (meta["domain"], meta["benchmark"], meta["uid"], meta["source"]) == ("bfcl", "bfcl", uid, "bfcl_v3")
        assert meta["bfcl_version"] == "v3" and meta["bfcl_file"].startswith("BFCL_v3_")
        assert row["label"] is None and isinstance(row["tools"], list) and row["prompt"][-1]["role"] == "user"
    assert rows["simple_1"]["prompt"][0] == {"role": "system", "content": "You are a careful assistant."}
    assert rows["irrelevance_0"]["metadata"].get("possible_answer") is None
    assert rows["live_irrelevance_0-0-0"]["tools"] == []
    # aligned by position with the possible answers, as the reference does (this answer's id differs)
    assert rows["live_multiple_1-0-0"]["metadata"]["possible_answer"] == [{"units.list": {}}]


def test_tools_are_converted_like_bfcls_function_calling_handlers(tmp_path):
    prepare_bfcl(DATA, tmp_path / "b.jsonl", BfclOptions(categories=("simple,java,javascript",)))
    rows = _rows(tmp_path / "b.jsonl")
    hyp = rows["simple_0"]["tools"][0]["function"]
    assert hyp["name"] == "geometry.hypotenuse"  # Qwen3 FC models keep the dots
    assert hyp["description"].endswith(" Note that the provided function is in Python 3 syntax.")
    assert hyp["parameters"]["type"] == "object"
    assert hyp["parameters"]["properties"]["a"] == {
        "type": "number", "description": "First leg. This is a float type value.", "format": "float"}  # fmt: skip
    props = rows["simple_1"]["tools"][0]["function"]["parameters"]["properties"]
    assert props["when"]["type"] == "array" and props["when"]["items"] == {"type": "string"}
    assert props["prefs"]["type"] == "object" and props["prefs"]["properties"]["weight"]["type"] == "number"
    assert props["anything"]["type"] == "string"
    java = rows["java_0"]["tools"][0]["function"]["parameters"]["properties"]
    assert java["limit"] == {"type": "string", "description": "Entries to keep. This is Java long type parameter in "
                             "string representation."}  # fmt: skip
    assert "items" not in java["tags"] and "elements are of type String" in java["tags"]["description"]
    js = rows["javascript_0"]["tools"][0]["function"]["parameters"]["properties"]
    assert js["options"]["type"] == "string" and '{"theme"' in js["options"]["description"]
    assert rows["java_0"]["metadata"]["functions"][0]["parameters"]["properties"]["limit"]["type"] == "long"


def test_underscore_names(tmp_path):
    prepare_bfcl(DATA, tmp_path / "b.jsonl", BfclOptions(categories=("simple",), underscore_names=True))
    row = _rows(tmp_path / "b.jsonl")["simple_0"]
    assert row["tools"][0]["function"]["name"] == "geometry_hypotenuse" and row["metadata"]["underscore_to_dot"]


def test_multi_turn_rows(tmp_path):
    prepare_bfcl(DATA, tmp_path / "b.jsonl", BfclOptions(categories=("multi_turn_base,multi_turn_miss_func",)))
    rows = _rows(tmp_path / "b.jsonl")
    base, miss = rows["multi_turn_base_0"], rows["multi_turn_miss_func_0"]
    assert [t["function"]["name"] for t in base["tools"]] == ["create_ticket", "close_ticket", "list_tickets"]
    assert base["metadata"]["turns"][1] == [{"role": "user", "content": "Now close the ticket you just opened."}]
    assert base["metadata"]["possible_answer"][1] == ["close_ticket(ticket_id=7)"]
    assert base["metadata"]["initial_config"] == {"TicketAPI": {"next_id": 7, "tickets": {}}}
    assert base["metadata"]["long_context"] is False and base["metadata"]["missed_function"] == {}
    assert [t["function"]["name"] for t in miss["tools"]] == ["create_ticket", "list_tickets"]
    held = miss["metadata"]["missed_function"]["2"][0]["function"]
    assert held["name"] == "close_ticket" and "Python 3 syntax" not in held["description"]
    assert miss["metadata"]["missed_function_docs"]["2"][0]["parameters"]["type"] == "dict"


def test_v4_file_names_are_read_and_recorded(tmp_path):
    folder = tmp_path / "v4"
    (folder / "possible_answer").mkdir(parents=True)
    shutil.copy(DATA / "BFCL_v3_simple.json", folder / "BFCL_v4_simple_python.json")
    shutil.copy(
        DATA / "possible_answer" / "BFCL_v3_simple.json", folder / "possible_answer" / "BFCL_v4_simple_python.json"
    )
    prepare_bfcl(folder, tmp_path / "b.jsonl", BfclOptions(categories=("simple_python",)))
    meta = _rows(tmp_path / "b.jsonl")["simple_0"]["metadata"]
    assert (meta["category"], meta["bfcl_version"], meta["bfcl_file"]) == (
        "simple",
        "v4",
        "BFCL_v4_simple_python.json",
    )


def test_selections():
    assert len(select_categories(["v3"])) == 17 and "multi_turn_composite" not in select_categories(["v3"])
    assert select_categories(["ast"])[-1] == "live_relevance" and len(select_categories(["multi_turn"])) == 4
    assert select_categories(["simple_java, multi_turn_composite"]) == ["java", "multi_turn_composite"]
    with pytest.raises(ConfigError, match="unavailable offline"):
        select_categories(["exec_simple"])
    with pytest.raises(UnknownNameError):
        select_categories(["simpel"])


def test_missing_files_fail_before_writing(tmp_path):
    out = tmp_path / "b.jsonl"
    with pytest.raises(ConfigError, match="BFCL_v3_multiple.json or BFCL_v4_multiple.json"):
        prepare_bfcl(DATA, out, BfclOptions())
    assert not out.exists()
    with pytest.raises(ConfigError, match="not a folder"):
        prepare_bfcl(DATA / "BFCL_v3_simple.json", out)


def test_bad_entries_are_dropped_or_fail_in_strict_mode(tmp_path):
    folder = tmp_path / "d"
    shutil.copytree(DATA, folder)
    with (folder / "BFCL_v3_simple.json").open("a", encoding="utf-8") as f:
        f.write(
            json.dumps({"id": "simple_2", "question": [[{"role": "user", "content": "x"}]], "function": "nope"}) + "\n"
        )
    tally = prepare_bfcl(folder, tmp_path / "b.jsonl", BfclOptions(categories=("simple",)))
    assert tally.rows_out == 2 and tally.dropped == {"missing_tools": 1}
    with pytest.raises(ConfigError, match="BFCL_v3_simple.json:3"):
        prepare_bfcl(folder, tmp_path / "b.jsonl", BfclOptions(categories=("simple",), strict=True))


def test_cli_lists_the_unavailable_categories(tmp_path, capsys):
    out = tmp_path / "b.jsonl"
    argv = ["prepare-eval", "--kind", "bfcl", "--input", str(DATA), "--out", str(out), "--categories", "java",
            "--categories", "irrelevance", "--no-progress"]  # fmt: skip
    assert data_main(argv) == 0
    printed = capsys.readouterr().out
    assert "rows out 2" in printed and "java: 1 rows" in printed
    for name in ("exec_simple", "exec_multiple", "exec_parallel", "exec_parallel_multiple", "rest", "sql", "chatable"):
        assert f"  {name}: unavailable offline" in printed
    assert (
        data_main(["prepare-eval", "--kind", "bfcl", "--input", str(DATA), "--out", str(out), "--categories", "rest"])
        == 1
    )
