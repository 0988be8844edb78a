"""Commit author and subject for deploy and rollback events.

Argo CD revision metadata is fetched over HTTP from tests/fakes/argocd_api.py; Flux subjects
are learnt from source-controller Events and notifications built from the upstream shapes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.model import AppState, EventKind, GitOpsEvent, Hint, Tool, make_event
from tests import builders_flux as fb
from tests.builders_argocd import REV_A, REV_B, REV_C, T0, app_state, argocd_app
from tests.fakes.argocd_api import FakeArgoCDAPI
from watchers.argocd_api import ArgoCDApi
from watchers.commit_info import (
    MAX_SUBJECT,
    CommitDescriber,
    CommitInfo,
    FluxCommitSubjects,
    RevisionMetadataCache,
    commit_info_from_metadata,
    parse_new_artifact,
    revision_key,
)
from watchers.normalize import normalize_flux_notification, normalize_object

TOKEN = "argocd-token"
METADATA = {
    "author": "Alice Doe <alice@example.com>",
    "date": "2026-11-20T08:55:00Z",
    "tags": None,
    "message": "Bump checkout to 1.4\n\nThe new version fixes the basket total.",
}


@pytest.fixture
async def server() -> AsyncIterator[FakeArgoCDAPI]:
    async with FakeArgoCDAPI(token=TOKEN) as fake:
        fake.revision_metadata[("checkout", REV_A)] = METADATA
        yield fake


@pytest.fixture
async def api(server: FakeArgoCDAPI) -> AsyncIterator[ArgoCDApi]:
    api = ArgoCDApi(server.url, TOKEN, cluster="prod")
    yield api
    await api.close()


def argocd_event(
    kind: EventKind = EventKind.DEPLOY_SUCCEEDED, revision: str = REV_A, name: str = "checkout"
) -> GitOpsEvent:
    return make_event(kind, app_state(argocd_app(name), cluster="prod"), T0, revision=revision)


def flux_event(kind: EventKind, revision: str, cluster: str = "prod") -> GitOpsEvent:
    state = normalize_object(fb.kustomization("apps"), cluster, T0)
    assert isinstance(state, AppState)
    return make_event(kind, state, T0, revision=revision)


# -- Argo CD revision metadata --------------------------------------------------------------------


async def test_metadata_is_fetched_once_per_revision(server: FakeArgoCDAPI, api: ArgoCDApi) -> None:
    describer = CommitDescriber({"prod": RevisionMetadataCache(api)})
    event = argocd_event()

    first = await describer.describe(event)
    second = await describer.describe(dataclasses.replace(event, kind=EventKind.DEPLOY_STARTED))

    assert first == second == CommitInfo(author="Alice Doe", subject="Bump checkout to 1.4")
    requests = server.of("metadata")
    assert len(requests) == 1
    assert requests[0].path == f"/api/v1/applications/checkout/revisions/{REV_A}/metadata"
    assert requests[0].one("appNamespace") == "argo-cd"
    assert requests[0].one("project") == "sre"
    assert requests[0].authorization == f"Bearer {TOKEN}"


async def test_concurrent_callers_share_one_request(server: FakeArgoCDAPI, api: ArgoCDApi) -> None:
    cache = RevisionMetadataCache(api)
    answers = await asyncio.gather(*(cache.get("checkout", REV_A) for _ in range(5)))
    assert {a for a in answers} == {CommitInfo("Alice Doe", "Bump checkout to 1.4")}
    assert len(server.of("metadata")) == 1
    assert cache.requests == 1


async def test_an_unknown_revision_is_none_and_is_not_asked_again(
    server: FakeArgoCDAPI, api: ArgoCDApi
) -> None:
    cache = RevisionMetadataCache(api)
    assert await cache.get("checkout", REV_B) is None
    assert await cache.get("checkout", REV_B) is None
    assert [r.status for r in server.of("metadata")] == [404]


async def test_a_timeout_is_none_and_is_asked_again_later(
    server: FakeArgoCDAPI, api: ArgoCDApi
) -> None:
    cache = RevisionMetadataCache(api, timeout=0.05)
    server.hang_metadata()
    assert await cache.get("checkout", REV_A) is None
    assert await cache.get("checkout", REV_A) == CommitInfo("Alice Doe", "Bump checkout to 1.4")
    assert len(server.of("metadata")) == 2


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_server_errors_are_none_and_not_kept(
    server: FakeArgoCDAPI, api: ArgoCDApi, status: int
) -> None:
    cache = RevisionMetadataCache(api)
    server.fail_next(status, on="metadata")
    assert await cache.get("checkout", REV_A) is None
    assert await cache.get("checkout", REV_A) is not None


async def test_the_cache_is_a_bounded_lru(server: FakeArgoCDAPI, api: ArgoCDApi) -> None:
    for rev in (REV_B, REV_C):
        server.revision_metadata[("checkout", rev)] = {**METADATA, "message": f"commit {rev}"}
    cache = RevisionMetadataCache(api, max_entries=2)
    for rev in (REV_A, REV_B, REV_A, REV_C):  # REV_A used again: REV_B is the oldest
        await cache.get("checkout", rev)
    assert cache.requests == 3
    await cache.get("checkout", REV_A)
    assert cache.requests == 3
    await cache.get("checkout", REV_B)
    assert cache.requests == 4


async def test_close_cancels_a_running_request(server: FakeArgoCDAPI, api: ArgoCDApi) -> None:
    cache = RevisionMetadataCache(api, timeout=30)
    server.hang_metadata()
    pending = asyncio.create_task(cache.get("checkout", REV_A))
    await server.wait_for(lambda: len(server.of("metadata")) == 1)
    await cache.close()
    assert await pending is None
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(n.startswith("argocd-revision-metadata:") for n in names)


async def test_only_commit_events_with_git_revisions_are_described(
    server: FakeArgoCDAPI, api: ArgoCDApi
) -> None:
    describer = CommitDescriber({"prod": RevisionMetadataCache(api)})
    assert await describer.describe(argocd_event(EventKind.DRIFT_DETECTED)) is None
    assert await describer.describe(argocd_event(revision="6.5.0")) is None  # a Helm chart
    other = dataclasses.replace(argocd_event(), cluster="staging")
    assert await describer.describe(other) is None
    assert server.of("metadata") == []
    rollback = argocd_event(EventKind.ROLLBACK_SUCCEEDED)
    assert await describer.describe(rollback) == CommitInfo("Alice Doe", "Bump checkout to 1.4")


async def test_enrich_fills_the_event_fields_and_keeps_its_id(api: ArgoCDApi) -> None:
    describer = CommitDescriber.from_apis([api])
    event = argocd_event(EventKind.DEPLOY_FAILED)
    enriched = await describer.enrich(event)
    assert (enriched.commit_author, enriched.commit_subject) == (
        "Alice Doe",
        "Bump checkout to 1.4",
    )
    assert enriched.id == event.id
    unknown = argocd_event(revision=REV_C)
    assert await describer.enrich(unknown) is unknown
    await describer.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (METADATA, CommitInfo("Alice Doe", "Bump checkout to 1.4")),
        ({"author": "<bot@example.com>", "message": ""}, CommitInfo("bot@example.com", "")),
        ({"author": "ci", "message": "\n\n  fix: typo  \nbody"}, CommitInfo("ci", "fix: typo")),
        ({"message": "x" * 500}, CommitInfo("", "x" * (MAX_SUBJECT - 1) + "…")),
        ({"author": "", "message": ""}, None),
        ({"author": 7, "message": ["no"]}, None),
        ([], None),
        (None, None),
    ],
)
def test_commit_info_from_metadata(body: Any, expected: CommitInfo | None) -> None:
    assert commit_info_from_metadata(body) == expected


# -- Flux -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "subject"),
    [
        ("stored artifact for commit 'Bump checkout to 1.4'", "Bump checkout to 1.4"),
        (
            "stored artifact for commit 'Merge pull request #42 from acme/bump-checkout'",
            "Merge pull request #42 from acme/bump-checkout",
        ),
        (
            "stored artifact for commit 'Revert 'Bump checkout to 1.4''",
            "Revert 'Bump checkout to 1.4'",
        ),
        (
            # ShortMessage: 50 runes of the subject, then "..."
            "stored artifact for commit 'Upgrade the payment provider SDK and rotate the ke...'",
            "Upgrade the payment provider SDK and rotate the ke...",
        ),
        # Without a commit message (a no-op clone) the controller names the reference instead.
        ("stored artifact for commit 'main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9'", None),
        ("stored artifact for commit 'sha1:67e2c98a60dc92283531412a9e604dd4bae005a9'", None),
        (
            "stored artifact for commit "
            "'refs/heads/main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9'",
            None,
        ),
        ("stored artifact for commit ''", None),
        (
            "stored artifact with revision 'latest@sha256:3f1c0a9d2b7e4c6a8f5d1e0b9a7c3d2e1f0a4b5c"
            "3f1c0a9d2b7e4c6a' from 'oci://ghcr.io/stefanprodan/manifests/podinfo'",
            None,
        ),
        ("packaged 'podinfo' chart with version '6.5.0'", None),
        ("Reconciliation finished in 1.2s, next run in 10m0s", None),
        ("", None),
    ],
)
def test_new_artifact_messages(message: str, subject: str | None) -> None:
    assert parse_new_artifact(message) == subject


@given(st.text())
def test_any_message_gives_none_or_one_bounded_line(message: str) -> None:
    subject = parse_new_artifact(message)
    assert subject is None or (subject and "\n" not in subject and len(subject) <= MAX_SUBJECT)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_metadata_body_is_read_without_error(body: Any) -> None:
    info = commit_info_from_metadata(body)
    assert info is None or info.author or info.subject


@pytest.mark.parametrize(
    ("revision", "key"),
    [
        (
            "main@sha1:67E2C98A60DC92283531412A9E604DD4BAE005A9",
            "67e2c98a60dc92283531412a9e604dd4bae005a9",
        ),
        (
            "sha1:67e2c98a60dc92283531412a9e604dd4bae005a9",
            "67e2c98a60dc92283531412a9e604dd4bae005a9",
        ),
        (
            "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
            "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
        ),
        ("731f7eaddfb6af01cb2173e18f0f75b0ba780ef1", "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"),
        ("v1.4.0", "v1.4.0"),
    ],
)
def test_revision_key(revision: str, key: str) -> None:
    assert revision_key(revision) == key


def gitrepository_hint(message: str, revision: str | None = fb.REV1, **kwargs: Any) -> Hint:
    raw = fb.flux_event(
        "GitRepository",
        "flux-system",
        reason="NewArtifact",
        message=message,
        revision=revision,
        **kwargs,
    )
    hint = normalize_object(raw, "prod", T0)
    assert isinstance(hint, Hint)
    return hint


async def test_a_new_artifact_event_names_the_subject_of_the_deploy_it_leads_to() -> None:
    describer = CommitDescriber()
    assert describer.observe_hint(
        gitrepository_hint("stored artifact for commit 'Bump checkout to 1.4'")
    )

    deployed = flux_event(EventKind.DEPLOY_SUCCEEDED, fb.REV1)
    assert await describer.describe(deployed) == CommitInfo(subject="Bump checkout to 1.4")
    enriched = await describer.enrich(deployed)
    assert (enriched.commit_author, enriched.commit_subject) == ("", "Bump checkout to 1.4")
    assert await describer.describe(flux_event(EventKind.DEPLOY_SUCCEEDED, fb.REV2)) is None
    assert await describer.describe(flux_event(EventKind.DEPLOY_SUCCEEDED, fb.REV1, "dev")) is None
    assert await describer.describe(flux_event(EventKind.DRIFT_DETECTED, fb.REV1)) is None


async def test_a_notification_teaches_the_subject_too_in_the_older_revision_spelling() -> None:
    body = fb.notification(
        "GitRepository",
        "flux-system",
        severity="info",
        reason="NewArtifact",
        message="stored artifact for commit 'Add the search service'",
        revision="main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
        prefixed=False,
    )
    hint = normalize_flux_notification(body, "prod", T0)
    assert isinstance(hint, Hint)
    describer = CommitDescriber()
    assert describer.observe_hint(hint)
    event = flux_event(EventKind.DEPLOY_STARTED, fb.REV2)  # main@sha1:731f7ea…
    assert await describer.describe(event) == CommitInfo(subject="Add the search service")


def test_hints_that_carry_no_subject_teach_nothing() -> None:
    subjects = FluxCommitSubjects()
    assert not subjects.observe_hint(
        gitrepository_hint("stored artifact for commit 'x'", revision=None)
    )
    assert not subjects.observe_hint(gitrepository_hint(f"stored artifact for commit '{fb.REV1}'"))
    changeset = normalize_object(fb.flux_event(), "prod", T0)
    assert isinstance(changeset, Hint) and not subjects.observe_hint(changeset)
    argocd_hint = dataclasses.replace(
        gitrepository_hint("stored artifact for commit 'x'"), tool=Tool.ARGOCD
    )
    assert not subjects.observe_hint(argocd_hint)
    assert len(subjects) == 0


def test_flux_subjects_are_bounded() -> None:
    subjects = FluxCommitSubjects(max_entries=2)
    revisions = [f"main@sha1:{str(i) * 40}" for i in range(3)]
    for i, revision in enumerate(revisions):
        subjects.remember("prod", revision, f"commit {i}")
    assert subjects.subject("prod", revisions[0]) is None
    assert subjects.subject("prod", revisions[2]) == "commit 2"
    assert len(subjects) == 2
