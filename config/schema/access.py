"""Who may do what: operators, viewers and the grants that limit which clusters and
namespaces each person sees."""

from __future__ import annotations

from pydantic import model_validator

from config.actions import DeployerGrant, may_deploy
from config.globs import glob_match
from config.schema.fields import (
    Globs,
    Strict,
    Text,
)


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
    """`operators` may mute, unmute and ack; `viewers` may ask questions; `deployers` may act
    where their grant says (with `actions.enabled`); `grants`, when any
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
    deployers: tuple[DeployerGrant, ...] = ()
    """Who may act (sync, roll back, reconcile ...) and where, when `actions.enabled`."""

    def may_deploy(
        self,
        user: str,
        groups: tuple[str, ...],
        cluster: str,
        namespace: str,
        project: str = "",
    ) -> bool:
        """Operators do not deploy unless a deployers grant names them too."""
        return may_deploy(self.deployers, user, groups, cluster, namespace, project)

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
            or any(user in g.users or set(groups) & set(g.groups) for g in self.deployers)
        )
