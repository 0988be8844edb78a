"""Every word driftbot says in answer to a chat command, a button or on its App Home.

Kept apart from the alert wording (formatters.phrases) because these are replies to a person:
they say what was asked, what was found, and what to type next. Templates use `str.format`;
values from a cluster or from the user are escaped by the caller before they are put in.
"""

from __future__ import annotations

HELP_TITLE = "What I can tell you about Argo CD and Flux"
HELP_LINES: tuple[tuple[str, str], ...] = (
    ("status", "every cluster at a glance: green when everything matches Git and is healthy"),
    ("status APP", "one app in detail (also `ns/app`, `cluster:NAME`, `env:NAME`)"),
    ("drift", "what does not match Git right now, and since when"),
    ("history APP", "recent deploys and rollbacks of an app"),
    ("versions APP", "the revision and chart version of an app in each cluster"),
    ("audit APP", "who acknowledged, muted, synced, rolled back or reconciled an app"),
    ("routes [APP]", "which channels and webhooks hear about an app"),
    ("mute TARGET DURATION [reason]", "silence alerts, e.g. `mute checkout 4h deploy window`"),
    ("unmute TARGET", "end a mute early"),
    ("mutes", "the mutes in force"),
    ("ack APP", "acknowledge an app's open alerts: no more reminders"),
    ("sync APP [REVISION]", "Argo CD: sync an app (deployers; asks for confirmation)"),
    ("rollback APP [HISTORY_ID]", "Argo CD: roll back, by default to the last good revision"),
    ("refresh APP", "Argo CD: hard refresh (compare with Git again)"),
    ("terminate APP", "Argo CD: stop the running operation"),
    ("reconcile APP [--with-source]", "Flux: reconcile now, optionally its source first"),
    ("suspend APP", "Flux: stop reconciling an object"),
    ("resume APP", "Flux: reconcile a suspended object again"),
)
HELP_TARGETS = (
    "A TARGET is an app (`checkout`), `ns/app`, `cluster/ns/app`, `cluster:NAME` or "
    "`namespace:NAME`; `*` matches any text. Durations: `30m`, `4h`, `1d`. "
    "mute, unmute and ack are for operators; the Argo CD and Flux actions for deployers, "
    "when actions are turned on."
)

USAGE_UNKNOWN = "I do not know the command `{word}`."
USAGE_UNKNOWN_NEAR = "I do not know the command `{word}`; did you mean `{near}`?"
USAGE_MISSING = "`{verb}` needs {what}."
USAGE_EXTRA = "`{verb}` takes {what}; I did not understand `{extra}`."
USAGE_TOO_LONG = "That is longer than I can read ({limit} characters at most)."
USAGE_BAD_SELECTOR = "`{text}` is not something I can look up: {why}."
USAGE_BAD_DURATION = "`{text}` is not a duration I understand: use `30m`, `4h` or `1d`."
USAGE_DURATION_RANGE = "A mute lasts from 1 minute to {max_days} days; `{text}` is outside that."
USAGE_ONE_APP = (
    "`{verb}` acts on one app: name it (`checkout`, `shop/checkout` or `prod/shop/checkout`), "
    "without wildcards."
)
USAGE_HISTORY_ID = (
    "`{text}` is not a history id: give the number `history APP` shows (like `41`)."
)
USAGE_REVISION = "`{text}` is not a revision I can pass on: give a commit, tag or branch."
USAGE_SEE_HELP = "Type `{command} help` for everything I understand."
USAGE_EXAMPLE = "For example: `{command} {example}`"

WHAT_APP = "an app name (like `checkout` or `shop/checkout`)"
WHAT_TARGET = "a target (an app, `ns/app`, `cluster:NAME` or `namespace:NAME`)"
WHAT_DURATION = "a target and a duration (like `checkout 4h`)"
WHAT_NOTHING = "nothing more"
WHAT_ONE = "one value at most"

EXAMPLES: dict[str, str] = {
    "status": "status prod",
    "drift": "drift",
    "history": "history checkout",
    "versions": "versions checkout",
    "audit": "audit checkout",
    "routes": "routes checkout",
    "mute": "mute checkout 4h deploy window",
    "unmute": "unmute checkout",
    "mutes": "mutes",
    "ack": "ack checkout",
    "sync": "sync checkout",
    "rollback": "rollback checkout 41",
    "refresh": "refresh checkout",
    "terminate": "terminate checkout",
    "reconcile": "reconcile apps --with-source",
    "suspend": "suspend apps",
    "resume": "resume apps",
    "help": "help",
}

# --- status -------------------------------------------------------------------------------------

STATUS_TITLE_ALL = "GitOps status"
STATUS_TITLE_FOR = "GitOps status: {what}"
STATUS_NOTHING = "I do not see any apps yet."
STATUS_NOTHING_IN_SCOPE = "I see no apps that this channel follows."
STATUS_NO_MATCH = "I found nothing matching `{what}`."
STATUS_NO_MATCH_NEAR = "I found nothing matching `{what}`. Did you mean {near}?"
STATUS_ALL_GOOD = "all {n} {apps} match Git and are healthy"
STATUS_SOME_BAD = "{bad} of {n} {apps} need attention"
STATUS_SOME_BUSY = "all {n} {apps} are fine; {busy} deploying or waiting"
STATUS_COUNTS = "{counts}"
STATUS_MORE_CLUSTERS = "and {n} more clusters, all shown in the App Home tab"
STATUS_UPDATED = "As seen at {when}"

CONDITION_WORDS: dict[str, str] = {
    "failing": "failing",
    "drifted": "drifted",
    "pending": "waiting to deploy",
    "progressing": "deploying",
    "paused": "paused",
    "unknown": "unknown",
    "ok": "fine",
}
CONDITION_SENTENCES: dict[str, str] = {
    "failing": "{app} is failing",
    "drifted": "{app} no longer matches Git",
    "pending": "{app} has changes in Git waiting to be deployed",
    "progressing": "{app} is deploying",
    "paused": "{app} is paused: new changes in Git are not deployed",
    "unknown": "{app}: state unknown",
    "ok": "{app} matches Git and is healthy",
}
SINCE = " (since {when})"

APP_TITLE = "{app} on {cluster}"
APP_FIELD_STATE = "State"
APP_FIELD_SYNC = "Sync"
APP_FIELD_HEALTH = "Health"
APP_FIELD_REVISION = "Revision"
APP_FIELD_DESIRED = "Target revision"
APP_FIELD_CHART = "Chart"
APP_FIELD_WHERE = "Where"
APP_FIELD_LAST_OP = "Last operation"
APP_FIELD_AUTO = "Auto-sync"
APP_FIELD_ALERTS = "Open alerts"
APP_OUT_OF_SYNC = "Out of sync: {resources}"
APP_MESSAGE = "Controller message:"
APP_AUTO_ON = "on, self-heal {heal}"
APP_AUTO_OFF = "off"
APP_MORE = "and {n} more apps match; ask for `ns/app` or `cluster:NAME` to narrow it"
APP_LINK = "<{url}|Open in {tool}>"
APP_PAGE_LINK = "<{url}|Status page>"

# --- drift --------------------------------------------------------------------------------------

DRIFT_TITLE = "Out of sync now"
DRIFT_NONE = "Everything matches Git."
DRIFT_LINE = "{app} on {cluster}: {what}{since}"
DRIFT_WHAT_DRIFT = "no longer matches Git"
DRIFT_WHAT_PENDING = "{rev} waiting to be deployed"
DRIFT_WHAT_PENDING_NO_REV = "changes in Git waiting to be deployed"
DRIFT_RESOURCES = "{count} {resources}"
DRIFT_MORE = "and {n} more"

# --- history, versions, audit -------------------------------------------------------------------

HISTORY_TITLE = "History of {app}"
HISTORY_NONE = "I know of no deploys of {app}."
HISTORY_DEPLOY = "{when}: {rev}{chart}{by}"
HISTORY_AUDIT_TITLE = "Recorded by driftbot"
HISTORY_UNKNOWN_TIME = "unknown time"

VERSIONS_TITLE = "Versions of {app}"
VERSIONS_LINE = "*{cluster}* ({namespace}): {rev}{chart}{app_version}{pending}"
VERSIONS_CHART = ", chart {chart}"
VERSIONS_APP_VERSION = ", app {version}"
VERSIONS_PENDING = " (waiting: {rev})"
VERSIONS_MISMATCH = ":warning: The clusters do not run the same version: {what} differ."
VERSIONS_SAME = ":large_green_circle: Every cluster runs the same version."
VERSIONS_WHAT_REVISION = "revisions"
VERSIONS_WHAT_CHART = "chart versions"

AUDIT_TITLE = "Audit log of {app}"
AUDIT_NONE = "Nothing recorded for {app} yet."
AUDIT_LINE = "{when}: {actor} {action}{detail}"
AUDIT_ACTIONS: dict[str, str] = {
    "ack": "acknowledged",
    "mute": "muted",
    "unmute": "unmuted",
    "denied": "was refused",
    "deploy": "deployed",
    "rollback": "rolled back",
    "action_requested": "asked to act",
    "action_confirmed": "confirmed an action",
    "action_approved": "approved an action",
    "action_denied": "was refused an action (not a deployer there)",
    "action_refused": "had an action refused",
    "action_expired": "saw an action expire unapproved",
    "action_started": "acted",
    "action_succeeded": "saw an action succeed",
    "action_failed": "saw an action fail",
    "action_timed_out": "saw no result of an action in time",
}

# --- routes -------------------------------------------------------------------------------------

ROUTES_TITLE = "Where alerts about {app} go"
ROUTES_TITLE_ALL = "Routes"
ROUTES_NONE = "No routes are configured: every event goes to the console."
ROUTES_FOR_KIND = "*{kind}* on {cluster}: {result}"
ROUTES_RULE = "{index}. {match} → {receivers}"
ROUTES_RULE_NAMED = "{index}. {name}: {match} → {receivers}"
ROUTES_DROPPED = "dropped"

# --- mutes and acks -----------------------------------------------------------------------------

MUTES_TITLE = "Mutes in force"
MUTES_NONE = "Nothing is muted."
MUTE_LINE = "{target}: until {until}, by {who}{reason}"
MUTE_REASON = " ({reason})"
MUTED = ":no_bell: Muted {target} until {until}{reason}."
UNMUTED = ":bell: {target} is no longer muted."
UNMUTE_NOTHING = "{target} was not muted."
ACKED = ":white_check_mark: Acknowledged {n} open {alerts} of {app}: no more reminders."
ACK_NOTHING = "{app} has no open alerts to acknowledge."

# --- access -------------------------------------------------------------------------------------

DENIED_OPERATE = (
    "Sorry, only operators may {action}. Ask your platform team to add you to driftbot's "
    "operators if you need to."
)
DENIED_VIEW = "Sorry, you are not among the people who may ask driftbot about deployments."
DENIED_ACTIONS: dict[str, str] = {
    "mute": "mute alerts",
    "unmute": "unmute alerts",
    "ack": "acknowledge alerts",
}
FAILED = "Sorry, something went wrong while answering; it has been logged."

# --- buttons on alerts --------------------------------------------------------------------------

BUTTON_STALE = "This button belongs to an alert I can no longer find."
NOTE_ACKED = ":white_check_mark: Acknowledged by {who} at {when}"
NOTE_MUTED = ":no_bell: Muted by {who} until {until}"

# --- App Home -----------------------------------------------------------------------------------

HOME_TITLE = "The fleet at a glance"
HOME_NOTHING = "No apps seen yet. Once driftbot watches a cluster, it shows up here."
HOME_CLUSTER = "{icon} *{cluster}*: {summary}"
HOME_COUNTS = "{total} {apps}: {synced} synced · {drifted} drifted · {failing} failing"
HOME_UPDATED = "Updated {when}. Type `{command} status` in any channel for details."
HOME_DENIED = "You are not among the people who may see driftbot's overview."
HOME_MORE = "and {n} more clusters"


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
