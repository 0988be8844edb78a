"""The Argo CD AppProjects of one cluster, watched for their routing annotations only.

With `routing.annotations` on, an AppProject's `notifications.argoproj.io/subscribe.*`
annotations route every app of the project, as in Argo CD. A project is a handful of objects
per cluster and its annotations are all the pipeline keeps of it (`Pipeline.projects`): no
state, no events, nothing detected. A list replaces what the cluster's projects were; a watch
event changes or removes one.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import WATCHED, Clock, Feed, Observer, Watched, feed_for
from core.model import Tool
from watchers.annotations import app_project
from watchers.kube_watch import ResourceSpec

logger = logging.getLogger(__name__)

APP_PROJECTS = Watched(
    ResourceSpec("argoproj.io", "v1alpha1", "appprojects"), Tool.ARGOCD, frozenset({"AppProject"})
)


def watched_feeds(
    observer: Observer, pipeline: Pipeline, cluster: str, clock: Clock
) -> list[tuple[Watched, Feed | ProjectFeed]]:
    """What is watched in `cluster`, with its feed: `WATCHED`, and AppProjects when
    `routing.annotations` is on (a restart turns that watch on or off)."""
    feeds: list[tuple[Watched, Feed | ProjectFeed]] = [
        (watched, feed_for(observer, cluster, watched, clock)) for watched in WATCHED
    ]
    if pipeline.config.routing.annotations:
        feeds.append((APP_PROJECTS, ProjectFeed(pipeline, cluster)))
    return feeds


class ProjectFeed:
    """AppProjects of one cluster into `pipeline.projects`."""

    def __init__(self, pipeline: Pipeline, cluster: str) -> None:
        self._pipeline = pipeline
        self._cluster = cluster

    def prepare(self, obj: dict[str, Any]) -> Any:
        return app_project(obj)

    async def on_list(self, objects: list[Any], resource_version: str) -> None:
        projects = self._pipeline.projects
        for key in [k for k in projects if k[0] == self._cluster]:
            del projects[key]
        for found in objects:
            if isinstance(found, dict):
                found = app_project(found)
            if found is not None:
                name, annotations = found
                projects[(self._cluster, name)] = annotations

    async def on_event(self, watch_type: str, obj: dict[str, Any]) -> None:
        self._pipeline.observe_project(obj, self._cluster, watch_type)
