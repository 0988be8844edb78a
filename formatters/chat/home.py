"""The App Home tab: per cluster, how many apps are synced, drifted and failing, worst first,
with the worst apps named; and the view for someone who may not see it. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.summary import ClusterSummary, condition
from formatters import chat_phrases as say
from formatters.chat.parts import (
    CLUSTER,
    Block,
    app_sentence,
    cluster_icon,
    context,
    date,
    escaped,
    header,
    section,
)

MAX_VIEW_BLOCKS = 100


def home_fingerprint(summaries: Sequence[ClusterSummary]) -> tuple[Any, ...]:
    """What the home view shows, without the time: equal fingerprints, same view."""
    return tuple(s.fingerprint() for s in summaries)


def home_view(summaries: Sequence[ClusterSummary], now: datetime, command: str) -> dict[str, Any]:
    """The App Home tab: per cluster, synced, drifted and failing, worst first (pure)."""
    blocks: list[Block] = [header(say.HOME_TITLE)]
    if not summaries:
        blocks.append(section(say.HOME_NOTHING))
    room = (MAX_VIEW_BLOCKS - 4) // 2
    for summary in summaries[:room]:
        counts = say.HOME_COUNTS.format(
            total=summary.total,
            apps=say.plural(summary.total, "app", "apps"),
            synced=summary.synced,
            drifted=summary.drifted,
            failing=summary.failing,
        )
        line = say.HOME_CLUSTER.format(
            icon=cluster_icon(summary), cluster=escaped(summary.cluster, CLUSTER), summary=counts
        )
        worst = [app_sentence(s, {}) for s in summary.problems if condition(s).bad][:5]
        if worst:
            line += "\n" + "\n".join(f"• {w}" for w in worst)
        blocks.append(section(line))
        blocks.append({"type": "divider"})
    if len(summaries) > room:
        blocks.append(section(say.HOME_MORE.format(n=len(summaries) - room)))
    blocks.append(context(say.HOME_UPDATED.format(when=date(now), command=command)))
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def home_denied_view() -> dict[str, Any]:
    return {"type": "home", "blocks": [section(say.HOME_DENIED)]}
