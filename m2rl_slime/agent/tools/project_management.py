"""Project-management toolkit: read, search, create, delete and update tasks (NeMo-Gym semantics)."""

from __future__ import annotations

import re
from typing import Any

from ..state import WorkplaceState
from ._common import Param, ToolSpec, icontains, next_id

LISTS = ("Backlog", "In Progress", "In Review", "Completed")
BOARDS = ("Back end", "Front end", "Design")
_EMAIL = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
_BAD_LIST = "List not valid. Please choose from: 'Backlog', 'In Progress', 'In Review', 'Completed'."
_BAD_BOARD = "Board not valid. Please choose from: 'Back end', 'Front end', 'Design'."
_BAD_ASSIGNEE = "Assignee email not valid. Please choose from the list of team members."


def _team(state: WorkplaceState) -> set[str]:
    return {v.lower() for v in state["tasks"].values("assigned_to_email") if isinstance(v, str)}


def get_task_information_by_id(state: WorkplaceState, task_id: str | None = None, field: str | None = None) -> Any:
    if not task_id:
        return "Task ID not provided."
    if not field:
        return "Field not provided."
    table = state["tasks"]
    idx = table.col("task_id")
    for row in table.rows():
        if row[idx] == task_id:
            record = table.record(row)
            return {field: record[field]} if field in record else "Field not found."
    return "Task not found."


def search_tasks(
    state: WorkplaceState,
    task_name: str | None = None,
    assigned_to_email: str | None = None,
    list_name: str | None = None,
    due_date: str | None = None,
    board: str | None = None,
) -> Any:
    """Tasks matching every given filter (regex, case-insensitive; the assignee must match exactly)."""
    if not any([task_name, assigned_to_email, list_name, due_date, board]):
        return "No search parameters provided."
    if assigned_to_email and not _EMAIL.match(assigned_to_email):
        return "Invalid email format for assigned_to_email."
    table = state["tasks"]
    cols = {c: table.col(c) for c in ("task_name", "assigned_to_email", "list_name", "due_date", "board")}
    patterns = [
        (cols[c], v)
        for c, v in (("task_name", task_name), ("list_name", list_name), ("due_date", due_date), ("board", board))
        if v
    ]
    assignee = assigned_to_email.lower() if assigned_to_email else None
    out = []
    for row in table.rows():
        if assignee is not None:
            value = row[cols["assigned_to_email"]]
            if not isinstance(value, str) or value.lower() != assignee:
                continue
        if all(icontains(pattern, row[idx]) for idx, pattern in patterns):
            out.append(table.record(row))
    return out


def create_task(
    state: WorkplaceState,
    task_name: str | None = None,
    assigned_to_email: str | None = None,
    list_name: str | None = None,
    due_date: str | None = None,
    board: str | None = None,
) -> Any:
    if not all([task_name, assigned_to_email, list_name, due_date, board]):
        return "Missing task details."
    assigned_to_email = assigned_to_email.lower()
    if assigned_to_email not in _team(state):
        return _BAD_ASSIGNEE
    if list_name not in LISTS:
        return _BAD_LIST
    if board not in BOARDS:
        return _BAD_BOARD
    table = state["tasks"]
    task_id = next_id(table.values("task_id"), width=8)
    table.append(
        {
            "task_id": task_id,
            "task_name": task_name,
            "assigned_to_email": assigned_to_email,
            "list_name": list_name,
            "due_date": due_date,
            "board": board,
        }
    )
    return task_id


def delete_task(state: WorkplaceState, task_id: str | None = None) -> Any:
    if not task_id:
        return "Task ID not provided."
    table = state["tasks"]
    keys = table.keys_where("task_id", task_id)
    if not keys:
        return "Task not found."
    for key in keys:
        table.delete(key)
    return "Task deleted successfully."


def update_task(
    state: WorkplaceState, task_id: str | None = None, field: str | None = None, new_value: str | None = None
) -> Any:
    if not task_id or not field or not new_value:
        return "Task ID, field, or new value not provided."
    if field == "assigned_to_email":
        new_value = new_value.lower()
    if field == "board" and new_value not in BOARDS:
        return _BAD_BOARD
    if field == "list_name" and new_value not in LISTS:
        return _BAD_LIST
    if field == "assigned_to_email" and new_value not in _team(state):
        return _BAD_ASSIGNEE
    table = state["tasks"]
    keys = table.keys_where("task_id", task_id)
    if not keys:
        return "Task not found."
    if field not in table.columns:
        return "Field not valid."
    for key in keys:
        table.set_value(key, field, new_value)
    return "Task updated successfully."


_ID = Param("task_id", required=True, description="8-digit id of the task")
_UPDATABLE = "task_name, assigned_to_email, list_name, due_date, board"
_FIELDS = f"task_id, {_UPDATABLE}"
_LIST_HELP = f"List of the task: {', '.join(LISTS)}"
_BOARD_HELP = f"Board of the task: {', '.join(BOARDS)}"
SPECS = (
    ToolSpec(
        "project_management_get_task_information_by_id",
        "read",
        "Return one field of the task with the given id.",
        (_ID, Param("field", required=True, description=f"Field to return: {_FIELDS}")),
        get_task_information_by_id,
    ),
    ToolSpec(
        "project_management_search_tasks",
        "read",
        "Search tasks; every given filter must match.",
        (
            Param("task_name", description="Text matched against the task name"),
            Param("assigned_to_email", description="Exact e-mail address of the assignee"),
            Param("list_name", description=_LIST_HELP),
            Param("due_date", description="Due date (YYYY-MM-DD)"),
            Param("board", description=_BOARD_HELP),
        ),
        search_tasks,
    ),
    ToolSpec(
        "project_management_create_task",
        "create",
        "Create a task and return its id.",
        (
            Param("task_name", required=True, description="Name of the task"),
            Param("assigned_to_email", required=True, description="E-mail address of a team member"),
            Param("list_name", required=True, description=_LIST_HELP),
            Param("due_date", required=True, description="Due date (YYYY-MM-DD)"),
            Param("board", required=True, description=_BOARD_HELP),
        ),
        create_task,
    ),
    ToolSpec("project_management_delete_task", "delete", "Delete the task with the given id.", (_ID,), delete_task),
    ToolSpec(
        "project_management_update_task",
        "update",
        "Change one field of the task with the given id.",
        (
            _ID,
            Param("field", required=True, description=f"Field to change: {_UPDATABLE}"),
            Param("new_value", required=True, description="The new value"),
        ),
        update_task,
    ),
)
