"""`prepare-eval`: local benchmark files (AIME, GPQA-Diamond, IFEval/IFBench) -> prepared rows.

Two input shapes are accepted per row:

- NeMo-Gym rows (``responses_create_params`` present): converted like training rows of the domain,
  with the prompt kept exactly as the benchmark wrote it;
- raw benchmark rows: AIME-style ``problem`` + ``answer`` (or a ``solution`` ending in ``\\boxed{}``)
  get the paper's eval instruction; GPQA rows (``Question``, ``Correct Answer``, ``Incorrect Answer
  1..3``) get the paper's prompt with the four options shuffled by a seeded RNG keyed on the row, so
  regenerating the file gives the same gold positions (M2RL's shuffle was unseeded); IFEval /
  IFBench rows (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``) become a single user message,
  and a row naming an instruction id the IF verifier does not know is dropped (``unknown_instruction``)
  rather than written as a row that can only score 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._dotted import load_dotted
from ..domains import SPECS
from ..errors import ConfigError, UnknownNameError
from .config import PROMPT_PLACEHOLDER, PrepareConfig
from .files import atomic_writer, iter_rows
from .prepare import PrepareOptions, Tally, progress_bar
from .schema import Row, RowError, convert_row, row_uid
from .templates import EVAL_MATH_TEMPLATE, GPQA_TEMPLATE, IDENTITY

logger = logging.getLogger(__name__)


def eval_kinds() -> dict[str, str]:
    """``prepare-eval --kind`` value -> domain: every spec's `DomainSpec.eval_kinds`."""
    return {kind: spec.name for spec in SPECS.values() for kind in spec.eval_kinds}


def __getattr__(name: str) -> Any:
    if name == "EVAL_KINDS":  # a view of the registry, kept for callers of earlier versions
        return eval_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LETTERS = "ABCD"


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """Options of `prepare_eval`."""

    seed: int = 0
    name: str | None = None  # metadata["source"]; default: the input file's stem
    limit: int | None = None
    strict: bool = False
    progress: bool | None = None
    categories: tuple[str, ...] = ("v3",)  # bfcl only: --categories
    underscore_names: bool = False  # bfcl only: dots in tool names -> underscores


def _first_text(raw: Mapping[str, Any], fields: tuple[str, ...], reason: str) -> str:
    for name in fields:
        value = raw.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise RowError(reason, fields[0], f"none of {', '.join(fields)} is a non-empty string")


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}`` (the reward verifiers' linear-time scanner), or None."""
    from ..rewards.answer_extract import last_boxed as scan

    box = scan(text)
    return box.text if box else None


def math_eval_row(raw: Mapping[str, Any], source: str, config: PrepareConfig) -> Row:
    problem = _first_text(raw, ("problem", "Problem", "question", "Question"), "missing_prompt")
    try:
        answer = _first_text(raw, ("answer", "Answer", "expected_answer"), "missing_label")
    except RowError:
        answer = last_boxed(str(raw.get("solution") or "")) or ""
        if not answer:
            raise RowError("missing_label", "answer", "no answer field and no \\boxed{} in solution") from None
    template = config.eval_math_template or EVAL_MATH_TEMPLATE
    prompt = [{"role": "user", "content": template.replace(PROMPT_PLACEHOLDER, problem)}]
    return Row(prompt, answer, "math", {"source": source, "uid": row_uid(raw, prompt)}, [])


def gpqa_eval_row(raw: Mapping[str, Any], source: str, config: PrepareConfig, seed: int) -> Row:
    question = _first_text(raw, ("Question", "question"), "missing_prompt")
    correct = _first_text(raw, ("Correct Answer",), "missing_label")
    wrong = [_first_text(raw, (f"Incorrect Answer {i}",), "bad_options") for i in (1, 2, 3)]
    uid = str(raw.get("Record ID") or hashlib.sha1(question.encode("utf-8")).hexdigest()[:16])
    texts = [correct, *wrong]
    order = list(range(4))
    random.Random(f"m2rl-gpqa/{seed}/{uid}").shuffle(order)
    options = [{letter: texts[k]} for letter, k in zip(_LETTERS, order, strict=True)]
    label = _LETTERS[order.index(0)]
    choices = "\n".join(f"{letter}) {texts[k]}" for letter, k in zip(_LETTERS, order, strict=True))
    template = config.gpqa_template or GPQA_TEMPLATE
    content = template.replace("{question}", question).replace("{choices}", choices)
    metadata = {"source": source, "uid": uid, "valid_letters": _LETTERS, "options": options}
    return Row([{"role": "user", "content": content}], label, "science", metadata, [])


def _known_instructions(row: Row) -> Row:
    from ..rewards.instruction import CHECKERS  # IFEvalG's 54 and IFBench's 58 ids

    unknown = [i for i in row.metadata.get("instruction_id_list", ()) if i not in CHECKERS]
    if unknown:
        raise RowError("unknown_instruction", "instruction_id_list", f"no checker for {', '.join(unknown)}")
    return row


def eval_row(raw: Any, domain: str, source: str, config: PrepareConfig, seed: int) -> Row:
    """One benchmark row -> prepared `Row` (see the module docstring for the accepted shapes)."""
    if not isinstance(raw, Mapping):
        raise RowError("bad_row", "<row>", f"expected a JSON object, got {type(raw).__name__}")
    if domain == "if":
        return _known_instructions(convert_row(raw, domain, source, IDENTITY))
    if "responses_create_params" in raw:
        return convert_row(raw, domain, source, IDENTITY)
    if domain == "math":
        return math_eval_row(raw, source, config)
    if "Correct Answer" in raw:
        return gpqa_eval_row(raw, source, config, seed)
    return convert_row(raw, domain, source, IDENTITY)


def prepare_eval(
    input_path: str | Path,
    out_path: str | Path,
    kind: str,
    config: PrepareConfig | None = None,
    options: EvalOptions | None = None,
) -> Tally:
    """Write the prepared rows of one benchmark file to `out_path` (all or nothing).

    Args:
        input_path: Benchmark file (jsonl or parquet); for ``bfcl``, BFCL's data folder.
        out_path: Output jsonl.
        kind: One of `eval_kinds()` (``aime``, ``gpqa``, ``ifeval``, ``ifbench``, ``math``, ``mcq``, ``if``, ``bfcl``).
        config: Prepare settings (eval templates).
        options: Seed of the GPQA option shuffle, source name, limit, strictness, progress bar.

    Raises:
        UnknownNameError: unknown `kind`.
        ConfigError: unreadable input, a bad row with ``strict``, or no usable row at all.
    """
    kinds = eval_kinds()
    if kind not in kinds:
        raise UnknownNameError("eval kind", kind, kinds)
    config, options = config or PrepareConfig(), options or EvalOptions()
    preparer = dict(SPECS[kinds[kind]].preparers).get(kind)
    if preparer is not None:
        return load_dotted(preparer)(input_path, out_path, config, options)
    domain, source = kinds[kind], options.name or Path(input_path).stem
    tally, seen = Tally(), 0
    bar_options = PrepareOptions(limit=options.limit, progress=options.progress)
    with atomic_writer(out_path) as out, progress_bar(bar_options, f"prepare-eval {kind}") as bar:
        for line_no, raw, error in iter_rows(input_path):
            if options.limit is not None and seen >= options.limit:
                break
            seen += 1
            bar.update(1)
            tally.rows_in += 1
            try:
                if error is not None:
                    raise RowError("invalid_json", "<line>", error)
                row = eval_row(raw, domain, source, config, options.seed)
            except RowError as exc:
                if options.strict:
                    raise ConfigError(f"{input_path}:{line_no}: {exc}") from None
                tally.dropped[exc.reason] += 1
                logger.warning("dropped (%s) %s:%d: %s", exc.reason, input_path, line_no, exc)
                continue
            out.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            tally.rows_out += 1
        if tally.rows_out == 0:
            raise ConfigError(f"{input_path}: no usable {kind} rows ({dict(tally.dropped) or 'file is empty'})")
    tally.sources[source] = tally.rows_out
    return tally
