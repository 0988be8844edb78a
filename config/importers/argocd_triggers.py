"""Which driftbot event kinds an Argo CD Notifications trigger stands for. Pure.

A trigger is a list of conditions (`when`, an expr-lang expression over the Application) with
the templates they send. driftbot does not evaluate expressions: it recognises the conditions
of Argo CD's catalog (notifications_catalog/install.yaml) and the simple forms the docs show,
whatever the trigger is called, and says so for any other condition. Argo CD notifies while a
condition holds (once per `oncePer` value); driftbot announces transitions, once, which is what
`oncePer` approximates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.model import EventKind

K = EventKind

_OP = "app.status.operationState"
_DEPLOYED = (
    f"{_OP}.phase in ['Succeeded'] and app.status.health.status == 'Healthy' and "
    f"(!time.Parse(app.status.health.lastTransitionTime).Add(1 * time.Minute)"
    f".Before(time.Parse({_OP}.finishedAt)) or "
    f"time.Parse(app.status.health.lastTransitionTime).Before(time.Parse({_OP}.startedAt)))"
)

CONDITIONS: tuple[tuple[str, tuple[EventKind, ...], str], ...] = (
    (
        f"{_OP}.phase in ['Error', 'Failed']",
        (K.DEPLOY_FAILED, K.ROLLBACK_FAILED),
        "a sync that failed (a rollback is a sync too)",
    ),
    (
        f"{_OP}.phase in ['Failed', 'Error']",
        (K.DEPLOY_FAILED, K.ROLLBACK_FAILED),
        "a sync that failed (a rollback is a sync too)",
    ),
    (
        f"{_OP}.phase in ['Succeeded']",
        (K.DEPLOY_SUCCEEDED, K.ROLLBACK_SUCCEEDED),
        "a sync that succeeded (driftbot: once the app is Healthy)",
    ),
    (
        f"{_OP}.phase in ['Succeeded'] and app.status.health.status == 'Healthy'",
        (K.DEPLOY_SUCCEEDED, K.ROLLBACK_SUCCEEDED),
        "synced and healthy",
    ),
    (_DEPLOYED, (K.DEPLOY_SUCCEEDED, K.ROLLBACK_SUCCEEDED), "synced and healthy, once per commit"),
    (f"{_OP}.phase in ['Running']", (K.DEPLOY_STARTED,), "a sync that started"),
    ("app.status.health.status == 'Degraded'", (K.HEALTH_DEGRADED,), "health Degraded"),
    (
        "app.status.sync.status == 'Unknown'",
        (K.SOURCE_FAILED,),
        "sync status Unknown (driftbot: a comparison error)",
    ),
    (
        "app.status.sync.status == 'OutOfSync'",
        (K.DRIFT_DETECTED, K.OUT_OF_SYNC),
        "OutOfSync (driftbot tells drift from a pending deploy)",
    ),
    ("app.metadata.deletionTimestamp != nil", (K.DELETED,), "the Application is deleted"),
)
"""Conditions driftbot recognises (as the catalog and the docs write them), their kinds, and
what they mean in words."""

NO_EQUIVALENT: dict[str, str] = {
    "true": "on-created: Argo CD sends it for every Application it first sees; driftbot "
    "learns existing apps silently and has no 'created' event",
}
"""Normalised conditions driftbot knows but cannot express, and why."""

CATALOG_TRIGGERS: dict[str, str] = {
    "on-created": "true",
    "on-deleted": "app.metadata.deletionTimestamp != nil",
    "on-deployed": _DEPLOYED,
    "on-health-degraded": "app.status.health.status == 'Degraded'",
    "on-sync-failed": f"{_OP}.phase in ['Error', 'Failed']",
    "on-sync-running": f"{_OP}.phase in ['Running']",
    "on-sync-status-unknown": "app.status.sync.status == 'Unknown'",
    "on-sync-succeeded": f"{_OP}.phase in ['Succeeded']",
}
"""The catalog's triggers and their conditions: used for a trigger a subscription names that
the ConfigMap given does not define."""


def normalise(expression: str) -> str:
    """One spelling for one condition: no blanks, `?.` as `.`, one kind of quote, and the
    catalog's `app.status.operationState != nil and` guard dropped."""
    text = re.sub(r"\s+", "", expression).replace("?.", ".").replace('"', "'")
    guard = re.sub(r"\s+", "", f"{_OP} != nil and")
    return text[len(guard) :] if text.startswith(guard) else text


_KNOWN = {normalise(when): (kinds, words) for when, kinds, words in CONDITIONS}
_NONE = {normalise(when): why for when, why in NO_EQUIVALENT.items()}


@dataclass(frozen=True)
class TriggerMapping:
    """What a trigger becomes: the kinds of the conditions driftbot recognised, what they say
    in words, and a note for each condition it could not map."""

    kinds: tuple[EventKind, ...]
    words: tuple[str, ...]
    unmapped: tuple[str, ...]


def map_conditions(conditions: Sequence[Mapping[str, object]]) -> TriggerMapping:
    kinds: list[EventKind] = []
    words: list[str] = []
    unmapped: list[str] = []
    for condition in conditions:
        when = condition.get("when")
        text = when if isinstance(when, str) else ""
        key = normalise(text) if text.strip() else "false"
        if key in _KNOWN:
            found, meaning = _KNOWN[key]
            kinds += [k for k in found if k not in kinds]
            if meaning not in words:
                words.append(meaning)
        elif key in _NONE:
            unmapped.append(_NONE[key])
        else:
            unmapped.append(f"condition `{' '.join(text.split())}` has no driftbot equivalent")
    return TriggerMapping(tuple(kinds), tuple(words), tuple(unmapped))
