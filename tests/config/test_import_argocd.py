"""`driftbot import argocd-notifications`, the pure part: Argo CD's catalog, its docs' ConfigMap
and subscriptions as the docs write them become routes that send what Argo CD sent, where it
sent it; everything else is a comment."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from config.importers.argocd import import_argocd
from config.importers.argocd_triggers import CATALOG_TRIGGERS, map_conditions
from config.importers.objects import ImportInputError, parse_objects
from config.importers.selectors import selector_variants
from config.loader import check_config
from core.model import EventKind as K
from tests.config.import_support import (
    ARGOCD,
    catalog_with,
    checked,
    objects,
    receivers_for,
    shop_configmap,
)

SHOP = {
    "namespace": "argocd",
    "tool": "argocd",
    "project": "shop",
    "labels": {"env": "prod", "team": "shop"},
}


def test_every_trigger_of_the_catalog_maps_to_driftbot_kinds_or_says_why_not() -> None:
    (cm,) = objects(ARGOCD / "notifications-catalog-install.yaml")

    expected = {
        "on-created": (),
        "on-deleted": (K.DELETED,),
        "on-deployed": (K.DEPLOY_SUCCEEDED, K.ROLLBACK_SUCCEEDED),
        "on-health-degraded": (K.HEALTH_DEGRADED,),
        "on-sync-failed": (K.DEPLOY_FAILED, K.ROLLBACK_FAILED),
        "on-sync-running": (K.DEPLOY_STARTED,),
        "on-sync-status-unknown": (K.SOURCE_FAILED,),
        "on-sync-succeeded": (K.DEPLOY_SUCCEEDED, K.ROLLBACK_SUCCEEDED),
    }
    triggers = {k[len("trigger.") :]: v for k, v in cm["data"].items() if k.startswith("trigger.")}
    assert set(triggers) == set(expected) == set(CATALOG_TRIGGERS)
    for name, text in triggers.items():
        mapping = map_conditions(yaml.safe_load(text))
        assert mapping.kinds == expected[name], name
        assert bool(mapping.unmapped) == (name == "on-created"), name
        # The catalog's own condition is what the importer assumes for an undefined trigger.
        assert map_conditions([{"when": CATALOG_TRIGGERS[name]}]).kinds == expected[name]


def test_the_shop_setup_sends_every_subscription_where_argo_cd_sent_it() -> None:
    apps = objects(ARGOCD / "applications-shop.yaml")
    _, config = checked(import_argocd(shop_configmap(), apps, cluster="prod"))
    cases = [
        # (app, kind, receivers): the subscriptions of applications-shop.yaml, by trigger
        ("payments", "health_degraded", {"slack-shop-alerts"}),  # on-health-degraded
        ("payments", "deploy_failed", {"slack-shop-alerts", "slack-oncall"}),  # on-sync-failed
        ("payments", "rollback_failed", {"slack-shop-alerts", "slack-oncall"}),
        ("payments", "deploy_started", {"slack-shop-deploys"}),  # the AppProject's on-sync-running
        ("payments", "deploy_succeeded", {"slack-prod-deploys"}),  # default on-deployed, env=prod
        ("checkout", "source_failed", {"slack-shop-alerts"}),  # on-sync-status-unknown
        ("checkout", "drift_detected", set()),  # no trigger of the catalog sees drift
        ("catalog", "deploy_failed", {"slack-catalog-team", "teams-pm"}),  # subscriptions YAML
        ("catalog", "deploy_succeeded", {"slack-catalog-team", "teams-pm", "slack-prod-deploys"}),
        ("catalog", "health_degraded", set()),
    ]
    for app, kind, expected in cases:
        assert receivers_for(config, app, kind, **SHOP) == expected, (app, kind)
    # Another cluster, another project, an app without env=prod: none of it applies.
    assert (
        receivers_for(config, "payments", "deploy_failed", **{**SHOP, "cluster": "staging"})
        == set()
    )
    other = {**SHOP, "project": "other", "labels": {"env": "dev"}}
    assert receivers_for(config, "web", "deploy_succeeded", **other) == set()
    assert receivers_for(config, "web", "deploy_started", **other) == set()
    teams = config.receiver("teams-pm")
    assert teams is not None and teams.teams is not None
    assert teams.teams.webhook_env == "TEAMS_PM_WEBHOOK"


def test_what_has_no_equivalent_is_listed_not_dropped() -> None:
    apps = objects(ARGOCD / "applications-shop.yaml")
    text, _ = checked(import_argocd(shop_configmap(), apps))
    for said in (
        "trigger.on-deployed oncePer app.status.operationState?.syncResult?.revision: not needed",
        "trigger.on-created: no subscription uses it",
        "templates of the catalog (app-created, app-deleted, app-deployed,",
        "service.slack token: driftbot posts with its own Slack app: SLACK_BOT_TOKEN "
        "(argocd-notifications-secret key slack-token)",
        "context argocdUrl https://argocd.example.com: set clusters[].argocd_url to it",
        "argocd-notifications-secret key pm-workflows-url",
    ):
        assert said in text, said
    assert "$slack-token" not in text.replace("key slack-token", "")


def test_the_docs_configmap_imports_what_driftbot_can_send_and_lists_the_rest() -> None:
    (cm,) = objects(ARGOCD / "notifications-cm-docs.yaml")
    draft = import_argocd(cm, [])
    text, config = checked(draft)
    # subscriptions: slack:test2 for every app, slack:test3 for apps labelled test=true.
    assert receivers_for(
        config, "a", "source_failed", tool="argocd", namespace="argocd", labels={}
    ) == {"slack-test2"}
    labelled = {"tool": "argocd", "namespace": "argocd", "labels": {"test": "true"}}
    assert receivers_for(config, "a", "source_failed", **labelled) == {"slack-test2", "slack-test3"}
    for said in (
        "recipient 'email:test@gmail.com': service.email is of type email: driftbot sends only to "
        "Slack and Microsoft Teams; not imported",
        "service.opsgenie: could not be read as YAML",
        "service.slack.mattermost: posts to a Slack-compatible server at "
        "https://my-mattermost-url.com/api (Mattermost for example); driftbot posts only to Slack",
        "template.my-custom-template: custom text, not imported",
        "service.telegram: settings token not imported",
        "trigger.on-deployed: no subscription uses it",
        "service.slack: settings icon, username not imported",
    ):
        assert said in text, said


def _cm(**data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-notifications-cm"},
        "data": data,
    }


def _app(name: str, annotations: dict[str, str], **meta: object) -> dict[str, object]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "annotations": annotations, **meta},
        "spec": {"project": "default"},
    }


def test_default_triggers_serve_subscriptions_that_name_no_trigger() -> None:
    cm = catalog_with(ARGOCD / "notifications-cm-shop-patch.yaml")
    cm["data"] = {
        **cm["data"],
        "defaultTriggers": "- on-sync-status-unknown\n",
        "defaultTriggers.slack": "- on-sync-running\n- on-sync-succeeded\n",
    }
    apps = [
        _app("web", {"notifications.argoproj.io/subscribe.slack": "web"}),
        _app("api", {"notifications.argoproj.io/subscribe.teams-workflows": "pm"}),
    ]
    _, config = checked(import_argocd(cm, apps))
    web = {"tool": "argocd", "namespace": "argocd", "project": "default", "labels": {}}
    assert receivers_for(config, "web", "deploy_started", **web) == {"slack-web"}
    assert receivers_for(config, "web", "deploy_succeeded", **web) == {"slack-web"}
    assert receivers_for(config, "web", "source_failed", **web) == set()
    assert receivers_for(config, "api", "source_failed", **web) == {"teams-pm"}


def test_a_subscription_without_any_trigger_is_a_note() -> None:
    draft = import_argocd(
        _cm(**{"service.slack": "token: $t\n"}),
        [_app("web", {"notifications.argoproj.io/subscribe.slack": "web"})],
    )
    assert draft.routes == []
    assert any(
        "names no trigger and the ConfigMap has no defaultTriggers" in n for n in draft.notes
    )


def test_conditions_driftbot_cannot_express_are_notes_and_mentions_in_templates_carry_over() -> (
    None
):
    cm = _cm(
        **{
            "service.slack": "token: $slack-token\n",
            "trigger.slow-sync": (
                "- when: time.Now().Sub(time.Parse(app.status.operationState.startedAt))"
                ".Minutes() >= 5\n  send: [slow]\n"
            ),
            "trigger.sync-operation-change": (
                "- when: app.status?.operationState.phase in ['Succeeded']\n  send: [plain]\n"
                "- when: app.status?.operationState.phase in ['Error', 'Failed']\n  send: [page]\n"
                "- when: app.metadata.labels.tier == 'gold'\n  send: [plain]\n"
            ),
            "template.page": (
                "message: |\n  <!subteam^S0123SRE|sre-oncall> <!here> {{.app.metadata.name}} "
                "failed\n"
            ),
            "template.plain": "message: '{{.app.metadata.name}} synced'\n",
        }
    )
    apps = [
        _app(
            "web",
            {
                "notifications.argoproj.io/subscribe.slow-sync.slack": "web",
                "notifications.argoproj.io/subscribe.sync-operation-change.slack": "web;#ops",
            },
        )
    ]
    draft = import_argocd(cm, apps)
    text, config = checked(draft)
    (route,) = draft.routes
    assert route.match["kinds"] == [
        "deploy_succeeded",
        "rollback_succeeded",
        "deploy_failed",
        "rollback_failed",
    ]
    assert route.mention == ("S0123SRE", "@here")
    assert route.receivers == ("slack-web", "slack-ops")
    assert config.receiver("slack-ops").slack.channel == "#ops"  # type: ignore[union-attr]
    assert "trigger slow-sync: condition `time.Now().Sub(" in text and "not imported" in text
    assert (
        "trigger sync-operation-change: condition `app.metadata.labels.tier == 'gold'` has no "
        "driftbot equivalent; that part is not imported" in text
    )
    assert "template.page: custom text, not imported" in text


def test_unsupported_services_and_undefined_triggers_are_notes() -> None:
    cm = _cm(
        **{
            "service.webhook.github": "url: https://api.github.com\n",
            "service.teams": "recipientUrls:\n  ops: $ops-url\n",
        }
    )
    apps = [
        _app(
            "web",
            {
                "notifications.argoproj.io/subscribe.on-sync-succeeded.github": "",
                "notifications.argoproj.io/subscribe.on-rollout-aborted.slack": "web",
                "notifications.argoproj.io/subscribe.on-sync-failed.teams": "ops",
                "notifications.argoproj.io/subscribe.on-sync-failed.slack": "web",
            },
        ),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}},
    ]
    draft = import_argocd(cm, apps)
    text, config = checked(draft)
    assert "service.webhook.github is of type webhook: driftbot sends only to Slack" in text
    assert "trigger on-rollout-aborted is not defined; not imported" in text
    assert "Service x: not an Application or AppProject; ignored" in text
    assert "an Office 365 connector URL, retired: make a Workflows webhook instead" in text
    # on-sync-failed is not in this ConfigMap: read as the catalog has it, and said so.
    assert (
        "trigger on-sync-failed is not defined in ConfigMap argocd-notifications-cm: read as "
        "Argo CD's catalog defines it" in text
    )
    assert (
        "service slack (not defined in ConfigMap argocd-notifications-cm: taken as its type)"
        in text
    )
    app = {"tool": "argocd", "namespace": "argocd", "project": "default", "labels": {}}
    assert receivers_for(config, "web", "deploy_failed", **app) == {"teams-ops", "slack-web"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", [{}]),
        ("env=prod", [{"env": "prod"}]),
        ("env==prod, team", [{"env": "prod", "team": "*"}]),
        (
            "env in (prod, staging),tier=web",
            [{"env": "prod", "tier": "web"}, {"env": "staging", "tier": "web"}],
        ),
        ("env!=prod", "`env!=prod` says what must not be set, which labels cannot express"),
        (
            "env notin (dev)",
            "`env notin (dev)` says what must not be set, which labels cannot express",
        ),
        ("!canary", "`!canary` says what must not be set, which labels cannot express"),
    ],
)
def test_label_selectors(selector: str, expected: object) -> None:
    assert selector_variants(selector) == expected


def test_a_selector_labels_cannot_express_leaves_its_subscription_as_a_note() -> None:
    cm = shop_configmap()
    cm["data"] = {
        **cm["data"],
        "subscriptions": (
            "- recipients: [slack:canary]\n  selector: track!=canary\n"
            "  triggers: [on-sync-failed]\n"
        ),
    }
    draft = import_argocd(cm, [])
    assert draft.routes == []
    assert any(
        "selector 'track!=canary': `track!=canary` says what must not be set" in n
        for n in draft.notes
    )


def test_objects_come_from_yaml_streams_json_and_lists_and_bad_input_says_where() -> None:
    text = (
        '---\n{"kind": "List", "items": [{"kind": "Application"}, {"kind": "AppProject"}]}\n'
        "---\n---\n- kind: Alert\n"
    )
    assert [o["kind"] for o in parse_objects(text, "f.yaml")] == [
        "Application",
        "AppProject",
        "Alert",
    ]
    with pytest.raises(ImportInputError, match=r"f.yaml:2: not YAML or JSON"):
        parse_objects("kind: A\n  b: [\n", "f.yaml")
    with pytest.raises(
        ImportInputError, match=r"f.yaml \(document 1\), item 0: an object without `kind`"
    ):
        parse_objects("- {a: 1}\n", "f.yaml")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(
    [
        "trigger.t",
        "template.t",
        "service.slack",
        "service.teams",
        "service.slack.x",
        "service.webhook.w",
        "subscriptions",
        "defaultTriggers",
        "defaultTriggers.slack",
        "context",
        "other",
    ]
)
_values = st.one_of(
    st.text(max_size=30),
    _json.map(lambda v: yaml.safe_dump(v)),
    st.sampled_from(
        [
            "- when: app.status.health.status == 'Degraded'\n  send: [t]\n",
            "recipientUrls: {a: $b}\n",
            "- recipients: [slack:c, 'teams:a']\n  selector: 'a in (b,c)'\n",
            "token: $t\n",
            "- on-sync-failed\n",
        ]
    ),
)
_annotations = st.dictionaries(
    st.sampled_from(
        [
            "notifications.argoproj.io/subscribe.on-sync-failed.slack",
            "notifications.argoproj.io/subscribe.t.teams",
            "notifications.argoproj.io/subscribe.slack",
            "notifications.argoproj.io/subscriptions",
            "notifications.argoproj.io/subscribe.",
            "recipients.argocd-notifications.argoproj.io",
        ]
    ),
    st.text(max_size=20) | _json.map(lambda v: yaml.safe_dump(v)),
    max_size=4,
)


@given(
    data=st.dictionaries(_keys, _values, max_size=8),
    annotations=st.lists(_annotations, max_size=3),
    name=st.text(max_size=10),
)
def test_any_configmap_and_annotations_give_a_config_that_loads(
    data: dict[str, str], annotations: list[dict[str, str]], name: str
) -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "argocd-notifications-cm"}, "data": data}
    apps = [_app(name or "a", a) for a in annotations] + [
        {"kind": "AppProject", "metadata": {"name": name}, "spec": None}
    ]
    draft = import_argocd(cm, apps, cluster=name or None)
    if draft.routes:
        check_config(draft.render(), "imported.yaml")
