"""Routes with names through a reload: open alerts belong to the receivers they were sent to,
so routes reordered, inserted or renamed in a reload keep them (a recovery still edits the
alert it ends); a receiver removed in a reload has its open alerts closed with a note in the
audit log, not left waiting for a recovery that can no longer reach it."""

from __future__ import annotations

from tests import scenarios
from tests.bot.test_reload import RECEIVERS, Harness, _rewrite, harness

__all__ = ["harness"]

NAMED = RECEIVERS + (
    "routes:\n"
    "  - {name: everything-to-a, receivers: [a], continue: true}\n"
    "  - {name: everything-to-b, receivers: [b]}\n"
)
REORDERED = RECEIVERS + (
    "routes:\n"
    "  - {name: nothing-yet, match: {cluster: nowhere}, receivers: [a]}\n"
    "  - {name: b-first, receivers: [b], continue: true}\n"
    "  - {name: then-a, receivers: [a]}\n"
)
WITHOUT_B = "receivers:\n  - {name: a, console: {format: jsonl}}\nroutes:\n  - receivers: [a]\n"


async def announce(harness: Harness) -> set[str]:
    """The first part of the demo, through routes that send everything to a and b: the ids of
    what was announced (drift on checkout among them)."""
    _rewrite(harness.path, NAMED)
    assert (await harness.reloader.reload()) is not None
    await harness.replay(scenarios.demo_lines()[:9])
    first = harness.told()
    assert {r for note in first for r in note["receivers"]} == {"a", "b"}
    assert harness.pipeline.policy_state.open
    return {note["id"] for note in first}


async def test_reordered_inserted_and_renamed_routes_keep_the_open_alerts(
    harness: Harness,
) -> None:
    before = await announce(harness)
    open_before = {(a.route, a.event.id) for a in harness.pipeline.policy_state.open.values()}
    _rewrite(harness.path, REORDERED)
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    after = {(a.route, a.event.id) for a in harness.pipeline.policy_state.open.values()}
    assert after == open_before
    await harness.replay(scenarios.demo_lines()[9:14])
    updates = [note for note in harness.told() if note.get("updates") in before]
    # the recovery updates the alert in both receivers it went to
    assert {(note["kind"], r) for note in updates for r in note["receivers"]} == {
        ("drift_resolved", "a"),
        ("drift_resolved", "b"),
    }


async def test_a_removed_receivers_open_alerts_are_closed_with_a_note(harness: Harness) -> None:
    await announce(harness)
    on_b = [a for a in harness.pipeline.policy_state.open.values() if a.route == "b"]
    assert on_b
    _rewrite(harness.path, WITHOUT_B)
    result = await harness.reloader.reload()
    assert result is not None and result.removed == ("b",)
    assert all(a.route == "a" for a in harness.pipeline.policy_state.open.values())
    closed = [e for e in await harness.store.audit_log() if e.action == "closed"]
    assert sorted(e.detail["alert"] for e in closed) == sorted(a.event.id for a in on_b)
    assert {e.detail["note"] for e in closed} == {"closed: receiver b is no longer in the config"}
    assert {e.app for e in closed} == {a.event.key for a in on_b}
    await harness.replay(scenarios.demo_lines()[9:14])
    assert all(note["receivers"] == ["a"] for note in harness.told())
