"""The HLE judge client against a fake OpenAI-compatible server on loopback: prompt filling, structured
output, fallbacks (a server that refuses response_format, plain-text replies), retries, failures that are
not scores, the samples-file command and its resumption, and the official calibration error."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval import hle_judge
from m2rl_slime.eval.hle_judge import JudgeSettings, calibration_error, judge, parse_reply, render

ROW = {
    "prompt": [{"role": "system", "content": "format"}, {"role": "user", "content": "What is 6 x 7?"}],
    "label": "42",
    "metadata": {"domain": "math", "uid": "q1", "benchmark": "hle", "answer_type": "exactMatch"},
}


class FakeJudge:
    """/v1/chat/completions that answers "yes" when the response holds the gold answer.

    `mode`: "json" (structured), "text" (key: value lines), "no_schema" (HTTP 400 on response_format),
    "flaky" (HTTP 429 on every first attempt), "down" (HTTP 503), "garbage" (a reply without a verdict).
    """

    def __init__(self, mode: str = "json"):
        self.mode, self.requests, self.seen = mode, [], set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        runner = self.runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def handle(self, request):
        from aiohttp import web

        payload = await request.json()
        self.requests.append(payload)
        prompt = payload["messages"][0]["content"]
        if self.mode == "down":
            return web.Response(status=503, text="overloaded")
        if self.mode == "flaky" and prompt not in self.seen:
            self.seen.add(prompt)
            return web.Response(status=429, text="slow down")
        if self.mode == "no_schema" and "response_format" in payload:
            return web.Response(status=400, text="response_format is not supported")
        response = prompt.split("[response]: ", 1)[1].split("\n\n[correct_answer]", 1)[0]
        gold = prompt.rsplit("[correct_answer]: ", 1)[1].split("\n", 1)[0]
        verdict = "yes" if gold in response else "no"
        if self.mode == "garbage":
            content = "I cannot decide."
        elif self.mode in ("text", "no_schema"):
            content = f"**extracted_final_answer**: {response[-3:]}\nreasoning: compared\ncorrect: {verdict}\nconfidence: 70%"
        else:
            content = "```json\n" + json.dumps({"extracted_final_answer": response[-3:], "reasoning": "compared",
                                                 "correct": verdict, "confidence": 85}) + "\n```"  # fmt: skip
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": content}}]})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def server(request):
    fake = FakeJudge(getattr(request, "param", "json"))
    yield fake
    fake.close()


def run(pairs, url, **overrides):
    return asyncio.run(judge(pairs, url, backoff_s=0.01, **overrides))


def test_structured_verdicts_and_what_is_sent(server):
    pairs = [(ROW, {"response": "<think>6*7</think>Explanation: x\nExact Answer: 42\nConfidence: 85%"}),
             (ROW, "<think>hm</think>Exact Answer: 41"), (ROW, "<think>never closed"), (ROW, {"response": None})]  # fmt: skip
    verdicts = run(pairs, server.url, model="judge-m")
    assert [v.correct for v in verdicts] == [True, False, False, False]
    assert [v.reason for v in verdicts] == ["ok", "wrong", "no_think_close", "empty_response"]
    assert [v.reward for v in verdicts] == [1.0, 0.0, 0.0, 0.0]
    assert verdicts[0].confidence == 85 and verdicts[0].extracted_final_answer == "85%" and verdicts[0].structured
    assert len(server.requests) == 2  # nothing to judge without a closed </think>
    sent = server.requests[0]
    assert sent["model"] == "judge-m" and sent["max_completion_tokens"] == 4096 and "temperature" not in sent
    assert sent["response_format"]["json_schema"]["schema"]["required"] == [
        "extracted_final_answer", "reasoning", "correct", "confidence"]  # fmt: skip
    prompt = sent["messages"][0]["content"]
    assert "[question]: What is 6 x 7?" in prompt and "[correct_answer]: 42" in prompt
    assert "<think>" not in prompt and "Exact Answer: 42\nConfidence: 85%" in prompt


@pytest.mark.parametrize("server", ["text", "no_schema"], indirect=True)
def test_plain_text_replies_and_servers_without_json_schema(server):
    verdicts = run([(ROW, "<think>a</think>Exact Answer: 42"), (ROW, "<think>b</think>Exact Answer: 7")], server.url)
    assert [v.correct for v in verdicts] == [True, False] and verdicts[0].confidence == 70
    if server.mode == "no_schema":
        assert not verdicts[0].structured and "response_format" not in server.requests[-1]


@pytest.mark.parametrize("server", ["flaky"], indirect=True)
def test_retries_after_429(server):
    assert run([(ROW, "<think>a</think>Exact Answer: 42")], server.url)[0].correct is True
    assert len(server.requests) == 2


@pytest.mark.parametrize("server", ["down", "garbage"], indirect=True)
def test_a_failed_judgement_is_not_a_score(server):
    (verdict,) = run([(ROW, "<think>a</think>Exact Answer: 42")], server.url, retries=2)
    assert verdict.correct is None and verdict.reward is None and verdict.error
    assert ("503" in verdict.error) if server.mode == "down" else ("correct: yes/no" in verdict.error)


def test_unreachable_server():
    (verdict,) = run([(ROW, "<think>a</think>x")], "http://127.0.0.1:9/v1", retries=1)
    assert verdict.reward is None and "unreachable" in verdict.error


def test_prompt_placeholders_are_filled_once():
    template = "Q={question} R={response} A={correct_answer}"
    assert render(template, "q {response}", "r {correct_answer}", "a") == "Q=q {response} R=r {correct_answer} A=a"
    with pytest.raises(ConfigError, match=r"\{correct_answer\}"):
        asyncio.run(judge([], "http://x", prompt="no slots {question} {response}"))
    with pytest.raises(ConfigError, match="--judge-url"):
        asyncio.run(judge([], "ftp://x"))
    assert JudgeSettings("http://h/v1/").endpoint == "http://h/v1/chat/completions"
    assert JudgeSettings("http://h/v1/chat/completions").endpoint == "http://h/v1/chat/completions"
    a, b = (
        JudgeSettings("http://h", model="m"),
        JudgeSettings("http://h", model="m", prompt="{question}{response}{correct_answer}"),
    )
    assert a.scorer_version.startswith("hle_judge/1 prompt:") and a.scorer_version.endswith("model:m")
    assert a.scorer_version != b.scorer_version  # the prompt text is part of the scorer's version


@pytest.mark.parametrize(
    "reply,correct,confidence",
    [
        ('{"extracted_final_answer": "B", "reasoning": "r", "correct": "yes", "confidence": 90}', True, 90),
        ('Sure:\n```json\n{"correct": "no", "confidence": "40%"}\n```', False, 40),
        ("extracted_final_answer: B\nreasoning: close\ncorrect: Yes.\nconfidence: 55", True, 55),
        ("- **correct:** no\n- **confidence:** 100", False, 100),
        ('<think>maybe {"correct": "yes"}? correct: yes</think>{"correct": "no", "confidence": 5}', False, 5),
    ],
)
def test_parse_reply(reply, correct, confidence):
    fields = parse_reply(reply)
    assert (fields["correct"], fields["confidence"]) == (correct, confidence)


def test_parse_reply_refuses_a_reply_without_verdict():
    for reply in ("", "correct: maybe", '{"correct": true}', "{" * 100_000):
        with pytest.raises(ValueError):
            parse_reply(reply)


def test_calibration_error_as_the_official_harness():
    assert calibration_error([50] * 99, [True] * 99) is None  # fewer than one bin
    # 300 verdicts, bins [0,100) [100,200) [200,300): the last bin is left out, as in the official code
    confidences = [90] * 100 + [60] * 100 + [10] * 100
    correct = [True] * 100 + [False] * 100 + [True] * 100
    gap_low, gap_mid = 0.10 - 1.0, 0.60 - 0.0  # sorted: the 10s, then the 60s
    assert calibration_error(confidences, correct) == pytest.approx(
        100 * (100 / 300 * (gap_low**2 + gap_mid**2)) ** 0.5
    )


def test_samples_file_command_resumes(server, tmp_path):
    rows = tmp_path / "hle.jsonl"
    other = {**ROW, "label": "7", "metadata": {**ROW["metadata"], "uid": "q2"}}
    rows.write_text(json.dumps(ROW) + "\n" + json.dumps(other) + "\n")
    samples = tmp_path / "samples.jsonl"
    lines = [{"benchmark": "hle", "uid": "q1", "sample_idx": i, "response": f"<think>t</think>Exact Answer: {a}"}
             for i, a in enumerate(["42", "41"])]  # fmt: skip
    lines.append({"benchmark": "hle", "uid": "q2", "sample_idx": 0, "response": "<think>t</think>Exact Answer: 7"})
    lines.append({"benchmark": "aime25", "uid": "zz", "sample_idx": 0, "response": "x"})
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "verdicts.jsonl"
    args = ["--rows", str(rows), "--samples", str(samples), "--out", str(out), "--judge-url", server.url,
            "--judge-model", "m", "--no-progress"]  # fmt: skip
    assert hle_judge.main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["uid"], r["sample_idx"], r["reward"]) for r in records] == [
        ("q1", 0, 1.0),
        ("q1", 1, 0.0),
        ("q2", 0, 1.0),
    ]
    assert {r["scorer"] for r in records} == {"hle_judge"} and records[0]["judge_model"] == "m"
    summary = hle_judge.summarize(records, 2)
    assert summary["avg"] == pytest.approx((0.5 + 1.0) / 2) and summary["samples_failed"] == 0
    sent = len(server.requests)
    assert hle_judge.main(args) == 0 and len(server.requests) == sent  # resumed: nothing judged twice
    assert len(out.read_text().splitlines()) == 3
    assert hle_judge.main([*args, "--judge-prompt", str(tmp_path / "missing")]) == 1


def test_rows_must_be_hle(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({**ROW, "metadata": {"uid": "q1", "benchmark": "aime25"}}) + "\n")
    (tmp_path / "s.jsonl").write_text("")
    args = ["--rows", str(rows), "--samples", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "o.jsonl"),
            "--judge-url", "http://127.0.0.1:9/v1"]  # fmt: skip
    assert hle_judge.main(args) == 1 and "no prepared HLE rows" in capsys.readouterr().err
