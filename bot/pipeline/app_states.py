"""Every app as last seen, with the stored states read from the store decoded only when used.

On a restart the store holds a state per app, and the initial lists replace nearly all of
them within seconds. Decoding all 10,000 first (hundreds of thousands of small objects) and
then dropping them as the lists arrive left the process's memory in pieces: 30 MiB more
resident after the restart than after a first start, for the same apps. So a stored state
stays the text the store holds (one block, given back whole when replaced) until it is read:
the detection of an app's first listed state, a recovery's source lookup, a chat command or
a status page. Iterating the whole mapping decodes what is left.

An unreadable stored state is logged when first read and is then absent, as it was when
every state was decoded at load; its row stays in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping

import orjson

from core.codec import CodecError, app_state_from_dict
from core.model import AppKey, AppState

logger = logging.getLogger(__name__)


class AppStates(MutableMapping[AppKey, AppState]):
    """AppKey -> AppState, in the order first seen; stored states kept as text until read."""

    def __init__(
        self, stored: Mapping[AppKey, AppState | str] | None = None, where: str = ""
    ) -> None:
        self._items: dict[AppKey, AppState | str] = dict(stored or {})
        self._where = where

    def __getitem__(self, key: AppKey) -> AppState:
        value = self._items[key]
        if isinstance(value, AppState):
            return value
        state = self._decode(key, value)
        if state is None:
            raise KeyError(key)
        return state

    def __setitem__(self, key: AppKey, state: AppState) -> None:
        self._items[key] = state

    def __delitem__(self, key: AppKey) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[AppKey]:
        self._decode_all()
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys_unread(self) -> list[AppKey]:
        """Every key, stored states left undecoded (an unreadable one may be among them)."""
        return list(self._items)

    def _decode(self, key: AppKey, text: str) -> AppState | None:
        try:
            state = app_state_from_dict(orjson.loads(text))
        except (CodecError, orjson.JSONDecodeError) as exc:
            logger.warning("skipping unreadable app state %s in %s: %s", key, self._where, exc)
            del self._items[key]
            return None
        self._items[key] = state
        return state

    def _decode_all(self) -> None:
        for key, value in list(self._items.items()):
            if not isinstance(value, AppState):
                self._decode(key, value)
