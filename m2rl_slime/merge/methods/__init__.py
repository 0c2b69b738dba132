"""Merge methods: one module per method family, registered in the plain `METHODS` dict.

Adding a method: write its module (a params dataclass, a per-block `apply`, optional statistics passes,
a `MergeMethod` with its formula), add one line here, a test in tests/merge/test_methods.py and a row in
docs/merge.md.
"""

from __future__ import annotations

from ...errors import UnknownNameError
from .average import AVERAGE
from .base import Block, MergeMethod, Passes
from .sce import SCE, SCE_FUSECHAT
from .task_arithmetic import TA, TA_DARE
from .ties import TIES, TIES_DARE

METHODS: dict[str, MergeMethod] = {
    "average": AVERAGE,
    "ta": TA,
    "ta_dare": TA_DARE,
    "ties": TIES,
    "ties_dare": TIES_DARE,
    "sce": SCE,
    "sce_fusechat": SCE_FUSECHAT,
}


def get_method(name: str) -> MergeMethod:
    """The registered method `name`.

    Raises:
        UnknownNameError: listing the known methods.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError("merge method", name, METHODS) from None


__all__ = ["METHODS", "Block", "MergeMethod", "Passes", "get_method"]
