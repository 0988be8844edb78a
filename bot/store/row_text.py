"""How values are written in the store's rows: JSON text (as core.codec encodes it), app keys
and alert keys as JSON lists, times as RFC 3339. Shared by every table; pure.
"""

from __future__ import annotations

from datetime import datetime

from core.codec import alert_key_to_list, app_key_to_list, dumps, parse_time
from core.model import AppKey
from core.policy import AlertKey


def to_text(value: object) -> str:
    return dumps(value)


def key_text(key: AppKey) -> str:
    return to_text(app_key_to_list(key))


def alert_key_text(key: AlertKey) -> str:
    """Alerts of the default route keep the key text of stores written before routes had
    state of their own."""
    route, app, kind = key
    if not route:
        return to_text([app_key_to_list(app), str(kind)])
    return to_text(alert_key_to_list(key))


def time_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)
