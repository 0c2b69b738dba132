"""Evaluation directories of scripted models for the self-verification tests, and the metrics the scripted
judge (`behaviour_fakes.judge_reply`) must produce on them, derived from the scripts by the rules of the
analysis (an unparsable verdict is wrong; -1 means correct, an index in range incorrect).

Each trajectory is (benchmark, uid, sample_idx, reward, O, P): the outcome judge answers O (correct,
incorrect, garbage: no box, think: unfinished thinking), the process judge returns P as the index. The
reasoning starts with a decoy ``O:incorrect``: an outcome judge that saw the reasoning would read it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from m2rl_slime.eval.identity import prompt_sha

N_PARAGRAPHS = 4  # three reasoning paragraphs + the answer
QUESTIONS = {"aime24": ("math", "[math] What is 2+3?"), "ifeval": ("if", "[if] Write a haiku without commas.")}

MODELS = {
    "alpha": [
        ("aime24", "a0", 0, 1.0, "correct", "-1"),
        ("aime24", "a0", 1, 0.0, "correct", "1"),
        ("aime24", "a1", 0, 0.0, "incorrect", "99"),
        ("aime24", "a1", 1, 1.0, "garbage", "0"),
        ("ifeval", "f0", 0, 1.0, "correct", "-1"),
        ("ifeval", "f1", 0, 0.0, "think", "x"),
    ],
    "beta": [
        ("aime24", "a0", 0, 1.0, "correct", "-1"),
        ("aime24", "a0", 1, 1.0, "correct", "2"),
        ("aime24", "a1", 0, 1.0, "incorrect", "-1"),
        ("aime24", "a1", 1, 0.0, "incorrect", "3"),
        ("ifeval", "f0", 0, 1.0, "correct", "0"),
        ("ifeval", "f1", 0, 1.0, "correct", "-1"),
    ],
    "gamma": [
        ("aime24", "a0", 0, 0.0, "incorrect", "-1"),
        ("aime24", "a0", 1, 0.0, "correct", "-1"),
        ("aime24", "a1", 0, 0.0, "incorrect", "0"),
        ("aime24", "a1", 1, 0.0, "incorrect", "garbage"),
        ("ifeval", "f0", 0, 0.0, "incorrect", "1"),
        ("ifeval", "f1", 0, 1.0, "garbage", "-1"),
    ],
}
# Samples the analysis must leave out: beyond --max-per-item 2, and not scored yet.
EXTRA = [("aime24", "a0", 2, 1.0), ("aime24", "a2", 0, None)]


def _row(bench: str, uid: str) -> dict:
    domain, text = QUESTIONS[bench]
    return {"prompt": [{"role": "user", "content": f"{text} ({uid})"}], "label": "5",
            "metadata": {"uid": uid, "domain": domain, "benchmark": bench}, "tools": []}  # fmt: skip


def _sample(model: str, bench: str, uid: str, idx: int, reward, o: str, p: str) -> dict:
    row = _row(bench, uid)
    reasoning = f"decoy O:incorrect first\n\nstep P:{p}\n\nstep three"
    content = f"The answer is 5. O:{o}"
    return {"suite": "t", "benchmark": bench, "uid": uid, "sample_idx": idx, "model_id": model,
            "prompt_sha": prompt_sha(row["prompt"], []), "response": f"<think>\n{reasoning}\n</think>\n\n{content}",
            "reasoning": reasoning, "content": content, "reward": reward, "status": "completed"}  # fmt: skip


def build(root: Path) -> dict[str, Path]:
    """One evaluation directory per model (samples.jsonl + run.json) sharing one prepared data dir."""
    data = root / "data"
    data.mkdir(parents=True)
    files = {}
    for bench in QUESTIONS:
        uids = sorted(
            {t[1] for ts in MODELS.values() for t in ts if t[0] == bench} | {e[1] for e in EXTRA if e[0] == bench}
        )
        files[bench] = data / f"{bench}.jsonl"
        files[bench].write_text("".join(json.dumps(_row(bench, u)) + "\n" for u in uids))
    dirs = {}
    for model, trajectories in MODELS.items():
        d = root / model
        d.mkdir()
        samples = [_sample(model, *t) for t in trajectories]
        samples += [_sample(model, b, u, i, r, "correct", "-1") for b, u, i, r in EXTRA]
        (d / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        run = {"suite": "t", "model_id": model, "files": {b: str(f) for b, f in files.items()}}
        (d / "run.json").write_text(json.dumps(run))
        dirs[model] = d
    return dirs


def verdict(mode: str, o: str, p: str) -> str | None:
    if mode == "outcome":
        return o if o in ("correct", "incorrect") else None
    if p == "-1":
        return "correct"
    if p.isdigit() and int(p) < N_PARAGRAPHS:
        return "incorrect"
    return None


def expected(model: str, mode: str, bench: str) -> dict:
    """Accuracy, TPR, TNR, always-correct and unparsable count (per trajectory; verdicts are deterministic)."""
    rows = [t for t in MODELS[model] if t[0] == bench]
    gold = ["correct" if t[3] >= 1.0 else "incorrect" for t in rows]
    said = [verdict(mode, t[4], t[5]) for t in rows]
    pos = [s == "correct" for s, g in zip(said, gold) if g == "correct"]
    neg = [s == "incorrect" for s, g in zip(said, gold) if g == "incorrect"]
    return {
        "accuracy": sum(s == g for s, g in zip(said, gold)) / len(rows),
        "tpr": sum(pos) / len(pos) if pos else None,
        "tnr": sum(neg) / len(neg) if neg else None,
        "always_correct": gold.count("correct") / len(rows),
        "unparsable": said.count(None),
    }


def generation(model: str, bench: str) -> float:
    """Avg@K over every scored sample (the extra ones included)."""
    items = defaultdict(list)
    for t in MODELS[model]:
        if t[0] == bench:
            items[t[1]].append(t[3])
    for b, u, _, r in EXTRA:
        if b == bench and r is not None:
            items[u].append(r)
    return sum(sum(v) / len(v) for v in items.values()) / len(items)
