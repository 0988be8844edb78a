"""The status page's pure side: an app's state in words, verdict lines, worst-first order,
an app's 7 days from the audit log, and the HTML, SVG and JSON drawn from them."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.codec import event_to_dict
from core.model import (
    AppKey,
    AppState,
    EventKind,
    GitOpsEvent,
    Health,
    HistoryEntry,
    Operation,
    SyncStatus,
    Tool,
    make_event,
)
from formatters import status_html, status_json, status_svg, status_timeline
from formatters import status_view as view
from formatters.status_assets import CSP, CSS, SCRIPT

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def _state(name: str, cluster: str = "staging", **kwargs: Any) -> AppState:
    base: dict[str, Any] = {
        "tool": Tool.FLUX,
        "cluster": cluster,
        "namespace": "apps",
        "kind": "HelmRelease",
        "name": name,
        "observed_at": NOW,
        "sync": SyncStatus.SYNCED,
        "health": Health.HEALTHY,
        "ready": True,
        "revision": "6.6.0",
    }
    base.update(kwargs)
    return AppState(**base)


FAILED = _state(
    "podinfo", ready=False, ready_reason="UpgradeFailed", health=Health.DEGRADED,
    chart_version="6.6.1+0cc9a8446c95", desired_revision="6.6.1+0cc9a8446c95",
)  # fmt: skip
DRIFTED = _state("redis", sync=SyncStatus.OUT_OF_SYNC, revision="18.1.2", desired_revision="18.1.2")
DEGRADED = _state("web", tool=Tool.ARGOCD, kind="Application", ready=None, health=Health.DEGRADED)
FINE = _state(
    "apps",
    history=(HistoryEntry("6.6.0", NOW - timedelta(days=1), "alice", chart_version="6.6.0"),),
)
PAUSED = _state("cache", suspended=True)
PENDING = _state(
    "checkout", cluster="prod", tool=Tool.ARGOCD, kind="Application", ready=None,
    sync=SyncStatus.OUT_OF_SYNC, revision="aaaaaaa", desired_revision="bbbbbbb",
)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "status", "words"),
    [
        (FAILED, "failing", "failing"),
        (DRIFTED, "drifted", "differs from Git"),
        (DEGRADED, "degraded", "degraded"),
        (FINE, "ok", "in sync"),
        (PAUSED, "paused", "suspended"),
        (PENDING, "pending", "waiting to deploy"),
        (
            replace(DEGRADED, health=Health.HEALTHY, operation=Operation(phase="Failed")),
            "failing",
            "failing",
        ),
        (replace(FINE, health=Health.PROGRESSING, ready=None), "progressing", "deploying"),
    ],
)
def test_each_state_is_one_plain_word(state: AppState, status: str, words: str) -> None:
    app = view.app_view(state, {}, {})
    assert (app.status, app.words) == (status, words)


def test_verdicts_name_each_problem_with_how_long_and_environments_come_worst_first() -> None:
    since = {FAILED.key: NOW - timedelta(minutes=14), DRIFTED.key: NOW - timedelta(minutes=3)}
    alerts = {FAILED.key: [make_event(EventKind.DEPLOY_FAILED, FAILED, since[FAILED.key])]}
    clusters = view.fleet(
        [FINE, DRIFTED, PAUSED, FAILED, PENDING, replace(FINE, name="gone", deleted=True)],
        since,
        alerts,
        NOW,
    )
    assert [c.verdict for c in clusters] == [
        "staging: 2 problems — podinfo failed to deploy 6.6.1 (14 min), redis differs from Git "
        "(3 min)",
        "prod: no problems; 1 waiting to deploy",
    ]
    assert [a.key.name for a in clusters[0].apps] == ["podinfo", "redis", "cache", "apps"]
    assert view.verdict("qa", [view.app_view(FINE, {}, {})], NOW) == "qa: all 1 app in sync"


def _record(at: datetime, action: str, app: AppKey | None, **detail: Any) -> Any:
    @dataclass
    class Record:
        at: datetime
        actor: str
        action: str
        app: AppKey | None
        detail: dict[str, Any]

    return Record(at, detail.pop("actor", "driftbot"), action, app, detail)


def _announce(*events: GitOpsEvent, action: str = "announce") -> Any:
    return _record(events[0].occurred_at, action, None, events=[event_to_dict(e) for e in events])


def test_the_timeline_tells_each_event_once_with_mutes_and_acks_and_who() -> None:
    day = NOW - timedelta(days=1)
    deployed = make_event(EventKind.DEPLOY_SUCCEEDED, FINE, day, actor="alice", revision="6.6.1")
    failed = make_event(EventKind.DEPLOY_FAILED, FINE, day + timedelta(hours=1))
    recovered = make_event(EventKind.DEPLOY_SUCCEEDED, FINE, day + timedelta(hours=2))
    old = make_event(EventKind.DRIFT_DETECTED, FINE, NOW - timedelta(days=8))
    other = make_event(EventKind.DRIFT_DETECTED, DRIFTED, day)
    until = (day + timedelta(hours=5)).isoformat()
    records = [
        _announce(old),
        _announce(deployed),
        _announce(failed, other),  # a storm: two apps in one notification
        _announce(failed, action="remind"),
        _announce(failed, other),  # the storm sent again as it grew
        _record(day + timedelta(minutes=70), "ack", FINE.key, actor="U0BOB"),
        _record(
            day + timedelta(minutes=75),
            "mute",
            FINE.key,
            actor="carol",
            until=until,
            reason="fixing <it>",
        ),
        _record(day + timedelta(minutes=80), "mute", DRIFTED.key, actor="carol", until=until),
        _announce(recovered),
    ]
    entries, spans = status_timeline.timeline(records, FINE.key, NOW)
    assert [(e.kind, e.category, e.text) for e in entries] == [
        ("deploy_succeeded", "deploy", "deployed 6.6.1 by alice"),
        ("deploy_failed", "failure", "failed to deploy 6.6.0"),
        ("ack", "ack", "alert acknowledged by U0BOB"),
        ("mute", "mute", "alerts muted until 2026-11-20 15:00 UTC by carol: fixing <it>"),
        ("deploy_succeeded", "deploy", "deployed 6.6.0"),
    ]
    assert [(s.start, s.end, s.open) for s in spans] == [
        (failed.occurred_at, recovered.occurred_at, False)
    ]

    svg = status_svg.timeline_svg(entries, spans, NOW, "t")
    assert svg.count('<g class="mark') == 5
    assert svg.count('<g class="span') == 1
    assert "fixing &lt;it&gt;" in svg and "<it>" not in svg
    shapes = re.findall(r'<g class="mark cat-(\w+)"[^>]*><title>[^<]*</title><(\w+)', svg)
    assert dict(shapes) == {"deploy": "circle", "failure": "path", "ack": "rect", "mute": "rect"}


def test_cluster_and_git_text_is_escaped_everywhere() -> None:
    evil = _state(
        '<img src=x onerror="alert(1)">', cluster="prod", message="<script>alert(2)</script>",
        ready=False, ready_reason="BuildFailed", health=Health.DEGRADED,
    )  # fmt: skip
    clusters = view.fleet([evil], {}, {}, NOW)
    app = clusters[0].apps[0]
    pages = [
        status_html.fleet_page(clusters, NOW),
        status_html.cluster_page(clusters[0], NOW),
        status_html.app_page(app, [], [], NOW),
        status_svg.badge_svg(app.key.name, list(view.badge_words(app))),
    ]
    for page in pages:
        assert "<img" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in pages[0]
    assert app.path == "/status/prod/apps/%3Cimg%20src%3Dx%20onerror%3D%22alert%281%29%22%3E"


def test_times_are_utc_text_for_the_script_to_localize_and_the_csp_allows_only_our_own() -> None:
    app = view.app_view(DRIFTED, {DRIFTED.key: NOW - timedelta(minutes=3)}, {})
    item = status_html.fleet_page([view.ClusterView("staging", (app,), "x")], NOW)
    assert (
        '<time datetime="2026-11-21T09:57:00Z" title="2026-11-21 09:57 UTC">'
        "2026-11-21 09:57 UTC</time>"
    ) in item
    for text, directive in ((SCRIPT, "script-src"), (CSS, "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in CSP
        assert f">{text}</" in item
    assert "http://" not in item.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in item


def test_badges_say_sync_and_health_in_words_for_argo_cd_and_flux() -> None:
    cases = [
        (FINE, ("in sync", "healthy")),
        (FAILED, ("in sync", "failing")),
        (DRIFTED, ("differs from Git", "healthy")),
        (DEGRADED, ("in sync", "degraded")),
        (PENDING, ("differs from Git", "healthy")),
    ]
    for state, words in cases:
        app = view.app_view(state, {}, {})
        assert view.badge_words(app) == words, state.name
        badge = status_svg.badge_svg(state.name, list(words))
        assert f"<title>{state.name}: {words[0]}, {words[1]}</title>" in badge


def test_the_json_of_an_app_has_its_state_its_last_deploy_and_its_links() -> None:
    app = view.app_view(FINE, {}, {})
    data = status_json.app_json(app)
    assert data["state"] == "ok" and data["state_text"] == "in sync"
    assert data["last_deploy"] == {
        "revision": "6.6.0",
        "by": "alice",
        "at": "2026-11-20T10:00:00Z",
        "commit_url": "",
    }
    assert data["page"] == "/status/staging/apps/apps"
    assert data["badge"] == "/badge/staging/apps/apps.svg"


SHA = "0cc9a8446c95f0d1b2c3d4e5f60718293a4b5c6d"


def _links_row(page: str) -> str:
    row = re.search(r"<dt>Links</dt><dd>(.*?)</dd>", page)
    assert row is not None
    return row.group(1)


@pytest.mark.parametrize(
    ("state", "tool_link", "commit"),
    [
        (  # Argo CD: the app in Argo CD and the commit its history names, on GitHub
            _state(
                "guestbook",
                tool=Tool.ARGOCD,
                kind="Application",
                ready=None,
                revision=SHA,
                repo_url="https://github.com/argoproj/argocd-example-apps.git",
                url="https://argocd.example.com/applications/argocd/guestbook",
                history=(HistoryEntry(SHA, NOW - timedelta(hours=2), "alice"),),
            ),
            ("Open in Argo CD", "https://argocd.example.com/applications/argocd/guestbook"),
            f"https://github.com/argoproj/argocd-example-apps/commit/{SHA}",
        ),
        (  # Flux Kustomization: the cluster's Flux UI and the applied revision, on GitLab
            _state(
                "podinfo",
                kind="Kustomization",
                revision=f"main@sha1:{SHA}",
                repo_url="ssh://git@gitlab.example.com/team/podinfo.git",
                url="https://flux.example.com/kustomization?name=podinfo&namespace=apps",
            ),
            (
                "Open in the Flux UI",
                "https://flux.example.com/kustomization?name=podinfo&amp;namespace=apps",
            ),
            f"https://gitlab.example.com/team/podinfo/-/commit/{SHA}",
        ),
        (  # a Helm chart version is no commit, and an unknown host gets no guessed link
            replace(FINE, repo_url="https://github.com/stefanprodan/podinfo"),
            None,
            None,
        ),
        (
            _state(
                "internal",
                tool=Tool.ARGOCD,
                kind="Application",
                ready=None,
                revision=SHA,
                repo_url="https://git.internal.example/team/app.git",
            ),
            None,
            None,
        ),
    ],
)
def test_the_app_page_links_to_its_tool_and_to_the_deployed_commit(
    state: AppState, tool_link: tuple[str, str] | None, commit: str | None
) -> None:
    app = view.app_view(state, {}, {})
    page = status_html.app_page(app, [], [], NOW)
    links = _links_row(page)
    anchors = re.findall(r'<a href="([^"]*)"[^>]*>([^<]*)</a>', links)
    tools = [(text, href) for href, text in anchors if text.startswith("Open in")]
    assert tools == ([tool_link] if tool_link else [])
    commits = [href for href, text in anchors if text == "View the deployed commit"]
    assert commits == ([commit] if commit else [])
    assert (app.last_deploy.commit_url if app.last_deploy else "") == (commit or "")
    assert status_json.app_json(app)["last_deploy"]["commit_url"] == (commit or "")
    if commit:  # the revision of the last deploy is itself the link
        assert f'<a href="{commit}" rel="noreferrer"><code>' in page
