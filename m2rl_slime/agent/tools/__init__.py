"""The 27 workplace tools, one module per toolkit, in one explicit registry (name -> `ToolSpec`).

Semantics (messages, validation, id generation, ordering, pagination) follow NeMo-Gym's
`resources_servers/workplace_assistant/workplace_assistant_tools/*.py`; the implementations here are
written against plain tuples instead of pandas.
"""

from __future__ import annotations

from . import analytics, calendar, company_directory, customer_relationship_manager, email, project_management
from ._common import NOW, TOOLKITS, Param, ToolError, ToolSpec, toolkit_of

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for module in (company_directory, email, calendar, analytics, project_management, customer_relationship_manager)
    for spec in module.SPECS
}

__all__ = ["NOW", "TOOLKITS", "TOOLS", "Param", "ToolError", "ToolSpec", "toolkit_of"]
