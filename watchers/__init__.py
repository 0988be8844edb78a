"""Sources and normalizers: where raw Argo CD and Flux data enter and become AppState or Hint."""

from watchers.lazy_kube import install as _install_lazy_kube

_install_lazy_kube()
