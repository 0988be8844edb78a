"""Pure domain of driftbot: the model, detection and policy decisions; no I/O here."""
