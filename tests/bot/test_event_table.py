"""Every row of the event table, for Argo CD and for Flux, through the whole pipeline.

Each case is a short recorded stream (a baseline, then the change) replayed with grace 0 and
a jsonl console receiver; the kinds announced must include the row's kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app.cli import main
from tests import builders_flux as flux
from tests.scenarios import REV_A, REV_B, REV_OLD, Stream, _argo, _history, _op

CONFIG = """
receivers:
  - {name: out, console: {format: jsonl}}
routes:
  - receivers: [out]
policy: {grace: 0s}
"""

DEPLOYED = _history((1, REV_OLD, -120, ""), (2, REV_A, -60, ""))
DEPLOYED_B = [*DEPLOYED, *_history((3, REV_B, -30, "carol@example.com"))]


def _app(**kwargs: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "history": DEPLOYED,
        "operation": _op("Succeeded", REV_A, -61, -60),
        "auto_sync": False,
    }
    settings.update(kwargs)
    return _argo("checkout", **settings)


def _b(**kwargs: Any) -> dict[str, Any]:
    """checkout with REV_B deployed by carol."""
    settings: dict[str, Any] = {
        "desired": REV_B,
        "history": DEPLOYED_B,
        "operation": _op("Succeeded", REV_B, -31, -30, user="carol@example.com"),
    }
    settings.update(kwargs)
    return _app(**settings)


def argo(*states: dict[str, Any], deleted: bool = False) -> Stream:
    stream = Stream()
    for minute, state in enumerate(states):
        stream.add(minute, "prod", state, "ADDED" if minute == 0 else "MODIFIED")
    if deleted:
        stream.add(len(states), "prod", states[-1], "DELETED")
    return stream


def fluxed(*objects: dict[str, Any], deleted: bool = False) -> Stream:
    stream = Stream()
    for minute, obj in enumerate(objects):
        stream.add(minute, "staging", obj, "ADDED" if minute == 0 else "MODIFIED")
    if deleted:
        stream.add(len(objects), "staging", objects[-1], "DELETED")
    return stream


K = flux.kustomization
HR = flux.helmrelease
DRIFT_MSG = (
    "Cluster state of release data/redis.v3 has drifted from the desired state:\n"
    "StatefulSet/data/redis-master changed (0 additions, 1 changes, 0 removals)"
)
ROLLBACK_MSG = (
    "Helm rollback to previous release podinfo/podinfo.v1 with chart "
    "podinfo@6.6.0+cdd538a0167e succeeded"
)
V1 = flux.helm_snapshot(1, "6.6.0+cdd538a0167e", minutes=-120)
V2_FAILED = flux.helm_snapshot(2, "6.6.1+0cc9a8446c95", status="failed", minutes=-5)
V3 = flux.helm_snapshot(3, "6.6.0+cdd538a0167e", minutes=-4)
FAILING = HR(
    ready="False", reason="UpgradeFailed", attempted="6.6.1+0cc9a8446c95", history=[V2_FAILED, V1]
)
DRIFTED = _app(
    sync="OutOfSync",
    out_of_sync=[("Deployment", "shop", "checkout")],
    reconciled_at="2026-11-20T09:05:00Z",
)
UNKNOWN = _app(
    sync="Unknown",
    conditions=[("ComparisonError", "rpc error: code = Unknown desc = repository not found")],
)


def _flux_drift(reason: str, message: str, minutes: int) -> dict[str, Any]:
    return flux.flux_event(
        "HelmRelease",
        "podinfo",
        "podinfo",
        reason=reason,
        warning=reason == "DriftDetected",
        revision="6.6.0+cdd538a0167e",
        message=message,
        minutes=minutes - 40,
    )


CASES: dict[str, tuple[Callable[[], Stream], str]] = {
    # Argo CD
    "argocd drift_detected": (lambda: argo(_app(), DRIFTED), "drift_detected"),
    "argocd drift_resolved": (
        lambda: argo(_app(), DRIFTED, _app(reconciled_at="2026-11-20T09:06:00Z")),
        "drift_resolved",
    ),
    "argocd self-heal fight": (
        lambda: argo(
            _app(auto_sync=True, self_heal=True),
            _app(
                auto_sync=True,
                self_heal=True,
                operation=_op("Succeeded", REV_A, 1, 1, message="", user="")
                | {
                    "operation": {
                        "initiatedBy": {"automated": True},
                        "sync": {"revision": REV_A, "autoHealAttemptsCount": 1},
                    }
                },
            ),
            _app(
                auto_sync=True,
                self_heal=True,
                operation=_op("Succeeded", REV_A, 2, 2, user="")
                | {
                    "operation": {
                        "initiatedBy": {"automated": True},
                        "sync": {"revision": REV_A, "autoHealAttemptsCount": 2},
                    }
                },
            ),
        ),
        "drift_detected",
    ),
    "argocd deploy_started": (
        lambda: argo(
            _app(),
            _app(
                sync="OutOfSync",
                desired=REV_B,
                operation=_op("Running", REV_B, 1, user="carol@example.com"),
            ),
        ),
        "deploy_started",
    ),
    "argocd deploy_succeeded": (
        lambda: argo(
            _app(),
            _app(
                desired=REV_B,
                history=[*DEPLOYED, *_history((3, REV_B, 1.5, "carol@example.com"))],
                operation=_op("Succeeded", REV_B, 1, 1.5, user="carol@example.com"),
            ),
        ),
        "deploy_succeeded",
    ),
    "argocd deploy_failed": (
        lambda: argo(
            _app(),
            _app(
                sync="OutOfSync",
                desired=REV_B,
                operation=_op(
                    "Failed",
                    REV_B,
                    1,
                    1.5,
                    user="carol@example.com",
                    message="one or more objects failed to apply",
                ),
            ),
        ),
        "deploy_failed",
    ),
    "argocd health_degraded": (lambda: argo(_app(), _app(health="Degraded")), "health_degraded"),
    "argocd health missing": (lambda: argo(_app(), _app(health="Missing")), "health_degraded"),
    "argocd health_recovered": (
        lambda: argo(_app(), _app(health="Degraded"), _app()),
        "health_recovered",
    ),
    "argocd rollback_succeeded": (
        lambda: argo(
            _b(),
            _b(
                sync="OutOfSync",
                history=[*DEPLOYED_B, *_history((4, REV_A, 1.5, "alice@example.com"))],
                operation=_op("Succeeded", REV_A, 1, 1.5, user="alice@example.com"),
            ),
        ),
        "rollback_succeeded",
    ),
    "argocd rollback_failed": (
        lambda: argo(
            _b(),
            _b(
                operation=_op(
                    "Failed", REV_A, 1, 1.5, user="alice@example.com", message="rollback failed"
                )
            ),
        ),
        "rollback_failed",
    ),
    "argocd out_of_sync": (
        lambda: argo(_app(), _app(sync="OutOfSync", desired=REV_B)),
        "out_of_sync",
    ),
    "argocd suspended": (lambda: argo(_app(auto_sync=True), _app(auto_sync=False)), "suspended"),
    "argocd resumed": (
        lambda: argo(_app(auto_sync=True), _app(auto_sync=False), _app(auto_sync=True)),
        "resumed",
    ),
    "argocd source_failed": (lambda: argo(_app(), UNKNOWN), "source_failed"),
    "argocd source_recovered": (lambda: argo(_app(), UNKNOWN, _app()), "source_recovered"),
    "argocd deleted": (lambda: argo(_app(), deleted=True), "deleted"),
    # Flux
    "flux helmrelease drift_detected": (
        lambda: fluxed(HR(history=[V1]), _flux_drift("DriftDetected", DRIFT_MSG, 1)),
        "drift_detected",
    ),
    "flux helmrelease drift_resolved": (
        lambda: fluxed(
            HR(history=[V1]),
            _flux_drift("DriftDetected", DRIFT_MSG, 1),
            _flux_drift(
                "DriftCorrected",
                DRIFT_MSG.replace("has drifted from the desired state", "has been corrected"),
                2,
            ),
        ),
        "drift_resolved",
    ),
    "flux kustomization change set": (
        lambda: fluxed(
            K(),
            flux.flux_event(
                message="Deployment/default/podinfo configured", revision=flux.REV1, minutes=-39
            ),
        ),
        "drift_detected",
    ),
    "flux deploy_started": (
        lambda: fluxed(K(), K(ready="Unknown", reason="Progressing", attempted=flux.REV2)),
        "deploy_started",
    ),
    "flux deploy_succeeded": (lambda: fluxed(K(), K(applied=flux.REV2)), "deploy_succeeded"),
    "flux helm deploy_succeeded": (
        lambda: fluxed(
            HR(history=[V1]), HR(history=[flux.helm_snapshot(2, "6.6.1+0cc9a8446c95"), V1])
        ),
        "deploy_succeeded",
    ),
    "flux deploy_failed": (
        lambda: fluxed(
            K(),
            K(
                ready="False",
                reason="BuildFailed",
                attempted=flux.REV2,
                message="kustomize build failed",
            ),
        ),
        "deploy_failed",
    ),
    "flux helm upgrade failed": (lambda: fluxed(HR(history=[V1]), FAILING), "deploy_failed"),
    "flux health_degraded": (
        lambda: fluxed(
            K(),
            K(ready="False", reason="HealthCheckFailed", message="health check failed after 30s"),
        ),
        "health_degraded",
    ),
    "flux health_recovered": (
        lambda: fluxed(
            K(),
            K(ready="False", reason="HealthCheckFailed", message="health check failed"),
            K(applied=flux.REV1),
        ),
        "health_recovered",
    ),
    "flux rollback_succeeded": (
        lambda: fluxed(
            HR(history=[V1]),
            FAILING,
            HR(
                reason="RollbackSucceeded",
                message=ROLLBACK_MSG,
                attempted="6.6.1+0cc9a8446c95",
                history=[V3, dict(V2_FAILED, status="superseded"), V1],
                remediated=("True", "RollbackSucceeded", ROLLBACK_MSG),
            ),
        ),
        "rollback_succeeded",
    ),
    "flux rollback_failed": (
        lambda: fluxed(
            HR(history=[V1]),
            FAILING,
            HR(
                ready="False",
                reason="RollbackFailed",
                attempted="6.6.1+0cc9a8446c95",
                history=[V2_FAILED, V1],
                remediated=(
                    "False",
                    "RollbackFailed",
                    ROLLBACK_MSG.replace("succeeded", "failed: timed out"),
                ),
            ),
        ),
        "rollback_failed",
    ),
    "flux out_of_sync": (lambda: fluxed(K(), K(ready="True", attempted=flux.REV2)), "out_of_sync"),
    "flux suspended": (lambda: fluxed(K(), K(suspend=True)), "suspended"),
    "flux resumed": (lambda: fluxed(K(), K(suspend=True), K()), "resumed"),
    "flux source_failed": (
        lambda: fluxed(
            flux.gitrepository(),
            flux.gitrepository(
                ready="False", reason="GitOperationFailed", message="unable to clone"
            ),
        ),
        "source_failed",
    ),
    "flux source_recovered": (
        lambda: fluxed(
            flux.gitrepository(),
            flux.gitrepository(
                ready="False", reason="GitOperationFailed", message="unable to clone"
            ),
            flux.gitrepository(revision=flux.REV2),
        ),
        "source_recovered",
    ),
    "flux deleted": (lambda: fluxed(K(), deleted=True), "deleted"),
}


def _replay(
    stream: Stream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """`driftbot replay` of `stream` with grace 0 to a jsonl console: the notifications."""
    path = tmp_path / "stream.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in stream.render()))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    state = tmp_path / "state.sqlite"
    assert main(["replay", str(path), "--config", str(config), "--state", str(state)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_row_of_the_event_table(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, kind = CASES[case]
    events = _replay(build(), tmp_path, capsys)
    kinds = [e["kind"] for e in events]
    assert kind in kinds, f"{case}: got {kinds}"
    assert {e["tool"] for e in events} == {case.split()[0]}


def test_a_flux_deploy_names_the_commit_source_controller_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = flux.flux_event(
        "GitRepository",
        "flux-system",
        reason="NewArtifact",
        message="stored artifact for commit 'Bump podinfo to 6.6.1'",
        revision=flux.REV2,
        minutes=-39,
    )
    events = _replay(fluxed(K(), artifact, K(applied=flux.REV2)), tmp_path, capsys)
    deploys = [e for e in events if e["kind"] == "deploy_succeeded"]
    assert [e["commit_subject"] for e in deploys] == ["Bump podinfo to 6.6.1"]
