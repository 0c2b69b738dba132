"""`python -m m2rl_slime.demo`: the whole study's machinery on CPU, in about a minute, with what the repo ships.

1. launch: render the mixed multi-task run (`recipes/rl_multi.yaml`) into slime's exact command (dry run);
2. data: prepare the shipped blend sample into per-domain slime prompt files, then draw mixed batches;
3. rewards: score the shipped rollouts of all five domains through the reward router (code runs in the
   embedded sandbox, agent tasks replay against the shipped synthetic workplace database) and check
   each against its expected reward;
4. merge: TIES-merge five tiny random Qwen3 "experts" into their base and load the result in transformers.

Exit code 0 only if every step worked and every rollout got its expected reward.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _banner(step: str) -> None:
    print(f"\n=== {step} " + "=" * max(0, 96 - len(step)), flush=True)


def step_launch() -> int:
    from .launch.cli import main as launch

    _banner("1/4 launch: bash launch/rl_multi.sh --dry-run   (the mixed multi-task run, 1 node)")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = launch(["rl_multi", "--dry-run"])
    lines = buffer.getvalue().splitlines()
    shown = [line for line in lines if not line.startswith("#") or "----" in line][:40]
    print("\n".join(shown))
    if len(lines) > len(shown):
        print(f"... ({len(lines) - len(shown)} more lines: run `bash launch/rl_multi.sh --dry-run` for all)")
    return code


def step_data(work: Path) -> int:
    from .data.cli import main as data

    _banner("2/4 data: prepare the shipped Nemotron-format blend sample, then mix batches")
    out = work / "data"
    code = data(
        ["prepare", "--blend", str(REPO / "examples" / "blend_sample.jsonl"), "--out", str(out), "--no-progress"]
    )
    if code != 0:
        return code
    from .data.mixture import MixtureSampler, mixture_weights

    sizes = {p.stem: sum(1 for _ in p.open()) for p in sorted(out.glob("*.jsonl"))}
    weights = mixture_weights("uniform", sizes)
    sampler = MixtureSampler(sizes, weights, seed=42)
    print(f"uniform mixture over {sizes}: domain counts of 3 batches of 10 prompts (exact per batch):")
    for batch in range(3):
        print(f"  batch {batch}: {dict(sorted(Counter(domain for domain, _ in sampler.draw(10)).items()))}")
    return 0


def step_rewards(work: Path) -> int:
    from .agent.cli import demo_csv_dir
    from .rewards.cli import main as score

    _banner("3/4 rewards: score the shipped rollouts of all five domains through the reward router")
    rollouts = work / "rollouts.jsonl"
    with rollouts.open("w") as out:
        for name in ("rollouts.jsonl", "agent_demo.jsonl"):
            out.write((REPO / "examples" / name).read_text())
    config = work / "m2rl_config.yaml"
    config.write_text(
        json.dumps({"m2rl_reward": {"require_thinking": True}, "m2rl_agent": {"csv_dir": demo_csv_dir()}})
    )
    return score(["score", str(rollouts), "--config", str(config), "--check"])


def _tiny_checkpoint(path: Path, seed: int, base: Path | None = None) -> None:
    import torch

    from .tiny_models import tiny_qwen3

    if base is None:
        model = tiny_qwen3(seed)
    else:  # an "RL expert": the base plus a sparse update on 5% of the weights
        from transformers import Qwen3ForCausalLM

        model = Qwen3ForCausalLM.from_pretrained(base)
        generator = torch.Generator().manual_seed(seed)
        for param in model.parameters():
            mask = torch.rand(param.shape, generator=generator) < 0.05
            param.data = param.data + mask * torch.randn(param.shape, generator=generator) * 0.01
    model.to(torch.bfloat16).save_pretrained(path)


def step_merge(work: Path) -> int:
    from .merge.cli import main as merge

    _banner("4/4 merge: TIES-merge five tiny random Qwen3 experts into their base (streaming, exact)")
    base = work / "ckpt" / "sft"
    _tiny_checkpoint(base, seed=0)
    experts = []
    for i, name in enumerate(("math", "code", "science", "if", "agent"), start=1):
        _tiny_checkpoint(work / "ckpt" / name, seed=i, base=base)
        experts += ["--expert", f"{name}={work / 'ckpt' / name}"]
    out = work / "merged_ties"
    code = merge(
        ["--base", str(base), *experts, "--method", "ties", "--density", "0.2", "--out", str(out), "--no-progress"]
    )
    if code != 0:
        return code
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    logits = model(torch.tensor([[1, 2, 3, 4]])).logits
    manifest = json.loads((out / "merge_manifest.json").read_text())
    print(
        f"merged checkpoint loads in transformers; logits finite: {bool(torch.isfinite(logits).all())}; "
        f"manifest method={manifest.get('method')} params={manifest.get('params')}"
    )
    return 0 if torch.isfinite(logits).all() else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m m2rl_slime.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", metavar="DIR", help="write the demo's files here (default: a temp dir)")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="m2rl-demo-") as tmp:
        work = Path(opts.keep) if opts.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        steps = [
            ("launch", step_launch),
            ("data", lambda: step_data(work)),
            ("rewards", lambda: step_rewards(work)),
            ("merge", lambda: step_merge(work)),
        ]
        failed = [name for name, step in steps if step() != 0]
    print(
        f"\ndemo finished in {time.monotonic() - start:.0f} s: "
        + (f"FAILED steps: {', '.join(failed)}" if failed else "all steps OK")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
