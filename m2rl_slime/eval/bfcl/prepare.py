"""`prepare-eval --kind bfcl`: a folder of BFCL data files -> prepared eval rows (one jsonl, all categories).

The folder is BFCL's ``data`` folder as shipped: ``BFCL_v3_<category>.json`` (the ``nvidia-bfcl`` 26.3 wheel,
``bfcl/data``) or ``BFCL_v4_<category>.json`` (the ``bfcl-eval`` wheel, ``bfcl_eval/data``), each one JSON
object per line, next to ``possible_answer/`` and ``multi_turn_func_doc/``. v3 names are preferred when both
exist; every row records what was read (``bfcl_version``, ``bfcl_file``).

Rows (``metadata.domain = "bfcl"``, ``uid`` = BFCL's id, ``benchmark = "bfcl"``, ``category`` = the v3 name):

- single-turn categories: ``prompt`` is the entry's first turn, ``tools`` the converted function docs
  (`tools.to_tools`), ``metadata.functions`` the docs as BFCL wrote them (the checker needs the declared
  types) and ``metadata.possible_answer`` the possible answers (none for irrelevance/relevance);
- multi-turn categories: ``prompt`` is turn 0, ``metadata.turns`` every turn's user messages,
  ``metadata.possible_answer`` the ground-truth call strings per turn, ``initial_config``,
  ``involved_classes``, ``missed_function`` (turn -> tool schemas held out until that turn, for miss_func)
  with the raw docs in ``missed_function_docs``, and ``tools`` the docs of the involved classes minus the
  held-out ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...data.files import atomic_writer
from ...data.prepare import Tally
from ...errors import ConfigError, UnknownNameError
from .categories import CATEGORIES, SELECTIONS, UNAVAILABLE, Category, canonical_category
from .tools import to_tools

logger = logging.getLogger(__name__)

# The JSON doc file of each multi-turn API class (bfcl-eval's multi_turn_func_doc folder).
FUNC_DOC_FILES: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}
_ROLES = ("system", "user", "assistant")


class EntryError(ValueError):
    """One BFCL entry cannot become a row (`reason` is the tally bucket)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class BfclOptions:
    """Options of `prepare_bfcl`.

    Attributes:
        categories: ``v3`` (13 single-turn + 4 multi-turn categories), ``ast``, ``multi_turn``, or names.
        underscore_names: Replace dots in tool names by underscores (checked against the renamed names).
        name: ``metadata.source`` (default ``bfcl_<version>``).
        limit: At most this many rows per category.
        strict: Fail on the first bad entry instead of dropping it.
    """

    categories: Sequence[str] = ("v3",)
    underscore_names: bool = False
    name: str | None = None
    limit: int | None = None
    strict: bool = False


def select_categories(requested: Sequence[str]) -> list[str]:
    """Expand `--categories` values (shorthands, v3 or v4 names, comma lists) into v3 names, in table order.

    Raises:
        ConfigError: an unavailable category (exec, rest, sql, chatable) was asked for.
        UnknownNameError: any other unknown name.
    """
    names: set[str] = set()
    for value in requested:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if item in SELECTIONS:
                names.update(SELECTIONS[item])
            elif item in UNAVAILABLE:
                raise ConfigError(f"BFCL category {item!r} is unavailable offline: {UNAVAILABLE[item]}")
            elif (name := canonical_category(item)) is not None:
                names.add(name)
            else:
                raise UnknownNameError("BFCL category", item, [*SELECTIONS, *CATEGORIES])
    if not names:
        raise ConfigError("--categories selects no BFCL category")
    return [name for name in CATEGORIES if name in names]


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


def data_file(folder: Path, category: Category, *, answers: bool = False) -> tuple[Path, str]:
    """The file of `category` in `folder` (``possible_answer/`` with `answers`) and its version (v3/v4)."""
    base = folder / "possible_answer" if answers else folder
    candidates = [(base / f"BFCL_v3_{category.name}.json", "v3")]
    if category.v4_name:
        candidates.append((base / f"BFCL_v4_{category.v4_name}.json", "v4"))
    for path, version in candidates:
        if path.is_file():
            return path, version
    names = " or ".join(p.name for p, _ in candidates)
    raise ConfigError(f"{base}: no {names} (pass BFCL's data folder, or leave {category.name!r} out of --categories)")


def _messages(turn: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(turn, list):
        raise EntryError("bad_prompt", f"{where} is not a list of messages")
    out = []
    for i, message in enumerate(turn):
        if (
            not isinstance(message, Mapping)
            or message.get("role") not in _ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise EntryError("bad_prompt", f"{where}[{i}] is not a system/user/assistant message with text")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def _functions(entry: Mapping[str, Any], category: Category) -> list[dict[str, Any]]:
    docs = entry.get("function")
    if not isinstance(docs, list) or (not docs and category.kind == "ast"):
        raise EntryError("missing_tools", "no function docs")
    for doc in docs:
        parameters = doc.get("parameters") if isinstance(doc, Mapping) else None
        if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str) or not isinstance(parameters, Mapping):
            raise EntryError("bad_tools", f"function doc {doc!r:.120} needs a name and parameters")
        if not isinstance(parameters.get("properties"), Mapping) or not isinstance(parameters.get("required"), list):
            raise EntryError("bad_tools", f"function {doc['name']!r} needs parameters.properties and .required")
    return docs


def _single_turn(entry: Mapping[str, Any], category: Category, answer: Any, options: BfclOptions) -> tuple:
    questions = entry.get("question")
    if not isinstance(questions, list) or not questions:
        raise EntryError("missing_prompt", "no question")
    prompt = _messages(questions[0], "question[0]")
    if not any(m["role"] == "user" for m in prompt):
        raise EntryError("missing_prompt", "the first turn has no user message")
    docs = _functions(entry, category)
    metadata: dict[str, Any] = {"functions": docs}
    if category.kind == "ast":
        if (
            not isinstance(answer, list)
            or not answer
            or not all(isinstance(a, Mapping) and len(a) == 1 for a in answer)
        ):
            raise EntryError("missing_label", "no possible answer of the form [{function: {param: [values]}}]")
        metadata["possible_answer"] = answer
    if options.underscore_names:
        metadata["underscore_to_dot"] = True
    return prompt, metadata, to_tools(docs, category.language, underscore_names=options.underscore_names)


class _FuncDocs:
    """The multi-turn classes' function docs, read once per class."""

    def __init__(self, folder: Path):
        self.folder = folder / "multi_turn_func_doc"
        self.cache: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, class_name: str) -> list[dict[str, Any]]:
        if class_name not in FUNC_DOC_FILES:
            raise EntryError("unknown_class", f"involved class {class_name!r} is not a BFCL v3 API class")
        if class_name not in self.cache:
            path = self.folder / FUNC_DOC_FILES[class_name]
            if not path.is_file():
                raise ConfigError(
                    f"{path}: missing (the multi-turn categories need BFCL's multi_turn_func_doc folder)"
                )
            self.cache[class_name] = [doc for _, doc in _lines(path)]
        return self.cache[class_name]


def _multi_turn(entry: Mapping[str, Any], category: Category, answer: Any, docs_of: _FuncDocs) -> tuple:
    questions = entry.get("question")
    if not isinstance(questions, list) or not questions:
        raise EntryError("missing_prompt", "no turns")
    turns = [_messages(turn, f"question[{i}]") for i, turn in enumerate(questions)]
    classes = entry.get("involved_classes")
    if not isinstance(classes, list) or not classes:
        raise EntryError("bad_row", "no involved_classes")
    if (
        not isinstance(answer, list)
        or len(answer) != len(turns)
        or not all(isinstance(t, list) and all(isinstance(c, str) for c in t) for t in answer)
    ):
        raise EntryError("missing_label", f"the ground truth must be {len(turns)} lists of call strings")
    docs = [doc for name in classes for doc in docs_of(name)]
    missed = entry.get("missed_function") or {}
    held: dict[str, list[dict[str, Any]]] = {}
    for turn, names in missed.items():
        if not str(turn).isdigit() or int(turn) >= len(turns) or turns[int(turn)]:
            raise EntryError("bad_row", f"missed_function turn {turn!r} is not an empty turn of the entry")
        held[str(turn)] = []
        for name in names:
            index = next((i for i, doc in enumerate(docs) if doc.get("name") == name), None)
            if index is None:
                raise EntryError("bad_row", f"missed function {name!r} is not among the involved classes' functions")
            held[str(turn)].append(docs.pop(index))
    metadata: dict[str, Any] = {
        "turns": turns,
        "possible_answer": answer,
        "initial_config": entry.get("initial_config") or {},
        "involved_classes": classes,
        "missed_function": {t: to_tools(d, "python", hint=False) for t, d in held.items()},
        "missed_function_docs": held,
        "long_context": "long_context" in category.name or "composite" in category.name,
    }
    if entry.get("excluded_function"):
        metadata["excluded_function"] = entry["excluded_function"]
    return turns[0], metadata, to_tools(docs, "python")


def _category_rows(folder: Path, category: Category, options: BfclOptions, docs_of: _FuncDocs, tally: Tally):
    path, version = data_file(folder, category)
    answers: list[Any] | None = None
    if category.kind in ("ast", "multi_turn"):
        # Aligned by position, as the reference does (a few ids differ between the two files).
        answer_path, _ = data_file(folder, category, answers=True)
        answers = [row.get("ground_truth") if isinstance(row, dict) else None for _, row in _lines(answer_path)]
    count = 0
    for index, (number, entry) in enumerate(_lines(path)):
        if options.limit is not None and count >= options.limit:
            break
        tally.rows_in += 1
        try:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
                raise EntryError("bad_row", "not an object with a string id")
            answer = answers[index] if answers is not None and index < len(answers) else None
            build = _multi_turn if category.kind == "multi_turn" else _single_turn
            prompt, metadata, tools = build(entry, category, answer, docs_of if build is _multi_turn else options)
        except EntryError as exc:
            if options.strict:
                raise ConfigError(f"{path}:{number}: {exc}") from None
            tally.dropped[exc.reason] += 1
            logger.warning("dropped (%s) %s:%d: %s", exc.reason, path, number, exc)
            continue
        count += 1
        meta = {"domain": "bfcl", "source": options.name or f"bfcl_{version}", "uid": entry["id"], "benchmark": "bfcl",
                "category": category.name, "bfcl_version": version, "bfcl_file": path.name, **metadata}  # fmt: skip
        yield {"prompt": prompt, "label": None, "metadata": meta, "tools": tools}
    tally.sources[category.name] = count


def prepare_bfcl(input_dir: str | Path, out_path: str | Path, options: BfclOptions | None = None) -> Tally:
    """Write the rows of the selected BFCL categories to `out_path` (all or nothing).

    Returns:
        The tally; ``tally.sources`` holds the rows written per category.

    Raises:
        ConfigError: `input_dir` is not a BFCL data folder, a selected category's file is missing, an entry is
            bad with ``strict``, or nothing was written.
    """
    options = options or BfclOptions()
    folder = Path(input_dir)
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: not a folder (pass BFCL's data folder, with BFCL_v3_*.json and possible_answer/)"
        )
    categories = select_categories(options.categories)
    for name in categories:  # fail before writing anything when a file is missing
        data_file(folder, CATEGORIES[name])
    tally, docs_of = Tally(), _FuncDocs(folder)
    with atomic_writer(out_path) as out:
        for name in categories:
            for row in _category_rows(folder, CATEGORIES[name], options, docs_of, tally):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                tally.rows_out += 1
        if tally.rows_out == 0:
            raise ConfigError(f"{folder}: no usable BFCL rows ({dict(tally.dropped) or 'the files are empty'})")
    return tally


def prepare_eval_kind(input_path: str | Path, out_path: str | Path, config: Any, options: Any) -> Tally:
    """``prepare-eval --kind bfcl``: `prepare_bfcl` with the data CLI's `EvalOptions` (`config` unused).

    The tally's notes list the rows written per category and the categories unavailable offline.
    """
    bfcl = BfclOptions(options.categories, options.underscore_names, options.name, options.limit, options.strict)
    tally = prepare_bfcl(input_path, out_path, bfcl)
    tally.notes.extend(f"{category}: {rows} rows" for category, rows in tally.sources.items())
    tally.notes.extend(
        f"{category}: unavailable offline, not prepared ({why})" for category, why in UNAVAILABLE.items()
    )
    return tally
