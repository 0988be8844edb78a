"""The running service: composition root, pipeline runner, delivery, store, chat apps and CLI."""
