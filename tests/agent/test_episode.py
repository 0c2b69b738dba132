"""Full multi-turn episodes: a scripted policy behind a local stand-in for SGLang's `/generate`, a tokenizer
built in the test with a Qwen3-style template, and slime's `Sample` contract (double; the real class is
covered by tests/contract/test_agent_contract.py)."""

from __future__ import annotations

import socket

import pytest
from agent_harness import LIMITS, SampleDouble, call_text, http_generate, make_sample, play, run, turn

from m2rl_slime.agent.env import StepResult, ToolCall, WorkplaceEnv
from m2rl_slime.agent.episode import Limits
from m2rl_slime.agent.verifier import verify


def test_full_episode_is_token_exact_and_verifies(tokenizer, db, tasks, config, script):
    task = tasks[0]
    sample = make_sample(task)
    server = run(play(tokenizer, db, sample, script))
    assert sample.status is SampleDouble.Status.COMPLETED and sample.reward is None
    record = sample.metadata["m2rl_agent"]
    assert record["stop"] == "answered" and record["turns"] == 3 and len(record["calls"]) == 2

    # each turn was conditioned on exactly the previous context + the model's ids + the tool-turn delta
    reqs = [r["input_ids"] for r in server.requests]
    prompt_len = len(reqs[0])
    mask, log_probs = [], []
    for k, out in enumerate(server.outputs):
        mask += [1] * len(out)
        log_probs += [-0.001 * (k + 1) * (i + 1) for i in range(len(out))]
        if k + 1 < len(reqs):
            assert reqs[k + 1][: len(reqs[k]) + len(out)] == reqs[k] + out
            gap = len(reqs[k + 1]) - len(reqs[k]) - len(out)
            mask += [0] * gap
            log_probs += [0.0] * gap
    assert sample.tokens == reqs[-1] + server.outputs[-1]
    assert sample.response_length == len(sample.tokens) - prompt_len == len(sample.loss_mask)
    assert sample.loss_mask == mask and sample.rollout_log_probs == pytest.approx(log_probs)
    assert tokenizer.decode(sample.tokens[prompt_len:]) == sample.response

    # re-tokenising the rendered conversation gives the same ids (the template adds a final "\n")
    env = WorkplaceEnv(db)
    obs = [env.step(ToolCall(c["name"], c["arguments"])).text(LIMITS.max_tool_output_chars) for c in record["calls"]]
    params = task["responses_create_params"]
    conversation = [
        *params["input"],
        {"role": "assistant", "content": script[0]},
        {"role": "tool", "name": "email_search_emails", "content": obs[0]},
        {"role": "assistant", "content": script[1]},
        {"role": "tool", "name": "email_reply_email", "content": obs[1]},
        {"role": "assistant", "content": script[2]},
    ]
    text = tokenizer.apply_chat_template(conversation, tools=params["tools"], tokenize=False)
    assert tokenizer.encode(text, add_special_tokens=False) == sample.tokens + tokenizer.encode("\n")

    result = verify(sample.response, None, sample.metadata, config=config)
    assert (result.score, result.details["calls_source"]) == (1.0, "metadata")


def test_pretemplated_prompt_gives_the_same_stream(tokenizer, db, tasks, script):
    params = tasks[0]["responses_create_params"]
    templated = tokenizer.apply_chat_template(
        params["input"], tools=params["tools"], add_generation_prompt=True, tokenize=False
    )
    a, b = make_sample(tasks[0]), make_sample(tasks[0], templated=templated)
    run(play(tokenizer, db, a, script))
    run(play(tokenizer, db, b, script))
    assert a.tokens == b.tokens and a.loss_mask == b.loss_mask


def test_turn_limit_truncates_after_executing_the_last_calls(tokenizer, db, tasks, wp):
    sample = make_sample(tasks[0])
    server = run(
        play(
            tokenizer,
            db,
            sample,
            [turn("Search again.", call_text("email_search_emails", query=wp.reply_query, page_size=1))],
            limits=Limits(max_turns=2, max_response_tokens=4096),
        )
    )
    assert sample.status is SampleDouble.Status.TRUNCATED and sample.metadata["m2rl_agent"]["stop"] == "turn_limit"
    assert len(server.requests) == 2 and len(sample.metadata["m2rl_agent"]["calls"]) == 2
    assert sample.loss_mask[-len(server.outputs[-1]) :] == [1] * len(server.outputs[-1])  # ends on the model


def test_token_budget_truncates_without_overrunning(tokenizer, db, tasks, script):
    sample = make_sample(tasks[0])
    first = len(tokenizer.encode(script[0], add_special_tokens=False)) + 1
    limits = Limits(max_turns=6, max_response_tokens=first + 20)  # the search results do not fit
    server = run(play(tokenizer, db, sample, script, limits=limits))
    assert sample.status is SampleDouble.Status.TRUNCATED and sample.metadata["m2rl_agent"]["stop"] == "token_budget"
    assert sample.response_length == first <= limits.max_response_tokens and len(server.requests) == 1
    assert server.requests[0]["sampling_params"]["max_new_tokens"] == limits.max_response_tokens


def test_length_finish_truncates(tokenizer, db, tasks, script):
    sample = make_sample(tasks[0])
    run(play(tokenizer, db, sample, script, limits=Limits(max_turns=6, max_response_tokens=5)))
    assert sample.status is SampleDouble.Status.TRUNCATED and sample.metadata["m2rl_agent"]["stop"] == "max_new_tokens"
    assert sample.response_length == 5 and sample.metadata["m2rl_agent"]["calls"] == []


def test_transport_failure_aborts_and_excludes_the_sample(tokenizer, db, tasks, script):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/generate"  # closed port: connection refused
    sample = make_sample(tasks[0])
    sample.response, sample.response_length, sample.loss_mask = "stale", 3, [1, 1, 1]  # a retried sample
    run(play(tokenizer, db, sample, script, generate=http_generate(dead)))
    assert sample.status is SampleDouble.Status.ABORTED and sample.metadata["m2rl_agent"]["stop"] == "generate_failed"
    assert sample.remove_sample and sample.reward == 0.0 and sample.response == "" and sample.response_length == 0
    assert sample.rollout_log_probs == [] and sample.loss_mask == []  # slime tensorizes them batch-wide


def test_sglang_abort_aborts(tokenizer, db, tasks, script):
    sample = make_sample(tasks[0])
    run(play(tokenizer, db, sample, script, finish=lambda n: "abort" if n == 1 else "stop"))
    assert sample.status is SampleDouble.Status.ABORTED and sample.remove_sample


def test_malformed_calls_and_call_cap_become_observations(tokenizer, db, tasks, script, wp):
    three = "\n".join([call_text("email_search_emails", query=wp.search_query)] * 3)
    script = [turn("Oops.", "<tool_call>\n{broken\n</tool_call>"), turn("Three.", three), script[2]]
    sample = make_sample(tasks[0])
    run(
        play(tokenizer, db, sample, script, limits=Limits(max_turns=6, max_response_tokens=8192, max_calls_per_turn=2))
    )
    record = sample.metadata["m2rl_agent"]
    assert sample.status is SampleDouble.Status.COMPLETED and record["malformed_calls"] == 1
    assert len(record["calls"]) == 2 and record["tool_errors"] == 2
    assert "could not parse the tool call" in sample.response and "at most 2 calls per turn" in sample.response


class BrokenEnv:
    def __init__(self, fail_on: str):
        self.fail_on = fail_on

    async def start(self):
        if self.fail_on == "start":
            raise ConnectionError("environment down")

    async def call(self, call: ToolCall) -> StepResult:
        raise ConnectionError("environment lost")

    async def close(self):
        raise ConnectionError("already gone")


@pytest.mark.parametrize(("fail_on", "stop"), [("start", "env_unavailable"), ("call", "env_failed")])
def test_environment_failures_abort(tokenizer, db, tasks, fail_on, stop, script):
    sample = make_sample(tasks[0])
    run(play(tokenizer, db, sample, script, env=BrokenEnv(fail_on)))
    assert sample.status is SampleDouble.Status.ABORTED and sample.metadata["m2rl_agent"]["stop"] == stop


def test_episode_on_the_demo_database(tokenizer, demo_rows, tool_schemas):
    """Demo episode 1 (reply to Tomas) on the packaged demo database."""
    from m2rl_slime.agent.cli import demo_csv_dir
    from m2rl_slime.agent.config import AgentConfig
    from m2rl_slime.agent.tables import load_db

    row = demo_rows[0]
    script = [
        turn("Find it.", call_text("email_search_emails", query="launch checklist tomas")),
        turn("Reply.", call_text("email_reply_email", email_id="00000002", body="Looks good, ship it.")),
        turn("Done.", "I replied to Tomas."),
    ]
    sample = SampleDouble(prompt=row["prompt"], metadata={**row["metadata"], "tools": tool_schemas})
    config = AgentConfig(csv_dir=demo_csv_dir())
    run(play(tokenizer, load_db(config.csv_dir), sample, script))
    assert sample.status is SampleDouble.Status.COMPLETED and len(sample.metadata["m2rl_agent"]["calls"]) == 2
    assert "Launch checklist" in sample.response  # the search result reached the model
    assert verify(sample.response, None, sample.metadata, config=config).score == row["expected_reward"] == 1.0


def _demo_sample(demo_rows, tool_schemas):
    row = demo_rows[0]
    return SampleDouble(prompt=row["prompt"], metadata={**row["metadata"], "tools": tool_schemas})


DEMO_SCRIPT = [
    turn("Find it.", call_text("email_search_emails", query="launch checklist tomas")),
    turn("Reply.", call_text("email_reply_email", email_id="00000002", body="Looks good, ship it.")),
    turn("Done.", "I replied to Tomas."),
]


def test_rollout_abort_between_turns_sends_no_new_request(tokenizer, demo_rows, tool_schemas):
    """slime's abort() sets GenerateState.aborted and waits for idle servers: an episode between turns stops."""
    from m2rl_slime.agent.cli import demo_csv_dir
    from m2rl_slime.agent.tables import load_db

    sample = _demo_sample(demo_rows, tool_schemas)
    served = []
    server = run(
        play(
            tokenizer,
            load_db(demo_csv_dir()),
            sample,
            DEMO_SCRIPT,
            finish=lambda n: served.append(n) or "stop",
            aborted=lambda: len(served) >= 1,  # the abort lands while the first tool call runs
        )
    )
    assert len(server.requests) == 1
    assert sample.status is SampleDouble.Status.ABORTED and sample.metadata["m2rl_agent"]["stop"] == "aborted"
    assert sample.remove_sample and sample.reward == 0.0
    assert len(sample.loss_mask) == len(sample.rollout_log_probs) == sample.response_length > 0


def test_abort_before_the_first_turn_leaves_empty_per_token_fields(tokenizer, demo_rows, tool_schemas):
    from m2rl_slime.agent.cli import demo_csv_dir
    from m2rl_slime.agent.tables import load_db

    sample = _demo_sample(demo_rows, tool_schemas)
    sample.teacher_log_probs = [-1.0, -2.0]  # stale state of a retried sample
    server = run(play(tokenizer, load_db(demo_csv_dir()), sample, DEMO_SCRIPT, aborted=lambda: True))
    assert server.requests == [] and sample.status is SampleDouble.Status.ABORTED
    assert sample.response_length == 0 and sample.rollout_log_probs == [] and sample.loss_mask == []
    assert sample.teacher_log_probs is None and sample.remove_sample
