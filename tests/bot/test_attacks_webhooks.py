"""The attacks on the inbound webhooks, against a real `driftbot run` on loopback: bodies in
pieces and half-sent requests on raw sockets, unsigned and re-addressed Flux events, forged log
lines, unknown kinds, and a reload that takes unsigned events away again."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import quote

import orjson

from bot.chat.teams_inbound import sign as teams_sign
from bot.inbound.flux import sign as flux_sign
from tests.bot.live_run import LiveRun, read_status, request_head
from tests.builders_flux import notification

EDGE_TOKEN = b"edge-cluster-flux-token"
TEAMS_KEY = b"attack teams outgoing key"
FORGED = "ERROR bot.app.server: forged"


def _config(accept_unsigned: bool) -> dict[str, object]:
    server: dict[str, object] = {
        "read_timeout": "1s",
        "flux_webhook_clusters": [{"name": "edge", "token_env": "EDGE_TOKEN"}, {"name": "lab"}],
    }
    if accept_unsigned:
        server["flux_webhook_accept_unsigned"] = True
    return {
        "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
        "routes": [{"receivers": ["out"]}],
        "policy": {"grace": "0s", "group_wait": "0s", "group_by": ["name"], "flap": {"flips": 0}},
        "teams": {"outgoing_webhook_secret_env": "TEAMS_KEY"},
        "server": server,
    }


def _body(name: str, size: int = 0) -> bytes:
    return orjson.dumps(notification(name=name, message="m" * size or "validation error"))


async def test_attacks_on_the_webhooks_of_a_running_driftbot(tmp_path: object) -> None:
    env = {"EDGE_TOKEN": EDGE_TOKEN.decode(), "TEAMS_KEY": base64.b64encode(TEAMS_KEY).decode()}
    async with LiveRun(tmp_path, _config(accept_unsigned=True), env) as run:  # type: ignore[arg-type]
        # server.host: it listens where it was told to.
        assert "listening on 127.0.0.1 port" in run.stderr
        # Unsigned events are taken only because the config says so, and the start warns.
        warning = await run.until_logged("accepts UNSIGNED events for lab")
        assert warning.startswith("WARNING")

        # 1. A signed body in 4 KiB pieces: nothing is answered before the last one.
        body = _body("split", 6_500)
        reader, writer = await run.connect()
        head = request_head(
            "/webhooks/flux?cluster=edge", len(body), {"X-Signature": flux_sign(body, EDGE_TOKEN)}
        )
        writer.write(head + body[:4096])
        await writer.drain()
        try:
            async with asyncio.timeout(0.3):
                early = await reader.read(1)
        except TimeoutError:
            early = b""
        assert early == b"", "answered before the body had arrived"
        for start in range(4096, len(body), 4096):
            writer.write(body[start : start + 4096])
            await writer.drain()
        assert await read_status(reader) == 202
        writer.close()
        # ... and 400 KB in one write (under the 1 MiB cap).
        big = _body("big", 400_000)
        status, _ = await run.post(
            "/webhooks/flux?cluster=edge", big, {"X-Signature": flux_sign(big, EDGE_TOKEN)}
        )
        assert status == 202
        # Teams likewise.
        activity = orjson.dumps(
            {"type": "message", "text": "<at>driftbot</at> drift " + " " * 9000, "from": {}}
        )
        reader, writer = await run.connect()
        writer.write(
            request_head(
                "/webhooks/teams", len(activity), {"Authorization": teams_sign(activity, TEAMS_KEY)}
            )
        )
        for start in range(0, len(activity), 4096):
            writer.write(activity[start : start + 4096])
            await writer.drain()
        assert await read_status(reader) == 200
        writer.close()

        # 4. The cluster is checked on its own: edge's events need edge's token.
        lab_body = _body("relabelled")
        status, answer = await run.post(
            "/webhooks/flux?cluster=edge", lab_body, {"X-Signature": flux_sign(lab_body, b"x")}
        )
        assert status == 401
        status, answer = await run.post("/webhooks/flux?cluster=edge", lab_body)
        assert status == 401, "unsigned is accepted for lab only, never for a tokened cluster"
        status, answer = await run.post("/webhooks/flux?cluster=elsewhere", lab_body)
        assert (status, "unknown cluster" in answer["error"]) == (400, True)
        # 7. A newline in the cluster: refused, and no line of the log is forged.
        forged = quote(f"lab\n{FORGED}")
        status, answer = await run.post(f"/webhooks/flux?cluster={forged}", lab_body)
        assert (status, "invalid cluster name" in answer["error"]) == (400, True)
        status, _ = await run.post("/webhooks/flux?cluster=lab", lab_body)
        assert status == 202

        # 10. An event about a kind driftbot does not read: 400 with the reason.
        raw = notification(name="images")
        raw["involvedObject"]["kind"] = "ImageUpdateAutomation"
        status, answer = await run.post("/webhooks/flux?cluster=lab", orjson.dumps(raw))
        assert status == 400
        assert "'ImageUpdateAutomation', a kind driftbot does not read" in answer["error"]

        # 8. A half-sent request is closed after server.read_timeout (1 s here) ...
        reader, writer = await run.connect()
        writer.write(b"POST /webhooks/flux HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sig")
        await writer.drain()
        async with asyncio.timeout(15):
            assert await reader.read() == b"", "the server closed the half-sent request"
        writer.close()
        # ... and a body that stops half way is answered 408.
        reader, writer = await run.connect()
        writer.write(request_head("/webhooks/flux?cluster=lab", 5000, {}) + b"{" * 100)
        await writer.drain()
        async with asyncio.timeout(15):
            assert await read_status(reader) == 408
        writer.close()

        # 3. A reload without the words: unsigned events are refused again (401).
        run.reconfigure(_config(accept_unsigned=False))
        await run.until_logged("reloaded")
        await run.until_logged("Flux webhook now signed (generic-hmac) for edge")
        status, answer = await run.post("/webhooks/flux?cluster=lab", _body("after"))
        assert status == 401
        assert "unsigned Flux events are refused" in answer["error"]

    assert run.code == 0, run.stderr[-3000:]
    lines = run.stderr.splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    assert not any(line.startswith("Traceback") for line in lines), run.stderr[-3000:]
    told = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert sorted((n["name"], n["cluster"]) for n in told) == [
        ("big", "edge"),
        ("relabelled", "lab"),
        ("split", "edge"),
    ]
