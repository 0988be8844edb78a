"""The config file's shape: clusters, sources, receivers, routes, policy, RBAC, Slack, server.

Pydantic models with `extra="forbid"`, so a misspelt key is an error instead of a silently
ignored rule. Checks that need the whole file (a route naming an undefined receiver, duplicate
names) are in `cross_check`, which returns every problem with its location; the loader maps
those locations back to lines of the YAML file.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from string import Formatter
from typing import Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from config.cron import check_cron
from config.durations import parse_duration
from config.globs import check_glob, glob_match
from core.model import EventKind, Severity, Tool

Loc = tuple[str | int, ...]
"""Where in the file a value sits: keys and list indexes, as pydantic reports them."""


def _close(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def parse_event_kind(value: object) -> EventKind:
    """`"drift_detected"` -> EventKind.DRIFT_DETECTED; a readable ValueError for anything else."""
    if isinstance(value, EventKind):
        return value
    names = [k.value for k in EventKind]
    if isinstance(value, str) and value in names:
        return EventKind(value)
    return _refuse("event kind", value, names)


def parse_severity(value: object) -> Severity:
    if isinstance(value, Severity):
        return value
    names = [s.value for s in Severity]
    if isinstance(value, str) and value in names:
        return Severity(value)
    return _refuse("severity", value, names)


def _refuse(what: str, value: object, names: list[str]) -> NoReturn:
    hint = _close(value, names) if isinstance(value, str) else ""
    raise ValueError(f"unknown {what} {value!r} ({hint}expected one of: {', '.join(names)})")


def _glob(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a pattern (text), got {value!r}")
    return check_glob(value)


def _globs(value: object) -> tuple[str, ...]:
    """One pattern or a list of patterns; any of them may match."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("empty list of patterns (leave the key out to match anything)")
    return tuple(_glob(item) for item in items)


def _tools(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        if not any(glob_match(pattern, tool.value) for tool in Tool):
            raise ValueError(
                f"tool pattern {pattern!r} matches no tool "
                f"(tools: {', '.join(t.value for t in Tool)})"
            )
    return patterns


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _command(value: str) -> str:
    if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
        raise ValueError(
            f"a slash command is '/' and up to 31 lowercase letters, digits, '-' or '_' "
            f"(like /gitops), got {value!r}"
        )
    return value


def _env_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    if value.strip() == "":
        raise ValueError("is empty: name the environment variable that holds the secret")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits, _)")
    return value


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(
            f"name {value!r} must start with a letter or digit and use only letters, digits, "
            "'_', '.' and '-'"
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like UTC or Europe/Berlin)"
        ) from None
    return value


def _clock(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(p) for p in value.split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ValueError(f"expected a time of day like '22:00' or '7:30', got {value!r}")


FLUX_KINDS = (
    "Kustomization",
    "HelmRelease",
    "GitRepository",
    "OCIRepository",
    "HelmRepository",
    "HelmChart",
    "Bucket",
)
FLUX_UI_FIELDS = ("cluster", "namespace", "name", "kind", "kind_lower", "kind_plural")


def _flux_ui_template(value: str) -> str:
    _url(value)
    try:
        fields = [f for _, f, _, _ in Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(f"broken braces in {value!r} ({exc})") from None
    known = ", ".join("{" + f + "}" for f in FLUX_UI_FIELDS)
    for field in fields:
        if field not in FLUX_UI_FIELDS:
            hint = _close(field, list(FLUX_UI_FIELDS))
            raise ValueError(f"unknown placeholder {{{field}}} in {value!r} ({hint}known: {known})")
    return value


def _flux_ui(value: object) -> tuple[tuple[str, str], ...]:
    """One template (for every kind) or a mapping kind -> template, as (kind, template) pairs;
    the kind "*" stands for every kind."""
    if isinstance(value, str):
        return (("*", _flux_ui_template(value)),)
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 for p in value
    ):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise ValueError(
            f"expected a URL template or a mapping from Flux kind to template, got {value!r}"
        )
    out: list[tuple[str, str]] = []
    for kind, template in pairs:
        if not (isinstance(kind, str) and (kind in FLUX_KINDS or kind == "*")):
            hint = _close(kind, list(FLUX_KINDS)) if isinstance(kind, str) else ""
            raise ValueError(f"unknown Flux kind {kind!r} ({hint}kinds: {', '.join(FLUX_KINDS)})")
        if not isinstance(template, str):
            raise ValueError(f"the template for {kind} must be text, got {template!r}")
        out.append((kind, _flux_ui_template(template)))
    return tuple(out)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Glob = Annotated[str, BeforeValidator(_glob)]
Globs = Annotated[tuple[str, ...], BeforeValidator(_globs)]
Kind = Annotated[EventKind, BeforeValidator(parse_event_kind)]
Level = Annotated[Severity, BeforeValidator(parse_severity)]
EnvName = Annotated[str, BeforeValidator(_env_name)]
Name = Annotated[str, Field(min_length=1), AfterValidator(_name)]
Text = Annotated[str, Field(min_length=1)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
ClockTime = Annotated[time, BeforeValidator(_clock)]
FluxUi = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_flux_ui)]

GroupField = Literal[
    "tool",
    "cluster",
    "namespace",
    "object_kind",
    "name",
    "kind",
    "project",
    "revision",
    "severity",
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- where the events come from ----------------------------------------------------------------


class ClusterConfig(Strict):
    """One cluster to watch; `name` is the cluster name in events, routes and chat."""

    name: Name
    kubeconfig: Text | None = None
    context: Text | None = None
    in_cluster: bool = False
    argocd_url: Annotated[str, AfterValidator(_url)] | None = None
    """Base URL of this cluster's Argo CD UI, for deep links."""
    flux_ui_url: FluxUi | None = None
    """Link to a Flux object in a Flux UI: one URL template for every kind, or one per kind
    (`Kustomization`, `HelmRelease`, ...). Placeholders: {cluster}, {namespace}, {name}, {kind},
    {kind_lower}, {kind_plural}; values are URL-encoded."""

    def flux_ui_template(self, kind: str) -> str:
        """The Flux UI link template for objects of `kind`, or "" when there is none."""
        templates = dict(self.flux_ui_url or ())
        return templates.get(kind) or templates.get("*", "")

    @model_validator(mode="after")
    def _one_way_in(self) -> ClusterConfig:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError(
                "in_cluster: true uses the pod's service account; remove kubeconfig/context "
                "or set in_cluster: false"
            )
        return self


class ArgoCDApiConfig(Strict):
    """The Argo CD API server's application stream, beside or instead of the CRD watch."""

    cluster: Name
    url: Annotated[str, AfterValidator(_url)]
    token_env: EnvName = "ARGOCD_TOKEN"
    project: Text | None = None
    selector: Text | None = None
    """Label selector, as `kubectl -l` takes it."""


# --- where the messages go ---------------------------------------------------------------------


class SlackReceiver(Strict):
    channel: Text
    """Channel ID (C0123456, preferred: survives renames) or name."""


class TeamsReceiver(Strict):
    webhook_env: EnvName | None = None
    webhook_file: Text | None = None
    payload: Literal["envelope", "card"] = "envelope"
    """`envelope`: the message envelope with an attachment (Workflows "post to a channel when a
    webhook request is received"); `card`: the bare Adaptive Card."""

    @model_validator(mode="after")
    def _one_source(self) -> TeamsReceiver:
        if (self.webhook_env is None) == (self.webhook_file is None):
            raise ValueError(
                "a teams receiver needs exactly one of webhook_env (an environment variable "
                "holding the webhook URL) or webhook_file (a file holding it)"
            )
        return self


class ConsoleReceiver(Strict):
    format: Literal["text", "jsonl"] = "text"


class ReceiverConfig(Strict):
    name: Name
    slack: SlackReceiver | None = None
    teams: TeamsReceiver | None = None
    console: ConsoleReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReceiverConfig:
        kinds = [k for k in ("slack", "teams", "console") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none"
            raise ValueError(
                f"receiver {self.name!r} needs exactly one of slack, teams, console; found {found}"
            )
        return self

    @property
    def type(self) -> Literal["slack", "teams", "console"]:
        if self.slack is not None:
            return "slack"
        if self.teams is not None:
            return "teams"
        return "console"


# --- which events go where ---------------------------------------------------------------------


class Match(Strict):
    """All given conditions must hold; a condition left out matches anything."""

    tool: Annotated[Globs, AfterValidator(_tools)] | None = None
    cluster: Globs | None = None
    namespace: Globs | None = None
    """The namespace of the object itself (an Argo CD Application's is usually `argocd`)."""
    destination_namespace: Globs | None = None
    """The namespace the app deploys into: an Argo CD Application's spec.destination.namespace;
    for Flux, spec.targetNamespace, else the object's own namespace."""
    object_kind: Globs | None = None
    """The kind of the watched object: `Application`, `Kustomization`, `HelmRelease`, ..."""
    name: Globs | None = None
    destination_cluster: Globs | None = None
    """Where an Argo CD app deploys: spec.destination.name, else its server URL; `in-cluster`
    for the cluster Argo CD runs in (and for every Flux object)."""
    source: Globs | None = None
    """The name of the Flux source an object reads (its own name for a source kind)."""
    labels: dict[str, Glob] | None = None
    annotations: dict[str, Glob] | None = None
    project: Globs | None = None
    kinds: tuple[Kind, ...] | None = None
    min_severity: Level | None = None


class QuietHours(Strict):
    """A daily window in which only events at or above `min_severity` are sent right away."""

    start: ClockTime
    end: ClockTime
    timezone: TimeZone = "UTC"
    days: tuple[Weekday, ...] | None = None
    """Days on which the window starts; all days when left out."""
    min_severity: Level = Severity.CRITICAL

    def active(self, now: datetime) -> bool:
        """Is `now` (timezone-aware) inside the window? Decides only; the clock is passed in.

        A window that crosses midnight (22:00-07:00) belongs to the day it starts on; a window
        whose start equals its end lasts the whole day.
        """
        if now.tzinfo is None:
            raise ValueError("quiet hours need a timezone-aware time")
        local = now.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start == self.end:
            inside = True
        elif self.start < self.end:
            inside = self.start <= clock < self.end
        elif clock >= self.start:
            inside = True
        elif clock < self.end:
            inside, day = True, (day - 1) % 7
        else:
            inside = False
        return inside and (self.days is None or WEEKDAYS[day] in self.days)


class RouteConfig(Strict):
    """A rule: events that pass `match` go to `receivers`, with this route's policy settings."""

    match: Match | None = None
    receivers: tuple[Name, ...]
    """Receiver names; an empty list drops the matched events (and stops matching)."""
    mention: tuple[Text, ...] = ()
    continue_: bool = Field(False, alias="continue")
    grace: Duration | None = None
    group_by: tuple[GroupField, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat: Duration | None = None
    quiet_hours: QuietHours | None = None


class FlapPolicy(Strict):
    """An app that changes state more than `flips` times within `window` is reported once as
    flapping; `flips: 0` turns damping off."""

    flips: Annotated[int, Field(ge=0)] = 4
    window: Duration = timedelta(minutes=15)


class PolicyConfig(Strict):
    grace: Duration = timedelta(seconds=60)
    group_by: tuple[GroupField, ...] = ("cluster", "kind")
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat: Duration = timedelta(hours=4)
    """Reminder interval for unresolved problems; 0 = no reminders."""
    quiet_hours: QuietHours | None = None
    flap: FlapPolicy = FlapPolicy()


class DigestConfig(Strict):
    """A scheduled summary: what happened since the last digest and what is still open."""

    name: Name | None = None
    receivers: Annotated[tuple[Name, ...], Field(min_length=1)]
    schedule: Annotated[str, AfterValidator(check_cron)]
    timezone: TimeZone = "UTC"
    match: Match | None = None


# --- who may do what, and the service itself ---------------------------------------------------


class Principals(Strict):
    users: tuple[Text, ...] = ()
    groups: tuple[Text, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.users and not self.groups

    def includes(self, user: str, groups: tuple[str, ...] = ()) -> bool:
        return user in self.users or any(g in self.groups for g in groups)


class Grant(Strict):
    """What some people may see: the apps of `clusters` (and, when given, only in
    `namespaces`); patterns may hold `*` and `?`. Left out: every cluster / namespace."""

    users: tuple[Text, ...] = ()
    groups: tuple[Text, ...] = ()
    clusters: Globs | None = None
    namespaces: Globs | None = None

    @model_validator(mode="after")
    def _someone(self) -> Grant:
        if not self.users and not self.groups:
            raise ValueError("a grant needs users or groups (who it is for)")
        return self

    def covers(self, cluster: str, namespace: str) -> bool:
        return (self.clusters is None or any(glob_match(p, cluster) for p in self.clusters)) and (
            self.namespaces is None or any(glob_match(p, namespace) for p in self.namespaces)
        )


class RbacConfig(Strict):
    """`operators` may mute, unmute and ack; `viewers` may ask questions; `grants`, when any
    are listed, limit which clusters and namespaces each person sees (in chat and on the
    status page).

    No operators listed: nobody may mute or ack (the safe default). No viewers listed: everyone
    in the workspace may ask; operators may always ask. No grants listed: everyone who may ask
    sees every app; grants listed: a person sees only what a grant naming them (or one of their
    groups) covers, and nothing when none does.
    """

    operators: Principals = Principals()
    viewers: Principals = Principals()
    grants: tuple[Grant, ...] = ()

    @property
    def scoped(self) -> bool:
        return bool(self.grants)

    def sees(self, user: str, groups: tuple[str, ...], cluster: str, namespace: str) -> bool:
        """May `user` (in `groups`) see the apps of `namespace` in `cluster`? Pure."""
        if not self.grants:
            return True
        return any(
            (user in g.users or any(x in g.groups for x in groups)) and g.covers(cluster, namespace)
            for g in self.grants
        )

    def may_operate(self, user: str, groups: tuple[str, ...] = ()) -> bool:
        return self.operators.includes(user, groups)

    def may_view(self, user: str, groups: tuple[str, ...] = ()) -> bool:
        return (
            self.viewers.empty
            or self.viewers.includes(user, groups)
            or self.may_operate(user, groups)
        )


def _api_url(value: str) -> str:
    return value if value.endswith("/") else value + "/"


class SlackConfig(Strict):
    mode: Literal["socket", "http"] = "socket"
    command: Annotated[str, AfterValidator(_command)] = "/gitops"
    api_url: Annotated[str, AfterValidator(_url), AfterValidator(_api_url)] = (
        "https://slack.com/api/"
    )
    """Slack Web API base URL; change it only for a proxy or a test server."""
    scope_channels: bool = False
    """When true, a chat question asked in a channel that a Slack receiver posts to is answered
    only about the clusters and namespaces of the routes that deliver to that channel."""


class TeamsConfig(Strict):
    outgoing_webhook_secret_env: EnvName | None = None
    """Environment variable holding the (base64) security token of a Teams outgoing webhook;
    set it to answer @mention questions at /webhooks/teams."""


class FluxWebhookCluster(Strict):
    """A cluster whose notification-controller may post to /webhooks/flux besides those of
    `clusters`; with `token_env`, its own generic-hmac token, the only one its events may be
    signed with."""

    name: Name
    token_env: EnvName | None = None


def _network(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an address or network like 10.0.0.0/8, got {value!r}")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (like 10.0.0.7 or 10.0.0.0/8)"
        ) from None


Network = Annotated[str, BeforeValidator(_network)]


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise ValueError(f"{value!r} is not an HTTP header name (letters, digits and '-')")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]


class BasicAuthConfig(Strict):
    """Users and their bcrypt hashes, one `user:hash` a line (the format of `htpasswd -B`),
    from a secret: an environment variable or a mounted file."""

    users_env: EnvName | None = None
    users_file: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BasicAuthConfig:
        if (self.users_env is None) == (self.users_file is None):
            raise ValueError(
                "basic needs exactly one of users_env (an environment variable holding "
                "'user:bcrypt-hash' lines) or users_file (a file holding them)"
            )
        return self


class ProxyAuthConfig(Strict):
    """A proxy in front (oauth2-proxy, an ingress) has signed the reader in and names them in
    a header; the header is believed only from `trusted` addresses."""

    trusted: Annotated[tuple[Network, ...], Field(min_length=1)]
    """The proxy's addresses or networks (10.0.0.7, 10.42.0.0/16); requests from anywhere
    else are refused."""
    user_header: HeaderName = "X-Forwarded-User"
    groups_header: HeaderName | None = "X-Forwarded-Groups"
    """Comma-separated groups of the reader, for `rbac.grants`; None: groups are not read."""


class StatusConfig(Strict):
    """The status page (`/status`), its badges and its JSON (`/api/v1/apps`)."""

    enabled: bool = True
    auth: Literal["none", "basic", "proxy"] = "none"
    """`none`: anyone who reaches the port reads the page (a cluster-internal Service);
    `basic`: users and bcrypt hashes from a secret; `proxy`: a trusted proxy names the reader."""
    basic: BasicAuthConfig | None = None
    proxy: ProxyAuthConfig | None = None
    public_badges: bool = False
    """Badges (`/badge/...svg`) readable without signing in, while the page is not."""

    @model_validator(mode="after")
    def _auth_settings(self) -> StatusConfig:
        if self.auth == "basic" and self.basic is None:
            raise ValueError("auth: basic needs basic: {users_env: NAME} or {users_file: PATH}")
        if self.auth == "proxy" and self.proxy is None:
            raise ValueError("auth: proxy needs proxy: {trusted: [the proxy's addresses]}")
        return self


class ServerConfig(Strict):
    host: Text = "0.0.0.0"
    """The address to listen on; all interfaces by default, as a container must."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    read_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)
    """How long a client may take to send a request's headers, and then its body."""
    flux_webhook_token_env: EnvName | None = None
    """Environment variable holding the generic-hmac token of the Flux Provider."""
    flux_webhook_accept_unsigned: bool = False
    """Take unsigned Flux events (the `generic` provider) for clusters without a token."""
    flux_webhook_clusters: tuple[FluxWebhookCluster, ...] = ()

    @model_validator(mode="after")
    def _one_entry_per_cluster(self) -> ServerConfig:
        names = [c.name for c in self.flux_webhook_clusters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"flux_webhook_clusters names {', '.join(twice)} more than once")
        return self

    shutdown_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=20)
    """On SIGTERM, how long the outbox may keep sending after the watches stop; what is still
    unsent then stays queued for the next start. Keep it below the pod's
    terminationGracePeriodSeconds (30 s in the chart)."""
    public_url: Annotated[str, AfterValidator(_url)] | None = None
    """Where people reach this server (https://driftbot.example.com): alerts, digests and chat
    answers link to the status page under it."""
    status: StatusConfig = StatusConfig()


DEFAULT_RECEIVER = "console"


class Config(Strict):
    clusters: tuple[ClusterConfig, ...] = ()
    argocd_api: tuple[ArgoCDApiConfig, ...] = ()
    receivers: tuple[ReceiverConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    policy: PolicyConfig = PolicyConfig()
    rbac: RbacConfig = RbacConfig()
    slack: SlackConfig = SlackConfig()
    teams: TeamsConfig = TeamsConfig()
    server: ServerConfig = ServerConfig()
    digests: tuple[DigestConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _default_delivery(cls, data: Any) -> Any:
        """No receivers: a console receiver (text) exists; no routes either: it gets everything."""
        if isinstance(data, dict) and not data.get("receivers"):
            data = {
                **data,
                "receivers": [{"name": DEFAULT_RECEIVER, "console": {"format": "text"}}],
            }
            if not data.get("routes"):
                data["routes"] = [{"receivers": [DEFAULT_RECEIVER]}]
        return data

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)


def default_config() -> Config:
    """The built-in config: every event to a console receiver as text, grace 60 s."""
    return Config()


def _items(data: Mapping[str, Any], section: str) -> list[tuple[int, Mapping[str, Any]]]:
    value = data.get(section)
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _names(data: Mapping[str, Any], section: str) -> list[tuple[int, str]]:
    return [
        (i, item["name"]) for i, item in _items(data, section) if isinstance(item.get("name"), str)
    ]


def cross_check(data: Mapping[str, Any] | Config) -> list[tuple[Loc, str]]:
    """Problems no single field shows, each with the location it is about. Pure.

    Works on the raw parsed file as well as on a Config, so the loader reports these together
    with the field errors instead of only after those are fixed.
    """
    if isinstance(data, Config):
        data = data.model_dump(by_alias=True, mode="json")
    issues: list[tuple[Loc, str]] = []

    for section, what in (
        ("clusters", "cluster"),
        ("receivers", "receiver"),
        ("digests", "digest"),
    ):
        first: dict[str, int] = {}
        for index, name in _names(data, section):
            if name in first:
                issues.append(
                    (
                        (section, index, "name"),
                        f"duplicate {what} name {name!r} (first defined at "
                        f"{section}[{first[name]}])",
                    )
                )
            else:
                first.setdefault(name, index)

    defined = list(dict.fromkeys(name for _, name in _names(data, "receivers")))
    if not data.get("receivers"):
        defined = [DEFAULT_RECEIVER]
    for section in ("routes", "digests"):
        for index, item in _items(data, section):
            names = item.get("receivers")
            if not isinstance(names, list | tuple):
                continue
            for i, name in enumerate(names):
                if isinstance(name, str) and name not in defined:
                    issues.append(
                        (
                            (section, index, "receivers", i),
                            f"receiver {name!r} is not defined ({_close(name, defined)}"
                            f"defined: {', '.join(defined) or 'none'})",
                        )
                    )

    if data.get("receivers") and not data.get("routes"):
        issues.append(
            (
                ("routes",),
                "no routes: no event would reach any receiver (add a route without match, "
                "like '- receivers: [name]', to send everything)",
            )
        )

    clusters = [name for _, name in _names(data, "clusters")]
    if clusters:
        for index, api in _items(data, "argocd_api"):
            cluster = api.get("cluster")
            if isinstance(cluster, str) and cluster not in clusters:
                issues.append(
                    (
                        ("argocd_api", index, "cluster"),
                        f"cluster {cluster!r} is not in clusters ({_close(cluster, clusters)}"
                        f"defined: {', '.join(clusters)})",
                    )
                )
    return issues


def lint(config: Config) -> list[tuple[Loc, str]]:
    """Legal but probably not meant: unused receivers, routes no event can reach. Pure."""
    warnings: list[tuple[Loc, str]] = []
    used = {n for r in config.routes for n in r.receivers}
    used |= {n for d in config.digests for n in d.receivers}
    for index, receiver in enumerate(config.receivers):
        if receiver.name not in used:
            warnings.append(
                (("receivers", index, "name"), f"receiver {receiver.name!r} is used by no route")
            )
    for index, route in enumerate(config.routes):
        if route.match is None and not route.continue_:
            for later in range(index + 1, len(config.routes)):
                warnings.append(
                    (
                        ("routes", later),
                        f"unreachable: routes[{index}] has no match and no continue, so it "
                        "takes every event first",
                    )
                )
            break
    for index, route in enumerate(config.routes):
        note = _namespace_note(route.match)
        if note:
            warnings.append((("routes", index, "match", "namespace"), note))
        for key, text in _never_for_its_tool(route.match):
            warnings.append((("routes", index, "match", key), text))
    return warnings


ARGOCD_HOME_NAMESPACES = ("argocd", "argo-cd", "openshift-gitops")
"""Where Argo CD Applications usually live: a route matching these means the objects' own."""


def _namespace_note(match: Match | None) -> str:
    """A route that matches `namespace` and may take Argo CD events, but names none of the
    namespaces Applications live in: probably meant where the apps deploy."""
    if match is None or match.namespace is None or match.destination_namespace is not None:
        return ""
    if match.tool is not None and not any(glob_match(p, Tool.ARGOCD.value) for p in match.tool):
        return ""
    if any(glob_match(p, home) for p in match.namespace for home in ARGOCD_HOME_NAMESPACES):
        return ""
    patterns = ", ".join(match.namespace)
    return (
        f"namespace {patterns} matches the namespace an object lives in; Argo CD Applications "
        "usually live in argocd, so Argo CD apps will not match: to match the namespace an app "
        "deploys into, use destination_namespace (or add tool: flux if only Flux is meant)"
    )


def _never_for_its_tool(match: Match | None) -> list[tuple[str, str]]:
    """Conditions that no object of the route's tools can meet: a Flux source for Argo CD
    apps, a remote destination cluster for Flux objects (they run where Flux runs)."""
    if match is None or match.tool is None:
        return []
    flux = any(glob_match(p, Tool.FLUX.value) for p in match.tool)
    argocd = any(glob_match(p, Tool.ARGOCD.value) for p in match.tool)
    found: list[tuple[str, str]] = []
    if not flux and match.source is not None and not any(glob_match(p, "") for p in match.source):
        found.append(("source", "an Argo CD app reads no Flux source: this route takes nothing"))
    dest = match.destination_cluster
    if not argocd and dest is not None and not any(glob_match(p, "in-cluster") for p in dest):
        found.append(
            (
                "destination_cluster",
                "a Flux object's destination cluster is always in-cluster: "
                "this route takes nothing",
            )
        )
    return found
