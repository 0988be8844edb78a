"""Which route took an event, as a value that does not move when the file's routes move.

A route of the file is known by its `name` when it has one; only an unnamed route falls back
to its place (`routes[2]`), the one label it has. A route an annotation adds is known by the
annotation (`origin`). So a reload that inserts a route before a named one leaves the named
route's identity, its label in `routes explain` and its settings where they were. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.schema import Config, RouteConfig


@dataclass(frozen=True, slots=True, eq=False)
class RouteId:
    """One route's identity; equal, hashed and shown by its name, its annotation or (for an
    unnamed route of the file) its place. `place` finds it in the config it was made from."""

    place: int | None
    """Its place in `routes` of the config it was made from; None for an annotation's route."""
    name: str = ""
    origin: str = ""
    """For a route an annotation adds: which annotation, on which object."""

    @property
    def key(self) -> tuple[str, str | int | None]:
        if self.origin:
            return ("annotation", self.origin)
        if self.name:
            return ("name", self.name)
        return ("place", self.place)

    @property
    def label(self) -> str:
        """How people read which route: its name, its annotation, else `routes[N]`."""
        return self.origin or self.name or f"routes[{self.place}]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RouteId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.label


def route_id(config: Config, index: int) -> RouteId:
    """The identity of `config.routes[index]`."""
    return RouteId(index, config.routes[index].name or "")


def route_label(config: Config, index: int) -> str:
    """How people read which route: its `name`, else its place, `routes[2]`."""
    return route_id(config, index).label


def find_route(config: Config, route: RouteId) -> RouteConfig | None:
    """The route of `config` that `route` names (by name, else by place); None if it has none
    (an annotation's route, or a route the config no longer has)."""
    if route.origin:
        return None
    if route.name:
        return next((r for r in config.routes if r.name == route.name), None)
    if route.place is not None and 0 <= route.place < len(config.routes):
        found = config.routes[route.place]
        return found if not found.name else None
    return None
