"""The running service, in rooms: app > chat | jobs | inbound | web > actions > pipeline >
delivery > store > ops.

Each room's `__init__` says what lives there and what it may import; import-linter keeps the
order (pyproject.toml).
"""

from watchers.lazy_kube import install as _install_lazy_kube

_install_lazy_kube()
