"""Alert policy: which events are announced, held for a while, grouped or kept quiet. Decides only.

Every function here takes the policy state, the event (if any), `now` and the settings, and
returns a new state and a list of Decisions; nothing is sent, stored or read from a clock.
The caller delivers what is decided "send" or "remind" and persists the returned state.

The policy is a chain of stages of one shape (as in Alertmanager's notification pipeline):
`stage(state, event, now, settings) -> Outcome`. A stage either decides the event (hold or
suppress, with a named reason), or passes it on, possibly amended, to the next stage; it may
also decide about other events (a held problem dropped by its recovery). The last stage
announces. Events released later (grace passed, a flap settled) enter the chain after the stage
that held them, so the stages after it see them too.

Stages: duplicates -> flaps -> already open -> text dedup -> grace -> mutes -> announce.
Announcing opens and closes alerts and puts the event in its aggregation group (per lane and
`group_by` fields); a group is sent after `group_wait`, then updated in place at most once per
`group_interval`, held back in quiet hours, and reminded of every `repeat` while it has open,
unacknowledged problems. State is kept per lane (`PolicySettings.route`): the pipeline runs
one lane per receiver, so a receiver decides once about an event whichever routes take it.

The package: `state` (the values), `stages` (the chain), `groups` (storm groups and the order
an app's events leave in), `run` (`offer`, `decide`, `tick`, `flush`), `lanes` (`relane`).
"""

from core.policy.lanes import relane
from core.policy.run import (
    decide,
    flush,
    offer,
    routes_holding,
    sent,
    tick,
)
from core.policy.stages import (
    STAGES,
    Outcome,
    Stage,
    announce,
    apply_mutes,
    damp_flaps,
    dedup_text,
    drop_duplicates,
    hold_in_grace,
    skip_open,
)
from core.policy.state import (
    DEFAULT_SETTINGS,
    INFORMATIVE_RECOVERIES,
    RESOLVES,
    Action,
    AlertKey,
    Decision,
    Held,
    OpenAlert,
    PendingKey,
    PolicySettings,
    PolicyState,
    QuietWindow,
    Reason,
    RecentIds,
    RouteSettings,
    TextSeen,
    Timer,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "INFORMATIVE_RECOVERIES",
    "RESOLVES",
    "STAGES",
    "Action",
    "AlertKey",
    "Decision",
    "Held",
    "OpenAlert",
    "Outcome",
    "PendingKey",
    "PolicySettings",
    "PolicyState",
    "QuietWindow",
    "Reason",
    "RecentIds",
    "RouteSettings",
    "Stage",
    "TextSeen",
    "Timer",
    "announce",
    "apply_mutes",
    "damp_flaps",
    "decide",
    "dedup_text",
    "drop_duplicates",
    "flush",
    "hold_in_grace",
    "offer",
    "relane",
    "routes_holding",
    "sent",
    "skip_open",
    "tick",
]
