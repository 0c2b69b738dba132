"""Content checkers: placeholders and postscripts."""

from __future__ import annotations

import re
from functools import lru_cache

from .params import Checker, Param
from .text import Doc

# IFEval's two built-in markers are matched with optional spaces ("P. S.", "p.p.s").
_PS_RE = re.compile(r"p\.\s?s\.")
_PPS_RE = re.compile(r"p\.\s?p\.\s?s")


def count_placeholders(text: str) -> int:
    """Non-overlapping ``[...]`` spans within one line (IFEval's ``\\[.*?\\]``), counted in linear time."""
    count = 0
    for line in text.split("\n"):
        pos = 0
        while True:
            start = line.find("[", pos)
            if start < 0:
                break
            end = line.find("]", start + 1)
            if end < 0:
                break  # no later "[" on this line can close either
            count += 1
            pos = end + 1
    return count


def number_placeholders(doc: Doc, *, num_placeholders: int) -> bool:
    """detectable_content:number_placeholders: at least `num_placeholders` ``[placeholder]`` spans."""
    return count_placeholders(doc.text) >= num_placeholders


@lru_cache(maxsize=256)
def _marker_re(marker: str) -> re.Pattern[str]:
    if marker == "P.P.S":
        return _PPS_RE
    if marker == "P.S.":
        return _PS_RE
    return re.compile(re.escape(marker.lower()))


def postscript(doc: Doc, *, postscript_marker: str) -> bool:
    """detectable_content:postscript: the marker (e.g. "P.S.") appears, case-insensitively.

    As in IFEval the postscript need not start a new line; other markers match literally.
    """
    return _marker_re(postscript_marker).search(doc.lower) is not None


CHECKERS: dict[str, Checker] = {
    "detectable_content:number_placeholders": Checker(number_placeholders, (Param("num_placeholders", "count"),)),
    "detectable_content:postscript": Checker(postscript, (Param("postscript_marker", "text"),)),
}
