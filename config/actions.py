"""The config of acting from chat: who may deploy where (`rbac.deployers`), whether actions are
on at all (`actions.enabled`, off by default) and the optional two-person rule
(`actions.approval`).

A deployer grant names people (Slack users and user groups) and where they may act: clusters,
namespaces and Argo CD projects, as patterns; a place left out means anywhere. Grants add up.
Pure: the decisions take the facts and return a value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from config.durations import parse_duration
from config.globs import check_glob, glob_match

CONFIRM_WITHIN = timedelta(minutes=5)
"""A confirmation (a submitted modal) older than this is refused: the facts it showed may be
stale, and Slack's own requests stop being valid after five minutes."""


def _globs(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("empty list of patterns (leave the key out to mean anywhere)")
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a pattern (text), got {item!r}")
        check_glob(item)
    return tuple(items)


Globs = Annotated[tuple[str, ...], BeforeValidator(_globs)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DeployerGrant(_Strict):
    """People who may sync, roll back, refresh, terminate, reconcile, suspend and resume, and
    where. `clusters`, `namespaces` and `projects` left out: anywhere."""

    users: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    clusters: Globs | None = None
    namespaces: Globs | None = None
    projects: Globs | None = None
    """Argo CD projects; a Flux object has none, so a grant limited to projects never covers
    one."""

    @model_validator(mode="after")
    def _someone(self) -> DeployerGrant:
        if not self.users and not self.groups:
            raise ValueError("a deployers entry needs users or groups (who may deploy)")
        return self

    def covers(
        self, user: str, groups: tuple[str, ...], cluster: str, namespace: str, project: str
    ) -> bool:
        """Does this grant let `user` (in `groups`) act on an app at this place?"""
        if user not in self.users and not any(g in self.groups for g in groups):
            return False
        if self.clusters is not None and not any(glob_match(p, cluster) for p in self.clusters):
            return False
        if self.namespaces is not None and not any(
            glob_match(p, namespace) for p in self.namespaces
        ):
            return False
        return self.projects is None or (
            bool(project) and any(glob_match(p, project) for p in self.projects)
        )


def may_deploy(
    grants: tuple[DeployerGrant, ...],
    user: str,
    groups: tuple[str, ...],
    cluster: str,
    namespace: str,
    project: str = "",
) -> bool:
    """May `user` act on an app in this cluster, namespace and project? No grant: nobody may."""
    return any(g.covers(user, groups, cluster, namespace, project) for g in grants)


class ApprovalRule(_Strict):
    """The two-person rule: in these clusters an action waits until another deployer of the
    app approves it, for at most `within`."""

    clusters: Globs
    within: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(minutes=15)

    def applies(self, cluster: str) -> bool:
        return any(glob_match(p, cluster) for p in self.clusters)


class ActionsConfig(_Strict):
    """Acting from chat: off unless `enabled`."""

    enabled: bool = False
    approval: ApprovalRule | None = None
    follow_for: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(minutes=10)
    """How long the outcome of an action is followed before it is reported as timed out."""
