"""Short forms of revisions for headlines: `1a2b3c4`, `main@67e2c98`, `6.6.0`.

Argo CD reports a full Git SHA (or a Helm chart version); Flux reports `<ref>@sha1:<sha>`
(older releases `<ref>/<sha>`), OCI artifacts `<tag>@sha256:<digest>`, Helm charts a version.
People recognise a commit by its first seven hex digits and a branch by its name.
"""

from __future__ import annotations

import re

from formatters.escape import one_line, truncate

SHORT_SHA = 7
MAX_SHORT = 40
"""Longest short form: anything longer is cut with an ellipsis."""

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_ALGO_DIGEST = re.compile(r"(?P<algo>sha1|sha256|sha384|sha512|blake3):(?P<hex>[0-9a-fA-F]{12,})")
_REF_AT_DIGEST = re.compile(r"(?P<ref>.+)@(?P<digest>[^@]+)")
_LEGACY_REF_SLASH_SHA = re.compile(r"(?P<ref>.+)/(?P<hex>[0-9a-fA-F]{40})")


def short_digest(text: str) -> str:
    """`sha1:67e2c98a…` -> `67e2c98`; `sha256:ab12…` -> `sha256:ab12cd3`; a full SHA -> 7 hex."""
    match = _ALGO_DIGEST.fullmatch(text)
    if match:
        short = match["hex"][:SHORT_SHA].lower()
        return short if match["algo"] == "sha1" else f"{match['algo']}:{short}"
    if _FULL_SHA.fullmatch(text):
        return text[:SHORT_SHA].lower()
    return text


_BUILD_DIGEST = re.compile(r"(?P<version>\d+\.\d+\.\d+[^+\s]*)\+[0-9a-f]{12}")


def short_version(revision: str) -> str:
    """`short_revision`, and a chart version without the `+<digest>` build metadata Flux adds
    to charts built from a Git or OCI source (`6.6.1+0cc9a8446c95` -> `6.6.1`)."""
    text = short_revision(revision)
    match = _BUILD_DIGEST.fullmatch(text)
    return match["version"] if match else text


def short_revision(revision: str) -> str:
    """A revision as people read it in a headline (pure; never raises)."""
    text = one_line(revision)
    if not text:
        return ""
    if "," in text:  # Argo CD multi-source apps: one revision per source
        parts = [short_revision(part) for part in text.split(",") if part.strip()]
        return truncate(", ".join(parts), MAX_SHORT)
    match = _REF_AT_DIGEST.fullmatch(text)
    if match and _ALGO_DIGEST.fullmatch(match["digest"]):
        return truncate(f"{match['ref']}@{short_digest(match['digest'])}", MAX_SHORT)
    match = _LEGACY_REF_SLASH_SHA.fullmatch(text)
    if match:
        return truncate(f"{match['ref']}@{match['hex'][:SHORT_SHA].lower()}", MAX_SHORT)
    return truncate(short_digest(text), MAX_SHORT)
