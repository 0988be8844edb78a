"""`driftbot import flux-alerts`, the pure part: Alerts and Providers as Flux's v1beta3 docs
write them become routes that send what the Alert forwarded, where its Provider sent it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from config.importers.flux import import_flux
from config.loader import check_config
from tests.config.import_support import FLUX, checked, objects, receivers_for


def flux(namespace: str, object_kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "tool": "flux",
        "namespace": namespace,
        "object_kind": object_kind,
        "labels": {},
        **fields,
    }


def test_the_staging_alerts_send_each_event_source_where_its_provider_sent_it() -> None:
    draft = import_flux(objects(FLUX / "alerts-staging.yaml"), cluster="staging")
    text, config = checked(draft)
    at = {"cluster": "staging"}
    kustomization = flux("flux-system", "Kustomization", **at)
    # Alert failures (eventSeverity error): Kustomizations of flux-system, HelmReleases of podinfo.
    assert receivers_for(config, "apps", "deploy_failed", **kustomization) == {"slack-flux-alerts"}
    assert receivers_for(config, "apps", "health_degraded", **kustomization) == {
        "slack-flux-alerts"
    }
    assert receivers_for(config, "apps", "deploy_succeeded", **kustomization) == set()
    podinfo = flux("podinfo", "HelmRelease", **at)
    assert receivers_for(config, "podinfo", "rollback_failed", **podinfo) == {"slack-flux-alerts"}
    assert receivers_for(config, "podinfo", "rollback_succeeded", **podinfo) == set()
    other_ns = flux("apps", "HelmRelease", **at)
    assert receivers_for(config, "podinfo", "deploy_failed", **other_ns) == set()
    # Alert redis (info): every event of HelmRelease data/redis, to the Teams Provider.
    data = flux("data", "HelmRelease", **at)
    for kind in ("drift_detected", "drift_resolved", "deploy_succeeded", "deploy_started"):
        assert receivers_for(config, "redis", kind, **data) == {"teams-data-team"}
    assert receivers_for(config, "cache", "drift_detected", **data) == set()
    # Alert sources (error): GitRepositories of flux-system, with an exclusionList driftbot lacks.
    git = flux("flux-system", "GitRepository", **at)
    assert receivers_for(config, "flux-system", "source_failed", **git) == {"teams-data-team"}
    assert (
        receivers_for(config, "apps", "deploy_failed", **flux("flux-system", "GitRepository", **at))
        == set()
    )
    # The other cluster is not this one's.
    assert (
        receivers_for(config, "apps", "deploy_failed", **{**kustomization, "cluster": "prod"})
        == set()
    )
    teams = config.receiver("teams-data-team")
    assert teams is not None and teams.teams is not None
    assert teams.teams.webhook_env == "TEAMS_DATA_TEAM_WEBHOOK"
    assert "the address key of Secret data-team-webhook" in text
    assert "exclusionList ['waiting.*socket']: Flux sends no event whose message matches" in text
    assert (
        "eventMetadata summary='Cache for the shop': driftbot messages carry no extra metadata"
        in text
    )


def test_the_docs_examples_import_and_what_is_left_is_said() -> None:
    draft = import_flux(objects(FLUX / "alerts-docs-v1beta3.yaml"))
    text, config = checked(draft)
    assert list(config.receivers) == [config.receiver("slack-general")]
    for ns, kind in (
        ("flux-system", "GitRepository"),
        ("flux-system", "Kustomization"),
        ("flagger-system", "HelmRepository"),
        ("flagger-system", "HelmRelease"),
    ):
        error = "source_failed" if kind.endswith("Repository") else "deploy_failed"
        assert receivers_for(config, "x", error, **flux(ns, kind)) == {"slack-general"}, kind
    for said in (
        "Secret default/msteams-webhook: not a Flux Alert or Provider; ignored",
        "Provider default/msteams: no Alert uses it; not imported",
        "Provider default/my-webhook-mtls: no Alert uses it; not imported",
        "Alert flagger-system/slack summary 'Flagger impacted in us-east-2': driftbot messages "
        "carry no summary line",
        "Alert flux-system/slack eventMetadata region='us-east-2'",
    ):
        assert said in text, said
    assert "prod-xxx.yyy.logic.azure.com" not in text


def _provider(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


def _alert(name: str, provider: str, *sources: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"providerRef": {"name": provider}, "eventSources": list(sources), **spec},
    }


def test_generic_providers_feed_driftbot_or_are_said_to_have_no_equivalent() -> None:
    everything = {"kind": "Kustomization", "name": "*"}
    labelled = {"kind": "HelmRelease", "name": "web", "matchLabels": {"team": "web"}}
    draft = import_flux(
        [
            _provider(
                "driftbot",
                type="generic-hmac",
                address="http://driftbot.driftbot:8080/webhooks/flux",
                secretRef={"name": "driftbot-token"},
            ),
            _provider(
                "jenkins", type="generic", address="https://ci.example.com/hook?token=s3cret"
            ),
            _provider("slack", type="slack", channel="ops"),
            _alert("to-driftbot", "driftbot", everything),
            _alert("to-jenkins", "jenkins", everything),
            _alert("to-slack", "slack", everything, {"kind": "ImagePolicy", "name": "*"}, labelled),
        ]
    )
    text, config = checked(draft)
    assert config.server.flux_webhook_token_env == "FLUX_WEBHOOK_TOKEN"
    assert not config.server.flux_webhook_accept_unsigned
    assert "$FLUX_WEBHOOK_TOKEN holds the token key of Secret driftbot-token" in text
    assert "posts to driftbot's /webhooks/flux, its input; keep it" in text
    assert "posts Flux's event JSON to https://ci.example.com; driftbot posts to Slack" in text
    assert "s3cret" not in text
    assert "eventSources[1]: kind ImagePolicy: driftbot watches only Kustomization" in text
    web = flux("flux-system", "HelmRelease", labels={"team": "web"})
    assert receivers_for(config, "web", "deploy_started", **web) == {"slack-ops"}
    assert receivers_for(config, "web", "deploy_started", **{**web, "labels": {}}) == set()
    assert "events that reach it only through /webhooks/flux carry no labels" in text


def test_providers_feeding_driftbot_name_their_cluster_and_token() -> None:
    everything = {"kind": "Kustomization", "name": "*"}
    secret = {"name": "driftbot-token"}
    hook = "http://driftbot.driftbot:8080/webhooks/flux"
    draft = import_flux(
        [
            _provider(
                "signed", type="generic-hmac", address=f"{hook}?cluster=edge-1", secretRef=secret
            ),
            _provider("plain", type="generic", address=hook),
            _provider("slack", type="slack", channel="ops"),
            _alert("signed", "signed", everything),
            _alert("plain", "plain", everything),
            _alert("to-slack", "slack", everything),
        ],
        cluster="staging",
    )
    text, config = checked(draft)
    clusters = [(c.name, c.token_env) for c in config.server.flux_webhook_clusters]
    assert clusters == [("edge-1", "FLUX_EDGE_1_TOKEN"), ("staging", None)]
    assert config.server.flux_webhook_accept_unsigned
    assert config.server.flux_webhook_token_env is None
    assert "$FLUX_EDGE_1_TOKEN holds the token key of Secret driftbot-token" in text
    assert "type generic sends unsigned events (generic-hmac with a token is safer)" in text


def test_providers_driftbot_cannot_use_and_suspended_alerts_are_notes() -> None:
    source = {"kind": "Kustomization", "name": "*"}
    draft = import_flux(
        [
            _provider("legacy", type="slack", secretRef={"name": "slack-webhook"}),
            _provider("discord", type="discord", channel="x"),
            _provider("paused", type="slack", channel="ops"),
            _alert("a", "legacy", source),
            _alert("b", "discord", source),
            _alert("c", "paused", source, suspend=True),
            _alert("d", "missing", source),
        ]
    )
    assert draft.routes == []
    notes = "\n".join(draft.notes)
    assert "no channel (a Slack incoming webhook in Secret slack-webhook picks it)" in notes
    assert "type discord: driftbot sends only to Slack and Microsoft Teams" in notes
    assert "Alert flux-system/c is suspended: Flux sends nothing" in notes
    assert "its Provider flux-system/missing is not among the objects given" in notes


_scalar = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_source = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["Kustomization", "HelmRelease", "GitRepository", "ImagePolicy"])
        | _scalar,
        "name": st.sampled_from(["*", "web"]) | _scalar,
        "namespace": _scalar,
        "matchLabels": st.dictionaries(st.text(max_size=5), _scalar, max_size=2) | _scalar,
    },
)
_spec = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["slack", "msteams", "generic", "generic-hmac", "discord"])
        | _scalar,
        "channel": _scalar,
        "address": st.sampled_from(
            [
                "http://d/webhooks/flux",
                "http://d/webhooks/flux?cluster=a%20b",
                "https://x.example.com/h",
            ]
        )
        | _scalar,
        "secretRef": st.fixed_dictionaries({"name": _scalar}) | _scalar,
        "providerRef": st.fixed_dictionaries({"name": st.sampled_from(["p", "q"])}) | _scalar,
        "eventSeverity": st.sampled_from(["info", "error"]) | _scalar,
        "eventSources": st.lists(_source, max_size=3) | _scalar,
        "eventMetadata": st.dictionaries(st.text(max_size=5), _scalar, max_size=2) | _scalar,
        "exclusionList": st.lists(st.text(max_size=5), max_size=2) | _scalar,
        "suspend": st.booleans() | _scalar,
    },
)


@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from(["Alert", "Provider", "Secret"]), st.sampled_from(["p", "q"]), _spec
        ),
        max_size=5,
    )
)
def test_any_alerts_and_providers_give_a_config_that_loads(
    specs: list[tuple[str, str, dict[str, Any]]],
) -> None:
    objs = [
        {
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
            "kind": kind,
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": spec,
        }
        for kind, name, spec in specs
    ]
    draft = import_flux(objs)
    if draft.routes:
        check_config(draft.render(), "imported.yaml")
