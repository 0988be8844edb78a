"""`driftbot replay` and `driftbot demo` end to end: recorded lines in, notifications out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.cli import main
from tests import scenarios

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "bot" / "app" / "scenarios" / "demo.jsonl"


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _replay_jsonl(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["replay", *args, "--output", "jsonl"]) == 0
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines()]


EXPECTED_DEMO = [
    ("drift_detected", "checkout", ""),
    ("deploy_started", "payments", ""),
    ("deploy_succeeded", "payments", ""),
    ("health_degraded", "payments", ""),
    ("deploy_failed", "apps", ""),
    ("rollback_succeeded", "payments", ""),
    ("health_recovered", "payments", "health_degraded"),
    ("drift_resolved", "checkout", "drift_detected"),
    ("deploy_failed", "podinfo", ""),
    ("rollback_succeeded", "podinfo", "deploy_failed"),
    ("drift_detected", "redis", ""),
    ("deploy_failed", "catalog", ""),
    ("deploy_succeeded", "apps", "deploy_failed"),
    ("drift_resolved", "redis", "drift_detected"),
    ("deploy_succeeded", "catalog", "deploy_failed"),
]
"""(kind, app, kind of the alert it updates) in the order the demo scenario announces them."""


def test_shipped_demo_scenario_is_what_the_builders_make() -> None:
    shipped = DEMO.read_bytes().splitlines()
    assert shipped == scenarios.demo_lines(), (
        "bot/app/scenarios/demo.jsonl is stale: "
        "python -m tests.scenarios > bot/app/scenarios/demo.jsonl"
    )


def test_replay_prints_exactly_the_expected_events_then_nothing_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.sqlite"
    first = _replay_jsonl(capsys, str(DEMO), "--state", str(state))
    by_id = {e["id"]: e for e in first}
    got = [
        (e["kind"], e["name"], by_id[e["updates"]]["kind"] if "updates" in e else "") for e in first
    ]
    assert got == EXPECTED_DEMO
    for event in first:
        assert event["receivers"] == ["console"]
        assert {"tool", "cluster", "namespace", "object_kind", "severity", "occurred_at"} <= set(
            event
        )
    rollback = next(e for e in first if e["kind"] == "rollback_succeeded" and e["tool"] == "argocd")
    assert rollback["actor"] == "alice@example.com"
    assert rollback["revision"] == scenarios.REV_A
    assert rollback["previous_revision"] == scenarios.REV_B
    helm = next(e for e in first if e["kind"] == "rollback_succeeded" and e["tool"] == "flux")
    assert (helm["previous_chart_version"], helm["chart_version"]) == (
        "6.6.1+0cc9a8446c95",
        "6.6.0+cdd538a0167e",
    )

    assert _replay_jsonl(capsys, str(DEMO), "--state", str(state)) == []


def test_a_problem_resolved_within_grace_is_never_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blip = [
        line
        for line in scenarios.demo_lines()
        if json.loads(line).get("object", {}).get("kind") == "GitRepository"
    ]
    assert len(blip) == 3
    stream = _write(tmp_path / "blip.jsonl", blip)
    assert _replay_jsonl(capsys, str(stream), "--state", str(tmp_path / "s.sqlite")) == []


def test_a_problem_still_open_at_the_end_of_the_stream_is_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line for line in scenarios.demo_lines() if b'"checkout"' in line]
    stream = _write(tmp_path / "drift.jsonl", lines[:2])
    events = _replay_jsonl(capsys, str(stream), "--state", str(tmp_path / "s.sqlite"))
    assert [e["kind"] for e in events] == ["drift_detected"]
    assert events[0]["resources"] == [
        {"kind": "Deployment", "namespace": "shop", "name": "checkout", "health": "", "message": ""}
    ]
    assert (events[0]["namespace"], events[0]["destination_namespace"]) == ("argocd", "shop")


def test_bad_lines_are_reported_with_their_number_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    lines = [line for line in scenarios.demo_lines() if b'"checkout"' in line]
    bad = [
        lines[0],
        b"{not json",
        b'{"at": "2026-11-20T09:01:00Z", "cluster": "prod", "object": {"apiVersion": "v1", '
        b'"kind": "Pod", "metadata": {"name": "x"}}}',
        b'{"at": "noon", "cluster": "prod", "object": {}}',
        b"[1, 2]",
        *lines[1:],
    ]
    stream = _write(tmp_path / "bad.jsonl", bad)
    events = _replay_jsonl(capsys, str(stream), "--state", str(tmp_path / "s.sqlite"))
    assert [e["kind"] for e in events] == ["drift_detected", "drift_resolved"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(":2: not valid JSON" in w for w in warnings)
    assert any(":3: rejected: unknown kind 'Pod'" in w for w in warnings)
    assert any(":4: 'at' must be an RFC 3339 time" in w for w in warnings)
    assert any(":5: expected a JSON object" in w for w in warnings)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.app.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing_stream", "cannot read"),
        ("state_not_sqlite", "not a SQLite database"),
        ("state_dir_blocked", "state store"),
    ],
)
def test_unusable_files_give_one_clear_line_and_a_nonzero_exit(
    tmp_path: Path, setup: str, expected: str
) -> None:
    stream = _write(tmp_path / "ok.jsonl", scenarios.demo_lines()[:2])
    state = tmp_path / "state.sqlite"
    if setup == "missing_stream":
        stream = tmp_path / "missing.jsonl"
    elif setup == "state_not_sqlite":
        state.write_text("this is not a database\n" * 100)
    else:
        (tmp_path / "blocker").write_text("a file where a directory should be")
        state = tmp_path / "blocker" / "state.sqlite"
    done = _cli("replay", str(stream), "--state", str(state), cwd=ROOT)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_demo_tells_the_story_in_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for phrase in (
        "checkout on prod no longer matches Git",
        "payments on prod: 7d2e4f6 was rolled back by alice@example.com; ea87599 runs again",
        "deploy of 7d2e4f6 failed",
        "matches Git again",
        "podinfo on staging: upgrade to 6.6.1 failed and was rolled back to 6.6.0",
        'Deployment/shop/payments is degraded: Deployment "payments" exceeded its progress',
        "Needs action · ",
        "Resolved · ",
    ):
        assert phrase in out
    assert "GitRepository" not in out
