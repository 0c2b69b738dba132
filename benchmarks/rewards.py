"""Reward throughput and latency, side by side with the anchor, on the same inputs in one run.

1. math: our router (warm worker pool, hard deadlines, the extraction rules of docs/rewards_math.md) vs
   `math_verify.parse/verify` called in-process with no timeout protection (the anchor's fastest
   unprotected use), on DAPO-style items in GRPO groups; target >= 1.5x.
2. hostile inputs (repetition loops, thousands of unclosed boxes, 20k-digit boxes and golds, huge or float
   labels, hedge lists): latency of each through the router; target: the slowest <= 0.5 s, far from the
   worker deadline (no kill, no respawn).
3. a mixed batch of 2048 rollouts (math / science / instruction following, responses up to 32k
   characters): wall time to score through the router; target <= 5 s.
4. a pathological math item (`\\boxed{9^{9^{9}}}`, which math-verify never finishes without a kill):
   latency through the router; target <= deadline + 0.5 s, and the pool still serves afterwards.

Prints one JSON object per measurement, then a summary with the throughput ratio next to the slowest
hostile input. Needs no data files. Run: `python benchmarks/rewards.py [--items N] [--workers W]`.
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


def final_line(rng: random.Random, pred: str) -> str:
    """How a policy states its answer: a box, an `Answer:` line, or one with a remark after it."""
    kind = rng.random()
    if kind < 0.45:
        return f"\\boxed{{{pred}}}"
    if kind < 0.9:
        return f"Answer: {pred}"
    return f"Answer: ${pred}$ (since the {rng.choice(WORDS)} checks out)"


def math_items(rng: random.Random, n: int, max_chars: int) -> list[tuple[str, str]]:
    """(gold, response) pairs in GRPO groups: about half the samples of a group answer correctly.

    One group in twenty has two solutions (`a, b`), answered with one box per solution.
    """
    items = []
    while len(items) < n:
        two = rng.random() < 0.05
        gold, same, wrong = random_answer(rng)
        if two:
            a, b = rng.randint(-20, 20), rng.randint(21, 60)
            gold, same, wrong = (
                f"{a}, {b}",
                f"\\boxed{{{b}}} and \\boxed{{{a}}}",
                f"\\boxed{{{a}}} and \\boxed{{{b + 1}}}",
            )
        for _ in range(min(GROUP, n - len(items))):
            pred = rng.choice((gold, same, wrong, wrong))
            body = filler(rng, rng.randint(200, max_chars))
            final = pred if two and pred != gold else final_line(rng, pred)
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


def anchor_math(items: list[tuple[str, str]]) -> tuple[float, int]:
    """math-verify in-process, no timeout protection: parse(boxed gold), parse(final segment), verify.

    Returns (seconds, number judged correct).
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    correct = 0
    start = time.perf_counter()
    for gold, response in items:
        text, _ = final_segment(response, require_thinking=True)
        correct += verify(
            parse("\\boxed{" + gold + "}", config, parsing_timeout=None),
            parse(text, config, parsing_timeout=None),
            timeout_seconds=None,
        )
    return time.perf_counter() - start, correct


def hostile_items() -> list[tuple[str, Item]]:
    """The degenerate outputs and labels that once cost a full deadline (or crashed), by name."""
    abcd = {"valid_letters": "ABCD"}
    digits = "7" * 20_000
    items = [
        (f"math_unclosed_boxes_{n}", Item("math", "</think>" + "\\boxed{1 " * n, "1")) for n in (1000, 4000, 10000)
    ]
    items += [
        (f"science_unclosed_boxes_{n}", Item("science", "</think>" + "\\boxed{A" * n, "A", abcd))
        for n in (4000, 10000)
    ]
    items += [
        ("math_8000_digit_box", Item("math", "</think>\\boxed{" + "8" * 8000 + "}", "8")),
        ("math_20k_digit_box", Item("math", "</think>\\boxed{" + digits + "}", "7")),
        ("math_20k_digit_gold_wrong", Item("math", "</think>\\boxed{7}", digits)),
        ("math_20k_digit_gold_right", Item("math", "</think>Answer: " + digits, digits)),
        ("math_label_10_pow_5000", Item("math", "</think>\\boxed{1" + "0" * 5000 + "}", 10**5000)),
        ("math_label_10_pow_200000", Item("math", "</think>\\boxed{1}", 10**200_000)),
        ("math_float_label_1e-05", Item("math", "</think>\\boxed{0.00001}", 1e-05)),
        ("math_float_label_1e20", Item("math", "</think>\\boxed{10^{20}}", 1e20)),
        ("math_answer_lines_10000", Item("math", "</think>" + "Answer: 42\n" * 10_000, "42")),
        ("math_boxes_joined_10000", Item("math", "</think>" + " and ".join(["\\boxed{1}"] * 10_000), "1, 2")),
        ("math_open_braces_70k", Item("math", "</think>\\boxed{" + "{" * 70_000, "1")),
        ("math_nested_parens", Item("math", "</think>\\boxed{" + "(" * 40 + "1" + ")" * 40 + "}", "1")),
        ("math_end_markers_10000", Item("math", "</think>\\boxed{1}" + "<|im_end|>" * 10_000, "1")),
        ("science_hedge_list_10000", Item("science", "</think>Answer: " + "A, B, " * 5000, "A", abcd)),
        ("science_answer_spaces", Item("science", "</think>Answer" + " " * 200_000 + "x", "A", abcd)),
    ]
    return items


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
    anchor_s, anchor_correct = anchor_math(items)
    start = time.perf_counter()
    ours = router.score_many(Item("math", r, g) for g, r in items)
    ours_s = time.perf_counter() - start
    ratio = round(anchor_s / ours_s, 2)
    emit(
        benchmark="math_throughput",
        items=len(items),
        ours_per_s=round(len(items) / ours_s, 1),
        anchor="math_verify in-process, no timeout",
        anchor_per_s=round(len(items) / anchor_s, 1),
        ratio=ratio,
        target=">= 1.5",
        ours_correct=int(sum(r.score for r in ours)),
        anchor_correct=int(anchor_correct),
    )

    latencies = {}
    for name, item in hostile_items():
        start = time.perf_counter()
        result = router.score(item)
        latencies[name] = time.perf_counter() - start
        emit(benchmark="hostile_input", name=name, reason=result.reason.value, latency_s=round(latencies[name], 4))
    slowest = max(latencies, key=latencies.get)
    emit(
        benchmark="hostile_inputs",
        inputs=len(latencies),
        slowest=slowest,
        slowest_s=round(latencies[slowest], 4),
        target_s=0.5,
        pool_stats=dict(router.pool.stats),
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
    emit(
        benchmark="summary",
        math_ratio=ratio,
        math_target=">= 1.5",
        slowest_hostile=slowest,
        slowest_hostile_s=round(latencies[slowest], 4),
        hostile_target_s=0.5,
    )


if __name__ == "__main__":
    main()
