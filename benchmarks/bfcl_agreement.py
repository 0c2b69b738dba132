"""BFCL v3: our scorer vs bfcl-eval's, for `eval_agreement.py --only bfcl` (see that script for the command).

- **AST** (every single-turn row of the data): for each possible answer, the ground truth rendered as a Qwen3
  response plus the perturbations of `bfcl_cases.cases` go through our verifier and through bfcl-eval's
  Qwen FC decoder + AST checker (`bfcl_reference.py`, in the bfcl-env venv); agreement is counted per
  category and per perturbation, every disagreement listed. The reference's verdicts on the hand-checked
  table of the tests are reported too.
- **Literals**: random Java/JavaScript literals through both converters; **decoding**: multi-turn call
  strings from both decoders.
- **Multi-turn**: every ground-truth trajectory is replayed through our episode driver (a scripted model
  that makes the expected calls as JSON tool calls) and the bridge (bfcl-eval's API classes and checker),
  then again with the last expected call of the episode left out.
- **Throughput**: one full AST pass (every single-turn row's ground truth) in-process (CPU seconds), through
  the reward router's pool with 2 workers (wall seconds), and bfcl-eval's decode + check on the same
  responses; **hostile inputs**: CPU seconds of ours and the reference's (killed after ``--bfcl-timeout``).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bfcl_cases import cases, literal_cases

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "bfcl_reference.py"
HAND_CASES = ROOT / "tests" / "eval" / "data" / "bfcl_ast_cases.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bfcl-data", type=Path, help="BFCL data folder, or the nvidia-bfcl 26.3 / bfcl-eval wheel")
    parser.add_argument("--bfcl-env", type=Path, default=Path(tempfile.gettempdir()) / "m2rl-bfcl-env",
                        help="bfcl-eval venv (made with bfcl-env if missing; default: in the temp folder)")  # fmt: skip
    parser.add_argument("--bfcl-literals", type=int, default=20000, help="random literals per language")
    parser.add_argument(
        "--bfcl-timeout", type=float, default=20.0, help="seconds the reference gets per hostile input"
    )


def _data_folder(path: Path, scratch: Path) -> Path:
    if path.is_file():
        with zipfile.ZipFile(path) as wheel:
            wheel.extractall(scratch / "wheel")
        for candidate in (scratch / "wheel" / "bfcl" / "data", scratch / "wheel" / "bfcl_eval" / "data"):
            if candidate.is_dir():
                return candidate
        sys.exit(f"--bfcl-data {path}: no bfcl/data or bfcl_eval/data folder in the wheel")
    return path


def _reference(python: Path, requests: list[dict], scratch: Path, name: str) -> tuple[list[dict], float]:
    path = scratch / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run([str(python), str(REFERENCE), str(path)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bfcl reference failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines()], seconds


def _request(row: dict, response: str) -> dict:
    from m2rl_slime.eval.bfcl.categories import CATEGORIES

    meta, category = row["metadata"], CATEGORIES[row["metadata"]["category"]]
    return {"op": "ast", "kind": category.kind, "category": category.name, "language": category.language,
            "functions": meta["functions"], "possible": meta.get("possible_answer"), "response": response}  # fmt: skip


def _ast(rows: list[dict], python: Path, scratch: Path) -> dict:
    from m2rl_slime.eval.bfcl.verifier import verify

    labelled = [(row, label, response) for row in rows for label, response in cases(row)]
    ours = [verify(response, None, row["metadata"]).score == 1.0 for row, _, response in labelled]
    theirs, _ = _reference(python, [_request(row, response) for row, _, response in labelled], scratch, "ast")
    per_category: dict = collections.defaultdict(collections.Counter)
    per_case: dict = collections.defaultdict(collections.Counter)
    disagreements = []
    for (row, label, response), mine, ref in zip(labelled, ours, theirs):
        category = row["metadata"]["category"]
        agree = mine == ref["valid"]
        per_category[category]["n"] += 1
        per_category[category]["agree"] += agree
        per_category[category]["reference_correct"] += ref["valid"] is True
        per_case[label]["n"] += 1
        per_case[label]["agree"] += agree
        per_case[label]["reference_correct"] += ref["valid"] is True
        if not agree:
            disagreements.append({"uid": row["metadata"]["uid"], "case": label, "ours": mine, "reference": ref})
    return {"per_category": {k: dict(v) for k, v in per_category.items()},
            "per_case": {k: dict(v) for k, v in sorted(per_case.items())}, "disagreements": disagreements}  # fmt: skip


def _hand_cases(python: Path, scratch: Path) -> dict:
    table = [json.loads(line) for line in HAND_CASES.read_text(encoding="utf-8").splitlines()]
    rows = [{"metadata": {"category": c["category"], "functions": c["functions"],
                          **({"possible_answer": c["possible_answer"]} if c["possible_answer"] else {})}}
            for c in table]  # fmt: skip
    theirs, _ = _reference(python, [_request(r, c["response"]) for r, c in zip(rows, table)], scratch, "hand")
    differ = [{"id": c["id"], "expected": c["expected_score"] == 1.0, "reference": t}
              for c, t in zip(table, theirs) if t["valid"] is not (c["expected_score"] == 1.0)]  # fmt: skip
    return {"n": len(table), "reference_matches_expected": len(table) - len(differ), "reference_differs": differ}


def _literals(python: Path, scratch: Path, n: int) -> dict:
    from m2rl_slime.eval.bfcl import java_literals, js_literals

    requests = literal_cases(random.Random(0), n)
    theirs, _ = _reference(python, requests, scratch, "literals")
    counts: dict = collections.defaultdict(collections.Counter)
    examples = []
    for request, ref in zip(requests, theirs):
        module = java_literals if request["op"] == "java" else js_literals
        args = (request["value"], request["type"]) + ((request["nested"],) if request["nested"] else ())
        try:
            mine = repr(module.convert(*args))
        except Exception as exc:
            mine = f"raise {type(exc).__name__}"
        agree = mine == ref["value"] or (mine.startswith("raise") and ref["value"].startswith("raise"))
        counts[request["op"]]["n"] += 1
        counts[request["op"]]["agree"] += agree
        counts[request["op"]]["converted"] += not ref["value"].startswith(("raise", "'", '"'))
        if not agree and len(examples) < 20:
            examples.append({**request, "ours": mine, "reference": ref["value"]})
    return {"counts": {k: dict(v) for k, v in counts.items()}, "disagreements": examples}


def _decoding(rows: list[dict], python: Path, scratch: Path) -> dict:
    from m2rl_slime.eval.bfcl.calls import DecodeError, answer_text, decode_execute

    responses = [response for row in rows[::7] for _, response in cases(row)]
    theirs, _ = _reference(python, [{"op": "execute", "response": r} for r in responses], scratch, "execute")
    agree = 0
    for response, ref in zip(responses, theirs):
        try:
            mine = decode_execute(answer_text(response))
        except DecodeError:
            mine = None
        agree += mine == ref["calls"]
    return {"n": len(responses), "agree": agree}


def _scripted_model(row: dict, drop_last: bool):
    """A model that makes each turn's expected calls in one step (positional arguments named from the docs)."""
    meta = row["metadata"]
    docs = {t["function"]["name"]: t["function"] for t in row["tools"]}
    docs.update({t["function"]["name"]: t["function"] for held in meta["missed_function"].values() for t in held})
    truth = [list(turn) for turn in meta["possible_answer"]]
    if drop_last:
        last = max(i for i, turn in enumerate(truth) if turn)
        truth[last] = truth[last][:-1]
    state = {"users": 0, "turn": -1, "step": 0}

    def as_tool_call(text: str) -> dict:
        node = ast.parse(text, mode="eval").body
        names = list(docs[node.func.id]["parameters"]["properties"])
        arguments = {names[i]: ast.literal_eval(a) for i, a in enumerate(node.args)}
        arguments.update({k.arg: ast.literal_eval(k.value) for k in node.keywords})
        return {"type": "function", "function": {"name": node.func.id, "arguments": json.dumps(arguments)}}

    async def chat(messages, tools):
        users = sum(m["role"] == "user" for m in messages)
        if users != state["users"]:
            state.update(users=users, turn=state["turn"] + 1, step=0)
        state["step"] += 1
        calls = truth[state["turn"]] if state["step"] == 1 else []
        if calls:
            return {"role": "assistant", "content": "", "tool_calls": [as_tool_call(c) for c in calls]}
        return {"role": "assistant", "content": "Done."}

    return chat


def _multi_turn(rows: list[dict], env: Path) -> dict:
    from m2rl_slime.eval.bfcl.bridge import Bridge
    from m2rl_slime.eval.bfcl.episode import run_episode

    async def replay():
        counts: dict = collections.defaultdict(collections.Counter)
        failures = []
        start = time.perf_counter()
        async with Bridge(env) as bridge:
            for row in rows:
                category = row["metadata"]["category"]
                for drop_last in (False, True):
                    record = await run_episode(_scripted_model(row, drop_last), row, bridge)
                    valid = record["result"].score == 1.0
                    counts[category]["perturbed_valid" if drop_last else "truth_valid"] += valid
                    if not drop_last and not valid:
                        failures.append({"uid": row["metadata"]["uid"], **record["result"].details})
                counts[category]["n"] += 1
            return counts, failures, bridge.info, time.perf_counter() - start

    counts, failures, info, seconds = asyncio.run(replay())
    return {"per_category": {k: dict(v) for k, v in counts.items()}, "truth_failures": failures[:20],
            "bridge": info, "wall_seconds": round(seconds, 1)}  # fmt: skip


def _throughput(rows: list[dict], python: Path, scratch: Path) -> dict:
    from m2rl_slime.eval.bfcl.verifier import verify
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.router import Item, Router

    pairs = [(row, cases(row)[0][1]) for row in rows]
    start = time.process_time()
    for row, response in pairs:
        verify(response, None, row["metadata"])
    cpu = time.process_time() - start
    router = Router(RewardConfig(workers=2, require_thinking=False))
    items = [Item("bfcl", response, None, row["metadata"]) for row, response in pairs]
    router.score_many(items[:4])
    start = time.perf_counter()
    results = router.score_many(items)
    wall = time.perf_counter() - start
    router.pool.close()
    _, reference_wall = _reference(python, [_request(row, response) for row, response in pairs], scratch, "pass")
    return {"responses": len(pairs), "ours_cpu_seconds_in_process": round(cpu, 2),
            "ours_pool_wall_seconds_2_workers": round(wall, 2), "reference_wall_seconds_one_process": round(reference_wall, 2),
            "ours_correct": sum(r.score == 1.0 for r in results), "cpus": os.cpu_count()}  # fmt: skip


def _hostile(python: Path, scratch: Path, timeout: float) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "eval"))
    import test_bfcl_ast as table  # the hostile builders of the linear-time test

    from m2rl_slime.eval.bfcl.verifier import verify

    out = {}
    for name, build in sorted(table.HOSTILE.items()):
        is_js = name.startswith("js_")
        fn = table.JS if is_js else table.JAVA
        meta = {"category": "javascript" if is_js else "java", "functions": [fn],
                "possible_answer": [{fn["name"]: {"a": [["x"]], "b": [[1], ""], "m": [{}, ""], "d": [{}, ""]}}]}  # fmt: skip
        response = build(20_000)
        start = time.process_time()
        verify(response, None, meta)
        ours = time.process_time() - start
        path = scratch / f"hostile_{name}.jsonl"
        path.write_text(json.dumps(_request({"metadata": meta}, response)) + "\n", encoding="utf-8")
        start = time.perf_counter()
        try:
            subprocess.run([str(python), str(REFERENCE), str(path)], capture_output=True, timeout=timeout, check=True)
            reference = round(time.perf_counter() - start, 2)
        except subprocess.TimeoutExpired:
            reference = f">{timeout:g}"
        out[name] = {"ours_cpu_seconds": round(ours, 4), "reference_wall_seconds": reference}
    return out


def bfcl(opts: argparse.Namespace) -> dict:
    from m2rl_slime.eval.bfcl.bridge import env_python
    from m2rl_slime.eval.bfcl.categories import CATEGORIES
    from m2rl_slime.eval.bfcl.env import create_env
    from m2rl_slime.eval.bfcl.prepare import BfclOptions, prepare_bfcl

    if opts.bfcl_data is None:
        sys.exit("--only bfcl needs --bfcl-data (the nvidia-bfcl 26.3 wheel or a BFCL data folder)")
    scratch = Path(tempfile.mkdtemp(prefix="m2rl-bfcl-agree-"))
    folder = _data_folder(opts.bfcl_data, scratch)
    record = create_env(opts.bfcl_env)
    python = env_python(opts.bfcl_env)
    start = time.perf_counter()
    tally = prepare_bfcl(folder, scratch / "bfcl.jsonl", BfclOptions())
    prepare_seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in (scratch / "bfcl.jsonl").read_text(encoding="utf-8").splitlines()]
    single = [r for r in rows if CATEGORIES[r["metadata"]["category"]].kind != "multi_turn"]
    multi = [r for r in rows if CATEGORIES[r["metadata"]["category"]].kind == "multi_turn"]
    return {
        "benchmark": "bfcl", "data": str(opts.bfcl_data), "bfcl_version": rows[0]["metadata"]["bfcl_version"],
        "reference": record["bfcl_eval"], "rows": dict(tally.sources), "prepare_seconds": round(prepare_seconds, 2),
        "ast": _ast(single, python, scratch), "hand_checked": _hand_cases(python, scratch),
        "literals": _literals(python, scratch, opts.bfcl_literals), "decoding": _decoding(single, python, scratch),
        "multi_turn": _multi_turn(multi, opts.bfcl_env), "throughput": _throughput(single, python, scratch),
        "hostile": _hostile(python, scratch, opts.bfcl_timeout),
    }  # fmt: skip


def print_bfcl(report: dict) -> None:
    print(f"BFCL {report['bfcl_version']} data from {report['data']}; reference {report['reference']}")
    print(f"prepared {sum(report['rows'].values())} rows in {report['prepare_seconds']} s")
    print("\nAST agreement per category: responses, agree, reference-correct")
    for name, c in report["ast"]["per_category"].items():
        print(f"  {name:<24} {c['n']:>6} {c['agree']:>6} {c['reference_correct']:>6}")
    print("AST agreement per response kind: responses, agree, reference-correct")
    for name, c in report["ast"]["per_case"].items():
        print(f"  {name:<24} {c['n']:>6} {c['agree']:>6} {c['reference_correct']:>6}")
    print(f"disagreements: {len(report['ast']['disagreements'])}")
    for d in report["ast"]["disagreements"][:30]:
        print("  ", json.dumps(d))
    hand = report["hand_checked"]
    print(f"hand-checked table: the reference gives the expected verdict on {hand['reference_matches_expected']}/"
          f"{hand['n']}; differs: {json.dumps(hand['reference_differs'])}")  # fmt: skip
    print("literals:", json.dumps(report["literals"]["counts"]), "disagreements:", report["literals"]["disagreements"])
    print(f"multi-turn call strings: {report['decoding']['agree']}/{report['decoding']['n']} responses decode alike")
    mt = report["multi_turn"]
    print(f"multi-turn replay through the bridge ({mt['bridge']}, {mt['wall_seconds']} s): n, truth valid, "
          "last call dropped still valid")  # fmt: skip
    for name, c in mt["per_category"].items():
        print(f"  {name:<24} {c['n']:>4} {c.get('truth_valid', 0):>4} {c.get('perturbed_valid', 0):>4}")
    print("throughput:", json.dumps(report["throughput"]))
    print("hostile inputs (20k chars):", json.dumps(report["hostile"]))
