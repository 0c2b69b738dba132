"""`m2rl_data`: the typed plugin setting of the data package (prompt files, mixture, curriculum, prepare).

It reaches slime through `--custom-config-path` (top-level key `m2rl_data`) and is read by
`MultiDomainDataSource`; `python -m m2rl_slime.data prepare --config FILE` reads the same key.

Example::

    m2rl_data:
      prompt_files: {math: data/math.jsonl, code: data/code.jsonl, science: data/science.jsonl}
      mixture: weights
      weights: {math: 2, code: 1, science: 1}
      curriculum: {mode: learnability, ema: 0.3}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError

MixtureMode = Literal["natural", "uniform", "weights", "temperature"]
CurriculumMode = Literal["learnability", "hardness"]

PROMPT_PLACEHOLDER = "{prompt}"
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """How the first user message of a row is rewritten for one domain.

    Args:
        template: Text with exactly one ``{prompt}`` placeholder (replaced verbatim, never ``str.format``).
            When the message already starts with the text before the placeholder and ends with the text
            after it, it is left alone, so preparing twice never doubles an instruction.
        replace_prefix: Leading text -> replacement, applied (longest match first) before `template`. A
            message that does not start with a key is left unchanged (M2RL sliced blindly).
    """

    template: str = PROMPT_PLACEHOLDER
    replace_prefix: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.template.count(PROMPT_PLACEHOLDER) != 1:
            raise ConfigError(f"template must contain {PROMPT_PLACEHOLDER} exactly once, got {self.template!r}")
        if any(not key for key in self.replace_prefix):
            raise ConfigError("replace_prefix keys must be non-empty strings")


@dataclass(frozen=True, slots=True)
class PrepareConfig:
    """Options of `python -m m2rl_slime.data prepare` / `prepare-eval` (the `m2rl_data.prepare` section).

    Args:
        sources: Extra or overriding entries of the source-name -> domain table (value ``exclude`` drops
            the source). See `m2rl_slime.data.source_domains.default_sources`.
        strip_prefixes: Prefixes removed from a source name before matching.
        source_columns: Row fields naming the source, tried in order (dots walk into objects).
        templates: Per-domain prompt templates overriding the paper's defaults.
        eval_math_template: Prompt of raw AIME-style rows in `prepare-eval` (one ``{prompt}``).
        gpqa_template: Prompt of raw GPQA rows in `prepare-eval` (``{question}`` and ``{choices}``).
    """

    sources: dict[str, str] = field(default_factory=dict)
    strip_prefixes: tuple[str, ...] = ("nano_v3_sft_profiled_", "nano_v3_")
    source_columns: tuple[str, ...] = ("dataset", "environment_name", "agent_ref.name")
    templates: dict[str, PromptTemplate] = field(default_factory=dict)
    eval_math_template: str | None = None
    gpqa_template: str | None = None

    def validate(self) -> None:
        if not self.source_columns:
            raise ConfigError("source_columns must name at least one row field")
        if self.eval_math_template is not None:
            PromptTemplate(self.eval_math_template).validate()
        if self.gpqa_template is not None:
            for slot in ("{question}", "{choices}"):
                if self.gpqa_template.count(slot) != 1:
                    raise ConfigError(f"gpqa_template must contain {slot} exactly once")


@dataclass(frozen=True, slots=True)
class CurriculumConfig:
    """Re-weighting from observed pass rates (active only with the `m2rl_slime.data.curriculum.observe` hook).

    Each domain's weight becomes ``base_weight * factor``, with ``factor`` the domain's score relative to
    the mean score over domains, clipped to [min_factor, max_factor]. Scores are computed from an
    exponential moving average of the domain's mean reward ``p``: ``learnability`` = p(1-p) (favours
    domains where groups still disagree, i.e. where GRPO has signal), ``hardness`` = 1-p.

    Args:
        mode: The score of a pass rate.
        ema: Weight of the newest rollout in the moving average (0 < ema <= 1).
        min_factor: Lower clip of the factor; keeps every domain sampled.
        max_factor: Upper clip of the factor.
        warmup_rollouts: Observed rollouts before weights start to move.
        min_groups: A domain's pass rate is updated only from rollouts with at least this many of its groups.
    """

    mode: CurriculumMode = "learnability"
    ema: float = 0.3
    min_factor: float = 0.25
    max_factor: float = 4.0
    warmup_rollouts: int = 2
    min_groups: int = 4

    def validate(self) -> None:
        if not 0.0 < self.ema <= 1.0:
            raise ConfigError(f"curriculum.ema must be in (0, 1], got {self.ema}")
        if not 0.0 < self.min_factor <= 1.0 <= self.max_factor:
            raise ConfigError(
                f"curriculum needs 0 < min_factor <= 1 <= max_factor, got {self.min_factor}, {self.max_factor}"
            )
        if self.warmup_rollouts < 0 or self.min_groups < 1:
            raise ConfigError("curriculum.warmup_rollouts must be >= 0 and curriculum.min_groups >= 1")


@dataclass(frozen=True, slots=True)
class SFTConfig:
    """The `m2rl_data.sft` section, read by `SFTDataSource` and the SFT rollout `m2rl_slime.data.sft_rollout`.

    Args:
        seed: Seed of the per-epoch permutations; None uses slime's ``--rollout-seed``.
        mask_empty_think: Zero the loss mask on every empty think block (the paper's SFT does this; see
            `m2rl_slime.data.sft_rollout`). Needs ``--rollout-function-path
            m2rl_slime.data.sft_rollout.generate_rollout``.
        empty_think_text: The text of the empty think block; it is tokenized with the policy's tokenizer
            (Qwen3: ids 151667, 271, 151668).
    """

    seed: int | None = None
    mask_empty_think: bool = False
    empty_think_text: str = "<think>\n\n</think>"

    def validate(self) -> None:
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"sft.seed must be >= 0, got {self.seed}")
        if not self.empty_think_text:
            raise ConfigError("sft.empty_think_text must not be empty")


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """Per-domain quotas of the trained batch (active only with ``--dynamic-sampling-filter-path
    m2rl_slime.data.keep_domain_quota``).

    Args:
        filter: Dotted path of a slime dynamic-sampling filter applied inside the quota filter (e.g.
            ``slime.rollout.filter_hub.dynamic_sampling_filters.check_reward_nonzero_std``): the filter
            you would otherwise pass to ``--dynamic-sampling-filter-path``. None keeps every group.
        patience: A domain whose groups `filter` rejected more than ``patience * quota`` times in one
            rollout has its next groups kept anyway, so a domain the filter always rejects cannot stall
            the rollout.
    """

    filter: str | None = None
    patience: float = 4.0

    def validate(self) -> None:
        if not (self.patience > 0 and math.isfinite(self.patience)):
            raise ConfigError(f"quota.patience must be a positive number, got {self.patience}")
        if self.filter is not None and "." not in self.filter:
            raise ConfigError(f"quota.filter must be a dotted path (package.module.function), got {self.filter!r}")


@dataclass(frozen=True, slots=True)
class DataConfig:
    """The `m2rl_data` plugin setting.

    Args:
        prompt_files: Prompt pool name (usually a domain) -> prepared prompt file (jsonl/parquet, slime's
            ``path@[start:end]`` slice suffix allowed). The pool name becomes ``metadata["source_name"]``.
        mixture: ``natural`` (pool sizes, like the paper's concatenation), ``uniform``, ``weights``
            (explicit `weights`) or ``temperature`` (size ** (1 / temperature)).
        weights: Pool -> non-negative weight; required with ``mixture: weights`` and only allowed there.
            Every pool needs an entry (0 disables it).
        temperature: Temperature of ``mixture: temperature`` (1 = natural, large = uniform).
        seed: Seed of the sampler; None uses slime's ``--rollout-seed``.
        gc_freeze: After loading the prompts, move every object of the (RolloutManager) process into
            CPython's permanent GC generation (`gc.freeze`). Each ``get_samples`` creates thousands of
            fresh samples, which triggers full collections that walk the whole heap (torch, slime and the
            prompts: ~0.4 s per pass at 10k prompts on a 2-core box, every few calls); frozen objects are
            skipped. Costs one `gc.collect()` at start-up; objects alive then are never cycle-collected.
        curriculum: Parameters of the optional curriculum hook.
        quota: Per-domain quotas of the trained batch (with the quota filter).
        prepare: Options of the prepare CLI.
        sft: Settings of the SFT data source and rollout.
    """

    prompt_files: dict[str, str] = field(default_factory=dict)
    mixture: MixtureMode = "natural"
    weights: dict[str, float] = field(default_factory=dict)
    temperature: float = 2.0
    seed: int | None = None
    gc_freeze: bool = True
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)

    def validate(self) -> None:
        for name, path in self.prompt_files.items():
            if not _POOL_NAME.match(name):
                raise ConfigError(f"prompt_files: pool name {name!r} must match {_POOL_NAME.pattern}")
            if not path:
                raise ConfigError(f"prompt_files.{name}: empty path")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature}")
        if self.mixture != "weights":
            if self.weights:
                raise ConfigError(f"weights are only used with mixture: weights (mixture is {self.mixture!r})")
            return
        _validate_weights(self.weights, self.prompt_files)


def _validate_weights(weights: dict[str, float], prompt_files: dict[str, str]) -> None:
    if not weights:
        raise ConfigError("mixture: weights needs a non-empty weights mapping (pool -> weight)")
    for name, weight in weights.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"weights.{name}: must be a finite number >= 0, got {weight}")
        if name not in prompt_files:
            raise ConfigError(
                f"weights.{name}: no prompt file for this pool; add prompt_files.{name} or remove the weight "
                f"(pools with files: {', '.join(sorted(prompt_files)) or 'none'})"
            )
    missing = sorted(set(prompt_files) - set(weights))
    if missing:
        raise ConfigError(f"weights: no weight for pool(s) {', '.join(missing)}; give each a weight (0 disables it)")
    if sum(weights.values()) <= 0:
        raise ConfigError(f"weights must sum to a positive number, got {weights}")
