"""Every word and Slack view about acting from chat: what an action will do (the modal), why
it cannot be done (refusals), the approval request, and the thread follow-up ("rolling back…"
then the result the watch saw).

Pure: takes core.actions values and `now`, returns text and Block Kit. Values from a cluster
or from a person are escaped here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.actions import Outcome, Pending, Plan, Refusal, Verb
from core.model import HistoryEntry
from formatters import escape as esc
from formatters import phrases
from formatters.revision import short_revision

Block = dict[str, Any]

CALLBACK_CONFIRM = "driftbot_action_confirm"
"""The callback_id of the confirmation modal; its private_metadata holds the pending id."""
BLOCK_REASON = "reason"
BLOCK_HISTORY = "history"
ACTION_REASON = "reason_input"
ACTION_HISTORY = "history_select"
ACTION_APPROVE = "driftbot_approve"
MAX_REASON = 300
MAX_CHOICES = 10

DOING: dict[Verb, str] = {
    Verb.SYNC: "Syncing",
    Verb.ROLLBACK: "Rolling back",
    Verb.REFRESH: "Hard-refreshing",
    Verb.TERMINATE: "Terminating the operation of",
    Verb.RECONCILE: "Reconciling",
    Verb.SUSPEND: "Suspending",
    Verb.RESUME: "Resuming",
}
TITLES: dict[Verb, str] = {
    Verb.SYNC: "Sync",
    Verb.ROLLBACK: "Roll back",
    Verb.REFRESH: "Hard refresh",
    Verb.TERMINATE: "Terminate",
    Verb.RECONCILE: "Reconcile",
    Verb.SUSPEND: "Suspend",
    Verb.RESUME: "Resume",
}

REFUSALS: dict[str, str] = {
    "unknown_app": "I do not watch an app called {app} on {cluster}.",
    "gone": "{app} on {cluster} was deleted: there is nothing to {verb}.",
    "wrong_tool": (
        "{app} on {cluster} is a {tool} {kind}: `{verb}` is for {other}. Use {hint} instead."
    ),
    "auto_sync": (
        "Argo CD refuses to roll back {app} on {cluster} while auto-sync is on: it would sync "
        "forward to Git again at once. Revert the change in Git, or turn auto-sync off first."
    ),
    "no_history": "{app} on {cluster} has no earlier revision in its history to roll back to.",
    "no_such_history": ("{app} on {cluster} has no history entry {id} (entries: {ids})."),
    "running": (
        "An operation is already running on {app} on {cluster}: wait for it to finish, or "
        "`terminate` it first."
    ),
    "not_running": "Nothing is running on {app} on {cluster}: there is no operation to terminate.",
    "suspended": (
        "{app} on {cluster} is suspended: Flux does not reconcile a suspended object. "
        "`resume` it first."
    ),
    "already_suspended": "{app} on {cluster} is already suspended.",
    "not_suspended": "{app} on {cluster} is not suspended: there is nothing to resume.",
}

DISABLED = (
    "Acting from chat is turned off here (`actions.enabled` in driftbot's config). "
    "Do it in Argo CD or with the flux CLI."
)
DENIED = "Only deployers of {app} on {cluster} may {verb} it; you are not one."
STALE = "That confirmation is more than {minutes} minutes old: nothing was done. Ask again."
DONE_ALREADY = "That was already confirmed: it is done once, not twice."
NOT_YOURS = "Only the person who asked can confirm this."
SAME_PERSON = "You asked for this yourself: another deployer must approve it."
EXPIRED = "Nobody approved {what} within {within}: it expired and nothing was done."
NOT_AWAITING = "This is not waiting for an approval."
NO_LONGER = "This action is no longer pending: nothing was done."
TEAMS_WHERE = (
    "`{verb}` is not taken here: acting on Argo CD and Flux happens in Slack, with a "
    "confirmation (deployers only), or in Argo CD and with the flux CLI."
)


def _v(text: str, limit: int = 120) -> str:
    return phrases.value(text, limit, esc.slack)


def _rev(revision: str) -> str:
    short = short_revision(revision)
    return f"`{_v(short.replace('`', ''), 60)}`" if short else "the revision Git names"


def _where(plan: Plan) -> str:
    key = plan.request.key
    return f"*{_v(key.name)}* on *{_v(key.cluster)}*"


def ago(then: datetime, now: datetime) -> str:
    """ "2 days ago", "3 hours ago", "just now": how long ago a deploy was, in whole units."""
    seconds = max(0, int((now - then).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def _deployed(entry: HistoryEntry, now: datetime, escape: bool) -> str:
    """ "history 41, deployed by carol 2 days ago"."""
    text = f"history {_v(entry.id, 20) if escape else entry.id}"
    when = f" {ago(entry.deployed_at, now)}" if entry.deployed_at is not None else ""
    if entry.initiated_by:
        by = _v(entry.initiated_by, 60) if escape else entry.initiated_by
        return f"{text}, deployed by {by}{when}"
    return f"{text}, deployed{when}" if when else text


def _entry(entry: HistoryEntry, now: datetime) -> str:
    return _deployed(entry, now, escape=True)


def describe(plan: Plan, now: datetime) -> str:
    """Exactly what will happen, in one sentence (mrkdwn)."""
    request, where = plan.request, _where(plan)
    verb = request.verb
    if verb is Verb.SYNC:
        target = _rev(request.revision) if request.revision else "the revision Git names"
        return f"Sync {where} to {target} (running {_rev(plan.from_revision)} now)."
    if verb is Verb.ROLLBACK:
        assert plan.target is not None
        return (
            f"Roll back {where} from {_rev(plan.from_revision)} to {_rev(plan.to_revision)} "
            f"({_entry(plan.target, now)})."
        )
    if verb is Verb.REFRESH:
        return f"Hard-refresh {where}: Argo CD compares it with Git again, without syncing."
    if verb is Verb.TERMINATE:
        return f"Terminate the operation running on {where}."
    key = request.key
    what = f"{_v(key.kind)} *{_v(key.name)}* in {_v(key.namespace)} on *{_v(key.cluster)}*"
    if verb is Verb.RECONCILE:
        source = " and its source first" if request.with_source else ""
        return f"Reconcile {what}{source} now (`reconcile.fluxcd.io/requestedAt`)."
    if verb is Verb.SUSPEND:
        return f"Suspend {what}: Flux stops reconciling it until it is resumed."
    return f"Resume {what}: Flux reconciles it again, now."


def refusal(refused: Refusal, command: str = "/gitops") -> str:
    facts = {k: _v(v) for k, v in refused.facts.items()}
    facts.setdefault("app", "the app")
    facts.setdefault("cluster", "its cluster")
    facts.setdefault("verb", "act on")
    if refused.code == "wrong_tool":
        argocd = refused.facts.get("tool") == "argocd"
        facts["tool"] = "Argo CD" if argocd else "Flux"
        facts["other"] = "Flux objects" if argocd else "Argo CD Applications"
        facts["hint"] = (
            "`sync`, `rollback`, `refresh` or `terminate`"
            if argocd
            else "`reconcile`, `suspend` or `resume`"
        )
    return REFUSALS[refused.code].format_map(_Missing(facts))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def confirm_view(pending: Pending, now: datetime, approval: str = "") -> dict[str, Any]:
    """The confirmation modal (views.open). `approval`: a note that a second deployer must
    approve, or empty."""
    plan = pending.plan
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": describe(plan, now)[:2900]}}
    ]
    if plan.request.verb is Verb.ROLLBACK and plan.target is not None and plan.choices:
        options = [_option(entry, now) for entry in plan.choices[:MAX_CHOICES]]
        chosen = next(
            (o for o, e in zip(options, plan.choices, strict=False) if e == plan.target), options[0]
        )
        blocks.append(
            {
                "type": "input",
                "block_id": BLOCK_HISTORY,
                "label": {"type": "plain_text", "text": "Roll back to"},
                "element": {
                    "type": "static_select",
                    "action_id": ACTION_HISTORY,
                    "options": options,
                    "initial_option": chosen,
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": BLOCK_REASON,
            "optional": True,
            "label": {"type": "plain_text", "text": "Why (for the audit log)"},
            "element": {
                "type": "plain_text_input",
                "action_id": ACTION_REASON,
                "max_length": MAX_REASON,
            },
        }
    )
    context = approval or "Confirm within 5 minutes; it is done once, and recorded."
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {
        "type": "modal",
        "callback_id": CALLBACK_CONFIRM,
        "private_metadata": json.dumps({"p": pending.id}),
        "title": {"type": "plain_text", "text": TITLES[plan.request.verb][:24]},
        "submit": {"type": "plain_text", "text": TITLES[plan.request.verb][:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _option(entry: HistoryEntry, now: datetime) -> dict[str, Any]:
    label = f"{short_revision(entry.revision) or '?'} ({_plain_entry(entry, now)})"
    return {
        "text": {"type": "plain_text", "text": esc.truncate(esc.one_line(label), 75)},
        "value": entry.id[:75],
    }


def _plain_entry(entry: HistoryEntry, now: datetime) -> str:
    return _deployed(entry, now, escape=False)


def pending_id_of(view: Any) -> str:
    """The pending action a submitted modal is about ("" when the view is not ours)."""
    if not isinstance(view, dict) or view.get("callback_id") != CALLBACK_CONFIRM:
        return ""
    try:
        data = json.loads(view.get("private_metadata") or "")
    except (TypeError, ValueError):
        return ""
    value = data.get("p") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def submitted(view: Any) -> tuple[str, str]:
    """(reason, chosen history id) from a submitted modal's state; empty when absent."""
    values = (view.get("state") or {}).get("values") or {} if isinstance(view, dict) else {}
    reason = ((values.get(BLOCK_REASON) or {}).get(ACTION_REASON) or {}).get("value") or ""
    chosen = ((values.get(BLOCK_HISTORY) or {}).get(ACTION_HISTORY) or {}).get(
        "selected_option"
    ) or {}
    history = chosen.get("value") if isinstance(chosen, dict) else ""
    return (
        reason[:MAX_REASON] if isinstance(reason, str) else "",
        history if isinstance(history, str) else "",
    )


def who(user: str) -> str:
    return f"<@{user}>" if user.isalnum() else _v(user, 60)


def started_text(pending: Pending, now: datetime) -> str:
    """The thread's first word: "Rolling back checkout on prod to `ea87599`… (asked by @carol)"."""
    plan, request = pending.plan, pending.plan.request
    target = ""
    if request.verb is Verb.ROLLBACK and plan.to_revision:
        target = f" to {_rev(plan.to_revision)}"
    elif request.verb is Verb.SYNC and request.revision:
        target = f" to {_rev(request.revision)}"
    approved = f", approved by {who(pending.approved_by)}" if pending.approved_by else ""
    reason = f" Reason: {_v(pending.reason, MAX_REASON)}" if pending.reason else ""
    return (
        f"{DOING[request.verb]} {_where(plan)}{target}… (asked by {who(pending.asked_by)}"
        f"{approved}).{reason}"
    )


def result_text(pending: Pending, result: Outcome, follow_for: str) -> str:
    """The real result, as the watch saw it."""
    plan = pending.plan
    title = TITLES[plan.request.verb].lower()
    where = _where(plan)
    if result.kind == "succeeded":
        at = f": now at {_rev(result.revision)}" if result.revision else ""
        return f":white_check_mark: {title.capitalize()} of {where} succeeded{at}."
    if result.kind == "failed":
        why = f": {_v(result.message, 500)}" if result.message else ""
        return f":x: {title.capitalize()} of {where} failed{why}."
    return (
        f":hourglass: No result for the {title} of {where} within {follow_for}: "
        "check Argo CD or Flux."
    )


def failed_to_act(pending: Pending, why: str) -> str:
    what = TITLES[pending.plan.request.verb].lower()
    return f":x: Could not {what} {_where(pending.plan)}: {_v(why, 500)}"


def approval_blocks(pending: Pending, now: datetime, within: str) -> tuple[str, list[Block]]:
    """The message that waits in the channel for a second deployer."""
    text = (
        f"{who(pending.asked_by)} asks: {describe(pending.plan, now)} "
        f"A second deployer must approve within {within}."
    )
    if pending.reason:
        text += f" Reason: {_v(pending.reason, MAX_REASON)}"
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "action_id": ACTION_APPROVE,
                    "value": pending.id,
                }
            ],
        },
    ]
    return text[:2900], blocks


def approval_closed(pending: Pending, now: datetime, note: str) -> tuple[str, list[Block]]:
    """The approval message once decided: the request and what became of it, no button."""
    text = f"{who(pending.asked_by)} asked: {describe(pending.plan, now)} {note}"
    return text[:2900], [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
