"""What acting can fail with: one sentence for the person who asked, and whether the tool
refused it (a precondition) or driftbot could not get through (access, network)."""

from __future__ import annotations


class ActionError(Exception):
    """The action was not done; `str()` is a sentence for chat. `status` is the HTTP status
    of the refusal when there was one (403: driftbot's own access)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
