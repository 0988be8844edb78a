"""Answers to chat commands and the App Home view, as Slack Block Kit. Pure: decides only.

Each `answer_*` function takes the facts (app states, alerts, audit entries, mutes, the config)
and returns `{"text", "blocks"}` ready for chat.postEphemeral. The first line answers the
question in plain words for someone who does not run Kubernetes ("prod: 2 of 14 apps need
attention"); details for engineers follow. Every value from a cluster, from Git or from the
person asking is escaped, and every answer stays within Block Kit's limits whatever the input.

`parts` holds what every answer is built of; `fleet` the answers about apps as they are
(status, drift), `records` those from what was recorded (history, versions, audit, routes),
`replies` the short ones (help, usage, mutes, acks, notes on alerts), `home` the App Home tab.
What an app's state means (`Condition`, `summarize`) is domain logic: core.summary.
"""

from core.audit import AuditRecord
from formatters.chat.fleet import answer_apps, answer_drift, answer_no_match, answer_status
from formatters.chat.home import home_denied_view, home_fingerprint, home_view
from formatters.chat.parts import (
    ICON_GREEN,
    ICON_ORANGE,
    ICON_RED,
    Answer,
    answer_text,
    cluster_icon,
    escaped,
)
from formatters.chat.records import (
    answer_audit,
    answer_history,
    answer_routes,
    answer_versions,
)
from formatters.chat.replies import (
    BLOCK_NOTE,
    MuteInfo,
    answer_acked,
    answer_denied,
    answer_help,
    answer_muted,
    answer_mutes,
    answer_unmuted,
    answer_usage,
    note_acked,
    note_muted,
    with_note,
)

__all__ = [
    "BLOCK_NOTE",
    "ICON_GREEN",
    "ICON_ORANGE",
    "ICON_RED",
    "Answer",
    "AuditRecord",
    "MuteInfo",
    "answer_acked",
    "answer_apps",
    "answer_audit",
    "answer_denied",
    "answer_drift",
    "answer_help",
    "answer_history",
    "answer_muted",
    "answer_mutes",
    "answer_no_match",
    "answer_routes",
    "answer_status",
    "answer_text",
    "answer_unmuted",
    "answer_usage",
    "answer_versions",
    "cluster_icon",
    "escaped",
    "home_denied_view",
    "home_fingerprint",
    "home_view",
    "note_acked",
    "note_muted",
    "with_note",
]
