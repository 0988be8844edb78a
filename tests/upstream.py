"""The upstream fixtures (real CRDs and examples from Argo CD and Flux), found and loaded once.

They ship in tests/fixtures; $DRIFTBOT_FIXTURES or ../shared/fixtures are used instead when set
or when tests/fixtures is missing.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import yaml

_ROOT = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    """$DRIFTBOT_FIXTURES, else tests/fixtures, else ../shared/fixtures."""
    for candidate in (
        Path(os.environ["DRIFTBOT_FIXTURES"]) if os.environ.get("DRIFTBOT_FIXTURES") else None,
        _ROOT / "tests" / "fixtures",
        _ROOT.parent / "shared" / "fixtures",
    ):
        if candidate is not None and (candidate / "argocd").is_dir():
            return candidate
    raise FileNotFoundError("upstream fixtures not found: set DRIFTBOT_FIXTURES")


@functools.cache
def _load(relpath: str) -> Any:
    path = fixtures_dir() / relpath
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    return docs[0] if len(docs) == 1 else docs


def load_fixture(relpath: str) -> Any:
    """A fresh deep copy of a fixture file, e.g. "flux/event-helmrelease-drift.json"."""
    return copy.deepcopy(_load(relpath))
