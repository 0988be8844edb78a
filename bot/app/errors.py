"""The CLI's own error, apart from the commands, so that importing the CLI loads none of them."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A failure the CLI reports as one line on stderr, with a non-zero exit."""
