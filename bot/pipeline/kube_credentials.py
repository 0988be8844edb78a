"""Kubeconfig credentials that change while driftbot runs.

A cluster reached through a kubeconfig is best given a short-lived token: a `tokenFile` that
something outside driftbot replaces before it expires (a projected service-account token, a
Secret a job refreshes with `kubectl create token`, a mounted file updated by the kubelet), or
an `exec` plugin that issues tokens with an expiry (cloud IAM). kubernetes_asyncio reads both
once, when the kubeconfig is loaded, so without this module the client would go on sending the
first token until it is refused, and every later request of the watch would fail.

`refresh_credentials` installs a hook that kubernetes_asyncio awaits before every request: a
token file is read again when its identity (inode, size, mtime) changed, an exec plugin is run
again once the credential it gave has expired. A file that cannot be read keeps the last token
and is logged once; the request then fails as it would have, and is retried by the watch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import Configuration

logger = logging.getLogger(__name__)

BEARER = "BearerToken"


def _file_identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class TokenFile:
    """The bearer token in a file, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._failing = False

    def __call__(self, configuration: Configuration) -> None:
        try:
            identity = _file_identity(self.path)
            if identity == self._seen:
                return
            token = self.path.read_text().strip()
        except OSError as exc:
            if not self._failing:
                logger.warning(
                    "token file %s cannot be read (%s): keeping the last token",
                    self.path,
                    exc.strerror or type(exc).__name__,
                )
            self._failing = True
            return
        self._failing = False
        self._seen = identity
        if token:
            configuration.api_key[BEARER] = f"Bearer {token}"
            configuration.api_key_prefix.pop(BEARER, None)


class ExecPlugin:
    """An exec credential plugin's token, asked for again once the one it gave has expired
    (the loader keeps it until its `expirationTimestamp`)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    async def __call__(self, configuration: Configuration) -> None:
        if await self._loader.load_from_exec_plugin() and getattr(self._loader, "token", None):
            configuration.api_key[BEARER] = self._loader.token


def token_file_of(user: Any, kubeconfig: str | None) -> Path | None:
    """The kubeconfig user's `tokenFile`, relative paths taken from the kubeconfig's folder;
    None when the user has an inline `token` (which wins, as in kubectl) or no token file."""
    if user is None or "token" in user or "tokenFile" not in user:
        return None
    path = Path(os.path.expanduser(str(user["tokenFile"])))
    if not path.is_absolute() and kubeconfig:
        path = Path(kubeconfig).expanduser().resolve().parent / path
    return path


def refresh_credentials(loader: Any, configuration: Configuration, kubeconfig: str | None) -> None:
    """Install the hook for the loaded kubeconfig's user, if its credential can change."""
    user = getattr(loader, "_user", None)
    if user is None:
        return
    if "exec" in user:
        configuration.refresh_api_key_hook = ExecPlugin(loader)
        return
    path = token_file_of(user, kubeconfig)
    if path is not None:
        hook = TokenFile(path)
        hook(configuration)
        configuration.refresh_api_key_hook = hook
