"""`prepare-eval --kind lcb`: release selection, inclusive date windows, private tests (JSON and pickled), the
restricted unpickler, the prompt and the prepared rows (tests/data/data/lcb_problems.jsonl, written into
release files here with their private tests encoded as LiveCodeBench encodes them)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path

import pytest

from m2rl_slime.data.cli import main
from m2rl_slime.data.evalsets import EvalOptions, prepare_eval
from m2rl_slime.data.lcb import lcb_prompt, release_numbers, select_files
from m2rl_slime.data.lcb_tests import UnsafeTestsError, private_tests, unpickle_plain
from m2rl_slime.errors import ConfigError

from .conftest import check_prepared_row

FIXTURE = Path(__file__).parent / "data" / "lcb_problems.jsonl"


def encode_private(tests: list[dict]) -> str:
    """LiveCodeBench's encoding of private tests: base64(zlib(pickle(JSON string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode("ascii")


def release_files(folder: Path, pickled: bool = True) -> Path:
    """test5.jsonl / test6.jsonl from the fixture; private tests pickled (odd rows as plain JSON if not `pickled`)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[int, list[str]] = {}
    for i, line in enumerate(FIXTURE.read_text().splitlines()):
        row = json.loads(line)
        release = row.pop("_release")
        row["private_test_cases"] = encode_private(row["private_test_cases"]) if pickled or i % 2 else json.dumps(
            row["private_test_cases"])  # fmt: skip
        files.setdefault(release, []).append(json.dumps(row))
    for release, lines in files.items():
        (folder / f"test{release}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def prepare(tmp_path, inputs, **selection) -> tuple[list[dict], object]:
    out = tmp_path / "lcb.jsonl"
    tally = prepare_eval(inputs, out, "lcb", options=EvalOptions(**selection))
    return read(out), tally


def test_release_names():
    assert release_numbers("v6", [5, 6]) == (6,)
    assert release_numbers("v5_v6", []) == (5, 6)
    assert release_numbers("release_v3", []) == (1, 2, 3)
    assert release_numbers("release_latest", [6, 1, 5]) == (1, 5, 6)
    for bad in ("6", "v", "release-v6", "v0"):
        with pytest.raises(ConfigError, match="--release"):
            release_numbers(bad, [1])


def test_release_selects_files_by_name(tmp_path):
    folder = release_files(tmp_path / "lcb")
    rows, tally = prepare(tmp_path, [folder], release="v6")
    assert [r["metadata"]["uid"] for r in rows] == ["abc392_a", "3456", "abc400_c", "abc401_d"]
    assert dict(tally.sources) == {"test6": 4} and {r["metadata"]["release"] for r in rows} == {"v6"}
    rows, _ = prepare(tmp_path, [folder / "test5.jsonl", folder / "test6.jsonl"], release="v5")
    assert [r["metadata"]["uid"] for r in rows] == ["abc390_a", "abc391_b"]
    rows, _ = prepare(tmp_path, [folder], release="v5_v6")
    assert len(rows) == 6
    with pytest.raises(ConfigError, match=r"needs test\.jsonl, test2\.jsonl, test3\.jsonl, test4\.jsonl"):
        prepare(tmp_path, [folder], release="release_v6")
    with pytest.raises(ConfigError, match="test6.jsonl, not among the inputs"):
        select_files([folder / "test5.jsonl"], "v6")


def test_date_window_is_inclusive_at_both_ends(tmp_path):
    folder = release_files(tmp_path / "lcb")
    rows, tally = prepare(tmp_path, [folder], start_date="2025-02-01", end_date="2025-05-01")
    assert [r["metadata"]["uid"] for r in rows] == ["abc392_a", "3456", "abc400_c"]
    assert tally.dropped == {"outside_date_window": 3}
    assert rows[0]["metadata"]["subset"] == "contest_date 2025-02-01..2025-05-01 (inclusive)"
    rows, _ = prepare(tmp_path, [folder], release="v6", end_date="2025-02-01")  # release, then window
    assert [r["metadata"]["uid"] for r in rows] == ["abc392_a"]
    rows, _ = prepare(tmp_path, [folder], start_date="2025-05-02")
    assert [r["metadata"]["uid"] for r in rows] == ["abc401_d"]


def test_empty_selection_and_bad_dates_are_refused(tmp_path):
    folder = release_files(tmp_path / "lcb")
    with pytest.raises(ConfigError, match=r"no LiveCodeBench problem selected \(release v5, contest_date 2025-06-01"):
        prepare(tmp_path, [folder], release="v5", start_date="2025-06-01")
    assert not (tmp_path / "lcb.jsonl").exists()
    with pytest.raises(ConfigError, match="--start-date '2025/02/01': expected YYYY-MM-DD"):
        prepare(tmp_path, [folder], start_date="2025/02/01")
    with pytest.raises(ConfigError, match="is before --start-date"):
        prepare(tmp_path, [folder], start_date="2025-03-01", end_date="2025-02-01")
    with pytest.raises(ConfigError, match="select LiveCodeBench problems"):
        prepare_eval(FIXTURE, tmp_path / "x.jsonl", "aime25", options=EvalOptions(release="v6"))


@pytest.mark.parametrize("pickled", [True, False], ids=["pickled", "json"])
def test_rows_carry_public_then_private_tests_and_the_lcb_rules(tmp_path, pickled):
    rows, _ = prepare(tmp_path, [release_files(tmp_path / "lcb", pickled)], release="v6")
    by_uid = {r["metadata"]["uid"]: r for r in rows}
    for row in rows:
        check_prepared_row(row)
    stdin = by_uid["abc392_a"]["metadata"]
    assert stdin["unit_tests"] == {"inputs": ["1 2\n", "2 2\n", "0 0\n"], "outputs": ["3\n", "4\n", "0\n"],
                                   "fn_name": None}  # fmt: skip
    assert (stdin["compare"], stdin["time_limit_s"], stdin["benchmark"], stdin["domain"]) == (
        "lcb",
        6.0,
        "lcb",
        "code",
    )
    assert (stdin["contest_date"], stdin["platform"], stdin["source"]) == ("2025-02-01", "atcoder", "test6")
    functional = by_uid["3456"]
    assert functional["metadata"]["unit_tests"] == {"inputs": ["[1, 2]\n3", "[]\n1"], "outputs": ["[4, 5]", "[]"],
                                                    "fn_name": "addK"}  # fmt: skip
    assert by_uid["abc401_d"]["metadata"]["unit_tests"]["inputs"] == ["1\n"]  # no private tests
    assert functional["label"] is None and functional["tools"] == []


def test_prompt_with_starter_code_and_with_stdin():
    system, user = lcb_prompt(
        "Add k. Keep {format} and {code} as text.", "class Solution:\n    def f(self):\n        "
    )
    assert system["role"] == "system" and "Python" in system["content"]
    assert user["content"].startswith("### Problem\nAdd k. Keep {format} and {code} as text.\n\n### Format\n")
    assert "```python\nclass Solution:\n    def f(self):\n        \n```" in user["content"]
    assert "standard input" not in user["content"]
    _, stdin_user = lcb_prompt("Read two numbers.", "")
    assert "standard input" in stdin_user["content"] and "```python\n# your code here\n```" in stdin_user["content"]


def test_restricted_unpickler_admits_plain_data_only(tmp_path):
    plain = {"a": [1, 2.5, True, None, "s", b"b", {"n": [-(10**30)]}]}
    assert unpickle_plain(pickle.dumps(plain), "p") == plain
    looped: list = []
    looped.append(looped)
    assert unpickle_plain(pickle.dumps(looped), "p")[0] is not None  # a cycle is checked once, not forever
    for value, what in [((1, 2), "a tuple"), ({1, 2}, "a set"), (bytearray(b"x"), "a reference to builtins.bytearray"),
                        (Path("x"), "a reference to pathlib")]:  # fmt: skip
        with pytest.raises(UnsafeTestsError, match=f"problem p: private_test_cases refused, the pickle holds {what}"):
            unpickle_plain(pickle.dumps(value), "p")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker), protocol=protocol)
    blob = base64.b64encode(zlib.compress(payload)).decode("ascii")
    with pytest.raises(UnsafeTestsError, match="problem abc_evil: .*a reference to (posix|os)\\.mkdir"):
        private_tests(blob, "abc_evil")
    assert not marker.exists()
    # in a release file it stops the whole run (never a dropped row), even without --strict
    folder = release_files(tmp_path / "lcb")
    rows = (folder / "test6.jsonl").read_text().splitlines()
    evil = json.loads(rows[1])
    evil["private_test_cases"] = blob
    rows[1] = json.dumps(evil)
    (folder / "test6.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(UnsafeTestsError, match="problem 3456"):
        prepare(tmp_path, [folder], release="v6")
    assert not marker.exists() and not (tmp_path / "lcb.jsonl").exists()
    assert main(["prepare-eval", "--kind", "lcb", "--input", str(folder), "--out", str(tmp_path / "o.jsonl")]) == 1


def test_other_bad_encodings_drop_the_problem(tmp_path):
    assert private_tests(json.dumps([{"input": "1", "output": "2"}]), "p") == [{"input": "1", "output": "2"}]
    assert private_tests("", "p") == []
    folder = release_files(tmp_path / "lcb")
    rows = (folder / "test6.jsonl").read_text().splitlines()
    bad = json.loads(rows[0])
    bad["private_test_cases"] = base64.b64encode(b"not zlib").decode()
    rows[0] = json.dumps(bad)
    (folder / "test6.jsonl").write_text("\n".join(rows) + "\n")
    out, tally = prepare(tmp_path, [folder], release="v6")
    assert tally.dropped == {"bad_tests": 1} and len(out) == 3
    with pytest.raises(ConfigError, match=r"test6\.jsonl:1: private_test_cases: not zlib data"):
        prepare(tmp_path, [folder], release="v6", strict=True)


def test_cli_prints_counts(tmp_path, capsys):
    folder = release_files(tmp_path / "lcb")
    out = tmp_path / "o.jsonl"
    args = ["prepare-eval", "--kind", "lcb", "--input", str(folder / "test5.jsonl"), str(folder / "test6.jsonl"),
            "--out", str(out), "--start-date", "2025-01-31", "--end-date", "2025-03-15", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lcb: rows in 6, rows out 3, dropped: outside_date_window=3" in printed
    assert "test5: 1, test6: 2" in printed
    assert main(["prepare-eval", "--kind", "lcb", "--input", str(folder), "--out", str(out), "--release", "v7"]) == 1
    assert "test7.jsonl, not among the inputs" in capsys.readouterr().err
