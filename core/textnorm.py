"""Controller messages reduced to what they say, for text dedup.

Argo CD and Flux repeat the same complaint with a new timestamp, duration, request id or retry
count each time ("... after 3.2s (request 8f14e45f-...)"); comparing raw text would let every
repetition through. `normalize_message` replaces those parts with placeholders, so two messages
that differ only there compare equal. Pure.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?\b",
            re.IGNORECASE,
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"), "<time>"),
    (
        re.compile(
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
        ),
        "<id>",
    ),
    (
        re.compile(
            r"\b(?:request|req|trace|span|correlation)[ _-]?id[=: ]+[^\s)\]]+", re.IGNORECASE
        ),
        "<id>",
    ),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b", re.IGNORECASE), "<id>"),
    (
        re.compile(
            r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)"
            r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*\b",
            re.IGNORECASE,
        ),
        "<duration>",
    ),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalize_message(message: str) -> str:
    """`message` with timestamps, durations, request and hex ids and numbers replaced by
    placeholders, whitespace folded and case ignored (pure)."""
    text = message
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip().casefold()
