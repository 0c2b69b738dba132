"""HTTP client of the evaluation runner: OpenAI-compatible ``/v1/chat/completions`` (tools included, for
multi-turn episodes and judges) and SGLang's ``/generate`` (token ids in, for token-level control).

One `Client` spreads requests over several server URLs: at most ``concurrency`` requests are in flight per
URL, each request goes to the URL with the fewest in flight, and a transient failure (connection error,
timeout, HTTP 408/429/5xx) is retried with capped exponential backoff on another URL. A 4xx reply is
not retried. aiohttp sessions are bound to an event loop, so there is one session per loop.

A reply is split into reasoning and content: when the server's reasoning parser returns
``reasoning_content`` the split is the server's, else the text is split on its last ``</think>``. Tool
calls the server parsed out of the text are put back as ``<tool_call>`` blocks after the content.
Nothing here imports slime; aiohttp is imported on the first request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ServerError
from .identity import join_reasoning, split_reasoning
from .suite import Sampling

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# What a multi-turn episode driver calls: the conversation so far and the tools -> the assistant message
# (``{"role": "assistant", "content": ..., "tool_calls": [...], "reasoning_content": ...}``).
ChatFn = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Concurrency, deadlines and retries of a `Client`.

    Attributes:
        concurrency: Requests in flight per URL.
        retries: Further attempts after a transient failure (each on the least-loaded other URL).
        timeout_s: Deadline of one request (a 32k-token generation can take many minutes).
        connect_timeout_s: Deadline of connecting.
        backoff_s: First retry delay; doubled per attempt, capped at `backoff_max_s`, with jitter.
    """

    concurrency: int = 32
    retries: int = 5
    timeout_s: float = 3600.0
    connect_timeout_s: float = 30.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.retries < 0 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise ConfigError("retries must be >= 0, timeout_s > 0 and backoff_s >= 0")


@dataclass(frozen=True, slots=True)
class Completion:
    """One generated response.

    Attributes:
        text: The full response (reasoning and content joined as the model wrote them).
        reasoning: The part before the last ``</think>`` (None: no thinking block).
        content: The part after it (the whole text without a thinking block).
        finish_reason: ``stop``, ``length``, ``abort``, ``tool_calls`` ... as the server said.
        message: The assistant message (content, reasoning_content, tool_calls) for multi-turn use.
    """

    text: str
    reasoning: str | None
    content: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    message: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    attempts: int = 1


class _Retryable(Exception):
    pass


async def run_workers(count: int, worker: Callable[[], Awaitable[None]]) -> None:
    """Run `count` (at least 1) copies of `worker` until all return. When one raises (or the caller is
    cancelled), the others are cancelled and awaited before the error propagates: no request outlives it."""
    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, count))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def base_url(url: str) -> str:
    """``http://host:port`` from a URL that may end in ``/v1`` or ``/``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def chat_payload(
    model: str, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], sampling: Sampling,
    seed: int | None,
) -> dict[str, Any]:  # fmt: skip
    """A chat-completions request with every sampling setting explicit (a server would otherwise fill
    unspecified ones from the checkpoint's generation_config.json)."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
        "n": 1,
        "stream": False,
    }
    if tools:
        payload["tools"] = list(tools)
    if seed is not None:
        payload["seed"] = seed
    if sampling.top_k != -1:
        payload["top_k"] = sampling.top_k
    if sampling.stop_token_ids:
        payload["stop_token_ids"] = list(sampling.stop_token_ids)
    if sampling.chat_template_kwargs:
        payload["chat_template_kwargs"] = dict(sampling.chat_template_kwargs)
    return payload


def generate_payload(input_ids: Sequence[int], sampling: Sampling, seed: int | None) -> dict[str, Any]:
    """An SGLang ``/generate`` request, sampled as slime samples (special tokens kept)."""
    params: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "max_new_tokens": sampling.max_tokens,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    if sampling.stop_token_ids:
        params["stop_token_ids"] = list(sampling.stop_token_ids)
    if seed is not None:
        params["sampling_seed"] = seed
    return {"input_ids": list(input_ids), "sampling_params": params}


def parse_chat(reply: Any, url: str) -> Completion:
    """A chat-completions reply -> `Completion`."""
    try:
        choice = reply["choices"][0]
        message = dict(choice["message"])
    except (KeyError, IndexError, TypeError):
        raise ServerError(f"{url}/v1/chat/completions: reply has no choices[0].message: {str(reply)[:300]}") from None
    content = message.get("content")
    content = _with_tool_calls(content if isinstance(content, str) else "", message.get("tool_calls"))
    server_reasoning = message.get("reasoning_content")
    if isinstance(server_reasoning, str):
        text = join_reasoning(server_reasoning, content)
    else:
        text = content
    reasoning, content = split_reasoning(text)
    usage = reply.get("usage") if isinstance(reply.get("usage"), Mapping) else {}
    message.setdefault("role", "assistant")
    return Completion(
        text, reasoning, content, choice.get("finish_reason"), usage.get("prompt_tokens"),
        usage.get("completion_tokens"), message, url,
    )  # fmt: skip


def _with_tool_calls(content: str, calls: Any) -> str:
    """`content` followed by the server-parsed tool calls as the ``<tool_call>`` blocks the model generated
    (Qwen3's format), so a scorer sees a single-turn answer's calls whether or not the server parsed them."""
    blocks = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function", call) if isinstance(call, Mapping) else {}
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                pass
        payload = json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)
        blocks.append(f"<tool_call>\n{payload}\n</tool_call>")
    return "\n".join(part for part in (content.rstrip(), *blocks) if part)


def parse_generate(reply: Any, url: str, prompt_tokens: int) -> Completion:
    """An SGLang ``/generate`` reply -> `Completion`."""
    if not isinstance(reply, Mapping) or not isinstance(reply.get("text"), str):
        raise ServerError(f"{url}/generate: reply has no text: {str(reply)[:300]}")
    meta = reply.get("meta_info") if isinstance(reply.get("meta_info"), Mapping) else {}
    finish = meta.get("finish_reason")
    finish = finish.get("type") if isinstance(finish, Mapping) else finish
    reasoning, content = split_reasoning(reply["text"])
    message = {"role": "assistant", "content": reply["text"]}
    completion_tokens = meta.get("completion_tokens")
    return Completion(reply["text"], reasoning, content, finish, meta.get("prompt_tokens", prompt_tokens),
                      completion_tokens, message, url)  # fmt: skip


class _LoopState:
    def __init__(self, config: ClientConfig, urls: Sequence[str]):
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.concurrency * len(urls), limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=config.timeout_s, connect=config.connect_timeout_s),
        )
        self.slots = asyncio.Semaphore(config.concurrency * len(urls))


class Client:
    """Requests to one or more servers of the same model (see the module docstring).

    Args:
        urls: Server base URLs (``http://host:port``; a trailing ``/v1`` is accepted).
        config: Concurrency, deadlines and retries.
        seed: Seed of the backoff jitter.
    """

    def __init__(self, urls: Sequence[str], config: ClientConfig | None = None, *, seed: int = 0):
        if not urls:
            raise ConfigError("give at least one --base-url")
        self.urls = tuple(dict.fromkeys(base_url(u) for u in urls))
        self.config = config or ClientConfig()
        self.inflight = dict.fromkeys(self.urls, 0)
        self._cursor = itertools.count()
        self._rng = random.Random(seed)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None or state.session.closed:
                state = self._loops[loop] = _LoopState(self.config, self.urls)
            return state

    def _pick(self, avoid: str | None) -> str:
        start = next(self._cursor)
        order = [self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls))]
        if avoid is not None and len(order) > 1:
            order = [u for u in order if u != avoid] + [avoid]
        return min(order, key=lambda u: self.inflight[u])

    async def post(self, path: str, payload: Mapping[str, Any]) -> tuple[Any, str, int]:
        """POST JSON to the least-loaded URL with retries; return (decoded reply, url, attempts).

        Raises:
            ServerError: a non-retryable HTTP status, or every attempt failed (naming the URLs).
        """
        import aiohttp

        state = self._state()
        attempts = 1 + self.config.retries
        last_url, last_error = None, ""
        for attempt in range(attempts):
            async with state.slots:
                url = self._pick(last_url)
                self.inflight[url] += 1
                try:
                    async with state.session.post(url + path, json=payload) as resp:
                        body = await resp.read()
                        if resp.status in RETRY_STATUSES:
                            raise _Retryable(f"HTTP {resp.status}: {body[:200]!r}")
                        if resp.status >= 400:
                            raise ServerError(f"{url}{path}: HTTP {resp.status} (not retried): {body[:300]!r}")
                    try:
                        return json.loads(body), url, attempt + 1
                    except ValueError as exc:
                        raise _Retryable(f"reply is not JSON: {exc}") from None
                except (_Retryable, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    last_url, last_error = url, f"{url}: {type(exc).__name__}: {exc}"
                finally:
                    self.inflight[url] -= 1
            if attempt + 1 < attempts:
                logger.debug("attempt %d/%d failed: %s", attempt + 1, attempts, last_error)
                delay = min(self.config.backoff_max_s, self.config.backoff_s * 2**attempt)
                await asyncio.sleep(delay * (0.5 + 0.5 * self._rng.random()))
        raise ServerError(f"{path} failed {attempts} attempt(s) over {', '.join(self.urls)}; last: {last_error}")

    async def chat(
        self, model: str, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
        sampling: Sampling, seed: int | None = None,
    ) -> Completion:  # fmt: skip
        """One chat completion."""
        reply, url, attempts = await self.post("/v1/chat/completions", chat_payload(model, messages, tools, sampling, seed))  # fmt: skip
        done = parse_chat(reply, url)
        return Completion(**{**_fields(done), "attempts": attempts})

    async def generate(self, input_ids: Sequence[int], sampling: Sampling, seed: int | None = None) -> Completion:
        """One SGLang ``/generate`` call on token ids."""
        reply, url, attempts = await self.post("/generate", generate_payload(input_ids, sampling, seed))
        done = parse_generate(reply, url, len(input_ids))
        return Completion(**{**_fields(done), "attempts": attempts})

    async def model_id(self) -> str:
        """The first model id the first URL serves (``GET /v1/models``)."""
        state = self._state()
        url = self.urls[0]
        try:
            async with state.session.get(url + "/v1/models") as resp:
                body = await resp.json(content_type=None)
            return str(body["data"][0]["id"])
        except Exception as exc:  # boundary: any failure here means "name the model yourself"
            raise ServerError(f"{url}/v1/models did not name a model ({type(exc).__name__}: {exc}); "
                              "pass --model-id") from None  # fmt: skip

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.pop(loop, None)
        if state is not None:
            await state.session.close()


def _fields(done: Completion) -> dict[str, Any]:
    return {name: getattr(done, name) for name in Completion.__dataclass_fields__}


def bind_chat(client: Client, model: str, sampling: Sampling, seed: int | None, usage: list[Completion]) -> ChatFn:
    """The `ChatFn` an episode driver gets: chat completions with this sample's sampling and seed, each
    turn's `Completion` appended to `usage`."""

    async def chat(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        done = await client.chat(model, messages, tools, sampling, seed)
        usage.append(done)
        return dict(done.message)

    return chat
