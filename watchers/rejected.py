"""The value a normalizer returns instead of raising: why an object could not be used."""

from __future__ import annotations

from typing import NamedTuple


class Rejected(NamedTuple):
    """Why an object could not be normalized; the caller reports it and skips the object."""

    reason: str
