"""Who reads the status page: basic sign-in with bcrypt hashes from a secret, a trusted proxy
(and only from its addresses), public badges beside a private page, and per-user grants (the
same ones chat answers keep to). Against a running server fed by the demo scenario."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from bot.app.service import ServiceError
from bot.web.access import StatusConfigError, parse_users
from tests.bot.status_world import status_world

ALICE_HASH = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(rounds=4)).decode()
USERS = (
    f"# who reads the status page\nalice:{ALICE_HASH}\n\nbob:{ALICE_HASH.replace('$2b$', '$2y$')}\n"
)


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, response.headers, await response.text()


async def _json(url: str, headers: dict[str, str] | None = None) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def _apps(data: Any) -> list[str]:
    return [f"{a['cluster']}/{a['name']}" for c in data["clusters"] for a in c["apps"]]


async def test_basic_sign_in_with_bcrypt_hashes_and_public_badges(tmp_path: Path) -> None:
    server = {"status": {"auth": "basic", "basic": {"users_env": "STATUS_USERS"},
                         "public_badges": True}}  # fmt: skip
    async with status_world(tmp_path, server=server, environ={"STATUS_USERS": USERS}) as world:
        status, headers, _ = await _get(f"{world.base}/status")
        assert status == 401
        assert headers["WWW-Authenticate"].startswith('Basic realm="driftbot status"')
        status, _, _ = await _get(f"{world.base}/status", _basic("alice", "wrong"))
        assert status == 401
        status, _, _ = await _get(f"{world.base}/status", _basic("mallory", "s3cret pass"))
        assert status == 401
        for user in ("alice", "bob"):  # $2b$ and $2y$ (htpasswd -B) hashes
            status, headers, body = await _get(f"{world.base}/status", _basic(user, "s3cret pass"))
            assert status == 200, user
            assert "default-src 'none'" in headers["Content-Security-Policy"]
            assert ": 1 problem — podinfo failed to deploy 6.6.1" in body
        status, _, _ = await _get(f"{world.base}/api/v1/apps")
        assert status == 401, "the JSON is as private as the page"
        status, headers, badge = await _get(f"{world.base}/badge/prod/argocd/checkout.svg")
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
        assert "differs from Git" in badge and "healthy" in badge
        status, _, badge = await _get(f"{world.base}/badge/staging/podinfo/podinfo.svg")
        assert status == 200 and "in sync" in badge and "failing" in badge
        status, _, badge = await _get(f"{world.base}/badge/prod/argocd/nothing.svg")
        assert status == 404 and "no such app" in badge


async def test_a_trusted_proxy_names_the_reader_and_grants_scope_what_they_see(
    tmp_path: Path,
) -> None:
    server = {"status": {"auth": "proxy", "proxy": {"trusted": ["127.0.0.0/8"]}}}
    rbac = {
        "grants": [
            {"users": ["pm@example.com"], "clusters": ["staging"]},
            {"groups": ["sre"], "clusters": ["*"]},
            {"users": ["alice"], "clusters": ["prod"], "namespaces": ["argocd"]},
        ]
    }
    async with status_world(tmp_path, server=server, rbac=rbac) as world:
        status, _, _ = await _get(f"{world.base}/status")
        assert status == 401, "the proxy did not say who"
        pm = {"X-Forwarded-User": "pm@example.com"}
        assert _apps(await _json(f"{world.base}/api/v1/apps", pm)) == [
            "staging/podinfo", "staging/apps", "staging/redis",
        ]  # fmt: skip
        status, _, _ = await _get(f"{world.base}/status/prod/argocd/checkout", pm)
        assert status == 404, "an app outside the grants does not exist for this reader"
        status, _, _ = await _get(f"{world.base}/badge/prod/argocd/checkout.svg", pm)
        assert status == 404
        status, _, body = await _get(f"{world.base}/status/staging/podinfo/podinfo", pm)
        assert status == 200 and "failed to deploy 6.6.1" in body

        sre = {"X-Forwarded-User": "carol", "X-Forwarded-Groups": "dev, sre"}
        assert len(_apps(await _json(f"{world.base}/api/v1/apps", sre))) == 6
        nobody = {"X-Forwarded-User": "eve"}
        status, _, body = await _get(f"{world.base}/status", nobody)
        assert status == 200 and "you are not granted any cluster or namespace" in body

        # Chat keeps to the same grants.
        answer = await world.chat("alice", "status")
        text = str(answer)
        assert "prod" in text and "staging" not in text


async def test_the_proxy_header_is_not_believed_from_elsewhere(tmp_path: Path) -> None:
    server = {"status": {"auth": "proxy", "proxy": {"trusted": ["10.0.0.7"]}}}
    async with status_world(tmp_path, server=server) as world:
        forged = {"X-Forwarded-User": "admin", "X-Forwarded-For": "10.0.0.7"}
        for path in ("/status", "/api/v1/apps", "/badge/prod/argocd/checkout.svg"):
            status, _, body = await _get(world.base + path, forged)
            assert status == 403, path
            assert "sign-in proxy" in body


async def test_a_missing_or_malformed_users_secret_stops_the_start(tmp_path: Path) -> None:
    server = {"status": {"auth": "basic", "basic": {"users_env": "STATUS_USERS"}}}
    with pytest.raises(ServiceError, match="STATUS_USERS, which is not set"):
        async with status_world(tmp_path, server=server):
            pass
    with pytest.raises(ServiceError, match=r"\$STATUS_USERS, line 2: expected 'user:bcrypt-hash'"):
        async with status_world(
            tmp_path, server=server, environ={"STATUS_USERS": "# users\nalice:plaintext\n"}
        ):
            pass


def test_users_are_read_from_htpasswd_lines() -> None:
    users = parse_users(USERS, "users")
    assert sorted(users) == ["alice", "bob"]
    with pytest.raises(StatusConfigError, match="holds no"):
        parse_users("# nobody\n", "users")
    with pytest.raises(StatusConfigError) as refused:
        parse_users("carol:hunter2\n", "/secrets/users")
    assert "hunter2" not in str(refused.value), "the secret is never shown"
