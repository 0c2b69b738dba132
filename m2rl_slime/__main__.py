"""`python -m m2rl_slime`: the command-line entry points of the package."""

import sys

COMMANDS = {
    "demo": "run the CPU demo of the whole study (python -m m2rl_slime.demo)",
    "launch": "render/run a recipe on a slime cluster (python -m m2rl_slime.launch RECIPE [--dry-run])",
    "data": "prepare the RL blend, eval sets, SFT blend (python -m m2rl_slime.data prepare|prepare-eval|prepare-sft)",
    "rewards": "score a JSONL file of rollouts (python -m m2rl_slime.rewards score FILE)",
    "sandbox": "serve or run the code sandbox (python -m m2rl_slime.sandbox serve|run)",
    "merge": "merge expert checkpoints (python -m m2rl_slime.merge --help)",
    "eval": "evaluate checkpoints with Avg@K, compare them "
    "(python -m m2rl_slime.eval run|collect|score|summarize|compare|suites|bfcl-env)",
    "opd": "start and wait for OPD teachers (python -m m2rl_slime.opd serve-teachers|wait-teachers)",
    "agent": "workplace-assistant environment: serve, score, tools (python -m m2rl_slime.agent)",
    "analyze": "the paper's analyses and figures (python -m m2rl_slime.analyze curves|weights|kl|subsets|gains|...)",
}

if __name__ == "__main__":
    print("usage: python -m m2rl_slime.<command> ...\n")
    for name, text in COMMANDS.items():
        print(f"  {name:<8} {text}")
    sys.exit(0 if len(sys.argv) == 1 or sys.argv[1] in ("-h", "--help") else 2)
