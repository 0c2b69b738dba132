"""Copy-on-write episode state over the shared seed tables.

An episode never copies a table: `Table` keeps the shared seed rows and records only its own changes
(replaced rows, deleted rows, created rows), so `WorkplaceState.fresh` and `fork` cost O(1) and
comparing two final states costs O(changes). Row order is what pandas would keep: seed rows in place
(updated in place, deleted rows dropped), then created rows in creation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from .tables import TableData, WorkplaceDB

# Tables whose final state decides the reward (NeMo-Gym compares these five DataFrames).
COMPARED_TABLES = ("calendar", "emails", "plots", "tasks", "crm")
# Columns NeMo-Gym compares case-sensitively; every other string is lowercased before comparison.
CASE_SENSITIVE_COLUMNS = frozenset({"status", "list_name", "board"})
# The id column of each mutable table (its value is generated for created rows).
ID_COLUMNS = {"emails": "email_id", "calendar": "event_id", "tasks": "task_id", "crm": "customer_id"}

CreatedRows = Literal["ignore_generated_ids", "ordered_with_ids"]


class Table:
    """One table of an episode: the shared seed rows plus this episode's changes."""

    __slots__ = ("_created", "_deleted", "_next_key", "_replaced", "data")

    def __init__(self, data: TableData) -> None:
        self.data = data
        self._replaced: dict[int, tuple[Any, ...]] = {}
        self._deleted: set[int] = set()
        self._created: dict[int, tuple[Any, ...]] = {}
        self._next_key = len(data.rows)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.data.columns

    def col(self, name: str) -> int:
        return self.data.columns.index(name)

    def fork(self) -> Table:
        """An independent copy (shares the seed rows, copies only the change records)."""
        other = Table.__new__(Table)
        other.data = self.data
        other._replaced = dict(self._replaced)
        other._deleted = set(self._deleted)
        other._created = dict(self._created)
        other._next_key = self._next_key
        return other

    @property
    def modified(self) -> bool:
        return bool(self._replaced or self._deleted or self._created)

    def items(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """Yield `(key, row)` in table order."""
        replaced, deleted = self._replaced, self._deleted
        if not replaced and not deleted:
            yield from enumerate(self.data.rows)
        else:
            for key, row in enumerate(self.data.rows):
                if key not in deleted:
                    yield key, replaced.get(key, row)
        yield from self._created.items()

    def rows(self) -> Iterator[tuple[Any, ...]]:
        return (row for _, row in self.items())

    def record(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.data.columns, row))

    def values(self, column: str) -> list[Any]:
        """The current values of one column, in table order."""
        idx = self.col(column)
        return [row[idx] for row in self.rows()]

    def keys_where(self, column: str, value: Any) -> list[int]:
        """Keys of the rows whose `column` equals `value`."""
        idx = self.col(column)
        return [key for key, row in self.items() if row[idx] == value]

    def set_value(self, key: int, column: str, value: Any) -> None:
        idx = self.col(column)
        if key in self._created:
            row = self._created[key]
            self._created[key] = row[:idx] + (value,) + row[idx + 1 :]
        else:
            row = self._replaced.get(key, self.data.rows[key])
            self._replaced[key] = row[:idx] + (value,) + row[idx + 1 :]

    def delete(self, key: int) -> None:
        if key in self._created:
            del self._created[key]
        else:
            self._deleted.add(key)
            self._replaced.pop(key, None)

    def append(self, values: dict[str, Any]) -> int:
        """Append a row given by column name (missing columns become None); return its key."""
        key = self._next_key
        self._next_key += 1
        self._created[key] = tuple(values.get(c) for c in self.data.columns)
        return key

    def delta(self, id_column: str | None, created_rows: CreatedRows) -> tuple[Any, ...]:
        """A canonical, hashable summary of this table's changes, as NeMo-Gym's comparison sees them.

        Strings are lowercased except in `CASE_SENSITIVE_COLUMNS`; a seed row updated back to an equal
        value counts as unchanged. With "ignore_generated_ids", created rows are compared as a sorted
        multiset without their id column; with "ordered_with_ids" in creation order with ids.
        """
        lower = _lowering(self.data.columns)
        deleted = frozenset(self._deleted)
        changed = tuple(
            sorted(
                (key, _normalise(row, lower))
                for key, row in self._replaced.items()
                if _normalise(row, lower) != _normalise(self.data.rows[key], lower)
            )
        )
        created = [_normalise(row, lower) for row in self._created.values()]
        if created_rows == "ignore_generated_ids":
            drop = self.col(id_column) if id_column is not None else None
            created = sorted((tuple(v for i, v in enumerate(row) if i != drop) for row in created), key=repr)
        return deleted, changed, tuple(created)


def _lowering(columns: tuple[str, ...]) -> tuple[bool, ...]:
    return tuple(c not in CASE_SENSITIVE_COLUMNS for c in columns)


def _normalise(row: tuple[Any, ...], lower: tuple[bool, ...]) -> tuple[Any, ...]:
    return tuple(v.lower() if low and isinstance(v, str) else v for v, low in zip(row, lower))


_PLOTS = TableData("plots", ("file_path",), ())


class WorkplaceState:
    """The mutable state of one episode: e-mails, calendar, plots, tasks and CRM over the seed database."""

    __slots__ = ("db", "tables")

    def __init__(self, db: WorkplaceDB, tables: dict[str, Table]) -> None:
        self.db = db
        self.tables = tables

    @classmethod
    def fresh(cls, db: WorkplaceDB) -> WorkplaceState:
        """A new state equal to the seed database (O(1): nothing is copied)."""
        tables = {name: Table(db.tables[name]) for name in ("emails", "calendar", "tasks", "crm")}
        tables["plots"] = Table(_PLOTS)
        return cls(db, tables)

    def fork(self) -> WorkplaceState:
        return WorkplaceState(self.db, {name: table.fork() for name, table in self.tables.items()})

    @property
    def analytics(self) -> TableData:
        return self.db.tables["analytics"]

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    @property
    def modified(self) -> bool:
        return any(table.modified for table in self.tables.values())

    def delta(self, created_rows: CreatedRows = "ignore_generated_ids") -> dict[str, tuple[Any, ...]]:
        """Canonical changes of every compared table that differs from the seed (empty: nothing changed)."""
        out = {}
        for name in COMPARED_TABLES:
            table = self.tables[name]
            if table.modified:
                summary = table.delta(ID_COLUMNS.get(name), created_rows)
                if any(summary):
                    out[name] = summary
        return out
