"""An episode driver for the tests, with the interface of `m2rl_slime.eval.drivers`: one tool call, the tool
executed by the bridge, a final answer."""

from __future__ import annotations

import contextlib
import json


class Bridge:
    def __init__(self) -> None:
        self.calls = 0

    def execute(self, call: dict) -> str:
        self.calls += 1
        return f"result of {call['function']['name']}({json.loads(call['function']['arguments'])})"


OPENED: list[Bridge] = []


@contextlib.asynccontextmanager
async def open_bridge(settings):
    bridge = Bridge()
    OPENED.append(bridge)
    yield bridge


async def run_episode(chat, row, bridge):
    messages = [dict(m) for m in row["prompt"]]
    first = await chat(messages, row["tools"])
    messages.append(first)
    for call in first.get("tool_calls") or []:
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": bridge.execute(call)})
    messages.append(await chat(messages, row["tools"]))
    return {"messages": messages, "tool_calls": len(first.get("tool_calls") or [])}
