"""Which backend acts on which cluster, and the clients they hold.

An Argo CD action goes through the cluster's Argo CD API server when the config names one
(`argocd_api` with a `token_env` that is set), else through the Kubernetes API; a Flux action
always goes through the Kubernetes API. The Kubernetes clients are made once per cluster, as
the watches make theirs (in-cluster service account, or kubeconfig and context).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from kubernetes_asyncio.client import ApiClient

from bot.actions.argocd_api import ArgoCDApiActions
from bot.actions.errors import ActionError
from bot.actions.kube import KubeActions
from bot.pipeline.sources import api_client_for
from config.schema import ClusterConfig, Config
from core.actions import Plan, Started
from core.model import Tool

logger = logging.getLogger(__name__)

ClientFactory = Callable[[ClusterConfig], Awaitable[ApiClient]]


class Actor:
    """Does a planned action as `user`; raises ActionError with a sentence when it cannot."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime],
        *,
        clients: ClientFactory = api_client_for,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.clock = clock
        self._clients = clients
        self._environ = environ
        self._kube: dict[str, ApiClient] = {}
        self._argocd: dict[str, ArgoCDApiActions] = {}

    def reconfigure(self, config: Config) -> None:
        """Who may act changes at once; the clusters and Argo CD servers need a restart."""
        self.config = config

    async def act(self, plan: Plan, user: str) -> Started:
        key = plan.request.key
        if key.tool is Tool.ARGOCD:
            api = self._argocd_for(key.cluster)
            if api is not None:
                return await api.act(plan, user)
        client = await self._kube_for(key.cluster)
        return await KubeActions(client, self.clock).act(plan, user)

    def _argocd_for(self, cluster: str) -> ArgoCDApiActions | None:
        if cluster in self._argocd:
            return self._argocd[cluster]
        entry = next((a for a in self.config.argocd_api if a.cluster == cluster), None)
        if entry is None:
            return None
        token = self._environ.get(entry.token_env, "").strip()
        if not token:
            raise ActionError(
                f"the Argo CD API of {cluster} needs a token: {entry.token_env} is not set"
            )
        self._argocd[cluster] = ArgoCDApiActions(entry.url, token, self.clock)
        return self._argocd[cluster]

    async def _kube_for(self, cluster: str) -> ApiClient:
        if cluster not in self._kube:
            entry = next((c for c in self.config.clusters if c.name == cluster), None)
            if entry is None:
                raise ActionError(f"cluster {cluster} is not in driftbot's config")
            self._kube[cluster] = await self._clients(entry)
        return self._kube[cluster]

    async def close(self) -> None:
        for api in self._argocd.values():
            await api.close()
        for client in self._kube.values():
            await client.close()
        self._argocd.clear()
        self._kube.clear()
