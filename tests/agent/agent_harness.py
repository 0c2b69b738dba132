"""Test harness for agent episodes: a tokenizer built in-process with a Qwen3-style chat template, a stand-in
for SGLang's `/generate` that replays a scripted policy, and a double of slime's `Sample` (the real class
is pinned by tests/contract/test_agent_contract.py).

Imported by tests/agent/conftest.py and the contract test (both put this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# A Qwen3-style template written for these tests: system + tools block, <think> re-rendering of assistant
# turns, consecutive tool messages grouped into one user turn, optional empty-thinking generation stub.
QWEN3_STYLE_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\nYou can call these functions:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    '{{- \'\\n</tools>\\n\\nWrap each call as <tool_call>\\n{"name": <name>, "arguments": <object>}\\n'
    "</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{%- set content = message.content %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]


def build_tokenizer(corpus: Sequence[str], vocab_size: int = 700) -> Any:
    """A byte-level BPE tokenizer trained on `corpus`, with Qwen-like special and added tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = QWEN3_STYLE_TEMPLATE
    return fast


class Status(Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    TRUNCATED = "truncated"
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass
class SampleDouble:
    """The parts of slime's `Sample` an agent episode touches, with `append_response_tokens` semantics."""

    prompt: Any = ""
    tokens: list[int] = field(default_factory=list)
    response: str = ""
    response_length: int = 0
    label: Any = None
    reward: Any = None
    loss_mask: list[int] | None = None
    rollout_log_probs: list[float] | None = None
    remove_sample: bool = False
    metadata: dict = field(default_factory=dict)
    session_id: str | None = None
    apply_chat_template_kwargs: dict = field(default_factory=dict)
    status: Status = Status.PENDING
    Status = Status

    def append_response_tokens(
        self, args=None, *, tokens=None, log_probs=None, trainable=True, meta_info=None, text=None
    ):
        tokens = list(tokens or [])
        if trainable and tokens and log_probs is None:
            raise ValueError("trainable response tokens require rollout log probabilities.")
        if not trainable and log_probs is not None:
            raise ValueError("non-trainable response tokens should not pass rollout log probabilities.")
        log_probs = list(log_probs) if trainable else [0.0] * len(tokens)
        if text is not None:
            self.response += text
        previous = self.response_length
        self.tokens += tokens
        self.response_length += len(tokens)
        self.loss_mask = (self.loss_mask if self.loss_mask is not None else [1] * previous) + [int(trainable)] * len(
            tokens
        )
        self.rollout_log_probs = (self.rollout_log_probs or [0.0] * previous) + log_probs
        finish = (meta_info or {}).get("finish_reason")
        if finish:
            self.status = {"length": Status.TRUNCATED, "abort": Status.ABORTED, "stop": Status.COMPLETED}[
                finish["type"]
            ]
        assert len(self.loss_mask) == len(self.rollout_log_probs) == self.response_length


def call_text(name: str, **arguments: Any) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def turn(think: str, body: str) -> str:
    """A model turn in the canonical form the template re-renders identically."""
    return f"<think>\n{think}\n</think>\n\n{body}"


class ScriptedSGLang:
    """An aiohttp stand-in for SGLang's `/generate`: the n-th request gets the n-th scripted turn.

    Each turn is tokenized and followed by the EOS `<|im_end|>` (finish "stop"); a turn longer than the
    request's `max_new_tokens` is cut there (finish "length"). Every request is recorded.
    """

    def __init__(self, tokenizer: Any, turns: Sequence[str], *, finish: Callable[[int], str] | None = None):
        self.tokenizer = tokenizer
        self.turns = list(turns)
        self.finish = finish
        self.requests: list[dict] = []
        self.outputs: list[list[int]] = []
        self.url = ""
        self._runner: Any = None

    def _respond(self, payload: dict) -> dict:
        n = len(self.requests)
        self.requests.append(payload)
        text = self.turns[min(n, len(self.turns) - 1)]
        ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        reason = self.finish(n) if self.finish else "stop"
        budget = payload["sampling_params"]["max_new_tokens"]
        if len(ids) > budget:
            ids, reason = ids[:budget], "length"
        self.outputs.append(ids)
        pairs = [[-0.001 * (n + 1) * (i + 1), t, None] for i, t in enumerate(ids)]
        return {
            "text": self.tokenizer.decode(ids, skip_special_tokens=False),
            "meta_info": {
                "output_token_logprobs": pairs,
                "finish_reason": {"type": reason},
                "prompt_tokens": len(payload["input_ids"]),
                "completion_tokens": len(ids),
            },
        }

    async def start(self) -> ScriptedSGLang:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            return web.json_response(self._respond(await request.json()))

        app = web.Application()
        app.router.add_post("/generate", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/generate"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def http_generate(url: str) -> Callable[[list[int], dict], Any]:
    """A `generate(input_ids, sampling_params)` coroutine posting to `url` (one request, no retries)."""

    async def generate(input_ids: list[int], sampling_params: dict) -> dict:
        import aiohttp

        payload = {"input_ids": input_ids, "sampling_params": sampling_params, "return_logprob": True}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, json=payload) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    return generate


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- a scripted episode on a set's task 0 ("reply to <someone>'s last email about ... with ...") -------------


def episode_script(query: str, task: dict) -> list[str]:
    """The turns of a policy that solves a reply task: search with `query`, reply as the ground truth does,
    answer. The first turn is the search (`script[0]`)."""
    reply = json.loads(task["ground_truth"][0]["arguments"])
    return [
        turn("Find the e-mail first.", call_text("email_search_emails", query=query, page_size=1)),
        turn(f"It is {reply['email_id']}.", call_text("email_reply_email", **reply)),
        turn("Done.", "I replied to the e-mail."),
    ]


def _limits():
    from m2rl_slime.agent.episode import Limits

    return Limits(max_turns=6, max_response_tokens=4096, max_tool_output_chars=2000)


LIMITS = _limits()


def make_sample(task: dict, *, templated: str | None = None, cls: Any = None) -> Any:
    """A sample for a NeMo-Gym task row (prompt as messages, or `templated` text as slime renders it)."""
    params = task["responses_create_params"]
    metadata = {"domain": "agent", "ground_truth": task["ground_truth"], "tools": params["tools"]}
    prompt = templated if templated is not None else params["input"]
    return (cls or SampleDouble)(prompt=prompt, metadata=metadata)


async def play(
    tokenizer, db, sample, script, *, limits=None, generate=None, env=None, finish=None, kwargs=None, aborted=None
):
    """Run one episode of `script` against a fresh stand-in server; returns the server (requests, outputs)."""
    from m2rl_slime.agent.env import allowed_tools
    from m2rl_slime.agent.episode import LocalEpisodeEnv, run_episode
    from m2rl_slime.agent.template import ChatRenderer

    limits = limits or LIMITS
    server = await ScriptedSGLang(tokenizer, script, finish=finish).start()
    try:
        await run_episode(
            sample,
            args=None,
            renderer=ChatRenderer(tokenizer, kwargs),
            generate=generate or http_generate(server.url),
            env=env or LocalEpisodeEnv(db, allowed_tools(sample.metadata["tools"])),
            limits=limits,
            sampling_params={"temperature": 1.0, "max_new_tokens": limits.max_response_tokens},
            tools=sample.metadata["tools"],
            aborted=aborted,
        )
    finally:
        await server.stop()
    return server
