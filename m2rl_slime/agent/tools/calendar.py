"""Calendar toolkit: read, search, create, delete and update events (NeMo-Gym `CalendarTool` semantics)."""

from __future__ import annotations

from typing import Any

from ..state import WorkplaceState
from ._common import Param, ToolSpec, icontains, next_id, paginate, parse_timestamp

FIELDS = ("event_id", "event_name", "participant_email", "event_start", "duration")
UPDATABLE = FIELDS[1:]
_BAD_ID = "Invalid event ID format. Expected 8-digit ID."
_BAD_START = "Invalid event_start format. Expected YYYY-MM-DD HH:MM:SS."


def _valid_id(event_id: Any) -> bool:
    return isinstance(event_id, str) and len(event_id) == 8 and event_id.isdigit()


def _check_duration(duration: Any) -> str | None:
    try:
        minutes = int(duration)
    except ValueError:
        return "Invalid duration format. Expected a number of minutes."
    if minutes <= 0:
        return "Duration must be a positive number of minutes."
    return None


def get_event_information_by_id(state: WorkplaceState, event_id: str | None = None, field: str | None = None) -> Any:
    if not event_id:
        return "Event ID not provided."
    if not field:
        return "Field not provided."
    if not _valid_id(event_id):
        return _BAD_ID
    if field not in FIELDS:
        return f"Invalid field. Available fields are: {', '.join(FIELDS)}"
    table = state["calendar"]
    idx = table.col("event_id")
    for row in table.rows():
        if row[idx] == event_id:
            return {field: table.record(row)[field]}
    return "Event not found."


def search_events(
    state: WorkplaceState,
    query: str = "",
    time_min: str | None = None,
    time_max: str | None = None,
    page: int = 1,
    page_size: int = 5,
) -> Any:
    """Events whose name or participant matches `query` (regex, case-insensitive); latest start first."""
    try:
        low = parse_timestamp(time_min) if time_min else None
    except ValueError:
        return "Invalid time_min format. Expected YYYY-MM-DD HH:MM:SS."
    try:
        high = parse_timestamp(time_max) if time_max else None
    except ValueError:
        return "Invalid time_max format. Expected YYYY-MM-DD HH:MM:SS."
    table = state["calendar"]
    name, email, start = table.col("event_name"), table.col("participant_email"), table.col("event_start")
    events = []
    for row in table.rows():
        if icontains(query, row[name]) or icontains(query, row[email]):
            when = parse_timestamp(row[start])
            if (low is None or when >= low) and (high is None or when <= high):
                events.append((when, row))
    if not events:
        return "No events found."
    events.sort(key=lambda event: event[0], reverse=True)
    return paginate([table.record(row) for _, row in events], page, page_size, "events", "total_events")


def create_event(
    state: WorkplaceState,
    event_name: str | None = None,
    participant_email: str | None = None,
    event_start: str | None = None,
    duration: str | None = None,
) -> Any:
    if not event_name:
        return "Event name not provided."
    if not participant_email:
        return "Participant email not provided."
    if not event_start:
        return "Event start not provided."
    if not duration:
        return "Event duration not provided."
    try:
        parse_timestamp(event_start)
    except ValueError:
        return _BAD_START
    problem = _check_duration(duration)
    if problem:
        return problem
    table = state["calendar"]
    event_id = next_id(table.values("event_id"), width=8)
    table.append(
        {
            "event_id": event_id,
            "event_name": event_name,
            "participant_email": participant_email.lower(),
            "event_start": event_start,
            "duration": duration,
        }
    )
    return event_id


def delete_event(state: WorkplaceState, event_id: str | None = None) -> Any:
    if not event_id:
        return "Event ID not provided."
    if not _valid_id(event_id):
        return _BAD_ID
    table = state["calendar"]
    keys = table.keys_where("event_id", event_id)
    if not keys:
        return "Event not found."
    for key in keys:
        table.delete(key)
    return "Event deleted successfully."


def update_event(
    state: WorkplaceState, event_id: str | None = None, field: str | None = None, new_value: str | None = None
) -> Any:
    if not event_id or not field or not new_value:
        return "Event ID, field, or new value not provided."
    if not _valid_id(event_id):
        return _BAD_ID
    if field not in UPDATABLE:
        return f"Invalid field. Available fields are: {', '.join(UPDATABLE)}"
    if field == "event_start":
        try:
            parse_timestamp(new_value)
        except ValueError:
            return _BAD_START
    elif field == "duration":
        problem = _check_duration(new_value)
        if problem:
            return problem
    table = state["calendar"]
    keys = table.keys_where("event_id", event_id)
    if not keys:
        return "Event not found."
    if field == "participant_email":
        new_value = new_value.lower()
    for key in keys:
        table.set_value(key, field, new_value)
    return "Event updated successfully."


_ID = Param("event_id", required=True, description="8-digit id of the event")
_START_HELP = "Format: YYYY-MM-DD HH:MM:SS"
SPECS = (
    ToolSpec(
        "calendar_get_event_information_by_id",
        "read",
        "Return one field of the event with the given id.",
        (_ID, Param("field", required=True, description=f"Field to return: {', '.join(FIELDS)}")),
        get_event_information_by_id,
    ),
    ToolSpec(
        "calendar_search_events",
        "read",
        "Search events by name or participant, optionally within a start-time window; latest first, paginated.",
        (
            Param("query", description="Text matched against the event name and participant e-mail"),
            Param("time_min", description=f"Earliest event start, inclusive. {_START_HELP}"),
            Param("time_max", description=f"Latest event start, inclusive. {_START_HELP}"),
            Param("page", "integer", description="Result page to return"),
            Param("page_size", "integer", description="Events per page"),
        ),
        search_events,
    ),
    ToolSpec(
        "calendar_create_event",
        "create",
        "Create an event and return its id.",
        (
            Param("event_name", required=True, description="Name of the event"),
            Param("participant_email", required=True, description="E-mail address of the participant"),
            Param("event_start", required=True, description=f"Start time. {_START_HELP}"),
            Param("duration", required=True, description="Length in minutes"),
        ),
        create_event,
    ),
    ToolSpec("calendar_delete_event", "delete", "Delete the event with the given id.", (_ID,), delete_event),
    ToolSpec(
        "calendar_update_event",
        "update",
        "Change one field of the event with the given id.",
        (
            _ID,
            Param("field", required=True, description=f"Field to change: {', '.join(UPDATABLE)}"),
            Param("new_value", required=True, description="The new value"),
        ),
        update_event,
    ),
)
