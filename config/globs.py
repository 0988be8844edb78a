"""Glob patterns for route matching: shell-style (fnmatch), case-sensitive, checked up front.

`fnmatch` never fails: an unclosed `[` silently becomes a literal, and `[z-a]` silently matches
nothing. A routing rule that can never fire is a lost alert, so the config loader refuses both.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache


class GlobError(ValueError):
    """A pattern that would not do what it says."""


def check_glob(pattern: str) -> str:
    """Return `pattern` unchanged, or raise GlobError saying what is wrong with it."""
    if pattern == "":
        raise GlobError("empty pattern (use '*' to match anything)")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                raise GlobError(
                    f"bad pattern {pattern!r}: '[' at position {i + 1} is never closed "
                    "(write '[[]' for a literal '[')"
                )
            i = close
        i += 1
    if "(?!)" in fnmatch.translate(pattern):
        raise GlobError(f"bad pattern {pattern!r}: a character range is empty, it matches nothing")
    return pattern


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def glob_match(pattern: str, value: str) -> bool:
    """fnmatch semantics, always case-sensitive (fnmatch.fnmatch folds case on Windows)."""
    return _compiled(pattern).match(value) is not None


def any_match(patterns: tuple[str, ...], value: str) -> bool:
    return any(glob_match(p, value) for p in patterns)
