"""Every word of the status page, its badges and its JSON, in one place.

The page is read by people who do not run Argo CD or Flux: it says "in sync", "differs from Git
since 10:42", "failing since …", never OutOfSync or Degraded. Templates use `str.format`;
values from a cluster or Git are escaped by the renderer after the sentence is made.
"""

from __future__ import annotations

from core.model import EventKind

TITLE = "driftbot status"
TITLE_CLUSTER = "{cluster}: driftbot status"
TITLE_APP = "{app} on {cluster}: driftbot status"
HEADING_FLEET = "What runs where"
HEADING_APPS = "Apps"
HEADING_TIMELINE = "The last 7 days"
HEADING_OPEN_ALERT = "Open alert"
HEADING_NOW = "Now"
NOTHING = "No apps to show yet: driftbot has not seen any Argo CD or Flux app."
NOTHING_FOR_YOU = "No apps to show: you are not granted any cluster or namespace."
NOTHING_HAPPENED = "Nothing happened to this app in the last 7 days."
UPDATED = "Updated"
UPDATED_LIVE = "This page updates by itself."
UPDATED_RELOAD = "Reload the page to see changes."
SKIP = "Skip to the apps"
ALL_ENVIRONMENTS = "All environments"
NOT_FOUND = "There is no such app or environment here."
NOT_FOUND_TITLE = "Not found"
SIGN_IN = "Sign in to read the driftbot status page."
REFUSED = "This page is read through the sign-in proxy only."

# One word per condition, as the app list and badges show it.
STATE_WORDS: dict[str, str] = {
    "failing": "failing",
    "degraded": "degraded",
    "drifted": "differs from Git",
    "pending": "waiting to deploy",
    "progressing": "deploying",
    "paused": "suspended",
    "unknown": "unknown",
    "ok": "in sync",
}
SINCE = "since {when}"

VERDICT_GOOD = "{cluster}: all {n} {apps} in sync"
VERDICT_BUSY = "{cluster}: no problems; {notes}"
VERDICT_BAD = "{cluster}: {n} {problems}"
VERDICT_EMPTY = "{cluster}: no apps"

# The short phrase of a problem in a verdict line ("podinfo failed to deploy 6.6.1 (14 min)").
PROBLEM_FAILED = "{app} failed to deploy{rev}"
PROBLEM_FAILING = "{app} is failing"
PROBLEM_DEGRADED = "{app} is degraded"
PROBLEM_DRIFTED = "{app} differs from Git"
PROBLEM_SOURCE = "{app} cannot read its source"
FOR = "({duration})"

NOTE_WORDS: dict[str, tuple[str, str]] = {
    "pending": ("waiting to deploy", "waiting to deploy"),
    "progressing": ("deploying", "deploying"),
    "paused": ("suspended", "suspended"),
    "unknown": ("unknown", "unknown"),
}

LAST_DEPLOY = "Last deploy"
LAST_DEPLOY_TEXT = "{rev}{who}"
NO_DEPLOY = "none known"
BY = " by {who}"
AUTOMATICALLY = " automatically"
STATE = "State"
TOOL = "Tool"
KIND = "Kind"
REVISION = "Running"
WANTED = "Git wants"
CHART = "Chart"
MESSAGE = "What the tool says"
LINKS = "Links"
OPEN_IN = {"argocd": "Open in Argo CD", "flux": "Open in the Flux UI"}
COMMIT = "Commit {rev}"
NO_OPEN_ALERT = "No open alert."
ALERT_SINCE = "{headline}, since {when}"
BADGE_LINK = "Badge"
JSON_LINK = "JSON"
COMMIT_LINK = "View the deployed commit"

TIMELINE_LABEL = "Timeline of the last 7 days, oldest on the left"
TIMELINE_EMPTY = "Nothing happened in the last 7 days"
TIMELINE_AXIS_NOW = "now"
TIMELINE_DAYS_AGO = "{n} d ago"

# What the timeline says about each event of the app, in the list and the chart's titles.
EVENT_WORDS: dict[EventKind, str] = {
    EventKind.DEPLOY_STARTED: "started deploying{rev}{who}",
    EventKind.DEPLOY_SUCCEEDED: "deployed{rev}{who}",
    EventKind.DEPLOY_FAILED: "failed to deploy{rev}",
    EventKind.DRIFT_DETECTED: "started to differ from Git",
    EventKind.DRIFT_RESOLVED: "matches Git again",
    EventKind.HEALTH_DEGRADED: "became degraded",
    EventKind.HEALTH_RECOVERED: "healthy again",
    EventKind.ROLLBACK_SUCCEEDED: "rolled back to{rev}{who}",
    EventKind.ROLLBACK_FAILED: "rollback to{rev} failed",
    EventKind.OUT_OF_SYNC: "Git has{rev}, not deployed yet",
    EventKind.SUSPENDED: "suspended{who}",
    EventKind.RESUMED: "resumed{who}",
    EventKind.SOURCE_FAILED: "could not read its source",
    EventKind.SOURCE_RECOVERED: "reads its source again",
    EventKind.DELETED: "deleted",
    EventKind.FLAPPING: "keeps changing state (flapping)",
}
MUTED = "alerts muted until {until} by {who}{reason}"
UNMUTED = "alerts unmuted by {who}"
MUTE_EXPIRED = "mute ended"
ACKED = "alert acknowledged by {who}"
REASON = ": {reason}"

# Timeline marks: the category of each entry (its shape and its legend word).
CATEGORY_WORDS: dict[str, str] = {
    "deploy": "deploy",
    "drift": "differs from Git",
    "failure": "failure",
    "rollback": "rollback",
    "recovery": "back to normal",
    "mute": "mute",
    "ack": "acknowledged",
    "other": "other",
}

BADGE_SYNC = {"synced": "in sync", "out_of_sync": "differs from Git", "unknown": "unknown"}
BADGE_UNKNOWN_APP = "no such app"
BADGE_LABEL = "{name}"


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
