"""Pins `SFTDataSource` and `m2rl_slime.data.sft_rollout` against a real slime: loaded by dotted path, its
samples equal those of slime's `Dataset`, slime's own SFT rollout runs on it, and save/load through slime's
checkpoint flow (also in train_async's draw-ahead order) continues the same sequence.

Skipped (with the reason) when slime is not importable, e.g. in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from m2rl_slime.data.sft_blend import SFTOptions, prepare_sft
from m2rl_slime.data.sft_rules import SourceSpec

pytestmark = pytest.mark.contract

try:
    from slime.rollout import sft_rollout as slime_sft
    from slime.rollout.data_source import DataSource
    from slime.utils.data import Dataset
    from slime.utils.misc import load_function
except Exception as exc:  # ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

SPECIALS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"]
# A Qwen3-shaped chat template (self-written): an assistant turn rendered last opens with a think block.
TEMPLATE = "".join(
    [
        "{% if tools %}{{ '<|im_start|>system\\n# Tools\\n<tools>' }}",
        "{% for t in tools %}{{ '\\n' + (t | tojson) }}{% endfor %}{{ '\\n</tools><|im_end|>\\n' }}{% endif %}",
        "{% for m in messages %}{% if m.role == 'assistant' %}{{ '<|im_start|>assistant\\n' }}",
        "{% if loop.last or m.reasoning_content %}",
        "{{ '<think>\\n' + (m.reasoning_content or '') + '\\n</think>\\n\\n' }}{% endif %}",
        "{{ m.content or '' }}{% for c in (m.tool_calls or []) %}",
        "{{ '\\n<tool_call>\\n' + (c.function | tojson) + '\\n</tool_call>' }}{% endfor %}{{ '<|im_end|>\\n' }}",
        "{% elif m.role == 'tool' %}",
        "{{ '<|im_start|>user\\n<tool_response>\\n' + m.content + '\\n</tool_response><|im_end|>\\n' }}",
        "{% else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}{% endfor %}",
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    ]
)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    corpus = ["user assistant system tool question answer FOR TESTING ONLY CALCULATING LOSS MASK", "\n\n\n"] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    core.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = TEMPLATE
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return path


def conversation(tag: str, i: int, reasoning: str | None) -> dict:
    assistant = {"role": "assistant", "content": f"answer {tag} {i}"}
    if reasoning is not None:
        assistant["reasoning_content"] = reasoning
    return {"uuid": f"{tag}{i}", "messages": [{"role": "user", "content": f"question {tag} {i}"}, assistant]}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    with open(root / "math.jsonl", "w") as f:
        for i in range(7):
            f.write(json.dumps(conversation("math", i, "think hard")) + "\n")
    call = {"type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with open(root / "agent.jsonl", "w") as f:
        for i in range(6):
            row = conversation("agent", i, None)
            row["messages"][1:1] = [
                {"role": "assistant", "content": "", "tool_calls": json.dumps([call])},
                {"role": "tool", "content": "found"},
            ]
            f.write(json.dumps(row | {"tools": json.dumps(tools)}) + "\n")
    return root


def blend(raw: Path, out: Path, fmt: str) -> Path:
    sources = [SourceSpec.parse("math.jsonl::math"), SourceSpec.parse("agent.jsonl::agent")]
    prepare_sft(sources, out, SFTOptions(fmt=fmt, root=raw, progress=False, shard_rows=5, row_group_rows=2))
    return out


def make_args(prompt_data: Path, tokenizer_dir: Path, tmp: Path, **overrides) -> Namespace:
    values = dict(
        rollout_global_dataset=True,
        prompt_data=str(prompt_data),
        hf_checkpoint=str(tokenizer_dir),
        input_key="messages",
        label_key=None,
        metadata_key="metadata",
        tool_key="tools",
        multimodal_keys=None,
        apply_chat_template=False,
        rollout_max_prompt_len=None,
        rollout_shuffle=True,
        rollout_seed=42,
        n_samples_per_prompt=1,
        rollout_batch_size=4,
        loss_mask_type="qwen3",
        buffer_filter_path=None,
        save=str(tmp / "ckpt"),
        load=str(tmp / "ckpt"),
    )
    values.update(overrides)
    return Namespace(**values)


@pytest.fixture(autouse=True)
def fresh_slime_sft(monkeypatch):
    for name in ("TOKENIZER", "PROCESSOR", "MASK_GENERATOR"):
        monkeypatch.setattr(slime_sft, name, None)


def key(sample) -> tuple:
    return sample.metadata["source_name"], sample.prompt[0]["content"], tuple(sample.tokens)


def test_samples_equal_those_of_slimes_dataset(raw, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    out = blend(raw, tmp_path / "blend", "jsonl")
    cls = load_function("m2rl_slime.data.SFTDataSource")
    assert issubclass(cls, DataSource)
    source = cls(make_args(out, tokenizer_dir, tmp_path, rollout_shuffle=False))
    assert len(source) == 13
    ours = [g[0] for g in source.get_samples(13)]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    theirs = []
    for shard in (
        "math/part-00000.jsonl",
        "math/part-00001.jsonl",
        "agent/part-00000.jsonl",
        "agent/part-00001.jsonl",
    ):
        theirs += Dataset(str(out / shard), tokenizer, None, None, prompt_key="messages", tool_key="tools").samples
    assert len(theirs) == 13
    for mine, slimes in zip(ours, theirs):
        assert mine.prompt == slimes.prompt and mine.label == slimes.label is None
        assert {k: v for k, v in mine.metadata.items() if k != "source_name"} == slimes.metadata
    assert isinstance(ours[-1].prompt[1]["tool_calls"], list) and ours[-1].metadata["tools"][0]["type"] == "function"
    assert [s.index for s in ours] == list(range(13)) == [s.group_index for s in ours]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_resume_through_slimes_sft_rollout_continues_the_sequence(raw, tokenizer_dir, tmp_path, fmt):
    out = blend(raw, tmp_path / "blend", fmt)
    cls = load_function("m2rl_slime.data.SFTDataSource")
    args = make_args(out, tokenizer_dir, tmp_path)
    straight = cls(args)
    straight.load(-1)  # slime's start-up call on a fresh run
    expected = []
    for rollout_id in range(7):  # 28 rows: more than two epochs of 13
        samples = slime_sft.generate_rollout(args, rollout_id, straight)
        assert all(len(g) == 1 and g[0].response_length == len(g[0].loss_mask) > 0 for g in samples)
        expected.append([key(g[0]) for g in samples])
        if rollout_id == 2:
            straight.save(rollout_id)
    epoch0 = [k[1] for batch in expected for k in batch][:13]
    assert len(set(epoch0)) == 13, "an epoch serves every row once"
    resumed = cls(args)
    resumed.load(2)
    got = [[key(g[0]) for g in slime_sft.generate_rollout(args, r, resumed)] for r in range(3, 7)]
    assert got == expected[3:]


def test_resume_in_train_asyncs_order_does_not_skip_a_batch(raw, tokenizer_dir, tmp_path):
    out = blend(raw, tmp_path / "blend", "parquet")
    cls = load_function("m2rl_slime.data.SFTDataSource")
    generate = load_function("m2rl_slime.data.sft_rollout.generate_rollout")
    args = make_args(out, tokenizer_dir, tmp_path)
    source = cls(args)
    source.load(-1)
    batches = {0: [key(g[0]) for g in generate(args, 0, source)]}
    for rollout_id in range(4):  # train_async: draw r+1, train r, then save r
        batches[rollout_id + 1] = [key(g[0]) for g in generate(args, rollout_id + 1, source)]
        source.save(rollout_id)
    for saved in (1, 3):
        resumed = cls(args)
        resumed.load(saved)
        assert [key(g[0]) for g in generate(args, saved + 1, resumed)] == batches[saved + 1]
    plain = cls(args)  # slime's own SFT rollout (no begin_rollout call): the draw counter does the same
    plain.load(1)
    assert [key(g[0]) for g in slime_sft.generate_rollout(args, 2, plain)] == batches[2]


def test_empty_think_block_is_masked_out_of_the_loss(raw, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    out = blend(raw, tmp_path / "blend", "jsonl")
    cls = load_function("m2rl_slime.data.SFTDataSource")
    generate = load_function("m2rl_slime.data.sft_rollout.generate_rollout")
    plain_args = make_args(out, tokenizer_dir, tmp_path, rollout_shuffle=False, rollout_batch_size=13)
    masked_args = make_args(out, tokenizer_dir, tmp_path, rollout_shuffle=False, rollout_batch_size=13)
    masked_args.m2rl_data = {"sft": {"mask_empty_think": True}}
    plain = [g[0] for g in generate(plain_args, 0, cls(plain_args))]
    masked = [g[0] for g in generate(masked_args, 0, cls(masked_args))]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    pattern = tokenizer("<think>\n\n</think>", add_special_tokens=False)["input_ids"]
    assert pattern[0] == tokenizer.convert_tokens_to_ids("<think>") and pattern[-1] != pattern[0]
    for before, after in zip(plain, masked):
        assert before.tokens == after.tokens and before.response_length == after.response_length
        response = before.tokens[-before.response_length :]
        runs = [i for i in range(len(response)) if response[i : i + len(pattern)] == pattern]
        zeroed = {i + j for i in runs for j in range(len(pattern))}
        assert all(after.loss_mask[i] == 0 for i in zeroed)
        assert [m for i, m in enumerate(after.loss_mask) if i not in zeroed] == [
            m for i, m in enumerate(before.loss_mask) if i not in zeroed
        ]
        if before.metadata["source_name"] == "agent":  # two assistant turns without reasoning
            assert len(runs) == 2 and all(before.loss_mask[i] == 1 for i in zeroed)
        else:  # reasoning present: nothing to mask
            assert runs == [] and after.loss_mask == before.loss_mask


def test_bad_setup_is_a_config_error(raw, tokenizer_dir, tmp_path):
    from m2rl_slime.errors import ConfigError

    out = blend(raw, tmp_path / "blend", "jsonl")
    cls = load_function("m2rl_slime.data.SFTDataSource")
    no_data = make_args(out, tokenizer_dir, tmp_path)
    no_data.prompt_data = None
    with pytest.raises(ConfigError, match="--prompt-data"):
        cls(no_data)
    with pytest.raises(ConfigError, match="--input-key 'prompt'"):
        cls(make_args(out, tokenizer_dir, tmp_path, input_key="prompt"))
    args = make_args(out, tokenizer_dir, tmp_path)
    source = cls(args)
    source.get_samples(4)
    source.save(0)
    other = blend(raw, tmp_path / "other", "parquet")
    with pytest.raises(ConfigError, match="another blend"):
        cls(make_args(other, tokenizer_dir, tmp_path)).load(0)


def test_slimes_own_contract_tests_accept_the_sft_source():
    import slime

    test_file = Path(slime.__file__).resolve().parents[1] / "tests" / "plugin_contracts"
    test_file = test_file / "test_plugin_path_loading_contracts.py"
    if not test_file.is_file():
        pytest.skip(f"slime checkout has no {test_file}")
    env = dict(os.environ, SLIME_CONTRACT_DATA_SOURCE_PATH="m2rl_slime.data.SFTDataSource")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), "-k", "data_source"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout, done.stdout[-2000:]
