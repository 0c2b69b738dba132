"""Analytics toolkit: visitor look-ups, per-day aggregates and plots (NeMo-Gym `AnalyticsTool` semantics).

The visit data is read-only; `create_plot` only records the file path it would write (the `plots`
table, which the verifier compares). Date bounds compare as strings against `date_of_visit`
(YYYY-MM-DD), exactly like the reference's pandas string comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..state import WorkplaceState
from ._common import Param, ToolError, ToolSpec

PLOT_VALUES = (
    "total_visits",
    "session_duration_seconds",
    "user_engaged",
    "visits_direct",
    "visits_referral",
    "visits_search_engine",
    "visits_social_media",
)
PLOT_TYPES = ("bar", "line", "scatter", "histogram")


def _in_range(state: WorkplaceState, time_min: Any, time_max: Any) -> Iterator[tuple[Any, ...]]:
    date = state.analytics.index("date_of_visit")
    for row in state.analytics.rows:
        try:
            if time_min and not row[date] >= time_min:
                continue
            if time_max and not row[date] <= time_max:
                continue
        except TypeError:
            raise ToolError("time_min and time_max must be date strings (YYYY-MM-DD)") from None
        yield row


def _per_day(state: WorkplaceState, time_min: Any, time_max: Any, value: Callable[[tuple[Any, ...]], Any]) -> dict:
    """Group the rows in range by day (days sorted) and collect `value(row)` per day."""
    date = state.analytics.index("date_of_visit")
    groups: dict[str, list[Any]] = {}
    for row in _in_range(state, time_min, time_max):
        groups.setdefault(row[date], []).append(value(row))
    return {day: groups[day] for day in sorted(groups)}


def get_visitor_information_by_id(state: WorkplaceState, visitor_id: str | None = None) -> Any:
    if not visitor_id:
        return "Visitor ID not provided."
    data = state.analytics
    idx = data.index("visitor_id")
    rows = [dict(zip(data.columns, row)) for row in data.rows if row[idx] == visitor_id]
    return rows or "Visitor not found."


def create_plot(
    state: WorkplaceState,
    time_min: str | None = None,
    time_max: str | None = None,
    value_to_plot: str | None = None,
    plot_type: str | None = None,
) -> Any:
    if not time_min:
        return "Start date not provided."
    if not time_max:
        return "End date not provided."
    if value_to_plot not in PLOT_VALUES:
        return f"Value to plot must be one of {', '.join(repr(v) for v in PLOT_VALUES)}"
    if plot_type not in PLOT_TYPES:
        return "Plot type must be one of 'bar', 'line', 'scatter', or 'histogram'"
    file_path = f"plots/{time_min}_{time_max}_{value_to_plot}_{plot_type}.png"
    state["plots"].append({"file_path": file_path})
    return file_path


def total_visits_count(state: WorkplaceState, time_min: str | None = None, time_max: str | None = None) -> Any:
    return {day: len(rows) for day, rows in _per_day(state, time_min, time_max, lambda row: 1).items()}


def engaged_users_count(state: WorkplaceState, time_min: str | None = None, time_max: str | None = None) -> Any:
    engaged = state.analytics.index("user_engaged")
    per_day = _per_day(state, time_min, time_max, lambda row: int(bool(row[engaged])))
    return {day: sum(values) for day, values in per_day.items()}


def traffic_source_count(
    state: WorkplaceState, time_min: str | None = None, time_max: str | None = None, traffic_source: str | None = None
) -> Any:
    source = state.analytics.index("traffic_source")
    if traffic_source:
        per_day = _per_day(state, time_min, time_max, lambda row: int(row[source] == traffic_source))
        return {day: sum(values) for day, values in per_day.items()}
    return {day: len(rows) for day, rows in _per_day(state, time_min, time_max, lambda row: 1).items()}


def get_average_session_duration(
    state: WorkplaceState, time_min: str | None = None, time_max: str | None = None
) -> Any:
    seconds = state.analytics.index("session_duration_seconds")
    try:
        per_day = _per_day(state, time_min, time_max, lambda row: float(row[seconds]))
    except (TypeError, ValueError):
        raise ToolError("session_duration_seconds holds a non-numeric value") from None
    return {day: sum(values) / len(values) for day, values in per_day.items()}


_RANGE = (
    Param("time_min", description="First day of the range (YYYY-MM-DD)"),
    Param("time_max", description="Last day of the range (YYYY-MM-DD)"),
)
SPECS = (
    ToolSpec(
        "analytics_get_visitor_information_by_id",
        "read",
        "Return the analytics records of one visitor.",
        (Param("visitor_id", required=True, description="Id of the visitor"),),
        get_visitor_information_by_id,
    ),
    ToolSpec(
        "analytics_create_plot",
        "create",
        "Plot an analytics metric over a date range and return the image path.",
        (
            Param("time_min", required=True, description="First day of the range (YYYY-MM-DD)"),
            Param("time_max", required=True, description="Last day of the range (YYYY-MM-DD)"),
            Param("value_to_plot", required=True, description=f"Metric to plot: {', '.join(PLOT_VALUES)}"),
            Param("plot_type", required=True, description=f"Chart type: {', '.join(PLOT_TYPES)}"),
        ),
        create_plot,
    ),
    ToolSpec("analytics_total_visits_count", "read", "Visits per day in a date range.", _RANGE, total_visits_count),
    ToolSpec(
        "analytics_engaged_users_count",
        "read",
        "Engaged visitors per day in a date range.",
        _RANGE,
        engaged_users_count,
    ),
    ToolSpec(
        "analytics_traffic_source_count",
        "read",
        "Visits per day in a date range, optionally only those from one traffic source.",
        (*_RANGE, Param("traffic_source", description="direct, referral, search engine or social media")),
        traffic_source_count,
    ),
    ToolSpec(
        "analytics_get_average_session_duration",
        "read",
        "Average session duration (seconds) per day in a date range.",
        _RANGE,
        get_average_session_duration,
    ),
)
