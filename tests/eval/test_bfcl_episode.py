"""The BFCL multi-turn episode driver with scripted models, on the fake API module through a real bridge process."""

from __future__ import annotations

import asyncio
import json

from m2rl_slime.eval.bfcl.episode import HOLDOUT_PROMPT, EpisodeConfig, run_episode, score_decoded


def call(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


class Script:
    """A model that answers each turn with a fixed list of replies, and records what it was shown."""

    def __init__(self, turns: list[list[str | dict]]):
        self.turns, self.seen, self._turn, self._users = turns, [], -1, 0

    async def __call__(self, messages, tools):
        users = sum(m["role"] == "user" for m in messages)
        if users != self._users:
            self._users, self._turn, self._step = users, self._turn + 1, 0
        self.seen.append((self._turn, messages, [t["function"]["name"] for t in tools]))
        replies = self.turns[self._turn]
        reply = replies[min(self._step, len(replies) - 1)]
        self._step += 1
        return reply if isinstance(reply, dict) else {"role": "assistant", "content": reply}


def run(coro):
    return asyncio.run(coro)


def test_ground_truth_episode_scores_and_keeps_calls_in_the_history(bfcl_rows, fake_bridge):
    row = bfcl_rows["multi_turn_base_0"]
    model = Script([
        ["<think>\nopen it\n</think>\n\n" + call("create_ticket", title="printer jam", priority=3), "Opened #7."],
        [call("close_ticket", ticket_id=7), "Closed."],
    ])  # fmt: skip

    async def body():
        async with fake_bridge() as bridge:
            return await run_episode(model, row, bridge)

    record = run(body())
    assert record["result"].score == 1.0 and record["result"].reason.value == "ok"
    assert record["decoded"] == [[["create_ticket(title='printer jam',priority=3)"]], [["close_ticket(ticket_id=7)"]]]
    assert record["model_result"][0] == [call("create_ticket", title="printer jam", priority=3), "Opened #7."]
    assert record["steps"] == [1, 1] and record["force_terminated"] is False
    turn, messages, _ = model.seen[-2]  # the first step of turn 1 sees everything of turn 0
    assert turn == 1
    assistant = next(m for m in messages if m.get("tool_calls"))
    assert assistant["tool_calls"] == [{"id": "call_0_0_0", "type": "function", "function": {
        "name": "create_ticket", "arguments": '{"title": "printer jam", "priority": 3}'}}]  # fmt: skip
    assert assistant["reasoning_content"] == "open it"
    assert {"role": "tool", "tool_call_id": "call_0_0_0", "name": "create_ticket", "content": '{"id": 7}'} in messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert record["messages"][-1] == {"role": "assistant", "content": "Closed."}


def test_held_out_functions_arrive_at_their_turn(bfcl_rows, fake_bridge):
    row = bfcl_rows["multi_turn_miss_func_0"]
    replies = [[call("create_ticket", title="vpn down"), "ok"], ["I cannot close tickets."],
               [call("close_ticket", ticket_id=1), "done"], [call("list_tickets"), "none open"]]  # fmt: skip

    async def body(config):
        model = Script(replies)
        async with fake_bridge() as bridge:
            return model, await run_episode(model, row, bridge, config)

    model, record = run(body(EpisodeConfig()))
    assert record["result"].score == 1.0, record["result"].details
    tools_by_turn = {turn: names for turn, _, names in model.seen}
    assert "close_ticket" not in tools_by_turn[1] and "close_ticket" in tools_by_turn[2]
    assert next(s for s in model.seen if s[0] == 2)[1][-1] == {"role": "user", "content": HOLDOUT_PROMPT}

    model, record = run(body(EpisodeConfig(holdout="message")))
    assert record["result"].score == 1.0
    turn, messages, names = next(s for s in model.seen if s[0] == 2)
    assert "close_ticket" not in names
    assert (
        messages[-1]["content"].endswith("\n" + HOLDOUT_PROMPT) and "'name': 'close_ticket'" in messages[-1]["content"]
    )


def test_undecodable_steps_end_the_turn_and_wrong_calls_fail(bfcl_rows, fake_bridge):
    row = bfcl_rows["multi_turn_base_0"]
    model = Script([[call("create_ticket", title="printer jam", priority=3), "<tool_call>\n[1]\n</tool_call>"],
                    [call("close_ticket", ticket_id=8), "Closed."]])  # fmt: skip

    async def body():
        async with fake_bridge() as bridge:
            return await run_episode(model, row, bridge)

    record = run(body())
    assert record["model_result"][0][1] == "<tool_call>\n[1]\n</tool_call>" and record["steps"] == [1, 1]
    result = record["result"]
    assert (result.score, result.reason.value, result.details["error_type"]) == (
        0.0, "wrong", "multi_turn:instance_state_mismatch")  # fmt: skip


def test_too_many_steps_force_terminate_the_episode(bfcl_rows, fake_bridge):
    row = bfcl_rows["multi_turn_base_0"]
    model = Script([[{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "list_tickets", "arguments": "{}"}}]}]] * 2)  # fmt: skip

    async def body():
        async with fake_bridge() as bridge:
            return await run_episode(model, row, bridge, EpisodeConfig(max_steps=3))

    record = run(body())
    assert record["force_terminated"] and record["steps"] == [4] and len(record["decoded"]) == 1
    assert record["result"].details["error_type"] == "multi_turn:force_terminated"
    assert record["decoded"][0][0] == ["list_tickets()"]


def test_score_decoded_re_scores_a_recorded_episode(bfcl_rows, fake_bridge):
    meta = bfcl_rows["multi_turn_base_0"]["metadata"]

    async def body():
        async with fake_bridge() as bridge:
            good = await score_decoded(meta, [[meta["possible_answer"][0]], [meta["possible_answer"][1]]], bridge,
                                       force_terminated=False)  # fmt: skip
            short = await score_decoded(meta, [[meta["possible_answer"][0]]], bridge, force_terminated=False)
            return good, short

    good, short = run(body())
    assert good.score == 1.0 and short.details["error_type"] == "multi_turn:force_terminated"
