"""Reward throughput and latency, side by side with the anchor, on the same inputs in one run.

1. math: our router (warm worker pool, hard deadlines) vs `math_verify.parse/verify` called in-process
   with no timeout protection (the anchor's fastest unprotected use); target >= 1.0x.
2. a mixed batch of 2048 rollouts (math / science / instruction following, responses up to 32k
   characters): wall time to score through the router; target <= 5 s.
3. a pathological math item (`\\boxed{9^{9^{9}}}`, which math-verify never finishes without a kill):
   latency through the router; target <= deadline + 0.5 s, and the pool still serves afterwards.

Prints one JSON object per measurement. Run: `python benchmarks/rewards.py [--items N] [--workers W]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time

from m2rl_slime.rewards.config import RewardConfig
from m2rl_slime.rewards.router import Item, Router
from m2rl_slime.rewards.thinking import final_segment

WORDS = ("we", "consider", "the", "sum", "so", "then", "therefore", "check", "value", "term", "since", "factor")
GROUP = 16  # GRPO group size: the samples of one prompt share its gold answer


def random_answer(rng: random.Random) -> tuple[str, str, str]:
    """(gold, an equivalent form, a wrong answer) with the mix of a DAPO/Skywork-like math set."""
    kind = rng.random()
    if kind < 0.6:
        n = rng.randint(-50, 100_000)
        return str(n), str(n), str(n + rng.randint(1, 9))
    if kind < 0.75:
        p, q = rng.randint(1, 97), rng.randint(2, 97)
        return f"\\frac{{{p}}}{{{q}}}", f"\\frac{{{2 * p}}}{{{2 * q}}}", f"\\frac{{{p + 1}}}{{{q}}}"
    if kind < 0.85:
        a, b = rng.randint(2, 30), rng.randint(2, 9)
        return f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", f"{a + 1}\\sqrt{{{b}}}"
    if kind < 0.95:
        a, b = rng.randint(-9, 9), rng.randint(10, 30)
        return f"({a}, {b})", f"({a},{b})", f"({a}, {b + 1})"
    a, b = rng.randint(2, 9), rng.randint(1, 20)
    return f"{a}x+{b}", f"{b}+{a}x", f"{a}x-{b}"


IF_CASES = [
    ("punctuation:no_comma", {}, "This text has no commas at all.", "This one, however, has some."),
    ("change_case:english_lowercase", {}, "all lowercase words here.", "Some Capitals Here."),
    ("detectable_format:title", {}, "<<A Title>>\nbody text", "no title here"),
    ("keywords:existence", {"keywords": ["banana"]}, "I like banana bread.", "I like bread."),
    ("length_constraints:number_words", {"num_words": 50, "relation": "at least"}, None, "too short"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\nP.S. bye", "Hello."),
    ("startend:end_checker", {"end_phrase": "Is there anything else?"}, "Done. Is there anything else?", "Done."),
]


def filler(rng: random.Random, chars: int) -> str:
    out, size = [], 0
    while size < chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def math_items(rng: random.Random, n: int, max_chars: int) -> list[tuple[str, str]]:
    """(gold, response) pairs in GRPO groups: about half the samples of a group answer correctly."""
    items = []
    while len(items) < n:
        gold, same, wrong = random_answer(rng)
        for _ in range(min(GROUP, n - len(items))):
            pred = rng.choice((gold, same, wrong, wrong))
            body = filler(rng, rng.randint(200, max_chars))
            final = f"\\boxed{{{pred}}}" if rng.random() < 0.5 else f"Answer: {pred}"
            items.append((gold, f"<think>{body}</think>{body[:300]}\n{final}"))
    return items


def mixed_items(rng: random.Random, n: int) -> list[Item]:
    items = []
    for gold, response in math_items(rng, int(n * 0.4), 32_000):
        items.append(Item("math", response, gold))
    for i in range(int(n * 0.3)):
        gold = "ABCD"[i % 4]
        answer = gold if i % 3 else "ABCD"[(i + 1) % 4]
        body = filler(rng, rng.randint(200, 32_000))
        items.append(Item("science", f"<think>{body}</think>\nAnswer: {answer}", gold, {"valid_letters": "ABCD"}))
    while len(items) < n:
        instruction, kwargs, good, bad = IF_CASES[len(items) % len(IF_CASES)]
        text = good if (len(items) % 2 and good) else bad
        body = filler(rng, rng.randint(200, 32_000))
        if text is None:
            text = filler(rng, 400)
        metadata = {"instruction_id_list": [instruction], "kwargs": [kwargs]}
        items.append(Item("if", f"<think>{body}</think>{text}", None, metadata))
    rng.shuffle(items)
    return items


def anchor_math(items: list[tuple[str, str]]) -> float:
    """math-verify in-process, no timeout protection: parse(boxed gold), parse(final segment), verify."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    start = time.perf_counter()
    for gold, response in items:
        text, _ = final_segment(response, require_thinking=True)
        verify(
            parse("\\boxed{" + gold + "}", config, parsing_timeout=None),
            parse(text, config, parsing_timeout=None),
            timeout_seconds=None,
        )
    return time.perf_counter() - start


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000, help="math items for the throughput comparison")
    parser.add_argument("--workers", type=int, default=0, help="pool workers (0 = min(8, CPUs))")
    parser.add_argument("--deadline", type=float, default=3.0, help="hard per-item deadline in seconds")
    opts = parser.parse_args()
    rng = random.Random(0)
    router = Router(RewardConfig(workers=opts.workers, deadline_s=opts.deadline))
    emit(benchmark="host", cpus=os.cpu_count(), python=platform.python_version(), workers=router.config.pool_workers)

    router.score_many([Item("math", "</think>\\boxed{1}", "1")] * (2 * router.config.pool_workers))  # warm pool
    items = math_items(rng, opts.items, 8_000)
    anchor_s = anchor_math(items)
    start = time.perf_counter()
    ours = router.score_many(Item("math", r, g) for g, r in items)
    ours_s = time.perf_counter() - start
    emit(
        benchmark="math_throughput",
        items=len(items),
        ours_per_s=round(len(items) / ours_s, 1),
        anchor="math_verify in-process, no timeout",
        anchor_per_s=round(len(items) / anchor_s, 1),
        ratio=round(anchor_s / ours_s, 2),
        target=">= 1.0",
        ours_correct=sum(r.score for r in ours),
    )

    batch = mixed_items(rng, 2048)
    start = time.perf_counter()
    results = router.score_many(batch)
    wall = time.perf_counter() - start
    by_domain = {d: sum(1 for i in batch if i.domain == d) for d in ("math", "science", "if")}
    emit(
        benchmark="mixed_batch",
        rollouts=len(batch),
        domains=by_domain,
        max_chars=max(len(i.response) for i in batch),
        wall_s=round(wall, 2),
        target_s=5.0,
        mean_reward=round(sum(r.score for r in results) / len(results), 3),
    )

    start = time.perf_counter()
    bad = router.score(Item("math", "</think>\\boxed{9^{9^{9}}}", "3"))
    latency = time.perf_counter() - start
    after = router.score(Item("math", "</think>\\boxed{3}", "3"))
    emit(
        benchmark="pathological_latency",
        reason=bad.reason.value,
        latency_s=round(latency, 2),
        deadline_s=opts.deadline,
        target_s=opts.deadline + 0.5,
        pool_serves_after=after.score == 1.0,
        pool_stats=dict(router.pool.stats),
    )


if __name__ == "__main__":
    main()
