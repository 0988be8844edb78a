"""Golden channel transcripts: what a person reads in Slack and Teams after a story.

Each story (tests/transcripts/stories.py) is a recorded stream replayed with `driftbot replay`'s
code and a routing file written the way people write one (critical events to the team with a
mention and `continue: true`, then everything to the same Slack channel and Teams webhook),
against the fake Slack and the fake Teams webhook. The fakes apply edits and threads; the
transcript is the channel as it reads afterwards (tests/fakes/channel_view.py), committed under
tests/transcripts/golden/ and compared by tests/transcripts/test_transcripts.py.

When the wording changes on purpose, regenerate them and read the diff as a reader would:

    .venv/bin/python -m tests.transcripts --update      # or
    DRIFTBOT_UPDATE_TRANSCRIPTS=1 .venv/bin/pytest tests/transcripts
"""
