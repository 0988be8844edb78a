"""A storm as one notification, for the renderers.

`EventGroup` lives in core.grouping, where the policy builds groups; it is re-exported here so
renderers import it from their own package.
"""

from __future__ import annotations

from core.grouping import EventGroup

__all__ = ["EventGroup"]
