"""The audit log through `driftbot audit`, against a store filled by a replay of the demo: every
notification with its receivers' outcomes, human actions, config reloads; text and jsonl."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app.cli import main
from bot.app.replay import replay_lines
from bot.delivery.receivers import ConsoleReceiver
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.loader import load_config
from core.model import AppKey, Tool
from tests import scenarios

DEMO = Path(__file__).resolve().parents[2] / "bot" / "app" / "scenarios" / "demo.jsonl"


@pytest.fixture
def state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "state.sqlite"
    assert main(["replay", str(DEMO), "--state", str(path), "--output", "jsonl"]) == 0
    capsys.readouterr()
    return path


def _jsonl(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["audit", *args, "--output", "jsonl"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _kinds(entries: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["kind"] for e in entries if e["action"] == "announce"]


def test_every_announced_event_is_in_the_log_with_its_delivery(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _jsonl(capsys, "--state", str(state), "--limit", "100")
    assert len(entries) == 15
    assert all(e["actor"] == "driftbot" and e["action"] == "announce" for e in entries)
    assert all(e["detail"]["receivers"] == {"console": "ok"} for e in entries)
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    rollback = next(e for e in entries if e["detail"]["kind"] == "rollback_succeeded")
    assert rollback["app"]["name"] == "payments" and rollback["app"]["cluster"] == "prod"
    assert rollback["detail"]["events"][0]["actor"] == "alice@example.com"


def test_app_and_cluster_filters(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payments = _jsonl(capsys, "--state", str(state), "--app", "payments")
    assert _kinds(payments) == [
        "deploy_started",
        "deploy_succeeded",
        "health_degraded",
        "rollback_succeeded",
        "health_recovered",
    ]
    staging = _jsonl(capsys, "--state", str(state), "--cluster", "staging")
    assert {e["app"]["name"] for e in staging} == {"apps", "podinfo", "redis"}
    both = _jsonl(capsys, "--state", str(state), "--app", "podinfo/pod*", "--cluster", "staging")
    assert _kinds(both) == ["deploy_failed", "rollback_succeeded"]
    assert _jsonl(capsys, "--state", str(state), "--app", "payments", "--cluster", "staging") == []


def test_limit_keeps_the_newest(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _jsonl(capsys, "--state", str(state), "--limit", "2")
    assert _kinds(entries) == ["drift_resolved", "deploy_succeeded"]
    assert entries[-1]["app"]["name"] == "catalog"


def test_the_text_output_is_a_readable_table(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--state", str(state), "--app", "payments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WHEN", "(UTC)", "ACTOR", "ACTION", "APP", "DETAIL"]
    assert len(lines) == 6
    assert lines[4].startswith("2026-11-20 09:16:00  driftbot  announce  prod/argocd/payments")
    assert lines[4].endswith("rollback_succeeded ea87599 by alice@example.com -> console ok")
    detail_column = lines[0].index("DETAIL")
    assert all(line[detail_column - 2 : detail_column] == "  " for line in lines)


def test_human_actions_and_config_reloads_are_shown(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "checkout")
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    async def act() -> None:
        async with await Store.open(state) as store:
            await store.audit("U0ALICE", "mute", key, {"target": "checkout", "reason": "fix"}, at)
            await store.audit("config", "config_rejected", None, {"errors": ["f:3: x: bad"]}, at)

    asyncio.run(act())
    entries = _jsonl(capsys, "--state", str(state), "--app", "checkout")
    assert entries[-1]["actor"] == "U0ALICE" and entries[-1]["action"] == "mute"
    assert main(["audit", "--state", str(state), "--limit", "2"]) == 0
    table = capsys.readouterr().out
    assert "U0ALICE  mute" in table and "target checkout, reason fix" in table
    assert "config_rejected" in table and "1 errors: f:3: x: bad" in table


def test_a_missing_store_or_a_bad_limit_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--state", str(tmp_path / "nope.sqlite")]) == 1
    assert "no state store at" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite").exists()
    (tmp_path / "s.sqlite").touch()
    assert main(["audit", "--state", str(tmp_path / "s.sqlite"), "--limit", "0"]) == 1
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_audit_reads_the_postgresql_store_when_the_dsn_is_set(
    postgres_dsn: str,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `run` does: DRIFTBOT_STORE_DSN names the store, and wins over --state."""
    key = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "checkout")

    async def act() -> None:
        async with await Store.open(postgres_dsn) as store:
            at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
            await store.audit("U0ALICE", "ack", key, {"alerts": 1}, at)

    asyncio.run(act())
    monkeypatch.setenv("DRIFTBOT_STORE_DSN", postgres_dsn)
    [entry] = _jsonl(capsys, "--state", str(state))
    assert (entry["actor"], entry["action"], entry["app"]["name"]) == ("U0ALICE", "ack", "checkout")
    assert main(["audit", "--app", "checkout"]) == 0
    captured = capsys.readouterr()
    assert "U0ALICE  ack" in captured.out
    monkeypatch.delenv("DRIFTBOT_STORE_DSN")
    assert _kinds(_jsonl(capsys, "--state", str(state))), "the file still has its own log"


def test_audit_with_a_dsn_that_is_not_postgresql_is_one_line_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTBOT_STORE_DSN", "mysql://bot:s3cret@db.invalid/driftbot")
    assert main(["audit"]) == 1
    err = capsys.readouterr().err
    assert "DRIFTBOT_STORE_DSN must be a PostgreSQL DSN" in err and "s3cret" not in err
    assert err.count("\n") == 1


def test_replay_keeps_its_own_file_and_says_so_when_a_dsn_is_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replay never writes the service's shared store: it uses its SQLite file, and says
    which store it used and that the DSN is not (never showing the DSN's password)."""
    monkeypatch.setenv("DRIFTBOT_STORE_DSN", "postgresql://bot:s3cret@db.invalid:5432/driftbot")
    path = tmp_path / "replay.sqlite"
    assert main(["replay", str(DEMO), "--state", str(path), "--output", "jsonl"]) == 0
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith(f"state store: {path} (")
    assert "postgresql://db.invalid:5432/driftbot" in warning and "is not used" in warning
    assert "s3cret" not in caplog.text
    capsys.readouterr()
    monkeypatch.delenv("DRIFTBOT_STORE_DSN")
    assert _kinds(_jsonl(capsys, "--state", str(path)))


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


async def test_a_failed_delivery_is_audited_and_the_other_receivers_still_get_it(
    tmp_path: Path,
) -> None:
    config = load_config(
        "receivers: [{name: good, console: {format: jsonl}}, {name: bad, console: {}}]\n"
        "routes: [{receivers: [bad, good]}]\n"
    )
    good = io.StringIO()
    receivers = {
        "good": ConsoleReceiver("good", "jsonl", good),
        "bad": ConsoleReceiver("bad", "text", Broken()),
    }
    async with await Store.open(tmp_path / "s.sqlite") as store:
        pipeline = Pipeline(store, config, receivers)
        await pipeline.load()
        await replay_lines(scenarios.demo_lines()[:10], "demo", pipeline)
        entries = await store.audit_log()
    assert len(good.getvalue().splitlines()) == len(entries) == 3
    for entry in entries:
        assert entry.detail["receivers"]["good"] == "ok"
        assert entry.detail["receivers"]["bad"] == "failed: OSError: disk full"
    assert pipeline.stats["delivery_failed"] == 3
