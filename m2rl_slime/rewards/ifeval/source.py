"""Where a sample's instructions come from: metadata or label, in every form seen in the wild.

- Prepared rows (and Nemotron/M2RL): ``metadata["instruction_id_list"]`` and ``metadata["kwargs"]``.
- open-instruct rows: ``label = str([{"instruction_id": [...], "kwargs": [...]}])`` (a Python literal),
  or the same as JSON, as a dict, or as a one-item list whose item is itself a JSON string.

`read_constraints` returns aligned ``(instruction_id, kwargs)`` pairs with None-valued kwargs dropped
(Arrow struct unions fill every absent key with None) and raises `LabelError` naming the bad field.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from ...errors import LabelError

_ID_KEYS = ("instruction_id_list", "instruction_id")


def _decode_string(text: str | bytes, where: str) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise LabelError(f"{where} is a string but neither JSON nor a Python literal: {text[:120]!r}") from None


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, (list, tuple)):
        return list(value)
    tolist = getattr(value, "tolist", None)  # numpy/pyarrow arrays from a DataFrame row
    if callable(tolist) and not isinstance(value, (str, bytes, Mapping)):
        converted = tolist()
        return converted if isinstance(converted, list) else None
    return None


def _constraint_mapping(label: Any) -> Mapping[str, Any]:
    """Unwrap a label into the mapping that holds the instruction ids and kwargs."""
    if isinstance(label, (str, bytes)):
        label = _decode_string(label, "label")
    items = _as_list(label)
    if items is not None:
        if len(items) != 1:
            raise LabelError(
                f"label: expected a one-item list [{{'instruction_id': ..., 'kwargs': ...}}], got {len(items)} items"
            )
        label = items[0]
        if isinstance(label, (str, bytes)):
            label = _decode_string(label, "label[0]")
    if not isinstance(label, Mapping):
        raise LabelError(f"label: expected a mapping with 'instruction_id' and 'kwargs', got {type(label).__name__}")
    return label


def _pick_source(label: Any, metadata: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if metadata.get("instruction_id_list") is not None:
        return metadata, "metadata"
    if label is None:
        raise LabelError("no instructions: metadata has no 'instruction_id_list' and the label is None")
    return _constraint_mapping(label), "label"


def _read_ids(source: Mapping[str, Any], where: str) -> list[str]:
    key = next((k for k in _ID_KEYS if source.get(k) is not None), None)
    if key is None:
        raise LabelError(f"{where}: missing 'instruction_id_list' (or 'instruction_id'); keys: {sorted(source)}")
    ids = _as_list(source[key])
    if ids is None:
        raise LabelError(f"{where}.{key} must be a list of instruction ids, got {type(source[key]).__name__}")
    if not ids:
        raise LabelError(f"{where}.{key} is empty: a sample needs at least one instruction")
    for i, instruction_id in enumerate(ids):
        if not isinstance(instruction_id, str) or not instruction_id.strip():
            raise LabelError(f"{where}.{key}[{i}] must be a non-empty string, got {instruction_id!r}")
    return [instruction_id.strip() for instruction_id in ids]


def _read_kwargs(source: Mapping[str, Any], where: str, count: int) -> list[dict[str, Any]]:
    raw = source.get("kwargs")
    if raw is None:
        return [{} for _ in range(count)]
    if isinstance(raw, (str, bytes)):
        raw = _decode_string(raw, f"{where}.kwargs")
    entries = _as_list(raw)
    if entries is None:
        raise LabelError(f"{where}.kwargs must be a list of dicts, got {type(raw).__name__}")
    if len(entries) != count:
        raise LabelError(f"{where}.kwargs has {len(entries)} entries but there are {count} instruction ids")
    return [_read_kwargs_entry(entry, f"{where}.kwargs[{i}]") for i, entry in enumerate(entries)]


def _read_kwargs_entry(entry: Any, where: str) -> dict[str, Any]:
    if entry is None:
        return {}
    if isinstance(entry, (str, bytes)):
        entry = _decode_string(entry, where)
    if not isinstance(entry, Mapping):
        raise LabelError(f"{where} must be a dict (or null), got {type(entry).__name__}")
    cleaned = {}
    for key, value in entry.items():
        if not isinstance(key, str):
            raise LabelError(f"{where} has a non-string key {key!r}")
        if value is not None:
            cleaned[key] = _plain(value)
    return cleaned


def _plain(value: Any) -> Any:
    """numpy arrays/scalars from a DataFrame row -> plain lists/numbers; anything else unchanged."""
    converted = _as_list(value)
    if converted is not None:
        return converted
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def read_constraints(label: Any, metadata: Any) -> list[tuple[str, dict[str, Any]]]:
    """Aligned ``(instruction_id, kwargs)`` pairs for one sample, in the row's order.

    Metadata wins when it has ``instruction_id_list``; otherwise the label is parsed.

    Raises:
        LabelError: no instructions, an empty list, misaligned or ill-typed ids/kwargs; the message
            names the field.
    """
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise LabelError(f"metadata must be a mapping, got {type(metadata).__name__}")
    source, where = _pick_source(label, metadata)
    ids = _read_ids(source, where)
    return list(zip(ids, _read_kwargs(source, where, len(ids))))
