"""kubernetes_asyncio's client without its generated code until it is used.

`import kubernetes_asyncio.client` imports every generated model (about 800) and API class
(about 60): some 40 MiB of a process whose own state for 10,000 apps is about 50 MiB. driftbot
reads raw JSON through `ApiClient` and uses a handful of those classes at most. `install()`
makes the three generated packages (`client`, `client.models`, `client.api`) import lazily:
their `from X import Name` lines are read, not run, and a name is imported the first time it
is looked up (module `__getattr__`, PEP 562). Everything else of the package is untouched, and
anything named in those packages stays reachable under its usual name.

The package itself is made lazy the same way: its `__init__` imports `dynamic` (and with it
kubernetes_validate and jsonschema, about 10 MiB), `stream` and `utils`, none of which driftbot
uses; `kubernetes_asyncio.config` then loads only what it imports itself.

It must run before the first import of kubernetes_asyncio to take effect (`bot` and `watchers`
install it on import); afterwards it changes nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

LAZY_PACKAGES = frozenset(
    {
        "kubernetes_asyncio",
        "kubernetes_asyncio.client",
        "kubernetes_asyncio.client.models",
        "kubernetes_asyncio.client.api",
    }
)
_FROM_IMPORT = re.compile(r"^from (kubernetes_asyncio\.client[\w.]*) import (\w+)\s*$", re.M)
_IMPORT_AS = re.compile(r"^import (kubernetes_asyncio\.\w+) as (\w+)\s*$", re.M)
_VERSION = re.compile(r"^__version__ = \"([^\"]*)\"", re.M)


class _LazyPackage(importlib.abc.Loader):
    """Runs a generated package's `__init__` as a table of names, importing none of them."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = Path(self.origin).read_text(encoding="utf-8")
        where = {name: target for target, name in _FROM_IMPORT.findall(source)}
        submodules = {name: target for target, name in _IMPORT_AS.findall(source)}
        version = _VERSION.search(source)
        if version:
            module.__version__ = version.group(1)  # type: ignore[attr-defined]
        module.__all__ = list(where or submodules)  # type: ignore[attr-defined]
        package = module.__name__

        def __getattr__(name: str) -> Any:
            target = where.get(name)
            if name in submodules:
                value = importlib.import_module(submodules[name])
            elif target is not None:
                value = getattr(importlib.import_module(target), name)
            elif importlib.util.find_spec(f"{package}.{name}") is not None:
                value = importlib.import_module(f"{package}.{name}")
            else:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            setattr(module, name, value)
            return value

        setattr(module, "__getattr__", __getattr__)  # noqa: B010 (mypy refuses the assignment)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_PACKAGES:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.origin is None or real.submodule_search_locations is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname, _LazyPackage(real.origin), origin=real.origin, is_package=True
        )
        if spec is None:
            return None
        spec.submodule_search_locations = list(real.submodule_search_locations)
        spec.has_location = True
        return spec


def install() -> bool:
    """Make the generated packages lazy; False if kubernetes_asyncio's client is already
    imported (then it stays as it is)."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return True
    if "kubernetes_asyncio.client" in sys.modules:
        return False
    sys.meta_path.insert(0, _Finder())
    return True
