"""Commit links on the known forges, from every form of repository URL, and Flux UI links."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formatters import forge

SHA = "ea8759964626a583667a2bfd08f334ec2070040a"


@pytest.mark.parametrize(
    ("repo", "revision", "expected"),
    [
        (
            "https://github.com/argoproj/argocd-example-apps.git",
            SHA,
            f"https://github.com/argoproj/argocd-example-apps/commit/{SHA}",
        ),
        (
            "git@github.com:argoproj/argocd-example-apps.git",
            SHA,
            f"https://github.com/argoproj/argocd-example-apps/commit/{SHA}",
        ),
        (
            "ssh://git@github.com/stefanprodan/podinfo",
            f"main@sha1:{SHA}",
            f"https://github.com/stefanprodan/podinfo/commit/{SHA}",
        ),
        (
            "https://github.example.com/shop/deploy",
            f"refs/heads/main@sha1:{SHA}",
            f"https://github.example.com/shop/deploy/commit/{SHA}",
        ),
        (
            "https://gitlab.com/group/sub/project.git",
            SHA,
            f"https://gitlab.com/group/sub/project/-/commit/{SHA}",
        ),
        (
            "ssh://git@gitlab.example.com:2222/group/project.git",
            f"main/{SHA}",
            f"https://gitlab.example.com/group/project/-/commit/{SHA}",
        ),
        (
            "https://bitbucket.org/team/repo.git",
            SHA,
            f"https://bitbucket.org/team/repo/commits/{SHA}",
        ),
        (
            "git@bitbucket.org:team/repo.git",
            SHA.upper(),
            f"https://bitbucket.org/team/repo/commits/{SHA}",
        ),
        ("https://gitea.com/org/repo", SHA, f"https://gitea.com/org/repo/commit/{SHA}"),
        ("https://codeberg.org/org/repo.git", SHA, f"https://codeberg.org/org/repo/commit/{SHA}"),
        (
            "https://gitea.internal:3000/org/repo",
            f"{SHA},0.45.27",  # multi-source: the first source's revision
            f"https://gitea.internal/org/repo/commit/{SHA}",
        ),
        ("https://git.example.com/org/repo", SHA, ""),  # not a known forge: no guessed link
        ("https://github.com/argoproj/argocd-example-apps", "6.6.1", ""),  # a chart version
        ("https://github.com/argoproj/argocd-example-apps", "main", ""),  # a branch, no commit
        ("oci://ghcr.io/stefanprodan/manifests/podinfo", f"latest@sha256:{SHA}", ""),
        ("https://github.com/only-owner", SHA, ""),
        ("", SHA, ""),
        ("https://github.com/a/b c", SHA, ""),
        ("javascript:alert(1)//github.com/a/b", SHA, ""),
    ],
)
def test_commit_url(repo: str, revision: str, expected: str) -> None:
    assert forge.commit_url(repo, revision) == expected


@given(st.text(max_size=200), st.text(max_size=100))
def test_any_text_gives_an_https_link_or_nothing(repo: str, revision: str) -> None:
    url = forge.commit_url(repo, revision)
    assert url == "" or (url.startswith("https://") and " " not in url and url.isascii())


@pytest.mark.parametrize(
    ("template", "kind", "expected"),
    [
        (  # Capacitor: a hash route per kind
            "https://capacitor.example.com/#/{kind_lower}/{namespace}/{name}",
            "HelmRelease",
            "https://capacitor.example.com/#/helmrelease/podinfo/podinfo",
        ),
        (  # Headlamp with the Flux plugin: under the cluster's route
            "https://headlamp.example.com/c/{cluster}/flux/{kind_plural}/{namespace}/{name}",
            "Kustomization",
            "https://headlamp.example.com/c/staging/flux/kustomizations/podinfo/podinfo",
        ),
        (  # Weave GitOps: one template per kind, query parameters
            "https://weave.example.com/helm_release?clusterName=Default&name={name}"
            "&namespace={namespace}",
            "HelmRelease",
            "https://weave.example.com/helm_release?clusterName=Default&name=podinfo"
            "&namespace=podinfo",
        ),
        ("https://ui.example.com/{nope}", "HelmRelease", ""),
        ("https://ui.example.com/{name", "HelmRelease", ""),
    ],
)
def test_flux_ui_url(template: str, kind: str, expected: str) -> None:
    assert forge.flux_ui_url(template, kind, "podinfo", "podinfo", "staging") == expected


def test_flux_ui_values_are_url_encoded() -> None:
    url = forge.flux_ui_url("https://ui/{namespace}/{name}", "Kustomization", "a b", "x/../y", "c")
    assert url == "https://ui/a%20b/x%2F..%2Fy"
