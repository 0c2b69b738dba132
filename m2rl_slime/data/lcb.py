"""`prepare-eval --kind lcb`: LiveCodeBench code-generation release files -> prepared code rows.

Not a slime hook. Input: the release files of ``livecodebench/code_generation_lite`` (``test.jsonl``,
``test2.jsonl`` ... ``test6.jsonl``, each holding the problems *added* by one release), given as files or
as the folder they were downloaded to. No hub loader is used (the dataset's loading script fails on
``datasets`` >= 4).

Selection, as the official runner selects (both optional, applied in this order):

- ``release``: which files. ``vN`` = the problems added in release N (file ``testN.jsonl``;
  ``test.jsonl`` for N = 1), ``vM_vN`` = the additions of releases M..N, ``release_vN`` = everything
  up to release N (files 1..N: the official ``release_vN`` tag), ``release_latest`` = every release file
  given. The paper's "LiveCodeBench v6" (175 problems) is ``v6``.
- ``start_date`` / ``end_date`` (``YYYY-MM-DD``, both inclusive): ``contest_date`` compared with the
  dates' midnights, as lcb_runner does (LiveCodeBench stores contest dates at midnight).

A selection with no problem is refused. Each problem becomes one row: the prompt of `lcb_prompt`, its
public then private tests as ``unit_tests`` (functional problems: ``fn_name`` from the problem's
``metadata.func_name``), ``compare: lcb`` and ``time_limit_s: 6`` (the official per-test limit), uid =
``question_id``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .files import atomic_writer, iter_rows
from .prepare import PrepareOptions, Tally, progress_bar
from .schema import Row, RowError
from .templates import LCB_ANSWER, LCB_EMPTY_CODE, LCB_STARTER_FORMAT, LCB_STDIN_FORMAT, LCB_SYSTEM, LCB_USER

logger = logging.getLogger(__name__)

TIME_LIMIT_S = 6.0
_RELEASE = re.compile(r"^(?:v(?P<one>\d+)|v(?P<lo>\d+)_v(?P<hi>\d+)|release_v(?P<upto>\d+)|release_latest)$")
_FILE_STEM = re.compile(r"^test(?P<n>[1-9]\d*)?$")
_SLOT = re.compile(r"\{(question|format|code|answer)\}")


@dataclass(frozen=True, slots=True)
class LcbSelection:
    """Which LiveCodeBench problems to prepare (see the module docstring)."""

    release: str | None = None
    start_date: str | None = None
    end_date: str | None = None

    def describe(self) -> str:
        parts = [f"release {self.release}"] if self.release else []
        if self.start_date or self.end_date:
            parts.append(f"contest_date {self.start_date or '...'}..{self.end_date or '...'} (inclusive)")
        return ", ".join(parts) or "every given problem"


def release_numbers(release: str, available: Iterable[int]) -> tuple[int, ...]:
    """The release-file numbers a release name selects (`available`: the numbers of the given files)."""
    match = _RELEASE.match(release.strip())
    if not match:
        raise ConfigError(f"--release {release!r}: expected vN, vM_vN, release_vN or release_latest (e.g. v6)")
    if match["one"]:
        numbers = (int(match["one"]),)
    elif match["lo"]:
        numbers = tuple(range(int(match["lo"]), int(match["hi"]) + 1))
    elif match["upto"]:
        numbers = tuple(range(1, int(match["upto"]) + 1))
    else:
        numbers = tuple(sorted(available))
    if not numbers or min(numbers) < 1:
        raise ConfigError(f"--release {release!r}: selects no release file")
    return numbers


def release_file_name(number: int) -> str:
    """``test.jsonl`` for release 1, ``testN.jsonl`` for release N."""
    return "test.jsonl" if number == 1 else f"test{number}.jsonl"


def _file_number(path: Path) -> int | None:
    match = _FILE_STEM.match(path.stem)
    return None if match is None else int(match["n"] or 1)


def _expand(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.suffix == ".jsonl" and _file_number(p)), key=_file_number)
            if not found:
                raise ConfigError(f"{path}: no LiveCodeBench release files (test.jsonl, test2.jsonl, ...) in it")
            files += found
        else:
            files.append(path)
    return files


def select_files(paths: Sequence[str | Path], release: str | None) -> list[tuple[Path, int | None]]:
    """The input files to read, with their release numbers (None: a file not named like a release file).

    Raises:
        ConfigError: the release needs a file that is not among the inputs, or a named file is not one.
    """
    files = [(p, _file_number(p)) for p in _expand([Path(p) for p in paths])]
    if release is None:
        return files
    by_number = {n: p for p, n in files if n is not None}
    wanted = release_numbers(release, by_number)
    missing = [release_file_name(n) for n in wanted if n not in by_number]
    if missing:
        given = ", ".join(p.name for p, _ in files)
        raise ConfigError(
            f"--release {release} needs {', '.join(missing)}, not among the inputs ({given}); download it from "
            "livecodebench/code_generation_lite (files are recognised by name: test.jsonl, test2.jsonl, ...)"
        )
    return [(by_number[n], n) for n in wanted]


def _date(text: str, option: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected YYYY-MM-DD") from None


def contest_date(raw: Mapping[str, Any]) -> datetime:
    """The problem's ``contest_date`` as a naive datetime."""
    value = raw.get("contest_date")
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise RowError("bad_date", "contest_date", f"not an ISO date: {value!r:.40}") from None


def lcb_prompt(question: str, starter_code: str) -> list[dict[str, str]]:
    """System instruction + the problem + the starter code or the stdin/stdout instruction."""
    slots = {
        "question": question,
        "format": LCB_STARTER_FORMAT if starter_code.strip() else LCB_STDIN_FORMAT,
        "code": starter_code.strip("\n") if starter_code.strip() else LCB_EMPTY_CODE,
        "answer": LCB_ANSWER,
    }
    user = _SLOT.sub(lambda m: slots[m.group(1)], LCB_USER)  # one pass: text in a slot is never re-read
    return [{"role": "system", "content": LCB_SYSTEM}, {"role": "user", "content": user}]


def _text(raw: Mapping[str, Any], name: str, reason: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RowError(reason, name, "missing or not a non-empty string")
    return value


def _problem_metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    value = raw.get("metadata")
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowError("bad_metadata", "metadata", "not valid JSON") from None
    if not isinstance(value, Mapping):
        raise RowError("bad_metadata", "metadata", f"expected an object, got {type(value).__name__}")
    return dict(value)


def lcb_row(raw: Mapping[str, Any], source: str, release: int | None, subset: str) -> Row:
    """One LiveCodeBench problem -> a prepared code row (see the module docstring)."""
    from .lcb_tests import private_tests, public_tests

    uid = _text(raw, "question_id", "missing_id")
    question = _text(raw, "question_content", "missing_prompt")
    starter = raw.get("starter_code") if isinstance(raw.get("starter_code"), str) else ""
    tests = public_tests(raw.get("public_test_cases")) + private_tests(raw.get("private_test_cases"), uid)
    if not tests:
        raise RowError("missing_tests", "public_test_cases", "the problem has no tests")
    fn_name = _problem_metadata(raw).get("func_name") or None
    if fn_name is not None and not (isinstance(fn_name, str) and fn_name.isidentifier()):
        raise RowError("bad_metadata", "metadata.func_name", f"not a Python identifier: {fn_name!r}")
    metadata = {
        "source": source, "uid": uid, "benchmark": "lcb",
        "unit_tests": {"inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests],
                       "fn_name": fn_name},
        "compare": "lcb", "time_limit_s": TIME_LIMIT_S,
        "subset": subset, "release": f"v{release}" if release else None,
        "contest_date": contest_date(raw).date().isoformat(),
        "platform": raw.get("platform"), "difficulty": raw.get("difficulty"),
        "question_title": raw.get("question_title"),
    }  # fmt: skip
    return Row(lcb_prompt(question, starter), None, "code", metadata, [])


def _in_window(raw: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    when = contest_date(raw)
    return (start is None or start <= when) and (end is None or when <= end)


def prepare_lcb(
    inputs: Sequence[str | Path],
    out_path: str | Path,
    selection: LcbSelection,
    *,
    name: str | None = None,
    limit: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
) -> Tally:
    """Write the selected LiveCodeBench problems of `inputs` to `out_path` (all or nothing).

    Returns:
        The tally; ``sources`` counts the rows written per input file, ``dropped`` the problems left
        out (``outside_date_window``, ``duplicate_uid``, malformed ones by reason).

    Raises:
        ConfigError: unknown release, missing release file, bad dates, no problem selected, a bad
            problem with `strict`; `UnsafeTestsError` for a pickle that is not plain data (always).
    """
    files = select_files(inputs, selection.release)
    start = _date(selection.start_date, "--start-date") if selection.start_date else None
    end = _date(selection.end_date, "--end-date") if selection.end_date else None
    if start and end and end < start:
        raise ConfigError(f"--end-date {selection.end_date} is before --start-date {selection.start_date}")
    tally, seen, subset = Tally(), set(), selection.describe()
    with atomic_writer(out_path) as out, progress_bar(PrepareOptions(progress=progress), "prepare-eval lcb") as bar:
        for path, number in files:
            source = name or path.stem
            for line_no, raw, error in iter_rows(path):
                if limit is not None and tally.rows_out >= limit:
                    break
                bar.update(1)
                tally.rows_in += 1
                try:
                    if error is not None:
                        raise RowError("invalid_json", "<line>", error)
                    if not isinstance(raw, Mapping):
                        raise RowError("bad_row", "<row>", f"expected a JSON object, got {type(raw).__name__}")
                    if not _in_window(raw, start, end):
                        tally.dropped["outside_date_window"] += 1
                        continue
                    row = lcb_row(raw, source, number, subset)
                    if row.metadata["uid"] in seen:
                        raise RowError("duplicate_uid", "question_id", f"{row.metadata['uid']} appeared before")
                except RowError as exc:
                    if strict:
                        raise ConfigError(f"{path}:{line_no}: {exc}") from None
                    tally.dropped[exc.reason] += 1
                    logger.warning("dropped (%s) %s:%d: %s", exc.reason, path, line_no, exc)
                    continue
                seen.add(row.metadata["uid"])
                out.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
                tally.rows_out += 1
                tally.sources[source] += 1
        if tally.rows_out == 0:
            read = ", ".join(p.name for p, _ in files)
            raise ConfigError(
                f"no LiveCodeBench problem selected ({subset}) from {read}: {dict(tally.dropped) or 'no rows'}"
            )
    return tally


def prepare_eval_kind(input_paths: Sequence[Path], out_path: str | Path, config: Any, options: Any) -> Tally:
    """``prepare-eval --kind lcb``: `prepare_lcb` with the data CLI's `EvalOptions` (`config` unused)."""
    selection = LcbSelection(options.release, options.start_date, options.end_date)
    return prepare_lcb(input_paths, out_path, selection, name=options.name, limit=options.limit,
                       strict=options.strict, progress=options.progress)  # fmt: skip
