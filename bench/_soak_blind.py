"""The soak's blind windows: stretches in which `driftbot run` cannot see every change as it
happens (the service is down, the API server forgot history or restarted, a watch hangs), and
the checks that say one is over (every resource listed again, the hung watch replaced). A
change in such a window is seen only in the next list, as the object's last state, so the soak
changes an object at most once in one (bench/_soak.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.fakes.kube_api import FakeKubeAPI


@dataclass
class _Window:
    start: float
    done: Callable[[], bool]


class BlindWindows:
    """Windows in which the service cannot see every change as it happens (see the module)."""

    def __init__(self) -> None:
        self.open: dict[str, _Window] = {}
        self._serial = 0

    def add(self, name: str, start: float, done: Callable[[], bool]) -> str:
        self._serial += 1
        key = f"{name}#{self._serial}"
        self.open[key] = _Window(start, done)
        return key

    def update(self) -> None:
        for key in [k for k, w in self.open.items() if w.done()]:
            del self.open[key]

    @property
    def start(self) -> float | None:
        return min((w.start for w in self.open.values()), default=None)


def list_paths(api: FakeKubeAPI) -> set[str]:
    return {r.path for r in api.list_requests() if r.status == 200}


def relisted(api: FakeKubeAPI, since: int, paths: set[str]) -> Callable[[], bool]:
    """Every one of `paths` listed successfully after request number `since`."""

    def done() -> bool:
        seen = {r.path for r in api.requests[since:] if r.verb == "list" and r.status == 200}
        return paths <= seen

    return done


def hang_over(api: FakeKubeAPI, since: int) -> Callable[[], bool]:
    """The first watch after request `since` (the hung one) has been given up and replaced."""

    def done() -> bool:
        later = api.requests[since:]
        for i, request in enumerate(later):
            if request.verb == "watch":
                return any(r.path == request.path for r in later[i + 1 :])
        return False

    return done
