"""`python -m tests.transcripts --update [STORY ...]`: rewrite the golden transcripts;
without --update, print them."""

from __future__ import annotations

import argparse
import asyncio

from tests.transcripts.record import record, update
from tests.transcripts.stories import STORIES


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.transcripts")
    parser.add_argument("--update", action="store_true", help="rewrite tests/transcripts/golden")
    parser.add_argument("stories", nargs="*", choices=[[], *STORIES], help="default: all")
    args = parser.parse_args()
    if args.update:
        for path in update(args.stories or None):
            print(f"wrote {path}")
        return
    for story in args.stories or STORIES:
        print(asyncio.run(record(story)))


if __name__ == "__main__":
    main()
