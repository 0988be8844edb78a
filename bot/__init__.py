"""The running service: composition root, pipeline runner, delivery, store, chat apps and CLI."""

from watchers.lazy_kube import install as _install_lazy_kube

_install_lazy_kube()
