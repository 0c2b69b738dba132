"""Company directory: look up colleagues' e-mail addresses."""

from __future__ import annotations

from typing import Any

from ..state import WorkplaceState
from ._common import Param, ToolSpec, icontains


def find_email_address(state: WorkplaceState, name: str = "") -> Any:
    """Addresses containing `name` (case-insensitive regex search), or a message when no name is given."""
    if name == "":
        return "Name not provided."
    return [address for address in state.db.directory if icontains(name.lower(), address)]


SPECS = (
    ToolSpec(
        "company_directory_find_email_address",
        "read",
        "Find every company e-mail address that contains the given name (case-insensitive).",
        (Param("name", description="Full or partial name to look for in the addresses"),),
        find_email_address,
    ),
)
