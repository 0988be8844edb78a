"""Acting from Slack: a typed action or a clicked alert button opens a confirmation modal
(views.open) that says exactly what will happen; submitting it (view_submission) does it,
once, within five minutes; with the two-person rule the action first waits in the channel for
another deployer's Approve. Then the thread hears "rolling back…" and, later, the result the
watch saw.

Who may act is `rbac.deployers` (per cluster, namespace, Argo CD project), checked when the
modal is asked for, when it is submitted and when an approval is clicked. Every request,
confirmation, approval, refusal and result is audited with who, what, when and why. The
decisions are core.actions'; the words formatters.actions'; the doing bot/actions'.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.actor import Actor
from bot.actions.errors import ActionError
from bot.actions.follow import Follower
from bot.actions.pending import PendingActions
from bot.chat.commands import Act, Asker, AuditLog, Fleet, Selector, select, selects
from config.actions import CONFIRM_WITHIN
from config.durations import format_duration
from config.schema import Config
from core import actions as decide
from core.actions import ActionRequest, Outcome, Pending, Plan, Refusal, Verb
from core.commands import alerts_of_notification
from core.model import AppKey, AppState, GitOpsEvent
from formatters import actions as words
from formatters import chat
from formatters import chat_phrases as say
from formatters.chat import Answer
from formatters.slack_actions import ACT_ACTIONS, parse_action_value

logger = logging.getLogger(__name__)

Reply = Callable[[str, str, Answer], Awaitable[None]]
"""(channel, user, answer): an answer only that user sees."""
Groups = Callable[[str], Awaitable[tuple[str, ...]]]
DESK_ACTIONS = frozenset({words.ACTION_APPROVE, *ACT_ACTIONS})
"""The buttons this desk answers: Approve, and the actions on alerts."""


class ActionDesk:
    def __init__(
        self,
        config: Config,
        client: AsyncWebClient,
        fleet: Fleet,
        audit: AuditLog,
        actor: Actor,
        clock: Callable[[], datetime],
        reply: Reply,
        groups: Groups,
    ) -> None:
        self.config = config
        self.client = client
        self.fleet = fleet
        self.audit = audit
        self.actor = actor
        self.clock = clock
        self.reply = reply
        self.groups = groups
        self.pending = PendingActions()
        self.follower = Follower(self._report, config.actions.follow_for)
        self._approval_ts: dict[str, tuple[str, str]] = {}
        """Pending id -> (channel, ts) of its approval message."""
        self._threads: dict[str, tuple[str, str]] = {}
        """Pending id -> (channel, ts) of the message whose thread hears the result."""

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.follower.follow_for = config.actions.follow_for
        self.actor.reconfigure(config)

    # -- asking -----------------------------------------------------------------------------

    async def ask(
        self, command: Act, asker: Asker, trigger_id: str, states: list[AppState]
    ) -> Answer | None:
        """A typed action: the confirmation modal, or the answer saying why not."""
        verb = Verb(command.verb)
        picked = self._one_app(command.app, verb, states)
        if not isinstance(picked, AppState):
            return picked
        request = ActionRequest(
            verb, picked.key, command.revision, command.history_id, command.with_source
        )
        return await self._open(request, picked, asker, trigger_id, "")

    async def ask_from_alert(
        self,
        verb: Verb,
        alert: GitOpsEvent,
        asker: Asker,
        trigger_id: str,
        message_ts: str,
    ) -> Answer | None:
        """A clicked alert button: the stored alert says which app, and a rollback goes to the
        revision before the one that failed (its history entry), else the last good one."""
        state = self.fleet.states.get(alert.key)
        history_id = ""
        if verb is Verb.ROLLBACK and state is not None and alert.previous_revision:
            entry = next(
                (h for h in state.history if h.id and h.revision == alert.previous_revision), None
            )
            history_id = entry.id if entry is not None else ""
        request = ActionRequest(verb, alert.key, history_id=history_id)
        return await self._open(request, state, asker, trigger_id, message_ts)

    async def clicked(
        self, action_id: str, value: str, asker: Asker, trigger_id: str, message_ts: str
    ) -> Answer | None:
        """A click on one of DESK_ACTIONS; an answer for the clicker, if any."""
        if action_id == words.ACTION_APPROVE:
            await self.approve(asker.user, value, asker.channel)
            return None
        return await self.alert_button(action_id, value, asker, trigger_id, message_ts)

    async def alert_button(
        self, action_id: str, value: str, asker: Asker, trigger_id: str, message_ts: str
    ) -> Answer | None:
        """An action button on an alert: the confirmation of that action on the stored
        alert's app. A value naming another app is refused and audited, as for the other
        buttons; a storm group's message acts on no single app."""
        try:
            target = parse_action_value(value)
        except ValueError as exc:
            logger.info("button from %s refused: %s", asker.user, exc)
            return chat.answer_text(say.BUTTON_STALE)
        alerts = alerts_of_notification(self.fleet.policy_state, target.event_id)
        events = list({a.event.key: a.event for a in alerts}.values())
        if len(events) != 1 or (target.key is not None and target.key != events[0].key):
            named = {"command": action_id, "event": target.event_id[:200], "channel": asker.channel}
            key = events[0].key if events else None
            await self.audit.audit(asker.user, "button_refused", key, named, at=self.clock())
            return chat.answer_text(say.BUTTON_STALE)
        verb = Verb(ACT_ACTIONS[action_id])
        return await self.ask_from_alert(verb, events[0], asker, trigger_id, message_ts)

    async def _open(
        self,
        request: ActionRequest,
        state: AppState | None,
        asker: Asker,
        trigger_id: str,
        thread_ts: str,
    ) -> Answer | None:
        now = self.clock()
        key = request.key
        if not self.config.actions.enabled:
            await self._audit(asker.user, "action_refused", key, request, now, why="disabled")
            return chat.answer_text(words.DISABLED)
        if not self._may_deploy(asker.user, asker.groups, key, state):
            await self._audit(asker.user, "action_denied", key, request, now, channel=asker.channel)
            return chat.answer_text(_denied(key, request.verb))
        decided = decide.plan(request, state)
        if isinstance(decided, Refusal):
            await self._audit(asker.user, "action_refused", key, request, now, why=decided.code)
            return chat.answer_text(words.refusal(decided))
        pending = await self.pending.add(decided, asker.user, now, asker.channel, thread_ts)
        approval = self.config.actions.approval
        note = ""
        if approval is not None and approval.applies(key.cluster):
            note = (
                f"On {chat.escaped(key.cluster)} a second deployer must approve it within "
                f"{format_duration(approval.within)} before it is done."
            )
        try:
            await self.client.views_open(
                trigger_id=trigger_id, view=words.confirm_view(pending, now, note)
            )
        except SlackApiError as exc:
            logger.warning("opening the confirmation failed: %s", exc.response.get("error"))
            return chat.answer_text(words.NO_LONGER)
        await self._audit(
            asker.user,
            "action_requested",
            key,
            decided.request,
            now,
            channel=asker.channel,
            revision=decided.to_revision,
        )
        return None

    def _one_app(self, selector: Selector, verb: Verb, states: list[AppState]) -> AppState | Answer:
        tool = "argocd" if verb in decide.ARGOCD_VERBS else "flux"
        picked = [s for s in select(states, selector) if selects(selector, s)]
        if len(picked) > 1:
            of_tool = [s for s in picked if s.tool.value == tool]
            picked = of_tool or picked
        if not picked:
            return chat.answer_no_match(selector.text, [])
        if len(picked) > 1:
            names = ", ".join(f"`{s.cluster}/{s.namespace}/{s.name}`" for s in picked[:5])
            return chat.answer_text(
                f"`{chat.escaped(selector.text)}` names more than one app: {chat.escaped(names)}. "
                "Say which, as cluster/namespace/name."
            )
        return picked[0]

    def _may_deploy(
        self, user: str, groups: tuple[str, ...], key: AppKey, state: AppState | None
    ) -> bool:
        project = state.project if state is not None else ""
        return self.config.rbac.may_deploy(user, groups, key.cluster, key.namespace, project)

    # -- confirming -------------------------------------------------------------------------

    async def submitted(self, user: str, view: Mapping[str, Any]) -> None:
        """A submitted confirmation modal: do it, wait for an approval, or say why not."""
        now = self.clock()
        pending_id = words.pending_id_of(view)
        found = self.pending.get(pending_id)
        if found is None:
            logger.info("a confirmation for an unknown or forgotten action from %s", user)
            await self.audit.audit(user, "action_refused", None, {"why": "unknown"}, at=now)
            return
        reason, chosen = words.submitted(view)
        key = found.plan.request.key
        state = self.fleet.states.get(key)
        if not self._may_deploy(user, await self.groups(user), key, state):
            await self._audit(user, "action_denied", key, found.plan.request, now)
            await self._tell(found, user, _denied(key, found.plan.request.verb))
            return
        replanned = self._chosen(found, chosen, state)
        if isinstance(replanned, Refusal):
            await self._audit(
                user, "action_refused", key, found.plan.request, now, why=replanned.code
            )
            await self._tell(found, user, words.refusal(replanned))
            return
        approval = self.config.actions.approval
        needs = approval is not None and approval.applies(key.cluster)

        def confirming(pending: Pending) -> tuple[Pending, decide.Verdict]:
            changed, verdict = decide.confirm(pending, user, reason, now, CONFIRM_WITHIN, needs)
            if verdict in ("go", "wait_for_approval"):
                changed = dataclasses.replace(changed, plan=replanned)
            return changed, verdict

        decided = await self.pending.decide(pending_id, confirming)
        assert decided is not None
        pending, verdict = decided
        request = pending.plan.request
        if verdict == "stale":
            await self._audit(user, "action_refused", key, request, now, why="stale")
            minutes = int(CONFIRM_WITHIN.total_seconds() // 60)
            await self._tell(pending, user, words.STALE.format(minutes=minutes))
        elif verdict == "done_already":
            logger.info("a second confirmation of action %s by %s: done once", pending.id, user)
            await self._tell(pending, user, words.DONE_ALREADY)
        elif verdict == "not_yours":
            await self._tell(pending, user, words.NOT_YOURS)
        else:
            await self._audit(
                user,
                "action_confirmed",
                key,
                request,
                now,
                reason=reason,
                revision=pending.plan.to_revision,
            )
            if verdict == "wait_for_approval":
                await self._ask_approval(pending, now)
            else:
                await self._go(pending)

    @staticmethod
    def _chosen(pending: Pending, chosen: str, state: AppState | None) -> Plan | Refusal:
        """The plan again, on the app as it is now, with the history entry chosen in the
        modal (a rollback's)."""
        request = pending.plan.request
        if request.verb is Verb.ROLLBACK and chosen and chosen != request.history_id:
            request = dataclasses.replace(request, history_id=chosen)
        return decide.plan(request, state) if state is not None else pending.plan

    # -- the two-person rule ------------------------------------------------------------------

    async def _ask_approval(self, pending: Pending, now: datetime) -> None:
        approval = self.config.actions.approval
        within = format_duration(approval.within) if approval else ""
        text, blocks = words.approval_blocks(pending, now, within)
        try:
            answer = await self.client.chat_postMessage(
                channel=pending.channel,
                text=text,
                blocks=blocks,
                thread_ts=pending.thread_ts or None,
            )
            self._approval_ts[pending.id] = (pending.channel, str(answer.get("ts") or ""))
        except SlackApiError as exc:
            logger.warning("posting the approval request failed: %s", exc.response.get("error"))

    async def approve(self, user: str, pending_id: str, channel: str) -> None:
        now = self.clock()
        found = self.pending.get(pending_id)
        if found is None:
            await self.reply(channel, user, chat.answer_text(words.NO_LONGER))
            return
        key = found.plan.request.key
        if not self._may_deploy(user, await self.groups(user), key, self.fleet.states.get(key)):
            await self._audit(user, "action_denied", key, found.plan.request, now, channel=channel)
            await self.reply(channel, user, chat.answer_text(_denied(key, "approve")))
            return
        approval = self.config.actions.approval
        within = approval.within if approval is not None else CONFIRM_WITHIN
        decided = await self.pending.decide(
            pending_id, lambda p: decide.approve(p, user, now, within)
        )
        assert decided is not None
        pending, verdict = decided
        request = pending.plan.request
        if verdict == "same_person":
            await self._audit(user, "action_refused", key, request, now, why="same_person")
            await self.reply(channel, user, chat.answer_text(words.SAME_PERSON))
        elif verdict == "expired":
            await self._expired(pending, now)
        elif verdict != "go":
            text = words.NOT_AWAITING if verdict == "not_awaiting" else words.DONE_ALREADY
            await self.reply(channel, user, chat.answer_text(text))
        else:
            await self._audit(user, "action_approved", key, request, now, asked_by=pending.asked_by)
            await self._close_approval(pending, now, f"Approved by {words.who(user)}.")
            await self._go(pending)

    async def tick(self, now: datetime) -> None:
        """Expire approvals nobody gave in time; report results that did not come."""
        approval = self.config.actions.approval
        if approval is not None:
            for waiting in self.pending.waiting():
                if decide.approval_expired(waiting, now, approval.within):
                    decided = await self.pending.decide(
                        waiting.id, lambda p: decide.approve(p, "", now, approval.within)
                    )
                    if decided is not None and decided[1] == "expired":
                        await self._expired(decided[0], now)
        self.follower.tick(now)

    async def _expired(self, pending: Pending, now: datetime) -> None:
        approval = self.config.actions.approval
        within = format_duration(approval.within) if approval else ""
        key = pending.plan.request.key
        await self._audit(pending.asked_by, "action_expired", key, pending.plan.request, now)
        what = f"the {words.TITLES[pending.plan.request.verb].lower()} of {key.name}"
        await self._close_approval(
            pending, now, words.EXPIRED.format(what=chat.escaped(what), within=within)
        )

    async def _close_approval(self, pending: Pending, now: datetime, note: str) -> None:
        where = self._approval_ts.pop(pending.id, None)
        if where is None or not where[1]:
            return
        text, blocks = words.approval_closed(pending, now, note)
        try:
            await self.client.chat_update(channel=where[0], ts=where[1], text=text, blocks=blocks)
        except SlackApiError as exc:
            logger.warning("updating the approval request failed: %s", exc.response.get("error"))

    # -- doing and following ------------------------------------------------------------------

    async def _go(self, pending: Pending) -> None:
        now = self.clock()
        request = pending.plan.request
        thread = await self._post(pending, words.started_text(pending, now), pending.thread_ts)
        self._threads[pending.id] = (pending.channel, thread)
        try:
            started = await self.actor.act(pending.plan, pending.asked_by)
        except ActionError as exc:
            await self.pending.put(dataclasses.replace(pending, stage="refused"))
            await self._audit(
                pending.asked_by, "action_failed", request.key, request, now, why=str(exc)
            )
            await self._post(pending, words.failed_to_act(pending, str(exc)), thread)
            return
        await self.pending.put(dataclasses.replace(pending, stage="done"))
        await self._audit(
            pending.asked_by,
            "action_started",
            request.key,
            request,
            now,
            revision=pending.plan.to_revision,
            approved_by=pending.approved_by,
        )
        self.follower.follow(pending, started, None)

    async def _report(self, pending: Pending, result: Outcome) -> None:
        request = pending.plan.request
        await self._audit(
            pending.asked_by,
            f"action_{result.kind}",
            request.key,
            request,
            self.clock(),
            result=result.message[:300],
            revision=result.revision,
        )
        _, thread = self._threads.pop(pending.id, ("", ""))
        text = words.result_text(pending, result, format_duration(self.follower.follow_for))
        await self._post(pending, text, thread or pending.thread_ts)

    async def _post(self, pending: Pending, text: str, thread_ts: str) -> str:
        """Post in the channel (in `thread_ts`'s thread when given); the message's ts."""
        if not pending.channel:
            return ""
        try:
            answer = await self.client.chat_postMessage(
                channel=pending.channel, text=text, thread_ts=thread_ts or None
            )
        except SlackApiError as exc:
            logger.warning("posting about an action failed: %s", exc.response.get("error"))
            await self.reply(pending.channel, pending.asked_by, chat.answer_text(text))
            return ""
        return thread_ts or str(answer.get("ts") or "")

    async def _tell(self, pending: Pending, user: str, text: str) -> None:
        if pending.channel:
            await self.reply(pending.channel, user, chat.answer_text(text))

    async def _audit(
        self,
        actor: str,
        action: str,
        key: AppKey,
        request: ActionRequest,
        now: datetime,
        **detail: str,
    ) -> None:
        entry: dict[str, str] = {"command": request.verb.value}
        if request.history_id:
            entry["history"] = request.history_id
        if request.revision:
            entry["revision"] = request.revision
        entry.update({k: v for k, v in detail.items() if v})
        await self.audit.audit(actor, action, key, entry, at=now)

    async def close(self) -> None:
        await self.follower.close()
        await self.actor.close()


def _denied(key: AppKey, verb: str) -> str:
    return words.DENIED.format(
        app=chat.escaped(key.name), cluster=chat.escaped(key.cluster), verb=verb
    )
