"""A flapping app through `driftbot replay`: one flapping notice instead of a message per flip."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app.replay import replay_file
from config.schema import Config
from tests import builders_argocd as argo
from tests.bot.test_storm import app
from watchers.replay import dump_line

CONFIG = Config.model_validate(
    {
        "receivers": [{"name": "oncall", "console": {"format": "jsonl"}}],
        "routes": [{"receivers": ["oncall"], "grace": "0s"}],
    }
)


def flapping_lines() -> list[bytes]:
    """checkout goes OutOfSync and Synced again every 20 s for 10 min, then stays Synced."""
    lines = [dump_line(argo.T0, "prod", "ADDED", app("checkout", "Synced", argo.T0))]
    for step in range(1, 31):
        at = argo.T0 + timedelta(seconds=20 * step)
        sync = "OutOfSync" if step % 2 else "Synced"
        lines.append(dump_line(at, "prod", "MODIFIED", app("checkout", sync, at)))
    return lines


def replay(path: Path, state: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    replay_file(path, CONFIG, state, None, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_flapping_app_is_reported_once_then_once_more_when_it_settles(tmp_path: Path) -> None:
    stream = tmp_path / "flap.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in flapping_lines()))
    state = tmp_path / "state.sqlite"

    notes = replay(stream, state)

    kinds = [n["kind"] for n in notes]
    assert kinds.count("flapping") == 1
    assert len(notes) <= 5, kinds
    notice = next(n for n in notes if n["kind"] == "flapping")
    assert notice["name"] == "checkout"
    assert notice["severity"] == "warning"
    last = notes[-1]
    assert last["kind"] == "drift_resolved"
    assert last["updates"] == notice["id"]

    assert replay(stream, state) == []


def test_without_damping_every_flip_is_told(tmp_path: Path) -> None:
    stream = tmp_path / "flap.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in flapping_lines()))
    config = Config.model_validate(
        {
            "receivers": [{"name": "oncall", "console": {"format": "jsonl"}}],
            "routes": [
                {"receivers": ["oncall"], "grace": "0s", "group_wait": "0s", "group_interval": "0s"}
            ],
            "policy": {"flap": {"flips": 0}},
        }
    )
    out = io.StringIO()
    replay_file(stream, config, tmp_path / "s.sqlite", None, out)
    assert len(out.getvalue().splitlines()) == 30
