"""Stable identities of what was evaluated: checkpoint and prompt hashes, per-sample seeds, and the split of
a response into its reasoning and its final content."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

THINK_CLOSE = "</think>"
THINK_OPEN = "<think>"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".index.json")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def prompt_sha(messages: Any, tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """sha1 of the exact messages and tools (canonical JSON): equal prompts hash equally across models."""
    return hashlib.sha1(canonical_json({"messages": messages, "tools": list(tools or [])}).encode()).hexdigest()


def ckpt_sha(path: str | Path | None) -> str | None:
    """sha1 of an HF checkpoint's ``config.json`` plus the names and sizes of its weight and index files
    (cheap: no weights are read); None when `path` is not a readable directory."""
    if path is None:
        return None
    directory = Path(path)
    if not directory.is_dir():
        return None
    digest = hashlib.sha1()
    config = directory / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for file in sorted(directory.iterdir()):
        if file.is_file() and file.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(f"{file.name}\0{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def sample_seed(suite_seed: int, benchmark: str, uid: str, sample_idx: int) -> int:
    """The seed of one sample: a stable function of its key, independent of order and concurrency."""
    digest = hashlib.sha256(f"{suite_seed}/{benchmark}/{uid}/{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(reasoning, content): the text before and after the last ``</think>``, the opening ``<think>`` of
    the reasoning dropped; (None, text) when there is no ``</think>``."""
    cut = text.rfind(THINK_CLOSE)
    if cut < 0:
        return None, text
    reasoning = text[:cut]
    start = reasoning.find(THINK_OPEN)
    if start >= 0 and not reasoning[:start].strip():
        reasoning = reasoning[start + len(THINK_OPEN) :]
    return reasoning.strip("\n"), text[cut + len(THINK_CLOSE) :].lstrip("\n")


def join_reasoning(reasoning: str | None, content: str | None) -> str:
    """The full response text from a server that split it (``reasoning_content`` / ``content``).

    `reasoning` None means the server did not split (the text is `content`); an empty string is an empty
    thinking block. A reasoning without any content is kept unclosed (``<think>...``): the model never closed its thinking
    (e.g. truncated), and inventing a ``</think>`` would change how it is graded.
    """
    content = content or ""
    if reasoning is None:
        return content
    if not content:
        return f"{THINK_OPEN}\n{reasoning}" if reasoning else ""
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{content}"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
