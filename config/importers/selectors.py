"""Kubernetes label selectors (`env=prod,team in (shop)`) as driftbot `labels` matches. Pure.

driftbot's `labels` says "this label is set and matches this pattern", all of them: that holds
`k=v`, `k==v`, `k` (set at all) and `k in (v)`. `k in (a, b)` becomes one match per value.
`!=`, `notin` and `!k` say what must not be there, which `labels` cannot say.
"""

from __future__ import annotations

import itertools
import re

from config.importers.draft import literal

MAX_VARIANTS = 16
_SET = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")
_KEY = re.compile(r"^(!?)([^\s!=(),]+)$")


def _terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return [t for t in terms if t]


def selector_variants(selector: str) -> list[dict[str, str]] | str:
    """The `labels` matches that together select what `selector` selects ([{}] for an empty
    selector), or why they cannot."""
    choices: list[list[tuple[str, str]]] = []
    for term in _terms(selector):
        if m := _SET.match(term):
            key, op, values = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            if op == "notin":
                return f"`{term}` says what must not be set, which labels cannot express"
            choices.append([(key, literal(v)) for v in values if v])
        elif m := _EQ.match(term):
            if m.group(2) == "!=":
                return f"`{term}` says what must not be set, which labels cannot express"
            choices.append([(m.group(1), literal(m.group(3)))])
        elif m := _KEY.match(term):
            if m.group(1):
                return f"`{term}` says what must not be set, which labels cannot express"
            choices.append([(m.group(2), "*")])
        else:
            return f"`{term}` is not a label selector term"
    variants = [dict(combo) for combo in itertools.product(*choices)]
    if len(variants) > MAX_VARIANTS:
        return f"it stands for {len(variants)} combinations of labels (at most {MAX_VARIANTS})"
    return variants
