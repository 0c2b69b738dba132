"""Checkpoint conversion helpers, as slime documents them, with paths and model flags taken from a recipe.

- ``hf-to-torch-dist``: ``tools/convert_hf_to_torch_dist.py <model flags> --hf-checkpoint HF --save DIR``
  (defaults: the recipe's ``--hf-checkpoint`` -> its ``--ref-load``; e.g. for ``sft``: Qwen3-4B-Base ->
  ``$BASE_TORCH_DIST``). ``--nproc N`` runs it under ``torchrun`` on N GPUs.
- ``torch-dist-to-hf``: ``tools/convert_torch_dist_to_hf.py --input-dir SAVE/iter_XXXXXXX --output-dir OUT
  --origin-hf-dir HF --vocab-size V`` (defaults: the latest iteration of the recipe's ``--save``, written to
  ``$HF_EXPORT_DIR``, tokenizer/config from its ``--hf-checkpoint``, padding stripped to its vocab size).

So "train an expert, export it to HF, merge" is: launch ``rl_math`` ..., then ``convert torch-dist-to-hf
rl_math`` ..., then ``python -m m2rl_slime.merge`` on the ``$CKPT_DIR/<run>_hf`` directories.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .flags import to_tokens
from .model import Recipe


@dataclass(frozen=True, slots=True)
class ConvertCommand:
    """A conversion command and the environment it needs (PYTHONPATH with Megatron and slime)."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def display(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{prefix} {shlex.join(self.argv)}".strip()


def _env(recipe: Recipe) -> dict[str, str]:
    return {"PYTHONPATH": f"{recipe.variables['MEGATRON_DIR']}:{recipe.variables['SLIME_DIR']}"}


def _flag(recipe: Recipe, group: str, flag: str, what: str) -> str:
    value = recipe.slime.get(group, {}).get(flag)
    if value is None:
        raise ConfigError(f"{recipe.where(f'slime.{group}.{flag}')}: not set; pass {what} explicitly")
    return str(value)


def hf_to_torch_dist(
    recipe: Recipe, hf_checkpoint: str | None = None, save: str | None = None, nproc: int = 1
) -> ConvertCommand:
    """The HF -> Megatron ``torch_dist`` conversion with the recipe's model flags."""
    model = recipe.slime.get("model", {})
    if not model:
        raise ConfigError(f"{recipe.where('slime.model')}: the recipe has no model flags to convert with")
    model_tokens = [
        t for flag, value in model.items() for t in to_tokens(flag, value, recipe.where(f"slime.model.{flag}"))
    ]
    source = hf_checkpoint or _flag(recipe, "ckpt", "hf-checkpoint", "--hf-checkpoint")
    target = save or _flag(recipe, "ckpt", "ref-load", "--save")
    script = f"{recipe.variables['SLIME_DIR']}/tools/convert_hf_to_torch_dist.py"
    launcher = ["python3"] if nproc == 1 else ["torchrun", f"--nproc-per-node={nproc}"]
    return ConvertCommand(
        (*launcher, script, *model_tokens, "--hf-checkpoint", source, "--save", target), _env(recipe)
    )


def latest_iteration(save_dir: str) -> str:
    """The checkpoint directory name Megatron recorded as latest (``iter_0000399`` or ``release``)."""
    marker = Path(save_dir) / "latest_checkpointed_iteration.txt"
    try:
        text = marker.read_text().strip()
    except OSError:
        raise ConfigError(f"{marker} not found: no checkpoint saved yet; pass --iteration N or --input-dir") from None
    if text == "release":
        return "release"
    if not text.isdigit():
        raise ConfigError(f"{marker}: expected an iteration number, got {text!r}")
    return f"iter_{int(text):07d}"


def torch_dist_to_hf(
    recipe: Recipe,
    iteration: int | None = None,
    input_dir: str | None = None,
    output_dir: str | None = None,
    force: bool = False,
) -> ConvertCommand:
    """The Megatron ``torch_dist`` -> HF export of one checkpoint of the recipe's run."""
    if input_dir is None:
        save = _flag(recipe, "ckpt", "save", "--input-dir")
        name = f"iter_{iteration:07d}" if iteration is not None else latest_iteration(save)
        input_dir = f"{save}/{name}"
    if output_dir is None:
        output_dir = recipe.variables.get("HF_EXPORT_DIR")
        if not output_dir:
            raise ConfigError(f"{recipe.where('variables.HF_EXPORT_DIR')}: not declared; pass --output-dir")
    argv = [
        "python3", f"{recipe.variables['SLIME_DIR']}/tools/convert_torch_dist_to_hf.py",
        "--input-dir", input_dir,
        "--output-dir", output_dir,
        "--origin-hf-dir", _flag(recipe, "ckpt", "hf-checkpoint", "the origin HF directory"),
    ]  # fmt: skip
    vocab = recipe.slime.get("model", {}).get("vocab-size")
    if vocab is not None:
        argv += ["--vocab-size", str(vocab)]  # strip Megatron's embedding padding
    if force:
        argv.append("--force")
    return ConvertCommand(tuple(argv), _env(recipe))


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The ``convert`` sub-command's parser."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="direction", required=True)
    to_dist = sub.add_parser("hf-to-torch-dist", help="HF checkpoint -> Megatron torch_dist (e.g. the base model)")
    to_dist.add_argument("--hf-checkpoint", help="HF directory (default: the recipe's --hf-checkpoint)")
    to_dist.add_argument("--save", help="output directory (default: the recipe's --ref-load)")
    to_dist.add_argument("--nproc", type=int, default=1, help="GPUs to convert with (torchrun when > 1)")
    to_hf = sub.add_parser("torch-dist-to-hf", help="a run's Megatron checkpoint -> HF (for merging, teachers)")
    to_hf.add_argument("--iteration", type=int, help="iteration to export (default: the latest saved)")
    to_hf.add_argument("--input-dir", help="checkpoint directory (default: <the recipe's --save>/iter_XXXXXXX)")
    to_hf.add_argument("--output-dir", help="HF output directory (default: $HF_EXPORT_DIR of the recipe)")
    to_hf.add_argument("--force", action="store_true", help="overwrite an existing output directory")
    for sub_parser in (to_dist, to_hf):
        sub_parser.add_argument("recipe", help="recipe name or path (supplies paths and model flags)")
        sub_parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
        sub_parser.add_argument("--dry-run", action="store_true", help="print the command; run nothing")
    return parser


def command_for(opts: argparse.Namespace, recipe: Recipe) -> ConvertCommand:
    """The command for parsed ``convert`` arguments."""
    if opts.direction == "hf-to-torch-dist":
        if opts.nproc < 1:
            raise ConfigError(f"--nproc must be >= 1, got {opts.nproc}")
        return hf_to_torch_dist(recipe, opts.hf_checkpoint, opts.save, opts.nproc)
    return torch_dist_to_hf(recipe, opts.iteration, opts.input_dir, opts.output_dir, opts.force)
