"""The slash command, in two halves: `parse` reads what a person typed after `/gitops` into a
Command value (pure; never raises), `run` answers it (RBAC, the facts, the wording through
formatters.chat); `scope` decides which apps a question is about (pure).

To add a command: its dataclass and a line in `parse.GRAMMAR` (and `OPERATOR_VERBS` when it
changes something), then a case in `run.CommandRunner.execute`; its words go in
formatters/chat_phrases.py (help lines included).
"""

from bot.chat.commands.parse import (
    ACT_VERBS,
    ALL,
    OPERATOR_VERBS,
    VERBS,
    Ack,
    Act,
    Audit,
    Command,
    Drift,
    Help,
    History,
    Mute,
    Mutes,
    Routes,
    Selector,
    Status,
    Unmute,
    Usage,
    Versions,
    needs_operator,
    parse_command,
    parse_selector,
)
from bot.chat.commands.run import Asker, AuditLog, CommandRunner, Controls, Fleet
from bot.chat.commands.scope import Scope, channel_scope, problems_since, select, selects

__all__ = [
    "ACT_VERBS",
    "ALL",
    "OPERATOR_VERBS",
    "VERBS",
    "Ack",
    "Act",
    "Asker",
    "Audit",
    "AuditLog",
    "Command",
    "CommandRunner",
    "Controls",
    "Drift",
    "Fleet",
    "Help",
    "History",
    "Mute",
    "Mutes",
    "Routes",
    "Scope",
    "Selector",
    "Status",
    "Unmute",
    "Usage",
    "Versions",
    "channel_scope",
    "needs_operator",
    "parse_command",
    "parse_selector",
    "problems_since",
    "select",
    "selects",
]
