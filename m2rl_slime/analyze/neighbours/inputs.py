"""What ``analyze kl`` samples: the settings a resumed run must keep, the prompts of each domain, the
servers of the experts and the multi-domain models, and the compact token arrays of its records.

Prompts are rows in the prepared-row format (``{"prompt": [messages], "tools": [...], "metadata":
{"uid": ...}}``: ``prepare-eval`` outputs or training rows); a row without ``metadata.uid`` is keyed by its
prompt hash. ``--n-prompts N`` takes a seeded sample of N rows of each file (file order kept): the same command
always picks the same prompts, and a larger N keeps every prompt of a smaller one.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...data.files import iter_rows
from ...errors import ConfigError
from ...eval.identity import prompt_sha

Api = Literal["generate", "chat"]
ID_DTYPE = "<u4"  # token ids: little-endian uint32, base64
LOGPROB_DTYPE = "<f8"  # log-probs: little-endian float64, base64 (exactly what the server returned)


@dataclass(frozen=True, slots=True)
class KLSettings:
    """How trajectories are sampled and scored (recorded in ``run.json``; a resumed run must match).

    Attributes:
        temperature: Sampling temperature; both models score the tokens at the same temperature.
        top_p: Nucleus of the sampler. Only 1.0 samples the distribution that is scored; smaller values
            make the estimate a KL of the truncated sampler (allowed, recorded, warned about).
        max_tokens: Response budget per sample (truncated samples are kept and counted).
        samples_per_prompt: Samples per prompt and expert.
        n_prompts: Prompts per domain (a seeded sample of the file's rows; None: all rows).
        seed: Seed of the prompt sample and of the per-sample sampling seeds.
        api: ``generate`` (SGLang ``/generate``: the sampled token ids are scored as they are) or ``chat``
            (OpenAI-compatible: the text is re-tokenized with the tokenizer, see docs/analysis.md).
        chat_template_kwargs: Passed to the chat template (e.g. ``{"enable_thinking": true}``).
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16384
    samples_per_prompt: int = 1
    n_prompts: int | None = 64
    seed: int = 0
    api: Api = "generate"
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be > 0 (both models are scored at it), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must lie in (0, 1], got {self.top_p}")
        if self.max_tokens < 1 or self.samples_per_prompt < 1:
            raise ConfigError("--max-tokens and --samples-per-prompt must be >= 1")
        if self.n_prompts is not None and self.n_prompts < 1:
            raise ConfigError(f"--n-prompts must be >= 1, got {self.n_prompts}")

    def protocol(self) -> dict[str, Any]:
        """The settings that decide what a trajectory is (a resumed run may not change them)."""
        return {
            "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
            "seed": self.seed, "api": self.api, "chat_template_kwargs": dict(self.chat_template_kwargs),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt of a domain."""

    domain: str
    uid: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    prompt_sha: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A named model and the base URL(s) of its SGLang server(s)."""

    name: str
    urls: tuple[str, ...]


def parse_named(values: Sequence[str], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` command-line items -> {NAME: VALUE}, in order.

    Raises:
        ConfigError: an item without ``=``, an empty side, or a repeated name.
    """
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE")
        if name in out:
            raise ConfigError(f"{flag}: name {name!r} is given twice")
        out[name] = value
    return out


def parse_endpoints(values: Sequence[str], flag: str) -> list[Endpoint]:
    """``NAME=URL[,URL...]`` items -> endpoints."""
    return [Endpoint(name, tuple(u.strip() for u in urls.split(",") if u.strip())) for name, urls in
            parse_named(values, flag).items()]  # fmt: skip


def load_prompts(domain: str, path: str | Path, n: int | None, seed: int) -> list[Prompt]:
    """The prompts of one domain: a seeded sample of `n` rows of `path` (all rows when n is None).

    Raises:
        ConfigError: unreadable rows, a row without a chat prompt, repeated uids, or no rows.
    """
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    for line_no, raw, error in iter_rows(path):
        where = f"{path}:{line_no}"
        if error is not None:
            raise ConfigError(f"{where}: {error}")
        messages = raw.get("prompt") if isinstance(raw, Mapping) else None
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            raise ConfigError(f"{where}: expected a row with a `prompt` list of chat messages (prepared rows)")
        tools = raw.get("tools") or []
        if not isinstance(tools, list):
            raise ConfigError(f"{where}: tools must be a list of tool schemas")
        sha = prompt_sha(messages, tools)
        metadata = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
        uid = str(metadata.get("uid")) if metadata.get("uid") not in (None, "") else sha[:16]
        if uid in seen:
            raise ConfigError(f"{where}: uid {uid!r} repeats line {seen[uid]}")
        seen[uid] = line_no
        prompts.append(Prompt(domain, uid, [dict(m) for m in messages], list(tools), sha))
    if not prompts:
        raise ConfigError(f"{path}: no rows")
    if n is not None and n < len(prompts):
        order = list(range(len(prompts)))
        random.Random(f"{seed}/{domain}").shuffle(order)  # a larger n keeps every prompt of a smaller one
        prompts = [prompts[i] for i in sorted(order[:n])]
    return prompts


def pack(values: Sequence[float] | Sequence[int], dtype: str) -> str:
    import numpy as np

    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def unpack(text: str, dtype: str) -> Any:
    """A numpy array from `pack`'s output."""
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype=dtype)


class PromptEncoder:
    """Chat-templates prompts and tokenizes responses with the models' shared tokenizer (transformers).

    Args:
        path: A tokenizer directory or HF checkpoint (all compared models must share the tokenizer).
        chat_template_kwargs: Extra variables of the chat template.
    """

    def __init__(self, path: str, chat_template_kwargs: Mapping[str, Any]):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--tokenizer {path}: cannot load a tokenizer ({exc})") from None
        self.kwargs = dict(chat_template_kwargs)
        self.eos_id = self.tokenizer.eos_token_id
        self._cache: dict[tuple[str, str], list[int]] = {}

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        key = (prompt.domain, prompt.uid)
        if key not in self._cache:
            text = self.tokenizer.apply_chat_template(
                prompt.messages, tools=prompt.tools or None, tokenize=False, add_generation_prompt=True, **self.kwargs
            )
            self._cache[key] = list(self.tokenizer.encode(text, add_special_tokens=False))
        return self._cache[key]

    def response_ids(self, text: str, finish_reason: str | None) -> list[int]:
        """Re-tokenized response text; the end-of-turn token is appended when the model stopped on it."""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        if finish_reason == "stop" and self.eos_id is not None and (not ids or ids[-1] != self.eos_id):
            ids.append(int(self.eos_id))
        return ids
