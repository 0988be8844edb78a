"""Links the renderers need that no single object carries: a Flux object's page in the
cluster's Flux UI, and the Git repository of a Kustomization's revision.

The normalizers see one object at a time; a Kustomization names its GitRepository
(`source_ref`) and only that GitRepository knows its URL. The pipeline holds every app state,
so the join is made here, when an event is about to be decided. Decides only: states in,
values out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from config.schema import ClusterConfig
from core.model import AppKey, AppState, GitOpsEvent, Tool
from formatters.forge import flux_ui_url


def with_flux_ui_link(state: AppState, clusters: Mapping[str, ClusterConfig]) -> AppState:
    """`state` with `url` set to its Flux UI page, when its cluster has a template for its kind."""
    cluster = clusters.get(state.cluster)
    if state.tool is not Tool.FLUX or state.url or cluster is None:
        return state
    template = cluster.flux_ui_template(state.kind)
    url = flux_ui_url(template, state.kind, state.namespace, state.name, state.cluster)
    return dataclasses.replace(state, url=url) if url else state


def source_repository(state: AppState, states: Mapping[AppKey, AppState]) -> str:
    """The repository URL of the GitRepository a Flux object reads (`state.source_ref`), or ""."""
    if state.tool is not Tool.FLUX or not state.source_ref:
        return ""
    kind, _, rest = state.source_ref.partition("/")
    namespace, _, name = rest.partition("/")
    source = states.get(AppKey(Tool.FLUX, state.cluster, namespace, kind, name))
    return source.repo_url if source is not None else ""


def with_repository(event: GitOpsEvent, states: Mapping[AppKey, AppState]) -> GitOpsEvent:
    """`event` with `repo_url` from the source its object reads, when it has none of its own."""
    if event.repo_url or event.tool is not Tool.FLUX:
        return event
    state = states.get(event.key)
    repo_url = source_repository(state, states) if state is not None else ""
    return dataclasses.replace(event, repo_url=repo_url) if repo_url else event


def state_with_repository(state: AppState, states: Mapping[AppKey, AppState]) -> AppState:
    """`state` with `repo_url` from the source it reads, when it has none of its own (the
    status page links a Kustomization's deployed commit this way)."""
    if state.repo_url:
        return state
    repo_url = source_repository(state, states)
    return dataclasses.replace(state, repo_url=repo_url) if repo_url else state
