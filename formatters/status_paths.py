"""Where each page of the status page lives, so that the page's own links, its JSON, and the
alerts, digests and chat answers that point at it all spell the same address.

Every path part is URL-encoded whole (a `/` in a name cannot open another path). An absolute
link needs `server.public_url`: without it there is no address people could open, and the
chat surfaces show no link at all. Pure: text in, text out.
"""

from __future__ import annotations

from urllib.parse import quote


def _q(part: str) -> str:
    # A lone surrogate has no UTF-8: it becomes "?" rather than failing the whole message.
    return quote(part, safe="", errors="replace")


def cluster_path(cluster: str) -> str:
    return f"/status/{_q(cluster)}"


def app_path(cluster: str, namespace: str, name: str) -> str:
    return f"/status/{_q(cluster)}/{_q(namespace)}/{_q(name)}"


def badge_path(cluster: str, namespace: str, name: str) -> str:
    return f"/badge/{_q(cluster)}/{_q(namespace)}/{_q(name)}.svg"


def json_path(cluster: str, namespace: str, name: str) -> str:
    return f"/api/v1/apps/{_q(cluster)}/{_q(namespace)}/{_q(name)}"


def absolute(public_url: str, path: str) -> str:
    """`path` under `public_url` (`https://driftbot.example.com`), or "" without one."""
    base = public_url.rstrip("/")
    return base + path if base else ""


def app_page_url(public_url: str, cluster: str, namespace: str, name: str) -> str:
    """The page of one app under `public_url`, or "" when there is no public address."""
    if not (cluster and namespace and name):
        return ""
    return absolute(public_url, app_path(cluster, namespace, name))


def environment_page_url(public_url: str, cluster: str) -> str:
    """The page of one environment (cluster) under `public_url`, or ""."""
    return absolute(public_url, cluster_path(cluster)) if cluster else ""
