"""Who reads the status page, and what they may see.

`server.status.auth` decides how a reader is known:
- `none`: nobody is asked; the page is for a cluster-internal Service (or a port-forward);
- `basic`: HTTP Basic with users and bcrypt hashes (`user:$2y$...` lines, as `htpasswd -B`
  writes them) from a secret, an environment variable or a mounted file;
- `proxy`: a proxy in front (oauth2-proxy, an ingress with external auth) names the reader in
  a header, believed only from the configured proxy addresses.

A known reader sees what `rbac.grants` give them (all apps when no grants are listed), the
same grants chat answers keep to. A bcrypt check costs a few hundred milliseconds on purpose:
it runs off the event loop, and a password checked once is remembered (as a hash) for a few
minutes, so the page's live updates do not pay it again and again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from aiohttp import web

from config.schema import RbacConfig, StatusConfig

logger = logging.getLogger(__name__)

REALM = "driftbot status"
REMEMBER_SECONDS = 300.0
MAX_REMEMBERED = 1024
MAX_HEADER = 256
"""Longest user name or groups header read from a proxy."""


class StatusConfigError(ValueError):
    """The page's sign-in cannot be set up (a secret missing or malformed); one sentence that
    never shows the secret."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is reading: a signed-in user and their groups."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not let in, as an HTTP answer."""

    status: int
    text: str
    challenge: bool = False
    """Ask the browser for a user and password (401 with WWW-Authenticate: Basic)."""


Anyone = None
"""The reader when `auth` is `none`: not known, and not scoped."""


def parse_users(text: str, where: str) -> dict[str, bytes]:
    """`user:hash` lines (blank lines and `#` comments skipped) -> {user: hash}; a bad line is
    a StatusConfigError naming its number, never its content."""
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise StatusConfigError(
                f"{where}, line {number}: expected 'user:bcrypt-hash' (htpasswd -B writes it)"
            )
        users[user] = hashed.encode("ascii", "replace")
    if not users:
        raise StatusConfigError(f"{where} holds no 'user:bcrypt-hash' line")
    return users


class BasicUsers:
    """The users of `auth: basic`, from an environment variable or a file (re-read when the
    file changes, so a rotated secret takes effect without a restart)."""

    def __init__(self, config: StatusConfig, environ: Mapping[str, str] = os.environ) -> None:
        basic = config.basic
        if basic is None:
            raise StatusConfigError("server.status.auth is basic: set server.status.basic")
        self._file = Path(basic.users_file) if basic.users_file else None
        self._stamp: float | None = None
        if basic.users_env is not None:
            text = environ.get(basic.users_env, "")
            if not text.strip():
                raise StatusConfigError(
                    f"server.status.basic.users_env names {basic.users_env}, which is not set"
                )
            self._users = parse_users(text, f"${basic.users_env}")
        else:
            self._users = self._read()

    def _read(self) -> dict[str, bytes]:
        assert self._file is not None
        try:
            self._stamp = self._file.stat().st_mtime
            return parse_users(self._file.read_text(encoding="utf-8"), str(self._file))
        except OSError as exc:
            raise StatusConfigError(
                f"server.status.basic.users_file {self._file}: {exc.strerror or exc}"
            ) from None

    def current(self) -> dict[str, bytes]:
        if self._file is not None:
            try:
                changed = self._file.stat().st_mtime != self._stamp
                if changed:
                    self._users = self._read()
            except (OSError, StatusConfigError) as exc:
                logger.warning("keeping the status page users read before: %s", exc)
        return self._users


_DUMMY_HASH = bcrypt.hashpw(b"driftbot", bcrypt.gensalt(rounds=4))


class Gate:
    """Decides, per request, who reads and whether they may (see the module docstring)."""

    def __init__(
        self,
        config: StatusConfig,
        environ: Mapping[str, str] = os.environ,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._monotonic = monotonic
        self._users = BasicUsers(config, environ) if config.auth == "basic" else None
        proxy = config.proxy
        self._trusted = (
            [ipaddress.ip_network(n) for n in proxy.trusted] if proxy is not None else []
        )
        self._remembered: dict[bytes, float] = {}

    async def reader(self, request: web.Request, *, badge: bool = False) -> Reader | Refusal | None:
        """The reader of `request`: None when no sign-in applies (auth none, or a public
        badge), a Reader, or a Refusal to answer with."""
        if self.config.auth == "none" or (badge and self.config.public_badges):
            return Anyone
        if self.config.auth == "proxy":
            return self._proxied(request)
        return await self._basic(request)

    def _proxied(self, request: web.Request) -> Reader | Refusal:
        proxy = self.config.proxy
        assert proxy is not None
        peer = request.remote or ""
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return Refusal(403, "This page is read through the sign-in proxy only.")
        if not any(address in network for network in self._trusted):
            logger.warning("status page: refused a request from %s, not a trusted proxy", peer)
            return Refusal(403, "This page is read through the sign-in proxy only.")
        user = request.headers.get(proxy.user_header, "").strip()
        if not user or len(user) > MAX_HEADER or not user.isprintable():
            return Refusal(401, "The sign-in proxy did not say who you are.")
        groups: tuple[str, ...] = ()
        if proxy.groups_header:
            raw = request.headers.get(proxy.groups_header, "")[: MAX_HEADER * 8]
            groups = tuple(g.strip() for g in raw.split(",") if g.strip())
        return Reader(user, groups)

    async def _basic(self, request: web.Request) -> Reader | Refusal:
        assert self._users is not None
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return Refusal(401, "Sign in to read the driftbot status page.", challenge=True)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Refusal(401, "Sign in to read the driftbot status page.", challenge=True)
        user, sep, password = decoded.partition(":")
        if not sep:
            return Refusal(401, "Sign in to read the driftbot status page.", challenge=True)
        hashed = self._users.current().get(user)
        if await self._checks(user, password, hashed):
            return Reader(user)
        logger.warning("status page: a wrong user or password")
        return Refusal(401, "Sign in to read the driftbot status page.", challenge=True)

    async def _checks(self, user: str, password: str, hashed: bytes | None) -> bool:
        token = hashlib.sha256(
            b"\0".join([user.encode(), password.encode(), hashed or b""])
        ).digest()
        now = self._monotonic()
        seen = self._remembered.get(token)
        if seen is not None and now - seen < REMEMBER_SECONDS:
            return True
        # An unknown user costs a bcrypt check too, so timing does not tell who exists.
        ok = await asyncio.to_thread(_check, password.encode(), hashed or _DUMMY_HASH)
        ok = ok and hashed is not None
        if ok:
            if len(self._remembered) >= MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[token] = now
        return ok


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a malformed hash in the secret
        return False


def may_see(rbac: RbacConfig, reader: Reader | None, cluster: str, namespace: str) -> bool:
    """Scoping: an unknown reader (auth none, public badges) is not scoped."""
    if reader is None:
        return True
    return rbac.sees(reader.user, reader.groups, cluster, namespace)
