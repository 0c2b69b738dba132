"""A loopback stand-in for an SGLang server with its OpenAI-compatible API, for the evaluation tests.

`FakeModel` answers deterministically from the prompt and the request's seed, so a sample's outcome is a
function of its key (benchmark, uid, sample index) only: a resumed run and an uninterrupted run produce the
same samples. The tests compute the expected rewards with the same rule (`FakeModel.correct`).

Endpoints: ``POST /v1/chat/completions`` (tools and tool calls; ``reasoning_content`` split when
``split_reasoning``), ``POST /generate`` (token ids, decoded with the test tokenizer), ``GET /v1/models``.
It can answer the first requests with HTTP 503 (``fail_first``), delay every generation (``latency``),
and act as the HLE judge (a prompt that starts with the judge's instruction).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback import Loopback  # noqa: E402

JUDGE_MARK = "You are grading an answer"


@dataclass
class FakeModel:
    """Right on seeds with ``seed % 3 != 0`` (two thirds), wrong otherwise."""

    def correct(self, seed: int) -> bool:
        return seed % 3 != 0

    def answer(self, prompt: str, seed: int) -> str:
        right = self.correct(seed)
        if "[math]" in prompt:
            a, b = (int(x) for x in re.search(r"What is (\d+)\+(\d+)\?", prompt).groups())
            return (
                f"<think>\nadding {a} and {b}\n</think>\n\nThe answer is \\boxed{{{a + b if right else a + b + 1}}}."
            )
        if "[science]" in prompt:
            return f"<think>\nhm\n</think>\n\nAnswer: {'B' if right else 'C'}"
        if "[if]" in prompt:
            return "<think>\nok\n</think>\n\n" + ("A cat is soft and quiet." if right else "A cat is soft, and quiet.")
        if "[hle]" in prompt:
            gold = re.search(r"gold=(\w+)", prompt).group(1)
            return f"<think>\nrecall\n</think>\n\nFinal answer: {gold if right else 'nothing'}"
        return "<think>\n?\n</think>\n\nI do not know."

    def judge(self, prompt: str) -> str:
        response = prompt.split("RESPONSE:\n", 1)[1].split("\n\nCORRECT ANSWER:", 1)[0]
        gold = prompt.split("CORRECT ANSWER:\n", 1)[1].split("\n", 1)[0].strip()
        said = response.rsplit("Final answer:", 1)[-1].strip()
        verdict = "yes" if said == gold else "no"
        return f"extracted_final_answer: {said}\nreasoning: compared.\ncorrect: {verdict}\nconfidence: 100"


@dataclass
class FakeServer(Loopback):
    """The server, in its own thread and event loop (see the module docstring)."""

    tokenizer: Any = None
    model: FakeModel = field(default_factory=FakeModel)
    latency: float = 0.0
    fail_first: int = 0
    split_reasoning: bool = False
    model_id: str = "fake-model"
    requests: list[dict] = field(default_factory=list)
    busy_s: float = 0.0
    inflight: int = 0
    max_inflight: int = 0
    chat_hook: Any = None  # chat_hook(payload) -> an assistant message, or None for the default answers
    port: int = 0

    def __post_init__(self) -> None:
        self._init_loopback()
        self._lock = threading.Lock()

    def routes(self, app: Any) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/generate", self._generate)
        app.router.add_get("/v1/models", self._models)

    def _should_fail(self) -> bool:
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            return False

    async def _models(self, request):
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": self.model_id, "object": "model"}]})

    async def _chat(self, request):
        from aiohttp import web

        started = time.perf_counter()
        payload = await request.json()
        if self._should_fail():
            return web.Response(status=503, text="overloaded")
        self.requests.append({"path": "chat", **{k: v for k, v in payload.items() if k != "messages"},
                              "messages": payload["messages"]})  # fmt: skip
        messages = payload["messages"]
        prompt = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        seed = int(payload.get("seed") or 0)
        message: dict[str, Any] = {"role": "assistant"}
        finish = "stop"
        hooked = self.chat_hook(payload) if self.chat_hook else None
        if hooked is not None:
            message = hooked
        elif prompt.startswith(JUDGE_MARK):
            message["content"] = self.model.judge(prompt)
        elif payload.get("tools") and messages[-1]["role"] == "user":
            call = {"name": payload["tools"][0]["function"]["name"], "arguments": json.dumps({"x": 1})}
            message.update(content=None, tool_calls=[{"id": "call_0", "type": "function", "function": call}])
            finish = "tool_calls"
        elif payload.get("tools"):
            message["content"] = "<think>\nthe tool answered\n</think>\n\nDone: " + str(messages[-1].get("content"))
        else:
            message["content"] = self.model.answer(prompt, seed)
        text = message.get("content") or ""
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.inflight -= 1
        if len(text.split()) > payload["max_tokens"]:
            text, finish = " ".join(text.split()[: payload["max_tokens"]]), "length"
            message["content"] = text
        if self.split_reasoning and "</think>" in text:
            reasoning, content = text.split("</think>", 1)
            message.update(
                reasoning_content=reasoning.replace("<think>", "").strip("\n"), content=content.lstrip("\n")
            )
        self.busy_s += time.perf_counter() - started
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        return web.json_response({"id": "x", "object": "chat.completion", "model": self.model_id,
                                  "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                  "usage": usage})  # fmt: skip

    async def _generate(self, request):
        from aiohttp import web

        started = time.perf_counter()
        payload = await request.json()
        if self._should_fail():
            return web.Response(status=503, text="overloaded")
        self.requests.append({"path": "generate", **payload})
        prompt = self.tokenizer.decode(payload["input_ids"])
        params = payload["sampling_params"]
        text = self.model.answer(prompt, int(params.get("sampling_seed") or 0))
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        finish = "stop"
        if len(ids) > params["max_new_tokens"]:
            ids, finish = ids[: params["max_new_tokens"]], "length"
            text = self.tokenizer.decode(ids)
        await asyncio.sleep(self.latency)
        self.busy_s += time.perf_counter() - started
        meta = {"finish_reason": {"type": finish}, "prompt_tokens": len(payload["input_ids"]),
                "completion_tokens": len(ids)}  # fmt: skip
        return web.json_response({"text": text, "meta_info": meta})
