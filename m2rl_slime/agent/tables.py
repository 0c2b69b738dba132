"""The workplace database: five CSV tables plus the company directory, loaded once per process.

Tables are plain tuples of row tuples (no pandas), so an episode's state can share them and only record
its own changes (see `state.py`). Values are strings exactly as in the CSV, except that the cells pandas
reads as missing become None and `analytics_data.user_engaged` becomes a bool, which is what the
NeMo-Gym tools see after `pd.read_csv(dtype=str)`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ConfigError

# The strings pandas.read_csv turns into NaN by default (its `na_values`), plus the empty cell.
_PANDAS_NA = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)

# file stem -> (table name, required columns in the order NeMo-Gym's CSVs have them)
TABLE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "emails": ("emails", ("email_id", "inbox/outbox", "sender/recipient", "subject", "sent_datetime", "body")),
    "calendar_events": ("calendar", ("event_id", "event_name", "participant_email", "event_start", "duration")),
    "analytics_data": (
        "analytics",
        ("date_of_visit", "visitor_id", "page_views", "session_duration_seconds", "traffic_source", "user_engaged"),
    ),
    "project_tasks": ("tasks", ("task_id", "task_name", "assigned_to_email", "list_name", "due_date", "board")),
    "customer_relationship_manager_data": (
        "crm",
        (
            "customer_id",
            "assigned_to_email",
            "customer_name",
            "customer_email",
            "customer_phone",
            "last_contact_date",
            "product_interest",
            "status",
            "follow_up_by",
            "notes",
        ),
    ),
}
DIRECTORY_FILE = "email_addresses.csv"


@dataclass(frozen=True, slots=True)
class TableData:
    """One immutable table: column names and rows (tuples aligned with the columns)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def index(self, column: str) -> int:
        return self.columns.index(column)


@dataclass(frozen=True, slots=True, eq=False)
class WorkplaceDB:
    """The seed database every episode starts from (hashed and compared by identity)."""

    source: str
    tables: dict[str, TableData]  # emails, calendar, analytics, tasks, crm
    directory: tuple[str, ...]  # company e-mail addresses


def _find(csv_dir: str, names: tuple[str, ...]) -> str | None:
    for name in names:
        path = os.path.join(csv_dir, name)
        if os.path.isfile(path):
            return path
    return None


def _read_table(path: str, name: str, required: tuple[str, ...]) -> TableData:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = tuple(next(reader))
        except StopIteration:
            raise ConfigError(f"{path}: empty file, expected a header with {', '.join(required)}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}; header is {', '.join(header)}")
        rows = []
        for line_no, cells in enumerate(reader, start=2):
            if not cells:
                continue  # pandas skips blank lines
            if len(cells) != len(header):
                raise ConfigError(f"{path}:{line_no}: {len(cells)} cells, header has {len(header)}")
            rows.append(tuple(None if cell in _PANDAS_NA else cell for cell in cells))
    if name == "analytics":
        col = header.index("user_engaged")
        rows = [row[:col] + (row[col] == "True",) + row[col + 1 :] for row in rows]
    return TableData(name, header, tuple(rows))


def _read_directory(path: str) -> tuple[str, ...]:
    with open(path, newline="", encoding="utf-8") as fh:
        return tuple(cells[0] for cells in csv.reader(fh) if cells and cells[0] not in _PANDAS_NA)


def read_db(csv_dir: str) -> WorkplaceDB:
    """Load the workplace tables from `csv_dir` (no caching; see `load_db`).

    Args:
        csv_dir: NeMo-Gym's `csv_data` directory (holding `processed/` and `raw/`), or `csv_data/processed`
            itself (the directory file is then looked up in `../raw/`).

    Raises:
        ConfigError: a table or column is missing, naming the path.
    """
    if not os.path.isdir(csv_dir):
        raise ConfigError(f"m2rl_agent.csv_dir {csv_dir!r} is not a directory")
    tables = {}
    for stem, (name, required) in TABLE_FILES.items():
        path = _find(csv_dir, (f"{stem}.csv", f"processed/{stem}.csv"))
        if path is None:
            raise ConfigError(f"m2rl_agent.csv_dir {csv_dir!r}: no {stem}.csv (looked in it and in processed/)")
        tables[name] = _read_table(path, name, required)
    path = _find(csv_dir, (DIRECTORY_FILE, f"raw/{DIRECTORY_FILE}", f"../raw/{DIRECTORY_FILE}"))
    if path is None:
        raise ConfigError(f"m2rl_agent.csv_dir {csv_dir!r}: no {DIRECTORY_FILE} (looked in it, raw/ and ../raw/)")
    return WorkplaceDB(os.path.realpath(csv_dir), tables, _read_directory(path))


@lru_cache(maxsize=8)
def _cached(real_dir: str) -> WorkplaceDB:
    return read_db(real_dir)


_by_name: dict[str, WorkplaceDB] = {}


def load_db(csv_dir: str) -> WorkplaceDB:
    """Load the database once per process and directory (later calls return the same object)."""
    db = _by_name.get(csv_dir)
    if db is None:
        db = _by_name[csv_dir] = _cached(os.path.realpath(csv_dir))
    return db
