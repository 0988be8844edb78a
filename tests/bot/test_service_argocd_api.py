"""The service with an Argo CD API server entry, end to end: the application stream is listed and
followed through `open_service`, and a deploy names its commit's author and subject, read from the
API server's revision metadata."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app.service import open_service
from bot.pipeline.sources import WATCHED
from config.schema import Config
from tests.builders_argocd import (
    REV_A,
    REV_B,
    T0,
    argocd_app,
    at,
    history_entry,
    operation_state,
)
from tests.fakes.argocd_api import FakeArgoCDAPI
from tests.fakes.kube_api import FakeKubeAPI

TOKEN = "argocd-token"
METADATA = {
    "author": "Alice Doe <alice@example.com>",
    "date": "2026-11-20T08:55:00Z",
    "tags": None,
    "message": "Bump checkout to 1.4\n\nThe new version fixes the basket total.",
}


async def _parked(_: float) -> None:
    """A watcher's wait (the Application CRD is absent: the API server is the source) that
    never ends by itself; stopping the service cancels it."""
    await asyncio.Event().wait()


async def until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.002)


def deployed(revision: str, *, minutes: float) -> dict[str, Any]:
    history = [history_entry(1, REV_A, at(0), username="bob@example.com")]
    if revision == REV_B:
        history.append(history_entry(2, REV_B, at(minutes), username="carol@example.com"))
    return argocd_app(
        "checkout",
        desired=revision,
        history=history,
        operation=operation_state(
            "Succeeded",
            revision,
            started_at=at(minutes - 0.5),
            finished_at=at(minutes),
            username="carol@example.com",
        ),
    )


async def test_a_deploy_seen_on_the_api_stream_names_its_commit(tmp_path: Path) -> None:
    out = io.StringIO()
    async with FakeArgoCDAPI(token=TOKEN) as argocd, FakeKubeAPI() as kube:
        for watched in WATCHED:
            if watched.spec.group and watched.spec.group != "argoproj.io":
                kube.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))
        argocd.revision_metadata[("checkout", REV_B)] = METADATA
        argocd.put(deployed(REV_A, minutes=1))
        config = Config.model_validate(
            {
                "clusters": [
                    {"name": "prod", "kubeconfig": str(kube.write_kubeconfig(tmp_path / "kc"))}
                ],
                "argocd_api": [{"cluster": "prod", "url": argocd.url, "token_env": "ARGO_T"}],
                "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
                "routes": [{"receivers": ["out"]}],
                "policy": {"grace": "0s", "group_wait": "0s", "flap": {"flips": 0}},
            }
        )
        async with open_service(
            config,
            tmp_path / "state.sqlite",
            clock=lambda: T0,
            stream=out,
            watcher_options={"sleep": _parked},
            environ={"ARGO_T": TOKEN},
        ) as service:
            await until(lambda: not service.not_ready())
            assert out.getvalue() == ""  # the listed app is the baseline

            argocd.put(deployed(REV_B, minutes=3))
            await until(lambda: "deploy_succeeded" in out.getvalue())

    [line] = out.getvalue().splitlines()
    note = json.loads(line)
    assert (note["kind"], note["cluster"], note["name"], note["revision"]) == (
        "deploy_succeeded",
        "prod",
        "checkout",
        REV_B,
    )
    assert note["commit_author"] == "Alice Doe"
    assert note["commit_subject"] == "Bump checkout to 1.4"
    asked = [r for r in argocd.requests if r.endpoint == "metadata"]
    assert [(r.path.rsplit("/", 3)[-3:], r.authorization) for r in asked] == [
        (["revisions", REV_B, "metadata"], f"Bearer {TOKEN}")
    ]
