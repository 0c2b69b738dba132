"""What every workplace tool shares: the tool spec, argument errors, matching, dates and pagination."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

# The environment's fixed "now" (the tasks' system prompt says Thursday 2023-11-30 23:59:00).
NOW = "2023-11-30 23:59:00"

Operation = Literal["read", "create", "update", "delete"]


class ToolError(Exception):
    """A tool-level error (bad argument, unparsable pattern): shown to the model, the episode continues."""


@dataclass(frozen=True, slots=True)
class Param:
    """One tool argument: JSON type, whether the schema lists it as required, and what it means."""

    name: str
    type: Literal["string", "integer"] = "string"
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A workplace tool: its public name, what it does to the state, its arguments and implementation.

    `fn(state, **arguments)` returns the tool's output (str, dict or list) or raises `ToolError`.
    """

    name: str
    operation: Operation
    description: str
    params: tuple[Param, ...]
    fn: Callable[..., Any]

    @property
    def toolkit(self) -> str:
        return toolkit_of(self.name)

    def schema(self) -> dict[str, Any]:
        """The OpenAI Responses-API function schema (the format of NeMo-Gym's `responses_create_params.tools`)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {p.name: {"type": p.type, "description": p.description} for p in self.params},
                "required": [p.name for p in self.params if p.required],
                "additionalProperties": False,
            },
            "strict": False,
        }


TOOLKITS = (
    "company_directory",
    "email",
    "calendar",
    "analytics",
    "project_management",
    "customer_relationship_manager",
)


def toolkit_of(tool_name: str) -> str | None:
    """The toolkit a tool name belongs to (`email_reply_email` -> `email`), or None."""
    for toolkit in TOOLKITS:
        if tool_name.startswith(toolkit + "_"):
            return toolkit
    return None


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ToolError(f"invalid search pattern {pattern!r}: {exc}") from None


def icontains(pattern: str, value: Any) -> bool:
    """pandas `Series.str.contains(pattern, case=False)` for one cell: a case-insensitive regex search.

    Missing cells (None) never match.
    """
    return isinstance(value, str) and _pattern(pattern).search(value) is not None


_FORMATS = ("%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S")


def parse_timestamp(value: Any) -> datetime:
    """Parse a date or date-time string the way the tools accept them (ISO 8601 and a few slash forms).

    Raises:
        ValueError: `value` is not a recognised date.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {value!r}")  # noqa: TRY004 - callers report format errors
    text = value.strip()
    try:
        # offsets are dropped: the seed data has naive local times only
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"could not parse date {value!r}")


def paginate(items: list[Any], page: int, page_size: int, items_key: str, total_key: str) -> dict[str, Any]:
    """The tools' pagination: clamp `page` into range and return one page plus the pagination block."""
    if page_size == 0:
        raise ToolError("page_size must not be 0")
    total = len(items)
    total_pages = (total + page_size - 1) // page_size
    page = max(1, min(page, total_pages)) if total_pages > 0 else 1
    start = (page - 1) * page_size
    end = min(start + page_size, total)
    return {
        items_key: items[start:end],
        "pagination": {total_key: total, "page": page, "page_size": page_size, "total_pages": total_pages},
    }


def next_id(values: list[Any], *, width: int | None) -> str:
    """`max(existing ids) + 1` as the tools generate it (string max, as pandas does on a str column).

    Args:
        values: The current id column.
        width: Zero-pad to this width (8 for events, tasks and customers); None for e-mails (no padding).

    Raises:
        ToolError: no id can be derived (empty table for padded ids, or a non-numeric maximum).
    """
    present = [v for v in values if isinstance(v, str)]
    if not present:
        if width is None:
            return "1"
        raise ToolError("cannot generate an id for an empty table")
    top = max(present)
    try:
        number = int(top) + 1
    except ValueError:
        raise ToolError(f"cannot generate an id after non-numeric id {top!r}") from None
    return str(number).zfill(width) if width else str(number)
