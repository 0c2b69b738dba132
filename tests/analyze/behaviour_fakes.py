"""Loopback stand-ins for the servers the behaviour analyses call, with scripted, exactly known answers.

`FakeLM` is one model behind an aiohttp server (its own thread and loop):

* ``POST /generate`` with ``max_new_tokens > 0`` samples: the response is the model's exact multiset of
  tokens for the prompt's domain (each vocabulary token ``w ** (1 / T)`` times, rotated by the seed), so
  its empirical token frequencies *are* the tempered distribution and the per-token k1 and k3 of any
  response equal the closed-form KL;
* ``POST /generate`` with ``max_new_tokens: 0`` and ``return_logprob`` scores, as SGLang does: one
  ``[logprob, id, None]`` entry per input position from ``logprob_start_len``, the first with a null
  log-prob; a token's log-prob is ``log(w ** (1/T) / sum w ** (1/T))`` for vocabulary tokens of the
  prompt's domain, ``other_logprob`` for any other token;
* ``POST /v1/chat/completions``: a judge when the prompt is a judge prompt (verdicts scripted by markers in
  the judged text, see `judge_reply`), else the sampled multiset decoded to text;
* ``GET /v1/models``.

The domain of a prompt is the ``[name]`` tag of its text.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback import Loopback  # noqa: E402

TAG = re.compile(r"\[(math|code|science|if|agent)\]")
VOCAB = ("<think>", "</think>", "<tool_call>", "</tool_call>")  # four single-token strings of the tokenizer


def build_tokenizer_dir(directory: Path) -> Path:
    """The agent tests' byte-level BPE tokenizer with a Qwen3-style chat template, saved to `directory`."""
    from agent_harness import build_tokenizer

    corpus = [f"[{d}] prompt number {i} about {d}" for d in ("math", "code", "science", "if") for i in range(8)]
    build_tokenizer(corpus).save_pretrained(directory)
    return directory


def tempered(weights: dict[int, float], temperature: float) -> dict[int, float]:
    """The distribution sum-normalised from w ** (1 / T)."""
    powered = {v: w ** (1.0 / temperature) for v, w in weights.items()}
    total = sum(powered.values())
    return {v: p / total for v, p in powered.items()}


def kl(p: dict[int, float], q: dict[int, float]) -> float:
    return sum(p[v] * math.log(p[v] / q[v]) for v in p)


def judge_reply(prompt: str) -> str:
    """Scripted verdicts: outcome prompts look for ``O:<word>`` in the answer, process prompts for
    ``P:<index>`` in the paragraphs; ``garbage`` yields a reply without a box, ``think`` an unclosed
    thinking block."""
    if "[Answer]" in prompt:
        word = re.search(r"O:(\w+)", prompt.split("[Answer]", 1)[1])
        word = word.group(1) if word else "garbage"
        if word == "garbage":
            return "<think>\nhmm\n</think>\n\nI cannot decide."
        if word == "think":
            return "<think>\nstill thinking \\boxed{Correct}"
        return f"<think>\nchecked\n</think>\n\nThe verdict is \\boxed{{{word.capitalize()}}}"
    found = re.search(r"P:(-?\w+)", prompt)
    index = found.group(1) if found else "garbage"
    if index == "garbage":
        return "<think>\nhmm\n</think>\n\nNo index."
    return f"<think>\nreviewed\n</think>\n\nThe earliest error is in \\boxed{{{index}}}"


@dataclass
class FakeLM(Loopback):
    """One model (see the module docstring). `weights`: domain -> {token id: positive weight}."""

    tokenizer: Any
    weights: dict[str, dict[int, float]] = field(default_factory=dict)
    other_logprob: float = -7.0
    model_id: str = "fake-lm"
    latency: float = 0.0
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._init_loopback()

    def routes(self, app: Any) -> None:
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    def domain_of(self, text: str) -> str:
        found = TAG.search(text)
        assert found, f"no [domain] tag in {text[:200]!r}"
        return found.group(1)

    def sample_ids(self, domain: str, temperature: float, seed: int) -> list[int]:
        ids = []
        for v, w in self.weights[domain].items():
            count = w ** (1.0 / temperature)
            assert abs(count - round(count)) < 1e-9, "weights ** (1/T) must be integers"
            ids += [v] * round(count)
        shift = seed % len(ids)
        return ids[shift:] + ids[:shift]

    def logprob(self, domain: str, token: int, temperature: float) -> float:
        dist = tempered(self.weights[domain], temperature)
        return math.log(dist[token]) if token in dist else self.other_logprob

    async def _models(self, request):
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": self.model_id, "object": "model"}]})

    async def _generate(self, request):
        from aiohttp import web

        payload = await request.json()
        self.requests.append(payload)
        await asyncio.sleep(self.latency)
        params = payload["sampling_params"]
        ids, temperature = payload["input_ids"], float(params["temperature"])
        if params["max_new_tokens"] == 0:
            start = payload["logprob_start_len"]
            domain = self.domain_of(self.tokenizer.decode(ids[: start + 1]))
            entries = [[None, ids[start], None]]
            entries += [[self.logprob(domain, t, temperature), t, None] for t in ids[start + 1 :]]
            return web.json_response({"text": "", "meta_info": {"input_token_logprobs": entries}})
        domain = self.domain_of(self.tokenizer.decode(ids))
        out = self.sample_ids(domain, temperature, int(params.get("sampling_seed") or 0))
        finish = "stop"
        if len(out) > params["max_new_tokens"]:
            out, finish = out[: params["max_new_tokens"]], "length"
        meta = {
            "finish_reason": {"type": finish},
            "output_token_logprobs": [[self.logprob(domain, t, 1.0), t, None] for t in out],
            "completion_tokens": len(out),
        }
        return web.json_response({"text": self.tokenizer.decode(out), "meta_info": meta})

    async def _chat(self, request):
        from aiohttp import web

        payload = await request.json()
        self.requests.append(payload)
        await asyncio.sleep(self.latency)
        prompt = "\n".join(str(m.get("content") or "") for m in payload["messages"])
        if "[Task]" in prompt:
            text = judge_reply(prompt)
        else:
            domain = self.domain_of(prompt)
            text = self.tokenizer.decode(
                self.sample_ids(domain, payload["temperature"], int(payload.get("seed") or 0))
            )
        message = {"role": "assistant", "content": text}
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage})
