"""Who wrote the commit a deploy or rollback is about, and what its subject says.

"checkout deployed 1a2b3c4" tells an engineer little and a product manager nothing;
"after 'Bump checkout to 1.4' by alice" tells both. The facts come from two places:

- Argo CD: the API server's revision metadata,
  `GET /api/v1/applications/{name}/revisions/{revision}/metadata` (query `appNamespace`,
  `project`, and for a multi-source app `sourceIndex` and `versionId`), which answers
  `RevisionMetadata` `{author, date, tags, message, signatureInfo}`. Asked once per
  (cluster, namespace, app, revision) and kept in a bounded LRU; a request never takes more
  than `timeout` seconds (default 2), and any failure is None (logged at debug).
- Flux: source-controller announces each new artifact of a GitRepository with an Event
  (reason `NewArtifact`, or `Succeeded` on recovery) whose message is
  "stored artifact for commit '<subject>'" and whose `<group>/revision` annotation is the
  artifact revision (`main@sha1:<hash>`), the same revision the Kustomization later applies.
  `FluxCommitSubjects` remembers the subjects seen, keyed by (cluster, commit hash).

`CommitDescriber.describe(event)` picks the source by the event's tool; `enrich(event)` returns
the event with `commit_author` and `commit_subject` filled in, for the kinds in DESCRIBED_KINDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from core.model import EventKind, GitOpsEvent, Hint, Tool

if TYPE_CHECKING:
    from watchers.argocd_api import ArgoCDApi

__all__ = [
    "DESCRIBED_KINDS",
    "CommitDescriber",
    "CommitInfo",
    "FluxCommitSubjects",
    "RevisionMetadataCache",
    "commit_info_from_metadata",
    "parse_new_artifact",
    "revision_key",
]

logger = logging.getLogger(__name__)

DESCRIBED_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.DEPLOY_STARTED,
        EventKind.DEPLOY_SUCCEEDED,
        EventKind.DEPLOY_FAILED,
        EventKind.ROLLBACK_SUCCEEDED,
        EventKind.ROLLBACK_FAILED,
    }
)
"""Event kinds that are about one commit, and so get its author and subject."""

MAX_SUBJECT = 200
"""Longest subject kept (characters); longer ones end with an ellipsis."""

_HASH = re.compile(r"(?:sha1:|sha256:)?([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
_GIT_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_NEW_ARTIFACT = re.compile(r"stored artifact for commit '(?P<subject>.*)'", re.DOTALL)
_REFERENCE = re.compile(
    r"(?:\S+[@/])?(?:sha1:|sha256:)?(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})|\S+@\S+:[0-9a-fA-F]+"
)
"""What source-controller writes instead of a subject when it has no commit message: the
commit reference (`main@sha1:<hash>`, `sha1:<hash>`, a bare hash)."""
_FLUX_SUBJECT_REASONS = frozenset({"NewArtifact", "Succeeded"})


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The commit a deploy is about: its author (a name) and its subject (first line)."""

    author: str = ""
    subject: str = ""


def _subject(message: str) -> str:
    """The first non-empty line of a commit message, bounded."""
    for line in message.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= MAX_SUBJECT else line[: MAX_SUBJECT - 1] + "…"
    return ""


def _author_name(author: str) -> str:
    """`Alice Doe <alice@example.com>` -> `Alice Doe`; an address alone is kept."""
    name, bracket, _ = author.partition("<")
    name = name.strip()
    if name or not bracket:
        return name or author.strip()
    return author.strip().strip("<>").strip()


def commit_info_from_metadata(body: object) -> CommitInfo | None:
    """A RevisionMetadata body to CommitInfo; None if it says nothing usable (pure)."""
    if not isinstance(body, Mapping):
        return None
    author = body.get("author")
    message = body.get("message")
    info = CommitInfo(
        author=_author_name(author) if isinstance(author, str) else "",
        subject=_subject(message) if isinstance(message, str) else "",
    )
    return info if info.author or info.subject else None


def parse_new_artifact(message: object) -> str | None:
    """The commit subject in source-controller's "stored artifact for commit '<subject>'", or
    None if the message is not one, or names only a commit reference (pure)."""
    if not isinstance(message, str):
        return None
    match = _NEW_ARTIFACT.fullmatch(message.strip())
    if match is None:
        return None
    subject = _subject(match.group("subject"))
    if not subject or _REFERENCE.fullmatch(subject):
        return None
    return subject


def revision_key(revision: str) -> str:
    """The commit hash in a revision, however Flux or Argo CD spell it (`main@sha1:<h>`,
    `sha1:<h>`, `main/<h>`, `<h>`), lower case; else the revision itself (pure)."""
    text = revision.strip()
    match = _HASH.search(text)
    return match.group(1).lower() if match else text


# -- Flux -----------------------------------------------------------------------------------------


class FluxCommitSubjects:
    """Subjects of commits that source-controller reported, keyed by (cluster, commit hash)."""

    def __init__(self, max_entries: int = 2048) -> None:
        self._subjects: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._subjects)

    def remember(self, cluster: str, revision: str, subject: str) -> None:
        key = (cluster, revision_key(revision))
        self._subjects[key] = subject
        self._subjects.move_to_end(key)
        while len(self._subjects) > self._max:
            self._subjects.popitem(last=False)

    def observe_hint(self, hint: Hint) -> bool:
        """Learn from a source-controller Event or notification; True if it named a subject."""
        if hint.tool is not Tool.FLUX or hint.reason not in _FLUX_SUBJECT_REASONS:
            return False
        if not hint.revision:
            return False
        subject = parse_new_artifact(hint.message)
        if subject is None:
            return False
        self.remember(hint.cluster, hint.revision, subject)
        return True

    def subject(self, cluster: str, revision: str) -> str | None:
        if not revision:
            return None
        key = (cluster, revision_key(revision))
        found = self._subjects.get(key)
        if found is not None:
            self._subjects.move_to_end(key)
        return found


# -- Argo CD --------------------------------------------------------------------------------------


class _Unknown:
    """A failure worth asking again about later (timeout, connection, 5xx, auth)."""


_UNKNOWN: Final = _Unknown()
_MetadataKey = tuple[str, str, str, int | None]
_Answer = CommitInfo | None | _Unknown
_DEFINITE_MISS = frozenset({400, 404, 412})
"""Statuses that will not change by asking again: the revision or app is not there."""


class RevisionMetadataCache:
    """Revision metadata from one Argo CD API server, fetched once per revision.

    Answers (and definite misses such as a 404) are kept in an LRU of `max_entries`; transient
    failures are not, so the next event asks again. Concurrent callers for the same revision
    share one request, run in a named task that `close()` cancels.
    """

    def __init__(self, api: ArgoCDApi, *, max_entries: int = 1024, timeout: float = 2.0) -> None:
        self.api = api
        self.timeout = timeout
        self.requests = 0
        """HTTP requests made (for metrics and tests)."""
        self._max = max_entries
        self._answers: OrderedDict[_MetadataKey, CommitInfo | None] = OrderedDict()
        self._inflight: dict[_MetadataKey, asyncio.Task[_Answer]] = {}

    async def get(
        self,
        app: str,
        revision: str,
        *,
        app_namespace: str = "",
        project: str = "",
        source_index: int | None = None,
        version_id: int | None = None,
    ) -> CommitInfo | None:
        """The author and subject of `revision` as `app` sees it; None if unknown or failing."""
        if not app or not revision:
            return None
        key: _MetadataKey = (app_namespace, app, revision, source_index)
        if key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        task = self._inflight.get(key)
        if task is None:
            query: list[tuple[str, str]] = []
            if app_namespace:
                query.append(("appNamespace", app_namespace))
            if project:
                query.append(("project", project))
            if source_index is not None:
                query.append(("sourceIndex", str(source_index)))
            if version_id is not None:
                query.append(("versionId", str(version_id)))
            task = asyncio.create_task(
                self._fetch(key, query),
                name=f"argocd-revision-metadata:{self.api.cluster}:{app}@{revision[:12]}",
            )
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._settle, key))
        try:
            answer = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current and current.cancelling()):
                return None  # close() stopped the request, not our caller
            raise
        except Exception as exc:
            logger.debug(
                "revision metadata of %s/%s@%s failed",
                self.api.cluster,
                app,
                revision,
                exc_info=exc,
            )
            return None
        return None if isinstance(answer, _Unknown) else answer

    def _settle(self, key: _MetadataKey, task: asyncio.Task[_Answer]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        if isinstance(answer, _Unknown):
            return
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self._max:
            self._answers.popitem(last=False)

    async def _fetch(self, key: _MetadataKey, query: list[tuple[str, str]]) -> _Answer:
        # aiohttp and the API client load only where an Argo CD API is configured: a replay or
        # a service without one never asks for revision metadata.
        import aiohttp

        from watchers.argocd_client import ArgoCDApiError

        _, app, revision, _ = key
        where = f"{self.api.cluster}/{app}@{revision}"
        self.requests += 1
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.api.request(
                    ("api", "v1", "applications", app, "revisions", revision, "metadata"),
                    query,
                    limits=aiohttp.ClientTimeout(total=self.timeout),
                )
                try:
                    raw = await response.read()
                finally:
                    response.release()
        except ArgoCDApiError as exc:
            logger.debug("revision metadata of %s: %s", where, exc)
            return None if exc.status in _DEFINITE_MISS else _UNKNOWN
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.debug("revision metadata of %s: %r", where, exc)
            return _UNKNOWN
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            logger.debug("revision metadata of %s is not JSON", where)
            return None
        return commit_info_from_metadata(body)

    async def close(self) -> None:
        """Cancel requests still running and wait for them."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- both -----------------------------------------------------------------------------------------


class CommitDescriber:
    """Commit author and subject for deploy and rollback events, from whichever tool sent them.

    `argocd` maps a cluster name to the revision metadata of its Argo CD API server (clusters
    without one get no Argo CD descriptions); `flux` learns from hints (`observe_hint`).
    """

    def __init__(
        self,
        argocd: Mapping[str, RevisionMetadataCache] | None = None,
        flux: FluxCommitSubjects | None = None,
    ) -> None:
        self.argocd = dict(argocd or {})
        self.flux = flux if flux is not None else FluxCommitSubjects()

    @classmethod
    def from_apis(
        cls, apis: Iterable[ArgoCDApi], flux: FluxCommitSubjects | None = None, **cache_options: Any
    ) -> CommitDescriber:
        """A describer that asks each API server about the apps of its cluster."""
        caches = {api.cluster: RevisionMetadataCache(api, **cache_options) for api in apis}
        return cls(caches, flux)

    def observe_hint(self, hint: Hint) -> bool:
        """Feed every hint: source-controller's new-artifact reports teach Flux subjects."""
        return self.flux.observe_hint(hint)

    async def describe(self, event: GitOpsEvent) -> CommitInfo | None:
        """The commit `event` is about, if it is of a DESCRIBED_KINDS kind and it is known."""
        if event.kind not in DESCRIBED_KINDS or not event.revision:
            return None
        if event.tool is Tool.FLUX:
            subject = self.flux.subject(event.cluster, event.revision)
            return CommitInfo(subject=subject) if subject else None
        cache = self.argocd.get(event.cluster)
        # Only Git sources have commit metadata; a Helm source's revision is a chart version.
        if cache is None or not _GIT_SHA.fullmatch(event.revision):
            return None
        return await cache.get(
            event.name, event.revision, app_namespace=event.namespace, project=event.project
        )

    async def enrich(self, event: GitOpsEvent) -> GitOpsEvent:
        """`event` with commit_author and commit_subject filled in where they are known."""
        if event.commit_author or event.commit_subject:
            return event
        info = await self.describe(event)
        if info is None:
            return event
        return dataclasses.replace(event, commit_author=info.author, commit_subject=info.subject)

    async def close(self) -> None:
        for cache in self.argocd.values():
            await cache.close()
