"""Fixtures of the OPD tests: a tiny random Qwen3, an SGLang `/generate` stand-in serving it, fake samples.

The teacher server computes real log-probs of the tiny model and answers in SGLang's JSON shape:
`meta_info.input_token_logprobs` is one `[logprob, token_id, null]` per input position from
`logprob_start_len`, the first entry's logprob null, at the request's temperature.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

VOCAB = 97


def make_tiny_qwen3(seed: int):
    """A 2-layer random Qwen3 (vocab 97) with weights drawn from a seeded generator."""
    from m2rl_slime.tiny_models import tiny_qwen3

    return tiny_qwen3(
        seed,
        scale=0.3,
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        head_dim=8,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )


def direct_log_probs(model, tokens: list[int], response_length: int, temperature: float) -> list[float]:
    """log q(y_t | prefix) of the last `response_length` tokens, computed in one forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].float() / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    start = len(tokens) - response_length
    return [log_probs[p - 1, tokens[p]].item() for p in range(start, len(tokens))]


class TeacherServer:
    """Loopback stand-in for an SGLang server: POST /generate, GET /health_generate.

    Args:
        model: The teacher model (None: a server that only answers health checks).
        fail_first: Answer the first N /generate requests with `fail_status`.
        mode: `ok`, `short` (one entry missing), `wrong_token` (a token id changed), `positive` (a
            log-prob of +0.5), `null_value` (a null log-prob), `no_meta` (no meta_info), `garbage` (HTML
            with status 200), `hang` (sleep `delay_s` before answering).
        ignore_temperature: Score at T=1 whatever the request says (like SGLang builds that do not
            temperature-scale input log-probs).
    """

    def __init__(
        self,
        model=None,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        mode: str = "ok",
        delay_s: float = 0.0,
        healthy_after: int = 0,
        ignore_temperature: bool = False,
    ) -> None:
        self.model = model
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.mode = mode
        self.delay_s = delay_s
        self.healthy_after = healthy_after
        self.ignore_temperature = ignore_temperature
        self.requests: list[dict[str, Any]] = []
        self.health_checks = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self._runner = None

    async def start(self) -> str:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/generate", self._generate)
        app.router.add_get("/health_generate", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _health(self, request):
        from aiohttp import web

        self.health_checks += 1
        return web.Response(status=200 if self.health_checks > self.healthy_after else 503)

    async def _generate(self, request):
        from aiohttp import web

        payload = await request.json()
        self.requests.append(payload)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s if self.mode == "hang" else 0.01)
            if len(self.requests) <= self.fail_first:
                return web.Response(status=self.fail_status, text="server busy")
            if self.mode == "garbage":
                return web.Response(status=200, text="<html>proxy error</html>")
            return web.json_response(self._reply(payload))
        finally:
            self.in_flight -= 1

    def _reply(self, payload: dict[str, Any]) -> dict[str, Any]:
        ids = payload["input_ids"]
        start = payload["logprob_start_len"]
        temperature = 1.0 if self.ignore_temperature else payload["sampling_params"]["temperature"]
        with torch.no_grad():
            logits = self.model(torch.tensor([ids])).logits[0].float() / temperature
        log_probs = torch.log_softmax(logits, dim=-1)
        entries = [[None, ids[start], None]]
        entries += [[log_probs[p - 1, ids[p]].item(), ids[p], None] for p in range(start + 1, len(ids))]
        if self.mode == "short":
            entries = entries[:-1]
        elif self.mode == "wrong_token":
            entries[-1][1] = (entries[-1][1] + 1) % VOCAB
        elif self.mode == "positive":
            entries[-1][0] = 0.5
        elif self.mode == "null_value":
            entries[-1][0] = None
        elif self.mode == "no_meta":
            return {"text": ""}
        return {"text": "", "meta_info": {"input_token_logprobs": entries, "prompt_tokens": len(ids)}}


class Status(enum.Enum):
    """Stand-in of slime's Sample.Status (the hook only reads `.value`)."""

    COMPLETED = "completed"
    ABORTED = "aborted"


@dataclass
class FakeSample:
    """The Sample fields the hook reads and writes (the contract test uses slime's real Sample)."""

    tokens: list[int]
    response_length: int
    metadata: dict = field(default_factory=dict)
    loss_mask: list[int] | None = None
    rollout_log_probs: list[float] | None = None
    teacher_log_probs: list[float] | None = None
    reward: Any = None
    status: Status = Status.COMPLETED
    index: int = 0
    group_index: int = 0
    remove_sample: bool = False


def make_args(opd: dict[str, Any], *, mode: str = "custom_loss", temperature: float = 1.0, **extra: Any):
    """slime-like args: the OPD setting plus the flags that select upstream or custom-loss mode."""
    flags: dict[str, Any] = {"rollout_temperature": temperature, "m2rl_opd": opd, "seed": 1}
    if mode == "upstream":
        flags.update(use_opd=True, opd_type="sglang", loss_type="policy_loss", custom_loss_function_path=None)
    else:
        flags.update(use_opd=False, loss_type="custom_loss", custom_loss_function_path="m2rl_slime.opd.opd_loss")
    flags.update(extra)
    return argparse.Namespace(**flags)


@pytest.fixture(scope="session")
def teacher_model():
    return make_tiny_qwen3(seed=11)


@pytest.fixture(scope="session")
def student_model():
    return make_tiny_qwen3(seed=23)


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (conftest is not importable under --import-mode=importlib)."""
    return argparse.Namespace(
        TeacherServer=TeacherServer,
        FakeSample=FakeSample,
        Status=Status,
        make_args=make_args,
        direct_log_probs=direct_log_probs,
        make_tiny_qwen3=make_tiny_qwen3,
        VOCAB=VOCAB,
    )


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
