"""TeacherRouter against loopback SGLang stand-ins serving a tiny random Qwen3.

Pins: teacher log-probs equal a direct forward pass at the rollout temperature and are aligned with
the response tokens; the request asks only for what is needed; bad replies (short, wrong tokens,
positive log-probs, missing fields, 4xx) fail at once naming teacher, domain and URL; transient
failures are retried with round-robin failover; a teacher that stays down fails naming itself;
concurrency per teacher is bounded; routing never falls back to a default teacher.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from m2rl_slime.config import parse_dataclass
from m2rl_slime.errors import ConfigError, LabelError, TeacherError, UnknownNameError
from m2rl_slime.opd.config import OPDConfig
from m2rl_slime.opd.teachers import TeacherRouter, scoring_payload

PROMPT = [5, 17, 3, 44, 9]
RESPONSES = [[12, 80, 7], [61, 2, 2, 33, 90, 14], [4]]


def config(urls, **extra) -> OPDConfig:
    raw = {
        "teachers": {"math": {"urls": list(urls), "name": "math-expert"}},
        "no_teacher": {"agent": "skip"},
        "backoff_s": 0.001,
        "backoff_max_s": 0.01,
        **extra,
    }
    return parse_dataclass(OPDConfig, raw, "test")


async def _with_servers(servers, body):
    urls = [await s.start() for s in servers]
    try:
        return await body(urls)
    finally:
        for s in servers:
            await s.stop()


def test_log_probs_match_direct_forward_and_round_robin(kit, teacher_model):
    servers = [kit.TeacherServer(teacher_model), kit.TeacherServer(teacher_model)]

    async def body(urls):
        router = TeacherRouter(config(urls), temperature=0.7)
        scores = [await router.score("math", PROMPT + r, len(r)) for r in RESPONSES]
        await router.aclose()
        return scores

    scores = asyncio.run(_with_servers(servers, body))
    for response, score in zip(RESPONSES, scores, strict=True):
        expected = kit.direct_log_probs(teacher_model, PROMPT + response, len(response), 0.7)
        assert score.log_probs == pytest.approx(expected, abs=1e-5)
        assert score.attempts == 1
    # round-robin over the two URLs; the first sample is also scored once at T=1 (temperature check)
    assert [len(s.requests) for s in servers] == [2, 2]
    assert [r["sampling_params"]["temperature"] for r in servers[1].requests] == [1.0, 0.7]
    first = servers[0].requests[0]
    assert first["logprob_start_len"] == len(PROMPT) - 1
    assert first["return_logprob"] is True
    assert first["sampling_params"]["max_new_tokens"] == 0
    assert first["sampling_params"]["temperature"] == 0.7
    assert first["sampling_params"]["top_p"] == 1.0 and first["sampling_params"]["top_k"] == -1


def test_temperature_changes_the_scores(kit, teacher_model):
    async def body(urls):
        cold = TeacherRouter(config(urls), temperature=0.5)
        hot = TeacherRouter(config(urls), temperature=1.0)
        scores = [await r.score("math", PROMPT + RESPONSES[1], 6) for r in (cold, hot)]
        await cold.aclose()
        await hot.aclose()
        return scores

    cold, hot = asyncio.run(_with_servers([kit.TeacherServer(teacher_model)], body))
    assert cold.log_probs != pytest.approx(hot.log_probs, abs=1e-3)


def test_server_ignoring_temperature_is_caught(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, ignore_temperature=True)

    async def body(urls):
        router = TeacherRouter(config(urls), temperature=0.7)
        try:
            with pytest.raises(TeacherError, match="does not temperature-scale input log-probs"):
                await router.score("math", PROMPT + RESPONSES[1], 6)
        finally:
            await router.aclose()

    asyncio.run(_with_servers([server], body))


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("short", "expected 4 input_token_logprobs entries"),
        ("wrong_token", "teacher scored token"),
        ("positive", "is not a log-probability"),
        ("null_value", "log-prob None is not a finite number"),
        ("no_meta", "no meta_info.input_token_logprobs"),
    ],
)
def test_bad_replies_fail_at_once_naming_teacher(kit, teacher_model, mode, needle):
    server = kit.TeacherServer(teacher_model, mode=mode)

    async def body(urls):
        router = TeacherRouter(config(urls), temperature=1.0)
        try:
            with pytest.raises(TeacherError) as info:
                await router.score("math", PROMPT + RESPONSES[0], 3, sample_id="s7")
        finally:
            await router.aclose()
        return str(info.value), urls[0]

    message, url = asyncio.run(_with_servers([server], body))
    assert needle in message and "'math-expert'" in message and "'math'" in message and url in message
    assert "s7" in message
    assert len(server.requests) == 1  # a wrong answer is not retried


def test_client_error_status_is_not_retried(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, fail_first=5, fail_status=400)

    async def body(urls):
        router = TeacherRouter(config(urls), temperature=1.0)
        with pytest.raises(TeacherError, match="HTTP 400"):
            await router.score("math", PROMPT + [1, 2], 2)
        await router.aclose()

    asyncio.run(_with_servers([server], body))
    assert len(server.requests) == 1


def test_transient_failures_are_retried(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, fail_first=2, fail_status=503)

    async def body(urls):
        router = TeacherRouter(config(urls, max_retries=3), temperature=1.0)
        score = await router.score("math", PROMPT + RESPONSES[0], 3)
        await router.aclose()
        return score

    score = asyncio.run(_with_servers([server], body))
    assert score.attempts == 3
    assert score.log_probs == pytest.approx(
        kit.direct_log_probs(teacher_model, PROMPT + RESPONSES[0], 3, 1.0), abs=1e-5
    )


def test_non_json_reply_is_retried(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, mode="garbage")

    async def body(urls):
        router = TeacherRouter(config(urls, max_retries=1), temperature=1.0)
        with pytest.raises(TeacherError, match="reply is not JSON"):
            await router.score("math", PROMPT + [1], 1)
        await router.aclose()

    asyncio.run(_with_servers([server], body))
    assert len(server.requests) == 2


def test_dead_url_fails_over_to_the_next(kit, teacher_model, unused_port):
    server = kit.TeacherServer(teacher_model)

    async def body(urls):
        router = TeacherRouter(config([f"http://127.0.0.1:{unused_port}", urls[0]]), temperature=1.0)
        score = await router.score("math", PROMPT + [3], 1)
        await router.aclose()
        return score

    score = asyncio.run(_with_servers([server], body))
    assert score.attempts == 2 and score.url == server.url


def test_teacher_that_stays_down_fails_naming_teacher_and_domain(unused_port):
    url = f"http://127.0.0.1:{unused_port}"

    async def body():
        router = TeacherRouter(config([url], max_retries=2), temperature=1.0)
        try:
            await router.score("math", PROMPT + [3], 1, sample_id="(rollout 4, group 1, index 9)")
        finally:
            await router.aclose()

    with pytest.raises(TeacherError) as info:
        asyncio.run(body())
    message = str(info.value)
    assert "teacher 'math-expert' for domain 'math' failed 3 attempt(s)" in message
    assert url in message and "index 9" in message


def test_timeout_is_retried_then_fails(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, mode="hang", delay_s=0.6)

    async def body(urls):
        router = TeacherRouter(config(urls, timeout_s=0.2, max_retries=1), temperature=1.0)
        with pytest.raises(TeacherError, match="TimeoutError"):
            await router.score("math", PROMPT + [3], 1)
        await router.aclose()

    asyncio.run(_with_servers([server], body))
    assert len(server.requests) == 2


def test_concurrency_per_teacher_is_bounded(kit, teacher_model):
    server = kit.TeacherServer(teacher_model, mode="hang", delay_s=0.05)
    rng = random.Random(0)
    responses = [[rng.randrange(kit.VOCAB) for _ in range(rng.randint(1, 5))] for _ in range(10)]

    async def body(urls):
        raw = {"teachers": {"math": {"urls": urls, "max_concurrency": 2}}}
        router = TeacherRouter(parse_dataclass(OPDConfig, raw, "test"), temperature=1.0)
        scores = await asyncio.gather(*(router.score("math", PROMPT + r, len(r)) for r in responses))
        await router.aclose()
        return scores

    scores = asyncio.run(_with_servers([server], body))
    assert server.max_in_flight == 2
    assert [len(s.log_probs) for s in scores] == [len(r) for r in responses]


def test_route_never_falls_back_to_a_default_teacher():
    router = TeacherRouter(
        config(["http://127.0.0.1:1"], no_teacher={"agent": "skip", "code": "error"}), temperature=1.0
    )
    assert router.route("math").has_teacher
    assert router.route("deepscaler").domain == "math"  # M2RL rm_type alias
    assert not router.route("workbench").has_teacher  # agent: skip
    with pytest.raises(ConfigError, match="policy is 'error'"):
        router.route("unit_test")
    with pytest.raises(ConfigError, match="'science', which has no teacher"):
        router.route("gpqa")
    with pytest.raises(UnknownNameError, match="'poetry'"):
        router.route("poetry")
    with pytest.raises(LabelError, match="no metadata"):
        router.route(None, sample_id="s1")


def test_payload_and_bad_inputs():
    payload = scoring_payload([1, 2, 3, 4], 2, 0.9)
    assert payload["logprob_start_len"] == 1 and payload["input_ids"] == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="temperature"):
        TeacherRouter(config(["http://127.0.0.1:1"]), temperature=0.0)
    router = TeacherRouter(config(["http://127.0.0.1:1"]), temperature=1.0)
    with pytest.raises(TeacherError, match="at least one prompt"):
        asyncio.run(router.score("math", [1, 2], 2))
