"""Recorded streams built from the upstream shapes: the shipped demo scenario and test streams.

`python -m tests.scenarios > bot/app/scenarios/demo.jsonl` rewrites the demo scenario; a test
checks that the shipped file is what this module builds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from tests import builders_argocd as argo
from tests import builders_flux as flux
from watchers.replay import dump_line

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

REV_OLD = argo.REV_OLD
REV_A = argo.REV_A
REV_B = argo.REV_B
FLUX_REV1 = flux.REV1
FLUX_REV2 = flux.REV2


class Stream:
    """Lines of a recorded stream, kept in time order."""

    def __init__(self) -> None:
        self.lines: list[tuple[datetime, int, bytes]] = []

    def add(self, minutes: float, cluster: str, obj: Any, watch_type: str = "MODIFIED") -> None:
        at = START + timedelta(minutes=minutes)
        self.lines.append((at, len(self.lines), dump_line(at, cluster, watch_type, obj)))

    def notify(self, minutes: float, cluster: str, body: Any) -> None:
        self.add(minutes, cluster, body, "NOTIFICATION")

    def render(self) -> list[bytes]:
        return [line for _, _, line in sorted(self.lines)]


def _argo_time(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history(*entries: tuple[int, str, float, str]) -> list[dict[str, Any]]:
    return [
        argo.history_entry(i, rev, _argo_time(m), username=user, automated=not user)
        for i, rev, m, user in entries
    ]


def _op(
    phase: str,
    rev: str,
    start: float,
    end: float | None = None,
    user: str = "",
    message: str | None = None,
) -> dict[str, Any]:
    return argo.operation_state(
        phase,
        rev,
        started_at=_argo_time(start),
        finished_at=None if end is None else _argo_time(end),
        username=user,
        automated=not user,
        message=message,
    )


IN_CLUSTER = {"server": "https://kubernetes.default.svc", "namespace": "shop"}
"""The demo's Applications deploy into the cluster Argo CD runs in, namespace shop."""

PROGRESS_DEADLINE = (
    "Deployment",
    "shop",
    "payments",
    "Degraded",
    'Deployment "payments" exceeded its progress deadline',
)


def _argo(name: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("destination", IN_CLUSTER)
    app = argo.argocd_app(name, **kwargs)
    app["metadata"]["namespace"] = "argocd"
    app["metadata"]["labels"] = {"team": "shop", "env": "prod"}
    app["spec"]["project"] = "shop"
    app["spec"]["source"]["repoURL"] = "https://github.com/example/shop-deploy.git"
    return app


def demo_stream() -> Stream:
    """A morning on two clusters: drift, a failed deploy, rollbacks, and their recoveries."""
    s = Stream()
    base_hist = _history((1, REV_OLD, -120, ""), (2, REV_A, -60, ""))
    deployed = _op("Succeeded", REV_A, -61, -60)

    # prod, Argo CD: checkout, payments, catalog start healthy at REV_A.
    for name in ("checkout", "payments", "catalog"):
        s.add(
            0, "prod", _argo(name, history=base_hist, operation=deployed, auto_sync=False), "ADDED"
        )

    # checkout: someone edits the live Deployment by hand; it stays different for 15 min.
    drifted = _argo(
        "checkout",
        sync="OutOfSync",
        history=base_hist,
        operation=deployed,
        auto_sync=False,
        out_of_sync=[("Deployment", "shop", "checkout")],
        reconciled_at=_argo_time(5),
    )
    s.add(5, "prod", drifted)
    s.add(
        20,
        "prod",
        _argo(
            "checkout",
            history=base_hist,
            operation=_op("Succeeded", REV_A, 19.5, 20, user="bob@example.com"),
            auto_sync=False,
            reconciled_at=_argo_time(20),
        ),
    )

    # payments: REV_B goes out, turns Degraded, and alice rolls back to REV_A.
    hist_b = [*base_hist, *_history((3, REV_B, 8, "carol@example.com"))]
    s.add(
        7.5,
        "prod",
        _argo(
            "payments",
            sync="OutOfSync",
            desired=REV_B,
            history=base_hist,
            operation=_op("Running", REV_B, 7.5, user="carol@example.com"),
            auto_sync=False,
        ),
    )
    s.add(
        8,
        "prod",
        _argo(
            "payments",
            desired=REV_B,
            history=hist_b,
            health="Healthy",
            operation=_op("Succeeded", REV_B, 7.5, 8, user="carol@example.com"),
            auto_sync=False,
        ),
    )
    s.add(
        10,
        "prod",
        _argo(
            "payments",
            desired=REV_B,
            history=hist_b,
            health="Degraded",
            unhealthy=[PROGRESS_DEADLINE],
            operation=_op("Succeeded", REV_B, 7.5, 8, user="carol@example.com"),
            auto_sync=False,
            reconciled_at=_argo_time(10),
        ),
    )
    hist_rb = [*hist_b, *_history((4, REV_A, 16, "alice@example.com"))]
    s.add(
        16,
        "prod",
        _argo(
            "payments",
            sync="OutOfSync",
            desired=REV_B,
            history=hist_rb,
            health="Healthy",
            operation=_op("Succeeded", REV_A, 15.5, 16, user="alice@example.com"),
            auto_sync=False,
            out_of_sync=[("Deployment", "shop", "payments")],
        ),
    )

    # catalog: a sync to REV_B fails, then a fixed sync succeeds.
    s.add(
        30,
        "prod",
        _argo(
            "catalog",
            sync="OutOfSync",
            desired=REV_B,
            history=base_hist,
            operation=_op(
                "Failed",
                REV_B,
                29.5,
                30,
                user="carol@example.com",
                message="one or more objects failed to apply, reason: "
                'Deployment.apps "catalog" is invalid: spec.template'
                ".spec.containers[0].image: Required value",
            ),
            auto_sync=False,
        ),
    )
    s.add(
        42,
        "prod",
        _argo(
            "catalog",
            desired=REV_B,
            history=[*base_hist, *_history((3, REV_B, 42, "carol@example.com"))],
            operation=_op("Succeeded", REV_B, 41.5, 42, user="carol@example.com"),
            auto_sync=False,
        ),
    )

    # staging, Flux: the apps Kustomization fails to build, then a fix lands.
    s.add(0, "staging", flux.kustomization("apps", applied=FLUX_REV1), "ADDED")
    s.add(
        12,
        "staging",
        flux.kustomization(
            "apps",
            ready="False",
            reason="BuildFailed",
            applied=FLUX_REV1,
            attempted=FLUX_REV2,
            message="kustomize build failed: accumulating resources: 'apps/checkout' not found",
        ),
    )
    s.add(33, "staging", flux.kustomization("apps", applied=FLUX_REV2, attempted=FLUX_REV2))

    # staging, Flux: podinfo's upgrade to 6.6.1 fails and helm-controller rolls back to 6.6.0.
    v1 = flux.helm_snapshot(1, "6.6.0+cdd538a0167e", minutes=-120)
    s.add(0, "staging", flux.helmrelease("podinfo", history=[v1]), "ADDED")
    v2_failed = flux.helm_snapshot(2, "6.6.1+0cc9a8446c95", status="failed", minutes=-18)
    s.add(
        22,
        "staging",
        flux.helmrelease(
            "podinfo",
            ready="False",
            reason="UpgradeFailed",
            attempted="6.6.1+0cc9a8446c95",
            message="Helm upgrade failed for release podinfo/podinfo with chart "
            "podinfo@6.6.1+0cc9a8446c95: context deadline exceeded",
            history=[v2_failed, v1],
        ),
    )
    rollback = (
        "Helm rollback to previous release podinfo/podinfo.v1 with chart "
        "podinfo@6.6.0+cdd538a0167e succeeded"
    )
    v3 = flux.helm_snapshot(3, "6.6.0+cdd538a0167e", minutes=-17)
    v2_superseded = dict(v2_failed, status="superseded")
    s.add(
        23,
        "staging",
        flux.helmrelease(
            "podinfo",
            ready="True",
            reason="RollbackSucceeded",
            message=rollback,
            attempted="6.6.1+0cc9a8446c95",
            history=[v3, v2_superseded, v1],
            remediated=("True", "RollbackSucceeded", rollback),
        ),
    )
    s.add(
        23,
        "staging",
        flux.flux_event(
            "HelmRelease",
            "podinfo",
            "podinfo",
            reason="RollbackSucceeded",
            revision="6.6.0",
            message=rollback,
            minutes=-17,
        ),
    )

    # staging, Flux: redis's StatefulSet is changed by hand; helm-controller corrects it.
    redis_hist = [flux.helm_snapshot(3, "18.1.2", minutes=-300)]
    s.add(
        0, "staging", flux.helmrelease("redis", "data", chart="redis", history=redis_hist), "ADDED"
    )
    s.add(
        25,
        "staging",
        flux.flux_event(
            "HelmRelease",
            "redis",
            "data",
            reason="DriftDetected",
            warning=True,
            revision="18.1.2",
            message="Cluster state of release data/redis.v3 has drifted from the desired state:\n"
            "StatefulSet/data/redis-master changed (0 additions, 1 changes, 0 removals)",
            minutes=-15,
        ),
    )
    s.add(
        38,
        "staging",
        flux.flux_event(
            "HelmRelease",
            "redis",
            "data",
            reason="DriftCorrected",
            revision="18.1.2",
            message="Cluster state of release data/redis.v3 has been corrected:\n"
            "StatefulSet/data/redis-master changed (0 additions, 1 changes, 0 removals)",
            minutes=-2,
        ),
    )

    # staging: a 20-second blip on the Git source that heals within the grace: nobody is told.
    s.add(0, "staging", flux.gitrepository(revision=FLUX_REV1), "ADDED")
    s.add(
        44,
        "staging",
        flux.gitrepository(
            ready="False",
            reason="GitOperationFailed",
            message="failed to checkout and determine revision: unable to clone: connection reset",
            revision=FLUX_REV1,
        ),
    )
    s.add(44.33, "staging", flux.gitrepository(revision=FLUX_REV2))
    return s


def demo_lines() -> list[bytes]:
    return demo_stream().render()


def main() -> None:
    out = sys.stdout.buffer
    for line in demo_lines():
        out.write(line + b"\n")


if __name__ == "__main__":
    main()
