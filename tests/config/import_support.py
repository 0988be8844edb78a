"""What the importer tests share: the fixtures as Argo CD's and Flux's docs write them, the
check that every line of an imported config says where it came from, and the receivers
`routes explain` names for an event."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from config.importers.draft import Draft
from config.importers.objects import KubeObject, parse_objects
from config.loader import check_config
from config.route_explain import explain
from config.schema import Config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARGOCD = FIXTURES / "argocd"
FLUX = FIXTURES / "flux"


def objects(path: Path) -> list[KubeObject]:
    return parse_objects(path.read_text(encoding="utf-8"), path.name)


def catalog_with(*patches: Path) -> KubeObject:
    """The catalog's ConfigMap with `kubectl patch --type merge` of each patch's data applied,
    as Argo CD's Getting Started does."""
    (cm,) = objects(ARGOCD / "notifications-catalog-install.yaml")
    data = dict(cm["data"])
    for patch in patches:
        (extra,) = objects(patch)
        data.update(extra["data"])
    return {**cm, "data": data}


def shop_configmap() -> KubeObject:
    return catalog_with(ARGOCD / "notifications-cm-shop-patch.yaml")


def checked(draft: Draft) -> tuple[str, Config]:
    """The draft's text, which must load without errors or warnings, and every line of which
    is a comment or ends with one."""
    text = draft.render()
    for line in text.splitlines():
        commented = line.lstrip().startswith("#") or re.search(r"\S  # \S", line)
        assert commented, f"no comment: {line!r}"
    loaded = check_config(text, "imported.yaml")
    assert [str(w) for w in loaded.warnings] == []
    return text, loaded.config


def receivers_for(config: Config, app: str, kind: str, **fields: Any) -> set[str]:
    """The receivers `routes explain` says an event gets, every field of it given."""
    result = explain(app, fields.pop("cluster", "prod"), kind, config, **fields)[-1]
    assert "depending on" not in result, result
    if "no route takes" in result:
        return set()
    names = result.removeprefix("result: sent to ").split(" (by ")[0]
    return set(names.split(", "))
