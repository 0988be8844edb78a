"""The `driftbot` command line."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("driftbot: not built yet", file=sys.stderr)
    return 2
