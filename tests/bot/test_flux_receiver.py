"""/webhooks/flux: signed (generic-hmac) and unsigned (generic) bodies of notification-controller,
through a real HTTP server into a real pipeline."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app.replay import build_receivers
from bot.inbound.flux import (
    FLUX_WEBHOOK_PATH,
    FluxAuth,
    FluxWebhook,
    sign,
    token_from_env,
    verify_signature,
)
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from tests.builders_flux import T0, notification

TOKEN = b"s3cret-token"


class Harness:
    def __init__(self, client: TestClient, pipeline: Pipeline, out: io.StringIO) -> None:
        self.client = client
        self.pipeline = pipeline
        self.out = out

    async def post(
        self, body: bytes, *, headers: dict[str, str] | None = None, query: str = ""
    ) -> Any:
        return await self.client.post(FLUX_WEBHOOK_PATH + query, data=body, headers=headers or {})

    def announced(self) -> list[dict[str, Any]]:
        """Every event told of, the members of a grouped notification one by one."""
        events: list[dict[str, Any]] = []
        for line in self.out.getvalue().splitlines():
            note = json.loads(line)
            events += note["events"] if note["kind"] == "group" else [note]
        return events

    async def released(self) -> list[dict[str, Any]]:
        """What was announced once time has passed (the service's clock task does this)."""
        await self.pipeline.advance(T0)
        return self.announced()


async def _harness(
    tmp_path: Path, token: bytes | None, max_body: int = 1 << 20
) -> AsyncIterator[Harness]:
    config = Config.model_validate(
        {
            "clusters": [{"name": "prod"}, {"name": "staging"}],
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
            "policy": {"grace": "0s", "group_wait": "0s"},
        }
    )
    out = io.StringIO()
    store = await Store.open(tmp_path / "s.sqlite")
    pipeline = Pipeline(store, config, build_receivers(config, None, out))
    await pipeline.load()
    auth = FluxAuth(clusters=("prod", "staging"), shared=token, accept_unsigned=token is None)
    hook = FluxWebhook(pipeline.notify, auth=auth, clock=lambda: T0, max_body=max_body)
    app = web.Application()
    app.router.add_post(FLUX_WEBHOOK_PATH, hook.handle)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, pipeline, out)
    await pipeline.close()
    await store.close()


@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in _harness(tmp_path, TOKEN):
        yield h


@pytest.fixture
async def unsigned(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in _harness(tmp_path, None):
        yield h


def _body(**kwargs: Any) -> bytes:
    return orjson.dumps(notification(**kwargs))


async def test_a_signed_body_is_accepted_and_announced(signed: Harness) -> None:
    body = _body()
    response = await signed.post(body, headers={"X-Signature": sign(body, TOKEN)})
    assert response.status == 202
    assert (await response.json())["cluster"] == "prod"
    [event] = await signed.released()
    assert (event["kind"], event["cluster"], event["name"]) == ("deploy_failed", "prod", "webapp")


@pytest.mark.parametrize("algorithm", ["sha224", "sha256", "sha384", "sha512"])
async def test_every_hash_function_of_the_spec_is_accepted(signed: Harness, algorithm: str) -> None:
    body = _body()
    response = await signed.post(body, headers={"X-Signature": sign(body, TOKEN, algorithm)})
    assert response.status == 202


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=deadbeef",
        "md5=0123",
        "sha256",
        "SIGNED",
    ],
)
async def test_a_missing_or_bad_signature_is_401_and_nothing_is_processed(
    signed: Harness, header: str | None
) -> None:
    body = _body()
    headers = {} if header is None else {"X-Signature": header}
    response = await signed.post(body, headers=headers)
    assert response.status == 401
    assert signed.announced() == []
    assert signed.pipeline.stats["rejected"] == 0


async def test_a_signature_of_another_body_is_refused(signed: Harness) -> None:
    response = await signed.post(_body(), headers={"X-Signature": sign(_body(name="other"), TOKEN)})
    assert response.status == 401
    assert signed.announced() == []


async def test_a_signature_with_another_token_is_refused(signed: Harness) -> None:
    body = _body()
    response = await signed.post(body, headers={"X-Signature": sign(body, b"wrong")})
    assert response.status == 401


async def test_malformed_json_is_400(unsigned: Harness) -> None:
    response = await unsigned.post(b"{not json")
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]


async def test_a_body_that_is_not_a_flux_event_is_400_with_the_reason(unsigned: Harness) -> None:
    response = await unsigned.post(b'{"hello": "world"}')
    assert response.status == 400
    assert "involvedObject" in (await response.json())["error"]


async def test_a_body_over_the_cap_is_413(tmp_path: Path) -> None:
    async for h in _harness(tmp_path, None, max_body=1024):
        response = await h.post(b" " * 2000 + _body())
        assert response.status == 413
        assert h.announced() == []


async def test_the_cluster_comes_from_the_query_then_the_header(unsigned: Harness) -> None:
    first = await unsigned.post(_body(name="a", reason="BuildFailed"), query="?cluster=staging")
    second = await unsigned.post(
        _body(name="b", reason="HealthCheckFailed"), headers={"X-Driftbot-Cluster": "prod"}
    )
    unknown = await unsigned.post(_body(name="c"), query="?cluster=nope")
    assert (first.status, second.status, unknown.status) == (202, 202, 400)
    assert [(e["name"], e["cluster"]) for e in await unsigned.released()] == [
        ("a", "staging"),
        ("b", "prod"),
    ]


def test_the_token_variable_must_be_set_when_it_is_named() -> None:
    config = Config.model_validate({"server": {"flux_webhook_token_env": "FLUX_TOKEN"}})
    assert token_from_env(config, {"FLUX_TOKEN": "abc"}) == b"abc"
    assert token_from_env(Config(), {}) is None
    with pytest.raises(Exception, match="FLUX_TOKEN"):
        token_from_env(config, {})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200), header=st.one_of(st.none(), st.text(max_size=80)))
def test_verify_signature_never_raises_and_accepts_only_the_right_hmac(
    body: bytes, header: str | None
) -> None:
    if verify_signature(header, body, TOKEN):
        assert header is not None
        assert "".join(header.split()).lower() == sign(body, TOKEN)
    assert verify_signature(sign(body, TOKEN), body, TOKEN)


# --- who may post for which cluster --------------------------------------------------------------


def _auth(server: dict[str, Any], environ: dict[str, str], **more: Any) -> FluxAuth:
    config = Config.model_validate({"server": server, **more})
    return FluxAuth.from_config(config, environ)


def test_without_a_token_every_request_is_refused_unless_unsigned_is_accepted_in_words() -> None:
    refusing = _auth({}, {}, clusters=[{"name": "prod"}])
    assert refusing.refuses_all and refusing.unsigned == ()
    assert "refuses every request" in refusing.describe()
    accepting = _auth({"flux_webhook_accept_unsigned": True}, {}, clusters=[{"name": "prod"}])
    assert accepting.unsigned == ("prod",)
    assert "UNSIGNED" in accepting.describe()


def test_the_clusters_are_those_of_the_config_and_of_the_webhook_list() -> None:
    auth = _auth(
        {
            "flux_webhook_token_env": "SHARED",
            "flux_webhook_clusters": [{"name": "edge", "token_env": "EDGE"}, {"name": "lab"}],
        },
        {"SHARED": "s", "EDGE": "e"},
        clusters=[{"name": "prod"}],
    )
    assert auth.clusters == ("prod", "edge", "lab")
    assert auth.default == "prod"
    assert (auth.token_for("prod"), auth.token_for("edge"), auth.token_for("lab")) == (
        b"s",
        b"e",
        b"s",
    )
    assert _auth({}, {}).clusters == ("default",)


def test_a_per_cluster_token_variable_must_be_set_when_it_is_named() -> None:
    with pytest.raises(Exception, match="EDGE"):
        _auth({"flux_webhook_clusters": [{"name": "edge", "token_env": "EDGE"}]}, {})


def test_a_cluster_listed_twice_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="more than once"):
        Config.model_validate(
            {"server": {"flux_webhook_clusters": [{"name": "edge"}, {"name": "edge"}]}}
        )


async def _hook_client(tmp_path: Path, auth: FluxAuth) -> AsyncIterator[Harness]:
    config = Config.model_validate(
        {
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
            "policy": {"grace": "0s", "group_wait": "0s"},
        }
    )
    out = io.StringIO()
    store = await Store.open(tmp_path / "s.sqlite")
    pipeline = Pipeline(store, config, build_receivers(config, None, out))
    await pipeline.load()
    hook = FluxWebhook(pipeline.notify, auth=auth, clock=lambda: T0)
    app = web.Application()
    app.router.add_post(FLUX_WEBHOOK_PATH, hook.handle)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, pipeline, out)
    await pipeline.close()
    await store.close()


async def test_unsigned_events_are_refused_by_default(tmp_path: Path) -> None:
    async for h in _hook_client(tmp_path, FluxAuth(clusters=("prod",))):
        response = await h.post(_body())
        assert response.status == 401
        assert "unsigned" in (await response.json())["error"]
        assert await h.released() == []


async def test_a_cluster_with_its_own_token_takes_only_that_token(tmp_path: Path) -> None:
    """A body signed for prod (the shared token) cannot be sent again as edge's, nor one
    signed with edge's token as prod's."""
    edge_token = b"edge-only-token"
    auth = FluxAuth(clusters=("prod", "edge"), shared=TOKEN, own={"edge": edge_token})
    async for h in _hook_client(tmp_path, auth):
        body = _body()
        for_prod = {"X-Signature": sign(body, TOKEN)}
        for_edge = {"X-Signature": sign(body, edge_token)}
        assert (await h.post(body, headers=for_prod, query="?cluster=edge")).status == 401
        assert (await h.post(body, headers=for_edge, query="?cluster=prod")).status == 401
        assert await h.released() == []
        assert (await h.post(body, headers=for_edge, query="?cluster=edge")).status == 202
        assert [e["cluster"] for e in await h.released()] == ["edge"]


@pytest.mark.parametrize(
    "name",
    ["prod\nINFO bot.app.server: forged", "prod staging", "x" * 254, "-prod", "pröd", "a/b"],
)
async def test_an_invalid_cluster_name_is_400_and_not_echoed(signed: Harness, name: str) -> None:
    body = _body()
    response = await signed.post(
        body, headers={"X-Signature": sign(body, TOKEN)}, query="?" + urlencode({"cluster": name})
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert "invalid cluster name" in error and name not in error
    assert signed.announced() == []


async def test_an_unknown_cluster_is_400_even_when_signed(signed: Harness) -> None:
    body = _body()
    response = await signed.post(
        body, headers={"X-Signature": sign(body, TOKEN)}, query="?cluster=elsewhere"
    )
    assert response.status == 400
    assert "unknown cluster 'elsewhere'" in (await response.json())["error"]
    assert await signed.released() == []


async def test_an_event_about_a_kind_driftbot_does_not_read_is_400(signed: Harness) -> None:
    raw = notification()
    raw["involvedObject"]["kind"] = "ImageUpdateAutomation"
    body = orjson.dumps(raw)
    response = await signed.post(body, headers={"X-Signature": sign(body, TOKEN)})
    assert response.status == 400
    error = (await response.json())["error"]
    assert "'ImageUpdateAutomation', a kind driftbot does not read" in error
    assert "Kustomization" in error
    assert await signed.released() == []


async def test_a_signed_body_sent_in_pieces_is_read_whole(signed: Harness) -> None:
    body = orjson.dumps(notification(message="m" * 400_000))

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await signed.client.post(
        FLUX_WEBHOOK_PATH, data=pieces(), headers={"X-Signature": sign(body, TOKEN)}
    )
    assert response.status == 202
    assert [e["name"] for e in await signed.released()] == ["webapp"]
