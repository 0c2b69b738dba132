"""Pins `m2rl_slime.data` against a real slime: prepared rows load in slime's `Dataset`, and
`MultiDomainDataSource` / `curriculum.observe` meet slime's data-source and hook contracts.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from argparse import Namespace
from collections import Counter
from pathlib import Path

import pytest

from m2rl_slime.data.prepare import prepare_blend
from m2rl_slime.data.slime_args import SlimeDataArgs

pytestmark = pytest.mark.contract

try:
    from slime.utils.data import Dataset
    from slime.utils.misc import load_function
    from slime.utils.types import Sample
except Exception as exc:  # ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

EXAMPLES = {
    "nemo_gym_examples/math_with_judge.jsonl": "dapo17k",
    "nemo_gym_examples/mcqa.jsonl": "stem_mcqa",
    "nemo_gym_examples/instruction_following.jsonl": "instruction_following",
    "nemo_gym_examples/code_gen.jsonl": None,
    "workplace_assistant/example.jsonl": None,
}
DOMAINS = ("math", "science", "if", "code", "agent")


@pytest.fixture(scope="module")
def tokenizer_dir(tiny_tokenizer) -> Path:
    return tiny_tokenizer


@pytest.fixture(scope="module")
def prepared(example_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    inputs = [str(example_data / rel) + (f"::{src}" if src else "") for rel, src in EXAMPLES.items()]
    prepare_blend(inputs, out)
    return out


def make_args(prepared: Path, tokenizer_dir: Path, tmp: Path, **overrides) -> Namespace:
    m2rl_data = {
        "prompt_files": {d: str(prepared / f"{d}.jsonl") for d in DOMAINS},
        "mixture": "weights",
        "weights": {"math": 4, "science": 2, "if": 1, "code": 2, "agent": 1},
        "gc_freeze": False,  # keep pytest's heap collectable; test_gc_freeze covers the default
    }
    ckpt = str(tmp / "ckpt")
    args = SlimeDataArgs(str(tokenizer_dir), m2rl_data, n_samples_per_prompt=4, save=ckpt, load=ckpt).namespace()
    return Namespace(**{**vars(args), **overrides})


def test_prepared_rows_load_in_slimes_dataset(prepared, tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for domain in DOMAINS:
        ds = Dataset(
            str(prepared / f"{domain}.jsonl"),
            tokenizer,
            None,
            None,
            prompt_key="prompt",
            label_key="label",
            metadata_key="metadata",
            tool_key="tools",
            apply_chat_template=True,
        )
        assert len(ds) == 5
        for sample in ds.samples:
            assert isinstance(sample.prompt, str) and sample.prompt.endswith("<assistant>")
            assert sample.metadata["domain"] == domain and isinstance(sample.metadata["tools"], list)
        if domain == "agent":
            assert '"function": {"name": "company_directory_find_email_address"' in ds.samples[0].prompt
        if domain in ("math", "science"):
            assert all(isinstance(s.label, str) for s in ds.samples)


def test_hook_path_resolves_to_a_slime_data_source(prepared, tokenizer_dir, tmp_path):
    from slime.rollout.data_source import DataSource

    cls = load_function("m2rl_slime.data.MultiDomainDataSource")
    assert issubclass(cls, DataSource)
    source = cls(make_args(prepared, tokenizer_dir, tmp_path))
    assert len(source) == 25
    for _ in range(5):
        groups = source.get_samples(10)
        assert len(groups) == 10 and all(len(g) == 4 and isinstance(g[0], Sample) for g in groups)
        counts = Counter(g[0].metadata["source_name"] for g in groups)
        assert counts == {"math": 4, "science": 2, "if": 1, "code": 2, "agent": 1}
        for group in groups:
            assert all(s.metadata["source_name"] == s.metadata["domain"] for s in group)
            assert len({id(s.metadata) for s in group}) == 4  # fresh metadata per sample
    indices = [s.index for g in groups for s in g]
    assert len(set(indices)) == 40 and min(indices) == 160


def test_gc_freeze_default_freezes_the_heap_and_says_so(prepared, tokenizer_dir, tmp_path, caplog):
    import gc
    import logging

    args = make_args(prepared, tokenizer_dir, tmp_path)
    args.m2rl_data = {k: v for k, v in args.m2rl_data.items() if k != "gc_freeze"}
    try:
        with caplog.at_level(logging.WARNING, logger="m2rl_slime.data.slime_hooks"):
            load_function("m2rl_slime.data.MultiDomainDataSource")(args)
        assert gc.get_freeze_count() > 0
        assert any(r.levelno == logging.WARNING and "gc_freeze: false" in r.getMessage() for r in caplog.records)
    finally:
        gc.unfreeze()


def test_save_load_resumes_identical_sequence(prepared, tokenizer_dir, tmp_path):
    cls = load_function("m2rl_slime.data.MultiDomainDataSource")
    source = cls(make_args(prepared, tokenizer_dir, tmp_path))
    for _ in range(7):
        source.get_samples(6)
    source.save(7)
    assert (tmp_path / "ckpt" / "rollout" / "m2rl_data_source_7.json").is_file()

    def key(groups):
        return [(s.index, s.group_index, s.prompt, s.label, s.metadata["source_name"]) for g in groups for s in g]

    expected = [key(source.get_samples(6)) for _ in range(6)]
    resumed = cls(make_args(prepared, tokenizer_dir, tmp_path))
    resumed.load(7)
    assert [key(resumed.get_samples(6)) for _ in range(6)] == expected
    fresh = cls(make_args(prepared, tokenizer_dir, tmp_path))
    fresh.load(-1)  # slime's fresh-run call: nothing saved under that id
    assert key(fresh.get_samples(1))[0][0] == 0


def test_buffer_api(prepared, tokenizer_dir, tmp_path):
    source = load_function("m2rl_slime.data.MultiDomainDataSource")(make_args(prepared, tokenizer_dir, tmp_path))
    groups = source.get_samples(3)
    source.add_samples(groups[:2])
    assert source.get_buffer_length() == 2
    again = source.get_samples(3)
    assert again[:2] == groups[:2] and source.get_buffer_length() == 0


def test_bad_settings_name_the_key(prepared, tokenizer_dir, tmp_path):
    from m2rl_slime.errors import ConfigError

    cls = load_function("m2rl_slime.data.MultiDomainDataSource")
    bad = make_args(prepared, tokenizer_dir, tmp_path)
    bad.m2rl_data = {**bad.m2rl_data, "weights": {"math": 1, "science": 1, "if": 1, "code": 1, "agent": 1, "x": 1}}
    with pytest.raises(ConfigError, match="weights.x: no prompt file"):
        cls(bad)
    with pytest.raises(ConfigError, match="--label-key"):
        cls(make_args(prepared, tokenizer_dir, tmp_path, label_key=None))
    with pytest.raises(ConfigError, match="has no key.*input"):
        cls(make_args(prepared, tokenizer_dir, tmp_path, input_key="input"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    args = make_args(prepared, tokenizer_dir, tmp_path)
    args.m2rl_data = {"prompt_files": {"math": str(empty)}}
    with pytest.raises(ConfigError, match="empty.jsonl: the file has no rows"):
        cls(args)


def test_curriculum_hook_reweights_through_slime_samples(prepared, tokenizer_dir, tmp_path):
    from m2rl_slime.data.curriculum import observe

    args = make_args(prepared, tokenizer_dir, tmp_path)
    args.m2rl_data = {**args.m2rl_data, "curriculum": {"warmup_rollouts": 1, "min_groups": 1, "ema": 1.0}}
    source = load_function("m2rl_slime.data.MultiDomainDataSource")(args)
    groups = source.get_samples(20)
    for group in groups:
        solved = group[0].metadata["source_name"] == "math"
        for i, sample in enumerate(group):
            sample.reward = 1.0 if solved else float(i % 2)
    observe(args, groups, source)
    counts = Counter(g[0].metadata["source_name"] for g in source.get_samples(40))
    # math is always solved (no GRPO signal): its factor is clipped to 0.25, share 0.4 -> 1/8.5 (about 5 of 40)
    assert counts["math"] <= 6


def test_slimes_own_contract_tests_accept_our_paths():
    import slime

    contract = Path(slime.__file__).resolve().parents[1] / "tests" / "plugin_contracts"
    test_file = contract / "test_plugin_path_loading_contracts.py"
    if not test_file.is_file():
        pytest.skip(f"slime checkout has no {test_file}")
    env = dict(os.environ)
    env["SLIME_CONTRACT_DATA_SOURCE_PATH"] = "m2rl_slime.data.MultiDomainDataSource"
    env["SLIME_CONTRACT_ROLLOUT_ALL_SAMPLES_PROCESS_PATH"] = "m2rl_slime.data.curriculum.observe"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(test_file),
        "-k",
        "data_source or all_samples",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout, done.stdout[-2000:]
