"""`SlimeDataArgs` names every slime argument the data hooks read (checked on their source), and builds the
namespace the data source is constructed from outside slime."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import m2rl_slime.data as data_package
from m2rl_slime.data.slime_args import SlimeDataArgs

DATA = Path(data_package.__file__).parent


def _read_attributes(path: Path) -> set[str]:
    """Names read as ``args.<name>``, ``self.args.<name>`` or ``getattr(args, "<name>", ...)``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "args") or (
                isinstance(base, ast.Attribute) and base.attr == "args"
            ):
                names.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            is_args = (isinstance(target, ast.Name) and target.id == "args") or (
                isinstance(target, ast.Attribute) and target.attr == "args"
            )
            if is_args and isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
    return names


def test_every_argument_the_data_hooks_read_is_a_field():
    fields = {f.name for f in dataclasses.fields(SlimeDataArgs)}
    read = _read_attributes(DATA / "slime_hooks.py") | (
        _read_attributes(DATA / "curriculum.py") - {"processed_group_count"}
    )
    assert "hf_checkpoint" in read and "rollout_all_samples_process_path" in read  # the scan sees both forms
    assert read <= fields, sorted(read - fields)


def test_namespace_copies_mappings_and_takes_extras():
    data = {"prompt_files": {"math": "m.jsonl"}}
    args = SlimeDataArgs("tok", data, n_samples_per_prompt=4).namespace(custom_flag=1)
    assert (args.hf_checkpoint, args.input_key, args.label_key, args.n_samples_per_prompt) == (
        "tok",
        "prompt",
        "label",
        4,
    )
    assert args.m2rl_data == data and args.m2rl_data is not data and args.custom_flag == 1
    assert args.rollout_seed == 42 and args.rollout_global_dataset and not args.rollout_shuffle  # slime's defaults
