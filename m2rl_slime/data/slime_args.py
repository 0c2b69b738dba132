"""`SlimeDataArgs`: the slime flags the data hooks read, in one frozen dataclass (pure; no slime import).

`MultiDomainDataSource` is built from slime's whole ``args`` namespace. This names the part of it the data
source and the curriculum hook read, with slime's defaults except where the recipes set a flag for
prepared files (``--input-key prompt --label-key label --apply-chat-template``), so that code running them outside slime (the data-source benchmark,
the contract tests) builds its ``args`` in one place. A test checks that every ``args`` attribute that
`m2rl_slime.data.slime_hooks` reads is a field here.
"""

from __future__ import annotations

import dataclasses
from argparse import Namespace
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SlimeDataArgs:
    """The slime arguments of the data hooks (field names are slime's ``args`` attributes).

    Attributes:
        hf_checkpoint: Where slime loads the tokenizer (and processor) from.
        m2rl_data: The ``m2rl_data`` plugin section (see `m2rl_slime.data.config.DataConfig`).
        The others mirror slime's flags of the same name (``--input-key`` is ``input_key``, ...).
    """

    hf_checkpoint: str
    m2rl_data: Mapping[str, Any] = field(default_factory=dict)
    input_key: str = "prompt"
    label_key: str | None = "label"
    metadata_key: str = "metadata"
    tool_key: str | None = "tools"
    multimodal_keys: Any = None
    apply_chat_template: bool = True
    apply_chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    rollout_max_prompt_len: int | None = None
    rollout_seed: int = 42
    rollout_shuffle: bool = False
    rollout_global_dataset: bool = True
    n_samples_per_prompt: int = 1
    prompt_data: str | None = None
    buffer_filter_path: str | None = None
    rollout_all_samples_process_path: str | None = None
    data_source_path: str | None = None
    rollout_batch_size: int | None = None
    over_sampling_batch_size: int | None = None
    dynamic_sampling_filter_path: str | None = None
    reward_key: str | None = None
    dump_details: str | None = None
    save: str | None = None
    load: str | None = None

    def namespace(self, **extra: Any) -> Namespace:
        """A slime-style ``args`` namespace holding these fields, plus `extra` attributes."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["m2rl_data"] = dict(self.m2rl_data)
        values["apply_chat_template_kwargs"] = dict(self.apply_chat_template_kwargs)
        return Namespace(**values, **extra)
