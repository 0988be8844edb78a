"""The whole file: `Config` with its sections, the built-in default, and the checks that need
all of it (`cross_check`: duplicate names, undefined receivers; `lint`: legal but probably not
meant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import model_validator

from config.actions import ActionsConfig
from config.allow_list import check_allow, split_entry, with_allowed_channels
from config.globs import glob_match
from config.schema.access import RbacConfig
from config.schema.fields import (
    Loc,
    Strict,
    did_you_mean,
)
from config.schema.receivers import ReceiverConfig
from config.schema.routes import DigestConfig, Match, PolicyConfig, RouteConfig, RoutingConfig
from config.schema.server import ServerConfig, SlackConfig, TeamsConfig
from config.schema.sources import ArgoCDApiConfig, ClusterConfig
from core.model import Tool

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
    actions: ActionsConfig = ActionsConfig()
    routing: RoutingConfig = RoutingConfig()

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
        if isinstance(data, dict):
            data = with_allowed_channels(data)
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
        ("routes", "route"),
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
                            f"receiver {name!r} is not defined ({did_you_mean(name, defined)}"
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
                        f"cluster {cluster!r} is not in clusters ({did_you_mean(cluster, clusters)}"
                        f"defined: {', '.join(clusters)})",
                    )
                )
    issues += check_allow(data, defined)
    return issues


def lint(config: Config) -> list[tuple[Loc, str]]:
    """Legal but probably not meant: unused receivers, routes no event can reach. Pure."""
    warnings: list[tuple[Loc, str]] = []
    used = {n for r in config.routes for n in r.receivers}
    used |= {n for d in config.digests for n in d.receivers}
    used |= {
        receiver.name
        for receiver in config.receivers
        for entry in config.routing.allow
        if _allows(entry, receiver)
    }
    for index, receiver in enumerate(config.receivers):
        if receiver.name not in used:
            warnings.append(
                (("receivers", index, "name"), f"receiver {receiver.name!r} is used by no route")
            )
    for index, route in enumerate(config.routes):
        if route.match is None and not route.continue_:
            label = route.name or f"routes[{index}]"
            for later in range(index + 1, len(config.routes)):
                warnings.append(
                    (
                        ("routes", later),
                        f"unreachable: {label} has no match and no continue, so it "
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
    warnings.extend(_actions_notes(config))
    return warnings


def _actions_notes(config: Config) -> list[tuple[Loc, str]]:
    """Acting from chat switched on with nobody allowed, or the reverse."""
    if config.actions.enabled and not config.rbac.deployers:
        return [(("rbac",), "actions.enabled is true but rbac.deployers is empty: nobody may act")]
    if config.rbac.deployers and not config.actions.enabled:
        return [(("rbac", "deployers"), "rbac.deployers is set but actions.enabled is false")]
    names = [c.name for c in config.clusters]
    approval = config.actions.approval
    if approval is not None and names and not any(map(approval.applies, names)):
        return [
            (
                ("actions", "approval", "clusters"),
                "actions.approval.clusters matches none of the clusters: no action waits",
            )
        ]
    return []


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


def _allows(entry: str, receiver: ReceiverConfig) -> bool:
    kind, value = split_entry(entry)
    if kind == "slack":
        channel = receiver.slack.channel if receiver.slack is not None else None
        return channel is not None and channel.lstrip("#") == value.lstrip("#")
    return receiver.name == value


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
