"""Routing samples to their domain's teacher and scoring them through SGLang's `/generate`.

A teacher scores the student's own tokens: prompt + response ids are posted with `max_new_tokens: 0`
and `return_logprob: true`, so SGLang runs one prefill and returns the log-probability of every input
token from `logprob_start_len` on. SGLang's reply (`meta_info.input_token_logprobs`) is a list of
`[logprob, token_id, text|null]` entries, one per input position from `logprob_start_len`; the first
entry's logprob is null (no context is scored for it). Asking from `prompt_len - 1` therefore returns
exactly `1 + response_length` entries, whose last `response_length` are the response tokens' log-probs.
This also lets SGLang's radix cache reuse the prompt prefill across the n samples of a group.

Nothing here imports slime; aiohttp is imported when the first request is made.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domains import canonical_domain
from ..errors import ConfigError, LabelError, TeacherError, UnknownNameError
from .config import OPDConfig, base_url

logger = logging.getLogger(__name__)

# Statuses worth retrying: the server is starting, overloaded, or a proxy hiccupped.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A log-prob above this is not a log-prob (tolerates float noise around 0).
MAX_LOGPROB = 1e-3


@dataclass(frozen=True, slots=True)
class Route:
    """Where a sample goes: its canonical domain and whether that domain has a teacher."""

    domain: str
    has_teacher: bool


@dataclass(frozen=True, slots=True)
class TeacherScore:
    """Teacher log-probs of one sample's response tokens, with where and how they were obtained."""

    log_probs: list[float]
    url: str
    attempts: int
    latency_s: float


class _Retryable(Exception):
    """A transient failure of one attempt (bad status, unreadable body)."""


class _BadReply(Exception):
    """A reply that is well-formed HTTP but cannot be the log-probs we asked for (not retried)."""


def scoring_payload(tokens: Sequence[int], response_length: int, temperature: float) -> dict[str, Any]:
    """The `/generate` request that scores `tokens` without generating anything.

    Sampling parameters are all explicit: SGLang otherwise fills unspecified ones from the checkpoint's
    `generation_config.json` (e.g. Qwen3's temperature 0.6), which would silently change the scale.
    """
    return {
        "input_ids": list(tokens),
        "sampling_params": {
            "temperature": temperature,
            "top_p": 1.0,
            "top_k": -1,
            "min_p": 0.0,
            "max_new_tokens": 0,
            "skip_special_tokens": False,
        },
        "return_logprob": True,
        "logprob_start_len": len(tokens) - response_length - 1,
        "return_text_in_logprobs": False,
    }


def parse_teacher_log_probs(reply: Any, tokens: Sequence[int], response_length: int) -> list[float]:
    """Extract and check the response tokens' log-probs from a `/generate` reply to `scoring_payload`.

    Every entry is checked against the token it claims to score, so a reply for a different or
    truncated sequence is never silently accepted.

    Raises:
        _BadReply: missing fields, wrong number of entries, token ids that do not match `tokens`, or
            log-probs that are not finite numbers <= 0.
    """
    meta = reply.get("meta_info") if isinstance(reply, Mapping) else None
    entries = meta.get("input_token_logprobs") if isinstance(meta, Mapping) else None
    if not isinstance(entries, list):
        raise _BadReply(f"reply has no meta_info.input_token_logprobs list (keys: {_keys(reply)})")
    start = len(tokens) - response_length - 1
    if len(entries) != response_length + 1:
        raise _BadReply(
            f"expected {response_length + 1} input_token_logprobs entries (logprob_start_len={start}, "
            f"{len(tokens)} tokens, response_length={response_length}), got {len(entries)}"
        )
    try:  # fast path: C-level comprehensions and comparisons (replies carry up to ~32k entries)
        values = [entry[0] for entry in entries[1:]]
        ids = [entry[1] for entry in entries[1:]]
        ok = ids == list(tokens[start + 1 :]) and math.isfinite(math.fsum(values)) and max(values) <= MAX_LOGPROB
    except (TypeError, IndexError, KeyError, ValueError, OverflowError):
        ok = False
    if ok and not any(isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    raise _BadReply(_first_bad_entry(entries, tokens, start))


def _first_bad_entry(entries: list[Any], tokens: Sequence[int], start: int) -> str:
    """Describe the first entry that is not `[finite log-prob <= 0, matching token id, ...]`."""
    for offset, entry in enumerate(entries[1:], start=start + 1):
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            return f"entry for position {offset} is not [logprob, token_id, ...]: {entry!r}"
        value, token_id = entry[0], entry[1]
        if token_id != tokens[offset]:
            return f"position {offset}: teacher scored token {token_id!r}, the sample has {tokens[offset]}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"position {offset}: log-prob {value!r} is not a finite number"
        if value > MAX_LOGPROB:
            return f"position {offset}: log-prob {value} > 0 is not a log-probability"
    return "input_token_logprobs entries do not sum to a finite value"


class _LoopState:
    """The HTTP session and per-teacher semaphores of one event loop (aiohttp objects are loop-bound)."""

    def __init__(self, config: OPDConfig) -> None:
        import aiohttp

        total = sum(config.concurrency(domain) for domain in config.teachers)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=total, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=config.timeout_s, connect=config.connect_timeout_s),
        )
        self.semaphores = {domain: asyncio.Semaphore(config.concurrency(domain)) for domain in config.teachers}


class TeacherRouter:
    """Maps a sample's domain to its teacher and fetches teacher log-probs with retries.

    One instance serves a whole rollout process: it keeps one aiohttp session per event loop,
    bounds in-flight requests per teacher, rotates over each teacher's URLs, and retries transient
    failures with capped exponential backoff. Errors name the teacher, its domain and the URL(s).

    Args:
        config: The parsed `m2rl_opd` setting.
        temperature: The rollout temperature (`args.rollout_temperature`); sent with every request so
            the teacher is scored at the same temperature as the student.
        seed: Seed of the backoff jitter.
    """

    def __init__(self, config: OPDConfig, *, temperature: float, seed: int = 0) -> None:
        if not temperature > 0:
            raise ConfigError(f"rollout temperature must be > 0 to score teachers, got {temperature}")
        self.config = config
        self.temperature = float(temperature)
        self._urls = {domain: tuple(base_url(u) for u in t.urls) for domain, t in config.teachers.items()}
        self._cursor = {domain: itertools.count() for domain in config.teachers}
        self._rng = random.Random(seed)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._temperature_checked: set[str] = set()

    def route(self, raw_domain: object, *, sample_id: str = "?") -> Route:
        """Resolve a sample's domain (a canonical name or an M2RL alias such as `deepscaler`).

        Raises:
            LabelError: the sample carries no domain.
            UnknownNameError: the name is not a domain at all.
            ConfigError: the domain is neither in `teachers` nor `no_teacher`, or its policy is `error`.
        """
        if raw_domain is None or raw_domain == "":
            raise LabelError(f"sample {sample_id} has no metadata['domain'] (nor 'rm_type'): cannot pick a teacher")
        try:
            domain = canonical_domain(raw_domain)
        except UnknownNameError as exc:
            raise UnknownNameError("domain of sample " + sample_id, raw_domain, exc.known) from None
        if domain in self.config.teachers:
            return Route(domain, True)
        policy = self.config.no_teacher.get(domain)
        if policy == "skip":
            return Route(domain, False)
        if policy == "error":
            raise ConfigError(f"sample {sample_id} has domain {domain!r}, whose m2rl_opd.no_teacher policy is 'error'")
        raise ConfigError(
            f"sample {sample_id} has domain {domain!r}, which has no teacher: add it to m2rl_opd.teachers, or to "
            f"m2rl_opd.no_teacher as skip/error (teachers configured: {', '.join(sorted(self.config.teachers))})"
        )

    async def score(
        self, domain: str, tokens: Sequence[int], response_length: int, *, sample_id: str = "?"
    ) -> TeacherScore:
        """Teacher log-probs of the last `response_length` of `tokens`, aligned with them.

        The first sample scored by each teacher at a temperature other than 1 is scored again at 1:
        SGLang versions that do not temperature-scale *input* log-probs return the same values, and
        would silently compare a T=1 teacher with a tempered student, so that is an error.

        Raises:
            TeacherError: the teacher stayed unreachable for all attempts, rejected the request,
                returned log-probs that do not match the sample, or ignores the temperature (named:
                teacher, domain, URL, sample).
        """
        name = self.config.teacher_name(domain)
        if response_length < 1 or len(tokens) - response_length < 1:
            raise TeacherError(
                f"teacher {name!r} (domain {domain!r}): sample {sample_id} has {len(tokens)} tokens and "
                f"response_length {response_length}; need at least one prompt and one response token"
            )
        score = await self._score_at(self.temperature, domain, tokens, response_length, sample_id)
        if self.temperature != 1.0 and domain not in self._temperature_checked:
            plain = await self._score_at(1.0, domain, tokens, response_length, sample_id)
            unchanged = all(abs(a - b) < 1e-6 for a, b in zip(score.log_probs, plain.log_probs, strict=True))
            if unchanged and any(abs(b) > 1e-3 for b in plain.log_probs):
                raise TeacherError(
                    f"teacher {name!r} at {score.url} (domain {domain!r}) returns the same input log-probs at "
                    f"temperature {self.temperature} and 1.0: this SGLang build does not temperature-scale input "
                    "log-probs, so the teacher would not be scored at the rollout temperature. Use "
                    "--rollout-temperature 1.0 or an SGLang that scales them (docs/opd.md)."
                )
            self._temperature_checked.add(domain)
        return score

    async def _score_at(
        self, temperature: float, domain: str, tokens: Sequence[int], response_length: int, sample_id: str
    ) -> TeacherScore:
        name = self.config.teacher_name(domain)
        payload = scoring_payload(tokens, response_length, temperature)
        state = self._loop_state()
        attempts = 1 + self.config.max_retries
        started = time.monotonic()
        last_error = ""
        for attempt in range(attempts):
            url = self._next_url(domain)
            try:
                async with state.semaphores[domain]:
                    reply = await self._post(state, url, payload)
                log_probs = parse_teacher_log_probs(reply, tokens, response_length)
            except _Retryable as exc:
                last_error = f"{url}: {exc}"
            except _BadReply as exc:
                raise TeacherError(
                    f"teacher {name!r} at {url} (domain {domain!r}) gave an unusable reply for sample {sample_id}: "
                    f"{exc}. The teacher must share the student's tokenizer and serve SGLang's /generate."
                ) from None
            else:
                return TeacherScore(log_probs, url, attempt + 1, time.monotonic() - started)
            if attempt + 1 < attempts:
                delay = min(self.config.backoff_max_s, self.config.backoff_s * 2**attempt)
                logger.warning(
                    "teacher %r (domain %r) attempt %d/%d failed: %s", name, domain, attempt + 1, attempts, last_error
                )
                await asyncio.sleep(delay * (0.5 + 0.5 * self._rng.random()))
        raise TeacherError(
            f"teacher {name!r} for domain {domain!r} failed {attempts} attempt(s) over "
            f"{', '.join(self._urls[domain])} for sample {sample_id}; last error: {last_error}. "
            "Check the server (python -m m2rl_slime.opd wait-teachers) or raise m2rl_opd.timeout_s/max_retries."
        )

    async def aclose(self) -> None:
        """Close the HTTP session of the running event loop (if one was opened)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.pop(loop, None)
        if state is not None:
            await state.session.close()

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None or state.session.closed:
                state = self._loops[loop] = _LoopState(self.config)
            return state

    def _next_url(self, domain: str) -> str:
        urls = self._urls[domain]
        return urls[next(self._cursor[domain]) % len(urls)]

    async def _post(self, state: _LoopState, url: str, payload: dict[str, Any]) -> Any:
        import aiohttp

        try:
            async with state.session.post(url + "/generate", json=payload) as resp:
                if resp.status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {resp.status}: {(await resp.text())[:200]!r}")
                if resp.status >= 400:
                    raise _BadReply(f"HTTP {resp.status} (not retried): {(await resp.text())[:300]!r}")
                body = await resp.read()
            try:
                return _json_loads(body)
            except ValueError as exc:
                raise _Retryable(f"reply is not JSON: {exc}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def _json_loads(body: bytes) -> Any:
    """Decode a reply with orjson when installed (slime's image has it), else the stdlib."""
    return _json_decoder()(body)


@functools.lru_cache(maxsize=1)
def _json_decoder() -> Callable[[bytes], Any]:
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def _keys(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, Mapping) else type(value).__name__
