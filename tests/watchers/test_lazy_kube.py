"""kubernetes_asyncio's generated client loads a name when it is used, and offers the same names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
lazy = sys.argv[1] == "lazy"
if lazy:
    import watchers
import kubernetes_asyncio
import kubernetes_asyncio.client as client
import kubernetes_asyncio.client.api as api
import kubernetes_asyncio.client.models as models
loaded_before = sorted(m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models."))
pod = client.V1Pod
lease_api = client.CoordinationV1Api
report = {
    "loaded_before": loaded_before,
    "names": sorted(client.__all__),
    "model_names": sorted(models.__all__),
    "api_names": sorted(api.__all__),
    "version": client.__version__,
    "same_pod": pod is models.V1Pod and pod.__module__ == "kubernetes_asyncio.client.models.v1_pod",
    "lease_api": lease_api.__module__,
    "api_client": client.ApiClient.__module__,
    "submodule": client.rest.__name__,
}
try:
    client.NoSuchThing
except AttributeError as exc:
    report["missing"] = str(exc)
print(json.dumps(report))
"""


def probe(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_lazy_client_loads_no_model_until_one_is_named_and_offers_the_same_names() -> None:
    lazy, eager = probe("lazy"), probe("eager")

    assert lazy["loaded_before"] == []
    assert len(eager["loaded_before"]) > 500  # type: ignore[arg-type]
    for key in ("names", "model_names", "api_names", "version", "lease_api", "api_client"):
        assert lazy[key] == eager[key], key
    assert lazy["same_pod"] is True
    assert lazy["submodule"] == "kubernetes_asyncio.client.rest"
    assert lazy["missing"] == "module 'kubernetes_asyncio.client' has no attribute 'NoSuchThing'"
