"""A storm through `driftbot replay`: 300 apps drifting after one bad revision, then recovering,
reach each channel as a few grouped messages, updated in place."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app.replay import replay_file
from config.schema import Config
from tests import builders_argocd as argo
from watchers.replay import dump_line

APPS = 300
RECEIVERS = ("oncall", "pm", "qa")
T0 = argo.T0


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def app(name: str, sync: str, at: datetime) -> dict[str, Any]:
    history = [
        argo.history_entry(1, argo.REV_OLD, _time(T0 - timedelta(hours=2))),
        argo.history_entry(2, argo.REV_A, _time(T0 - timedelta(hours=1))),
    ]
    op = argo.operation_state(
        "Succeeded",
        argo.REV_A,
        started_at=_time(T0 - timedelta(hours=1, minutes=1)),
        finished_at=_time(T0 - timedelta(hours=1)),
        automated=True,
    )
    raw = argo.argocd_app(
        name,
        sync=sync,
        history=history,
        operation=op,
        auto_sync=False,
        out_of_sync=[("Deployment", "shop", name)] if sync == "OutOfSync" else (),
        reconciled_at=_time(at),
    )
    raw["metadata"]["namespace"] = "argocd"
    return raw


def storm_lines() -> list[bytes]:
    """Every app baselined Synced, all drift within 10 s, all match Git again 10 min later."""
    names = [f"svc-{i:03d}" for i in range(APPS)]
    lines = [dump_line(T0, "prod", "ADDED", app(n, "Synced", T0)) for n in names]
    for i, name in enumerate(names):
        at = T0 + timedelta(minutes=1, seconds=10 * i / APPS)
        lines.append(dump_line(at, "prod", "MODIFIED", app(name, "OutOfSync", at)))
    for i, name in enumerate(names):
        at = T0 + timedelta(minutes=11, seconds=10 * i / APPS)
        lines.append(dump_line(at, "prod", "MODIFIED", app(name, "Synced", at)))
    return lines


CONFIG = Config.model_validate(
    {
        "receivers": [{"name": n, "console": {"format": "jsonl"}} for n in RECEIVERS],
        "routes": [
            {"match": {"cluster": "prod"}, "receivers": ["oncall"], "continue": True},
            {
                "match": {"cluster": "prod"},
                "receivers": ["pm"],
                "continue": True,
                "group_wait": "2m",
                "grace": "0s",
            },
            {"match": {"cluster": "prod"}, "receivers": ["qa"], "group_by": ["cluster"]},
        ],
    }
)


def replay(path: Path, state: Path) -> list[dict[str, Any]]:
    """The notifications, each once: every console receiver prints the ones it gets, and a
    notification that several receivers decided alike names them all."""
    out = io.StringIO()
    replay_file(path, CONFIG, state, None, out)
    return [json.loads(line) for line in dict.fromkeys(out.getvalue().splitlines())]


def test_a_storm_is_a_few_messages_per_receiver_updated_by_its_recovery(tmp_path: Path) -> None:
    stream = tmp_path / "storm.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in storm_lines()))
    state = tmp_path / "state.sqlite"

    notes = replay(stream, state)

    per_receiver = Counter(r for n in notes for r in n["receivers"])
    assert set(per_receiver) == set(RECEIVERS)
    assert all(count <= 3 for count in per_receiver.values()), per_receiver
    for receiver in RECEIVERS:
        mine = [n for n in notes if receiver in n["receivers"]]
        first, *updates = mine
        assert first["kind"] == "group"
        assert first["count"] == APPS
        assert first["member_kind"] == "drift_detected"
        assert first["cluster"] == "prod"
        assert first["revision"] == argo.REV_A
        assert "updates" not in first
        assert len(first["events"]) == APPS
        assert {e["name"] for e in first["events"]} == {f"svc-{i:03d}" for i in range(APPS)}
        assert updates, "the recovery must update the storm's message"
        assert all(u["updates"] == first["id"] for u in updates)
        assert updates[-1]["resolved"] == APPS

    assert replay(stream, state) == []


def test_a_group_of_one_is_sent_as_the_plain_event(tmp_path: Path) -> None:
    lines = [line for line in storm_lines() if b'"svc-000"' in line]
    stream = tmp_path / "one.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in lines))

    notes = replay(stream, tmp_path / "state.sqlite")

    oncall = [n for n in notes if "oncall" in n["receivers"]]
    assert [n["kind"] for n in oncall] == ["drift_detected", "drift_resolved"]
    assert oncall[1]["updates"] == oncall[0]["id"]
