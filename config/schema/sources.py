"""Where the events come from: the clusters to watch (with their Argo CD and Flux UI links)
and the Argo CD API streams."""

from __future__ import annotations

from pydantic import model_validator

from config.schema.fields import (
    EnvName,
    FluxUi,
    Name,
    Strict,
    Text,
    Url,
)


class ClusterConfig(Strict):
    """One cluster to watch; `name` is the cluster name in events, routes and chat."""

    name: Name
    kubeconfig: Text | None = None
    context: Text | None = None
    in_cluster: bool = False
    argocd_url: Url | None = None
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
    url: Url
    token_env: EnvName = "ARGOCD_TOKEN"
    project: Text | None = None
    selector: Text | None = None
    """Label selector, as `kubectl -l` takes it."""
