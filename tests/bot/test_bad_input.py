"""Bad input, end to end: what a cluster, Git or a stranger can send reaches chat harmless, and
nothing behind it is lost.

The pure stages have their own property tests (any JSON into the normalizers, any event into
the renderers, any command text into the parser: tests/watchers, tests/formatters,
tests/bot/test_commands.py). Here the same inputs go through the running parts: the pipeline
to the fake Slack and the fake Teams webhook over HTTP, the watch of the fake API server, the
Flux webhook's HTTP endpoint, and the signed slash-command endpoint of the Bolt app.

- mentions and links in app names, commit subjects and controller messages never ping or link
  in Slack (`<!channel>`, `<!here>`, `<@U…>`, `<!subteam^…>`, `<https://evil|click>`), and
  Teams markdown (`[x](javascript:…)`, `**bold**`, `<at>`) is shown, not rendered;
- control characters, bidi overrides and lone surrogates never reach a message;
- a 5 MB object and JSON nested 100,000 deep neither stop the watch nor lose the next change;
- objects with fields of the wrong type are refused with a reason, never an exception;
- any body at /webhooks/flux gets 202 or a 4xx with a JSON error, never a 500;
- any slash-command text is acknowledged and answered, without a ping.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app.replay import build_receivers
from bot.delivery.teams_receiver import TeamsOptions
from bot.inbound.flux import FLUX_WEBHOOK_PATH, FluxAuth, FluxWebhook
from bot.pipeline.outcome import Outcome
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from tests.bot.service_world import VirtualClock, make_config, until, watching_service
from tests.bot.test_slack_app import OPERATOR, Harness, harness, text_of
from tests.bot.test_slack_receiver import slack_options
from tests.builders_argocd import argocd_app
from tests.builders_flux import REV2, T0, flux_event, kustomization, notification
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.fakes.slack_api import VirtualClock as SlackClock
from tests.fakes.teams_webhook import FakeTeamsWebhook
from tests.world import Obj, World, argocd_full_states, fakes, kubeconfigs

__all__ = ["harness"]  # the slash-command harness, a fixture of test_slack_app

PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<!subteam^S0SRE>")
HOSTILE = (
    "<!channel> <!here> <!everyone> <@U0BOSS> <!subteam^S0SRE> <https://evil.example|click> "
    "*bold* _it_ ~gone~ `code` [x](javascript:alert(1)) **strong** <at>Boss</at> & done"
)
CONTROL = "a\x00b\x07c\x1b[31mred\x1b[0m\u202eevil\u2066d\u2028e\x7f\x85fg 🚀 ünïcödé"
"""Lone surrogates are not here: every entry parses JSON with orjson, which refuses them (the
watch test below sends one); the renderers' own property tests cover them."""
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


# --- mentions, links, markdown and control characters, to Slack and to Teams --------------------


def chat_config() -> Config:
    return Config.model_validate(
        {
            "receivers": [
                {"name": "oncall", "slack": {"channel": "C0ALERTS"}},
                {"name": "pm", "teams": {"webhook_env": "TEAMS_HOOK"}},
            ],
            "routes": [{"receivers": ["oncall", "pm"]}],
            "policy": {"grace": "0s", "group_wait": "0s", "flap": {"flips": 0}},
            "slack": {"api_url": "http://unused.invalid/api/"},
        }
    )


async def run_through_chat(
    tmp_path: Path, inputs: list[tuple[str, dict[str, Any]]]
) -> tuple[FakeSlackApi, FakeTeamsWebhook, list[str]]:
    """Observe (watch type, raw object) pairs, a minute apart, in a pipeline whose receivers
    are the fake Slack and the fake Teams webhook; returns the fakes and the outcomes."""
    clock = SlackClock(start=1000.0)
    outcomes: list[str] = []
    async with FakeSlackApi(clock=clock) as slack, FakeTeamsWebhook(clock=clock) as teams:
        config = chat_config().model_copy(
            update={"slack": chat_config().slack.model_copy(update={"api_url": slack.url})}
        )
        store = await Store.open(tmp_path / "state.sqlite")
        try:
            receivers = build_receivers(
                config,
                None,
                store=store,
                environ={"SLACK_BOT_TOKEN": VALID_TOKEN, "TEAMS_HOOK": teams.url},
                slack=slack_options(clock),
                teams=TeamsOptions(
                    clock=slack_options(clock).clock,
                    monotonic=clock,
                    sleep=clock.sleep,
                    close_timeout=60.0,
                ),
            )
            pipeline = Pipeline(store, config, receivers)
            await pipeline.load()
            for minute, (watch_type, obj) in enumerate(inputs):
                at = T0 + timedelta(minutes=minute)
                outcomes.append(str(await pipeline.observe(obj, "prod", watch_type, at)))
            await pipeline.close()
        finally:
            await store.close()
    return slack, teams, outcomes


def rendered(value: Any) -> list[str]:
    """The strings Slack renders in blocks: the text objects (a button's `value`, ids and URLs
    are data, never shown or parsed for mentions)."""
    if isinstance(value, list):
        return [t for v in value for t in rendered(v)]
    if not isinstance(value, dict):
        return []
    texts = [value["text"]] if isinstance(value.get("text"), str) else []
    skip = {"value", "action_id", "block_id", "url"}
    return texts + [t for k, v in value.items() if k not in skip for t in rendered(v)]


def slack_texts(slack: FakeSlackApi) -> list[str]:
    """Everything a person would read, of every message Slack accepted (blocks and the
    notification text)."""
    return [
        "\n".join([*rendered(c.params.get("blocks", [])), c.params.get("text") or ""])
        for c in slack.calls
        if c.method in ("chat.postMessage", "chat.update") and c.ok
    ]


def card_texts(card: Any) -> list[str]:
    """Every string in a card that Teams renders as markdown."""
    if isinstance(card, dict):
        return [t for v in card.values() for t in card_texts(v)]
    if isinstance(card, list):
        return [t for v in card for t in card_texts(v)]
    return [card] if isinstance(card, str) else []


def hostile_inputs() -> list[tuple[str, dict[str, Any]]]:
    """A commit subject (Flux's NewArtifact report), a controller message and an app name,
    each carrying every mention, link and markdown trick at once."""
    artifact = flux_event(
        "GitRepository",
        "flux-system",
        reason="NewArtifact",
        message=f"stored artifact for commit '{HOSTILE}'",
        revision=REV2,
    )
    return [
        ("ADDED", kustomization("apps")),
        ("ADDED", kustomization("web")),
        ("ADDED", argocd_app("checkout")),
        ("ADDED", artifact),
        ("MODIFIED", kustomization("apps", applied=REV2)),  # deployed: the commit's subject
        ("MODIFIED", kustomization("web", ready="False", reason="BuildFailed", message=HOSTILE)),
        ("ADDED", argocd_app(HOSTILE)),
        ("MODIFIED", argocd_app(HOSTILE, health="Degraded")),
        (
            "MODIFIED",
            argocd_app("checkout", health="Degraded", conditions=[("SyncError", CONTROL)]),
        ),
    ]


async def test_mentions_links_and_markdown_from_git_and_clusters_reach_chat_as_text(
    tmp_path: Path,
) -> None:
    slack, teams, outcomes = await run_through_chat(tmp_path, hostile_inputs())
    assert "rejected" not in " ".join(outcomes[:6])

    texts = slack_texts(slack)
    assert len(texts) >= 3, "the deploy, the build failure and the degraded apps were posted"
    for text in texts:
        for ping in PINGS:
            assert ping not in text
        assert "<https://evil" not in text
    shown = "\n".join(texts)
    assert "&lt;!channel&gt;" in shown, "the mention is shown as text, not dropped"
    assert "&lt;https://evil.example|click&gt;" in shown

    cards = teams.accepted
    assert len(cards) == len([c for c in slack.calls_to("chat.postMessage") if c.ok]) - sum(
        1 for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("thread_ts")
    )
    for text in (t for card in cards for t in card_texts(card)):
        assert not re.search(r"(?<!\\)\]\(", text), text  # no markdown link survives
        assert "**strong**" not in text and "<at>" not in text
    assert any("\\[x\\](javascript:alert(1))" in t for c in cards for t in card_texts(c))


async def test_control_characters_and_bidi_overrides_never_reach_a_message(tmp_path: Path) -> None:
    inputs = [
        ("ADDED", kustomization("apps")),
        ("MODIFIED", kustomization("apps", ready="False", reason="BuildFailed", message=CONTROL)),
    ]
    slack, teams, outcomes = await run_through_chat(tmp_path, inputs)
    assert outcomes == ["observed", "observed"]
    texts = slack_texts(slack)
    assert texts and all(not UNSAFE.search(t) for t in texts)
    assert any("🚀 ünïcödé" in t for t in texts), "the rest of the message is kept"
    card_strings = [t for card in teams.accepted for t in card_texts(card)]
    assert teams.accepted and all(not UNSAFE.search(t) for t in card_strings)


# --- wrong types and deep nesting, into the pipeline ----------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


def _wrong(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = kustomization("apps")
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


WRONG_TYPES = [
    pytest.param(_wrong(("metadata",), "not a mapping"), id="metadata a string"),
    pytest.param(_wrong(("metadata", "name"), 42), id="name a number"),
    pytest.param(_wrong(("metadata", "labels"), ["a", "b"]), id="labels a list"),
    pytest.param(_wrong(("status",), "Ready"), id="status a string"),
    pytest.param(_wrong(("status", "conditions"), {"type": "Ready"}), id="conditions a mapping"),
    pytest.param(_wrong(("status", "conditions"), [None, 3, "x"]), id="conditions of junk"),
    pytest.param(_wrong(("spec", "suspend"), "yes"), id="suspend a string"),
    pytest.param(_wrong(("status", "lastAppliedRevision"), {"sha": 1}), id="revision a mapping"),
    pytest.param(_wrong(("status",), _nested(50_000)), id="status nested 50,000 deep"),
    pytest.param(_wrong(("metadata", "labels"), _nested(50_000)), id="labels nested deep"),
    pytest.param({"apiVersion": 3, "kind": ["Kustomization"]}, id="apiVersion and kind wrong"),
]


@pytest.mark.parametrize("obj", WRONG_TYPES)
async def test_an_object_with_fields_of_the_wrong_type_is_refused_or_read_never_raises(
    tmp_path: Path, obj: dict[str, Any]
) -> None:
    out = io.StringIO()
    config = Config.model_validate(
        {
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
            "policy": {"grace": "0s", "group_wait": "0s"},
        }
    )
    async with await Store.open(tmp_path / "s.sqlite") as store:
        pipeline = Pipeline(store, config, build_receivers(config, None, out))
        await pipeline.load()
        await pipeline.observe(kustomization("apps"), "prod", "ADDED", T0)
        taken = await pipeline.observe(obj, "prod", "MODIFIED", T0 + timedelta(minutes=1))
        # Whatever the bad object did, the next good change is still announced.
        failed = kustomization("apps", ready="False", reason="BuildFailed", message="broken")
        after = await pipeline.observe(failed, "prod", "MODIFIED", T0 + timedelta(minutes=2))
        await pipeline.close()
    assert taken.outcome in (Outcome.OBSERVED, Outcome.STALE) or taken.rejected
    if taken.rejected:
        assert len(taken.reason) > 5, "a reason is given"
        assert str(taken) == f"rejected: {taken.reason}"
        assert pipeline.stats["rejected"] == 1
    assert after.outcome is Outcome.OBSERVED
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert "deploy_failed" in kinds


# --- a 5 MB object and a line nested 100,000 deep, on the watch -----------------------------------


def five_mb_application(name: str) -> dict[str, Any]:
    """An Application out of sync in 40,000 resources with long names: over 5 MB of JSON."""
    app = argocd_app(name, sync="OutOfSync", out_of_sync=[("ConfigMap", "default", "cm-0")])
    resources = app["status"]["resources"]
    shape = next(r for r in resources if r.get("name") == "cm-0")
    resources += [{**shape, "name": f"cm-{i:05d}-" + "x" * 90} for i in range(1, 40_000)]
    assert len(orjson.dumps(app)) > 5_000_000
    return app


async def test_a_5_mb_object_and_a_100k_deep_line_neither_stop_the_watch_nor_lose_a_change(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    async with fakes("prod") as apis:
        api = apis["prod"]
        world = World(apis, clock)
        big = Obj("prod", "Application", "big", argocd_full_states)
        small = Obj("prod", "Application", "small", argocd_full_states, step=1)
        world.put(big)
        world.put(small)
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with watching_service(config, tmp_path / "s.sqlite", clock, out) as service:
            apps = next(r for r in service.resources if r.watched.spec.plural == "applications")
            huge = five_mb_application("big")
            clock.advance()
            api.put(huge)
            # A line no JSON parser should recurse into, then a plain change after it.
            api.send_raw(b'{"type":"MODIFIED","object":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
            api.send_raw(b'{"type":"MODIFIED","object":{"kind":"Application","x":"\\ud800"}}\n')
            clock.advance()
            world.change(small)  # degraded (another kind: not grouped with the drift)
            await until(lambda: world.caught_up(service) and "small" in out.getvalue(), 30)
            assert apps.watcher.resource_version is not None
    notes = [json.loads(line) for line in out.getvalue().splitlines()]
    by_name = {n["name"]: n for n in notes}
    assert set(by_name) == {"big", "small"}
    assert by_name["big"]["kind"] == "drift_detected"
    assert len(by_name["big"]["resources"]) <= 100, "the state keeps a bounded list"
    assert len(out.getvalue()) < 200_000
    assert by_name["small"]["kind"] == "health_degraded"


# --- the Flux webhook endpoint, any body ----------------------------------------------------------


@pytest.fixture
async def flux_client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Pipeline]]:
    config = Config.model_validate(
        {
            "clusters": [{"name": "prod"}],
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
        }
    )
    async with await Store.open(tmp_path / "s.sqlite") as store:
        pipeline = Pipeline(store, config, build_receivers(config, None, io.StringIO()))
        await pipeline.load()
        auth = FluxAuth(clusters=("prod",), accept_unsigned=True)
        hook = FluxWebhook(pipeline.notify, auth=auth, clock=lambda: T0)
        app = web.Application()
        app.router.add_post(FLUX_WEBHOOK_PATH, hook.handle)
        async with TestClient(TestServer(app)) as client:
            yield client, pipeline
        await pipeline.close()


def _bodies(rand: random.Random) -> list[bytes]:
    good = orjson.dumps(notification())
    bodies = [
        b"",
        b"null",
        b"[]",
        b'"a string"',
        b"\xff\xfe not utf-8",
        b"\x00" * 64,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        orjson.dumps(notification(message=HOSTILE + CONTROL)),
        b'{"message": "lone \\ud800 surrogate"}',
        orjson.dumps({**notification(), "involvedObject": "not a mapping"}),
        orjson.dumps({**notification(), "metadata": [1, 2, 3], "severity": 7}),
        orjson.dumps({**notification(), "timestamp": "yesterday"}),
        b"x" * (5 * 1024 * 1024),
    ]
    for _ in range(40):
        cut = rand.randrange(len(good))
        mutated = bytearray(good)
        for _ in range(rand.randint(1, 8)):
            mutated[rand.randrange(len(mutated))] = rand.randrange(256)
        bodies += [good[:cut], bytes(mutated)]
    return bodies


async def test_any_body_at_the_flux_webhook_gets_a_clear_answer_never_a_500(
    flux_client: tuple[TestClient[Any, Any], Pipeline],
) -> None:
    client, _ = flux_client
    statuses = []
    for body in _bodies(random.Random(9)):
        response = await client.post(FLUX_WEBHOOK_PATH, data=io.BytesIO(body))
        statuses.append(response.status)
        assert response.status in (202, 400, 413), (response.status, body[:80])
        if response.status != 202:
            answer = await response.json()
            assert isinstance(answer["error"], str) and answer["error"]
    assert statuses.count(413) == 1
    # And it still takes a good one.
    response = await client.post(FLUX_WEBHOOK_PATH, data=orjson.dumps(notification()))
    assert response.status == 202


# --- slash commands, any text ---------------------------------------------------------------------


def _command_texts(rand: random.Random) -> list[str]:
    alphabet = [
        *"abcxyz /:*_~`[]()<>!@#&|^-0123456789\t\n",
        "<!channel>",
        "<!here>",
        "<@U0BOSS>",
        "<https://evil.example|click>",
        "\x00",
        "\x1b[31m",
        "\u202e",
        "🚀",
        "mute ",
        "status ",
        "history ",
        "ack ",
    ]
    texts = [
        "",
        " ",
        "mute <!channel> 1h <!here>",
        "status <@U0BOSS>",
        "history " + "a" * 4000,
        "mute checkout 99999999999999999999h",
        "mute checkout -1h because",
        "unmute " + "\x00" * 10,
        "status cluster:<!everyone>",
        "routes [x](javascript:alert(1))",
        "help " * 500,
    ]
    texts += ["".join(rand.choices(alphabet, k=rand.randint(1, 40))) for _ in range(25)]
    return texts


async def test_any_slash_command_text_is_answered_without_a_ping(harness: Harness) -> None:
    for text in _command_texts(random.Random(5)):
        before = len(harness.answers(OPERATOR)) + len(harness.responses)
        assert await harness.command(text) == 200, text
        after = len(harness.answers(OPERATOR)) + len(harness.responses)
        assert after == before + 1, f"one answer to {text!r}"
    for answer in [*harness.answers(OPERATOR), *harness.responses]:
        shown = text_of(answer)
        for ping in PINGS:
            assert ping not in shown
        assert "<https://evil" not in shown
        assert "Traceback" not in shown
