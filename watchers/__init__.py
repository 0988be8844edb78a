"""Sources and normalizers: where raw Argo CD and Flux data enter and become AppState or Hint."""
