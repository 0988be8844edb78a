"""The shape of an audit log entry as the pure stages read it: the store's `AuditEntry` has
it, and the chat answers and the status page's timeline take anything that has it, so neither
imports the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from core.model import AppKey


class AuditRecord(Protocol):
    """One audit log entry: when, who, what, about which app, and the action's details."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def app(self) -> AppKey | None: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...
