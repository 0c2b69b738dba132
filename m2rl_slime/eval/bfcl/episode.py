"""BFCL multi-turn episodes: drive a model through an entry's turns, execute its calls, score with bfcl-eval.

BFCL's structure, as bfcl-eval runs it: the user turns of the entry come one after the other; within a turn
the model may take several steps; a step whose calls decode is executed against the entry's API instances
and the results are shown to the model; the turn ends at the first step with no call (or one that does not
decode). A turn with more than `EpisodeConfig.max_steps` executed steps force-terminates the whole episode
(BFCL: 20; the entry then fails). In ``miss_func`` entries some functions are held out until an empty turn,
where they are added (`EpisodeConfig.holdout`) together with BFCL's "I have updated some more functions"
prompt.

The conversation keeps every earlier assistant step *with its tool calls* and every tool result, turn after
turn: a model's own calls are never dropped from its history (the bug that made other harnesses' Qwen3
multi-turn scores far too low). The decoded calls, per turn a list of steps with their call strings, are
what bfcl-eval's multi-turn checker takes (`score_decoded`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import LabelError
from ...rewards.result import Reason, Result
from .bridge import Bridge, BridgeError
from .calls import message_text, reasoning_text, step_message, tool_messages

# bfcl-eval's prompt for a turn that adds the held-out functions (its function-calling variant).
HOLDOUT_PROMPT = "I have updated some more functions you can choose from. What about now?"
MAX_STEPS = 20  # bfcl-eval's MAXIMUM_STEP_LIMIT

Chat = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class EpisodeConfig:
    """How episodes are run.

    Attributes:
        max_steps: A turn that executes more steps than this force-terminates the episode (BFCL: 20).
        holdout: Where held-out functions appear: ``tools`` adds them to the tool list (bfcl-eval's
            function-calling models); ``message`` writes their docs into the turn's user message and leaves
            the tool list unchanged (bfcl-eval's local Qwen handler).
    """

    max_steps: int = MAX_STEPS
    holdout: Literal["tools", "message"] = "tools"


def _field(metadata: Mapping[str, Any], key: str, kind: type) -> Any:
    value = metadata.get(key)
    if not isinstance(value, kind):
        raise LabelError(f"BFCL multi-turn row: metadata.{key} must be a {kind.__name__}")
    return value


def entry_of(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The entry fields the bridge needs (id, initial configuration, classes, long-context flag)."""
    return {
        "id": _field(metadata, "uid", str),
        "initial_config": _field(metadata, "initial_config", dict),
        "involved_classes": _field(metadata, "involved_classes", list),
        "long_context": bool(metadata.get("long_context")),
    }


def _turn_messages(metadata: Mapping[str, Any], turn: int, config: EpisodeConfig) -> tuple[list[dict], list[dict]]:
    """(user messages of the turn, tools added at it)."""
    held = (metadata.get("missed_function") or {}).get(str(turn))
    if held is None:
        return [dict(m) for m in metadata["turns"][turn]], []
    if config.holdout == "tools":
        return [{"role": "user", "content": HOLDOUT_PROMPT}], list(held)
    docs = (metadata.get("missed_function_docs") or {}).get(str(turn), [])
    return [{"role": "user", "content": f"{docs}\n{HOLDOUT_PROMPT}"}], []


async def score_decoded(
    metadata: Mapping[str, Any], decoded: Sequence[Sequence[Sequence[str]]], bridge: Bridge, *, force_terminated: bool
) -> Result:
    """bfcl-eval's verdict on an episode's decoded calls, as a `Result`.

    Raises:
        BridgeError: the bridge failed (infrastructure, never a wrong answer).
    """
    truth = _field(metadata, "possible_answer", list)
    if force_terminated or len(decoded) != len(truth):
        return Result.fail(Reason.WRONG, error_type="multi_turn:force_terminated", turns=len(decoded))
    verdict = await bridge.check(entry_of(metadata), [list(map(list, t)) for t in decoded], truth)
    if verdict["valid"]:
        return Result.correct(turns=len(decoded))
    return Result.fail(
        Reason.WRONG,
        error_type=verdict.get("error_type") or "",
        error=(verdict.get("error_message") or "")[:500],
        turns=len(decoded),
    )


async def run_episode(
    chat: Chat, row: Mapping[str, Any], bridge: Bridge, config: EpisodeConfig | None = None
) -> dict[str, Any]:
    """Run one multi-turn row and score it.

    Args:
        chat: ``await chat(messages, tools)`` returns the model's next assistant message (``content``, and
            optionally ``tool_calls`` / ``reasoning_content`` when the server parses them).
        row: A prepared BFCL multi-turn row.
        bridge: A started (or startable) `Bridge`, shared by all episodes of a run.
        config: Step limit and held-out-function placement.

    Returns:
        ``{"messages", "response", "model_result", "decoded", "force_terminated", "steps", "result"}``:
        the whole conversation (tool calls and results kept), the assistant texts joined, per turn the text
        of every step, per turn the decoded call strings of every executed step, whether the step limit
        ended the episode, executed steps per turn, and the `Result`.

    Raises:
        LabelError: the row is not a BFCL multi-turn row.
        BridgeError: the bridge failed (infrastructure, never a wrong answer).
    """
    config = config or EpisodeConfig()
    metadata = row["metadata"]
    turns = _field(metadata, "turns", list)
    tools, messages = list(row.get("tools") or []), []
    model_result: list[list[str]] = []
    decoded: list[list[list[str]]] = []
    steps_per_turn: list[int] = []
    force_terminated = False
    session = await bridge.open_session(entry_of(metadata))
    try:
        for turn in range(len(turns)):
            user, added = _turn_messages(metadata, turn, config)
            messages.extend(user)
            tools.extend(added)
            texts, steps = [], []
            while True:
                reply = await chat([dict(m) for m in messages], [dict(t) for t in tools])
                text = message_text(reply)
                reasoning = reply.get("reasoning_content") or reasoning_text(str(reply.get("content") or ""))
                prefix = f"call_{turn}_{len(steps)}"
                message, calls = step_message(text, reasoning, prefix)
                messages.append(message)
                texts.append(text)
                if not calls:  # no call, or a step that does not decode: the turn ends
                    break
                steps.append(calls)
                messages.extend(tool_messages(calls, await bridge.execute(session, calls), prefix))
                if len(steps) > config.max_steps:
                    force_terminated = True
                    break
            model_result.append(texts)
            decoded.append(steps)
            steps_per_turn.append(len(steps))
            if force_terminated:
                break
    finally:
        with contextlib.suppress(BridgeError):  # a dead bridge is reported by the check below
            await bridge.close_session(session)
    result = await score_decoded(metadata, decoded, bridge, force_terminated=force_terminated)
    response = "\n\n".join(text for texts in model_result for text in texts)
    return {
        "messages": messages,
        "response": response,
        "model_result": model_result,
        "decoded": decoded,
        "force_terminated": force_terminated,
        "steps": steps_per_turn,
        "result": result,
    }
