"""Linear-time scanning helpers for the Java/JavaScript literal converters.

BFCL's reference converters use lazy regular expressions (``.+?``, ``.*?``) that a backtracking engine rescans
from every candidate start, so a hostile argument costs quadratic (or, for the 2-D array pattern, exponential)
time. The converters here compute the same matches with these helpers: `Finder` answers "next occurrence of
S at or after i" with a per-substring cursor, which is amortised linear when the queries for one substring
move forward, and `ws_end` is the end of a run of regex ``\\s`` characters (``str.isspace``, the same set).
"""

from __future__ import annotations


class Finder:
    """`find(sub, start)` over one text; amortised O(len(text)) per substring for non-decreasing starts."""

    __slots__ = ("text", "_cache")

    def __init__(self, text: str) -> None:
        self.text = text
        self._cache: dict[str, tuple[int, int]] = {}

    def find(self, sub: str, start: int) -> int:
        """Index of the first `sub` at or after `start`, or -1."""
        cached = self._cache.get(sub)
        if cached is not None:
            begin, found = cached
            if begin <= start and (found < 0 or start <= found):
                return found
        found = self.text.find(sub, start)
        self._cache[sub] = (start, found)
        return found

    def span_free(self, sub: str, start: int, end: int) -> bool:
        """True if `sub` does not occur starting in [start, end)."""
        found = self.find(sub, start)
        return found < 0 or found >= end


def ws_end(text: str, i: int) -> int:
    """The first index at or after `i` that is not whitespace (``len(text)`` if none)."""
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i


def ws_start(text: str, i: int, floor: int) -> int:
    """The start of the whitespace run that ends right before `i`, not below `floor`."""
    while i > floor and text[i - 1].isspace():
        i -= 1
    return i


def lazy_line_group(finder: Finder, start: int, terminator: str, min_len: int) -> int:
    """End of the shortest non-DOTALL lazy group from `start` followed by `terminator`, or -1.

    This is the match of ``(.{min_len,}?)terminator`` at `start`: the group may not contain a newline.
    """
    end = finder.find(terminator, start + min_len)
    if end < 0 or not finder.span_free("\n", start, end):
        return -1
    return end
