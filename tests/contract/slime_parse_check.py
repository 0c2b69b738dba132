"""Parse a slime ``train.py`` command line with slime's own argument parsing, on CPU, and report ignored flags.

slime hands ``sys.argv`` to several argparse parsers (its own and Megatron's), each of which keeps what it
does not know for the next one, so a misspelt flag is dropped without a word. A flag that *every* parse
left over is unknown: this prints ``UNKNOWN FLAGS: ...`` and exits 1, else ``PARSED OK: N tokens``.
Megatron's validation (which touches CUDA) is skipped; slime's own checks run.

    python tests/contract/slime_parse_check.py [--fake-missing-paths] ARGS_FILE   # or - for stdin

ARGS_FILE holds the shell-quoted argv (a leading ``train.py`` is dropped). ``--fake-missing-paths`` points
path flags whose target does not exist here (checkpoints, prompt data, config files) at small stand-ins in
a temporary directory, so that a command rendered for a cluster can be checked on a laptop. Run it where
slime and Megatron-LM import (tests/contract/test_recipes_parse.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile

_DIRECTORIES = ("--load", "--ref-load", "--save", "--save-hf", "--opd-teacher-load")
# Qwen3-4B's config.json, as the recipes' model flags say: slime reads it from the HF checkpoint and checks
# it against those flags. Also used by rollout_harness.py.
QWEN3_4B_HF_CONFIG = {
    "model_type": "qwen3",
    "architectures": ["Qwen3ForCausalLM"],
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "rope_theta": 1000000,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 40960,
    "tie_word_embeddings": True,
}


class _StandIns:
    """Files and directories that replace the missing paths of one command line."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="slime-parse-")
        self.prompts = self._write(
            "prompts.jsonl", json.dumps({"prompt": "1+1?", "label": "2", "metadata": {}}) + "\n"
        )

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.root, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def for_flag(self, flag: str) -> str | None:
        """The stand-in for the value of `flag`, or None when the flag takes no path."""
        if flag == "--hf-checkpoint":
            path = os.path.join(self.root, "hf")
            os.makedirs(path, exist_ok=True)
            self._write(os.path.join("hf", "config.json"), json.dumps(QWEN3_4B_HF_CONFIG))
            return path
        if flag in _DIRECTORIES:
            return tempfile.mkdtemp(dir=self.root)
        if flag == "--prompt-data":
            return self.prompts
        if flag == "--eval-config":
            return self._write("eval.yaml", f"eval:\n  datasets:\n    - name: tiny\n      path: {self.prompts}\n")
        if flag in ("--custom-config-path", "--sglang-config"):
            return self._write(flag.strip("-") + ".yaml", "{}\n")
        return None


def fake_missing_paths(argv: list[str]) -> list[str]:
    """`argv` with every missing path value of a path flag replaced by a stand-in."""
    stand_ins, out, i = _StandIns(), [], 0
    while i < len(argv):
        flag = argv[i]
        out.append(flag)
        i += 1
        if flag == "--eval-prompt-data":  # NAME PATH [NAME PATH ...]
            values = []
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            out += [v if k % 2 == 0 or os.path.exists(v) else stand_ins.prompts for k, v in enumerate(values)]
            continue
        if i < len(argv) and not argv[i].startswith("--") and not os.path.exists(argv[i]):
            stand_in = stand_ins.for_flag(flag)
            if stand_in is not None:
                out.append(stand_in)
                i += 1
    return out


def unknown_flags(argv: list[str]) -> set[str]:
    """Parse `argv` as slime's train.py does; return the flags that every parse of sys.argv left over."""
    leftovers: list[set[str]] = []
    parse_known = argparse.ArgumentParser.parse_known_args

    def recording(self, args=None, namespace=None):
        namespace, rest = parse_known(self, args, namespace)
        if args is None:  # a parse of sys.argv (slime also parses private lists)
            leftovers.append({token.split("=", 1)[0] for token in rest if token.startswith("--")})
        return namespace, rest

    argparse.ArgumentParser.parse_known_args = recording
    try:
        import slime.backends.megatron_utils.arguments as megatron_arguments
        import slime.utils.arguments as slime_arguments

        megatron_arguments.validate_args = lambda args: None  # CUDA-dependent checks
        sys.argv = ["train.py", *argv]
        slime_arguments.parse_args()
    finally:
        argparse.ArgumentParser.parse_known_args = parse_known
    return set.intersection(*leftovers) if leftovers else set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake-missing-paths", action="store_true", help="replace missing path values")
    parser.add_argument("args_file", help="file with the argv after train.py (- for stdin)")
    opts = parser.parse_args()
    with sys.stdin if opts.args_file == "-" else open(opts.args_file, encoding="utf-8") as fh:
        argv = shlex.split(fh.read())
    if argv and argv[0].endswith("train.py"):
        argv = argv[1:]
    if opts.fake_missing_paths:
        argv = fake_missing_paths(argv)
    unknown = unknown_flags(argv)
    if unknown:
        print("UNKNOWN FLAGS:", " ".join(sorted(unknown)))
        sys.exit(1)
    print("PARSED OK:", len(argv), "tokens")


if __name__ == "__main__":
    main()
