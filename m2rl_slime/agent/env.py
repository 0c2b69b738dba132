"""The in-process workplace environment: execute tool calls against an episode's state.

A tool-level problem (unknown or unavailable tool, bad argument, unparsable search pattern) becomes an
error observation `"Error executing tool '<name>': <why>"`, as NeMo-Gym's server returns it, and the
episode continues. A programming error inside a tool propagates.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .state import WorkplaceState
from .tables import WorkplaceDB
from .tools import TOOLS, ToolError, ToolSpec


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call: the tool name and its JSON arguments."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": dict(self.arguments)}


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a call returned. `ok` is False when the call never reached the tool logic (error observation)."""

    output: Any
    ok: bool = True

    def text(self, max_chars: int | None = None) -> str:
        """The observation the model sees: strings as-is, anything else as JSON; cut at `max_chars`."""
        text = self.output if isinstance(self.output, str) else json.dumps(self.output, ensure_ascii=False)
        if max_chars is not None and len(text) > max_chars:
            text = f"{text[:max_chars]}\n[... {len(text) - max_chars} more characters cut]"
        return text


def tool_error(name: str, why: str) -> StepResult:
    return StepResult(f"Error executing tool '{name}': {why}", ok=False)


def unavailable_tool(name: str, allowed: Collection[str] | None) -> StepResult:
    """The error observation for a tool that does not exist or that the task does not offer."""
    names = sorted(allowed if allowed is not None else TOOLS)
    return tool_error(name, f"no such tool in this task; available tools: {', '.join(names)}")


def allowed_tools(tools: Any) -> frozenset[str] | None:
    """The tool names a task offers (from its `tools` schemas), or None when it lists none (all allowed).

    Accepts Responses-API schemas (`{"type": "function", "name": ...}`) and chat-completions schemas
    (`{"type": "function", "function": {"name": ...}}`). Names we do not implement are ignored.
    """
    if not isinstance(tools, Iterable) or isinstance(tools, (str, bytes, Mapping)):
        return None
    names = set()
    for tool in tools:
        if isinstance(tool, (dict, Mapping)):
            inner = tool.get("function")
            name = inner.get("name") if isinstance(inner, (dict, Mapping)) else tool.get("name")
            if isinstance(name, str):
                names.add(name)
    return frozenset(names) if names else None


def _coerce(spec: ToolSpec, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise arguments against the tool's parameters (None values are dropped).

    Numbers given for string parameters become strings (the tables hold strings only).

    Raises:
        ToolError: unknown argument or a value of the wrong type.
    """
    params = {p.name: p for p in spec.params}
    out = {}
    for key, value in arguments.items():
        param = params.get(key)
        if param is None:
            raise ToolError(f"unexpected argument {key!r}; valid arguments: {', '.join(params) or 'none'}")
        if value is None:
            continue
        if param.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToolError(f"argument {key!r} must be an integer, got {value!r}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            raise ToolError(f"argument {key!r} must be a string, got {type(value).__name__}")
        out[key] = value
    return out


def execute(state: WorkplaceState, call: ToolCall, allowed: Collection[str] | None = None) -> StepResult:
    """Run one call on `state` (mutating it for write tools) and return what the model sees."""
    spec = TOOLS.get(call.name)
    if spec is None or (allowed is not None and call.name not in allowed):
        return unavailable_tool(call.name, allowed)
    if not isinstance(call.arguments, Mapping):
        return tool_error(call.name, "arguments must be a JSON object")
    try:
        return StepResult(spec.fn(state, **_coerce(spec, call.arguments)))
    except ToolError as exc:
        return tool_error(call.name, str(exc))


def replay(
    db: WorkplaceDB, calls: Iterable[ToolCall], allowed: Collection[str] | None = None, *, writes_only: bool = False
) -> tuple[WorkplaceState, list[StepResult | None]]:
    """Run `calls` in order on a fresh state; failing calls change nothing and the replay goes on.

    With `writes_only`, calls of read tools (and of unknown tools) are skipped (their result is None): they
    cannot change the state, so the final state is the same.
    """
    state = WorkplaceState.fresh(db)
    results: list[StepResult | None] = []
    for call in calls:
        spec = TOOLS.get(call.name)
        if writes_only and (spec is None or spec.operation == "read"):
            results.append(None)
        else:
            results.append(execute(state, call, allowed))
    return state, results


class WorkplaceEnv:
    """One episode's environment: a fresh state plus the calls made so far.

    Example:
        >>> env = WorkplaceEnv(load_db("csv_data"))            # doctest: +SKIP
        >>> env.step(ToolCall("email_delete_email", {"email_id": "00000259"})).output  # doctest: +SKIP
        'Email deleted successfully.'
    """

    def __init__(self, db: WorkplaceDB, allowed: Collection[str] | None = None) -> None:
        self.db = db
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.state = WorkplaceState.fresh(db)
        self.calls: list[ToolCall] = []

    def reset(self) -> None:
        """Start over from the seed database."""
        self.state = WorkplaceState.fresh(self.db)
        self.calls = []

    def step(self, call: ToolCall) -> StepResult:
        self.calls.append(call)
        return execute(self.state, call, self.allowed)
