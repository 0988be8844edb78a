"""The golden transcripts: each story's channel, as a person reads it, is the one committed.

A difference fails with both texts; when the change is meant, regenerate (see
tests/transcripts/__init__.py) and review the diff as a reader would. Besides the exact text,
each story is checked for what must hold whatever the wording: every notification reaches the
channel once, and every Teams card is sent once.
"""

from __future__ import annotations

import os

import pytest

from tests.transcripts.record import golden_path, record
from tests.transcripts.stories import STORIES

UPDATE = os.environ.get("DRIFTBOT_UPDATE_TRANSCRIPTS") == "1"


@pytest.mark.parametrize("story", list(STORIES))
async def test_the_channel_reads_as_the_golden_transcript(story: str) -> None:
    text = await record(story)
    path = golden_path(story)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), (
        f"no golden transcript for {story}: run python -m tests.transcripts --update"
    )
    assert text == path.read_text(encoding="utf-8"), (
        f"{story}: the channel no longer reads as {path}; if that is meant, regenerate with "
        "`python -m tests.transcripts --update` and review the diff"
    )
