"""Links to a commit on the forge that hosts a Git repository, and to a Flux UI page.

A deploy, drift or rollback names a revision; on GitHub, GitLab, Bitbucket Cloud and Gitea (and
its fork Forgejo) that revision has a page people can open. The repository URL comes in any form
Git accepts: `https://host/owner/repo(.git)`, `ssh://git@host[:port]/owner/repo(.git)` or
`git@host:owner/repo(.git)`; the page is always https on the same host, without port or user.

Which forge a host runs is read from its name: github.com and hosts named `github.*`
(Enterprise Server), gitlab.com and hosts with `gitlab` in their name, bitbucket.org, and
gitea.com, codeberg.org and hosts with `gitea` or `forgejo` in their name. Anything else gets
no link rather than a guessed one. Pure: text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Formatter
from urllib.parse import quote, urlsplit

from formatters.escape import one_line

_SCP_LIKE = re.compile(r"(?:(?P<user>[^@/\s]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s][^\s]*)")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_FLUX_REVISION = re.compile(r"(?:.+[@/])?(?:sha1:)?(?P<sha>[0-9a-fA-F]{40})")

_COMMIT_PATHS = {
    "github": "{repo}/commit/{sha}",
    "gitlab": "{repo}/-/commit/{sha}",
    "bitbucket": "{repo}/commits/{sha}",
    "gitea": "{repo}/commit/{sha}",
}


def forge_of(host: str) -> str:
    """`github`, `gitlab`, `bitbucket`, `gitea`, or "" for a host not known to be a forge."""
    host = host.lower()
    if host == "github.com" or host.startswith("github."):
        return "github"
    if "gitlab" in host:
        return "gitlab"
    if host == "bitbucket.org":
        return "bitbucket"
    if host in ("gitea.com", "codeberg.org") or "gitea" in host or "forgejo" in host:
        return "gitea"
    return ""


def repo_web_url(repo_url: str) -> tuple[str, str]:
    """(forge, `https://host/owner/repo`) of a Git remote URL, or ("", "") when not a forge."""
    text = one_line(repo_url)
    if not text or " " in text:
        return "", ""
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname or ""
        except ValueError:
            return "", ""
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return "", ""
        path = parts.path
    else:
        match = _SCP_LIKE.fullmatch(text)
        if match is None:
            return "", ""
        host, path = match["host"], match["path"]
    forge = forge_of(host)
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    if forge == "" or path.count("/") < 1 or not re.fullmatch(r"[\w.~/-]+", path):
        return "", ""
    return forge, f"https://{host.lower()}/{path}"


def commit_sha(revision: str) -> str:
    """The commit hash in a revision (`<sha>`, `main@sha1:<sha>`, `main/<sha>`), else ""."""
    text = one_line(revision).split(",")[0].strip()  # multi-source: the first source's
    if _COMMIT.fullmatch(text) and len(text) in (40, 64):
        return text.lower()
    match = _FLUX_REVISION.fullmatch(text)
    return match["sha"].lower() if match else ""


def commit_url(repo_url: str, revision: str) -> str:
    """The forge page of `revision` in `repo_url`, or "" when either is not known."""
    sha = commit_sha(revision)
    if not sha:
        return ""
    forge, repo = repo_web_url(repo_url)
    if not forge:
        return ""
    return "https://" + _COMMIT_PATHS[forge].format(repo=repo[len("https://") :], sha=sha)


FLUX_UI_FIELDS = ("cluster", "namespace", "name", "kind", "kind_lower", "kind_plural")
"""The placeholders a Flux UI link template may use."""


def template_fields(template: str) -> list[str]:
    """The placeholder names in `template` (ValueError when its braces are malformed)."""
    return [field for _, field, _, _ in Formatter().parse(template) if field is not None]


def flux_ui_url(template: str, kind: str, namespace: str, name: str, cluster: str) -> str:
    """`template` with its placeholders filled, each value URL-encoded (pure).

    `{kind}` is the Flux kind (`HelmRelease`), `{kind_lower}` `helmrelease`, `{kind_plural}`
    `helmreleases`; a template that names anything else gives "".
    """
    values: Mapping[str, str] = {
        "cluster": cluster,
        "namespace": namespace,
        "name": name,
        "kind": kind,
        "kind_lower": kind.lower(),
        "kind_plural": kind.lower() + "s",
    }
    try:
        if any(field not in values for field in template_fields(template)):
            return ""
        return template.format(**{k: quote(v, safe="") for k, v in values.items()})
    except (ValueError, IndexError, KeyError):
        return ""
