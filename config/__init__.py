"""Settings, the config file schema and its loader, and pure route matching."""
