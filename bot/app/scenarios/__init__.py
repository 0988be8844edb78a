"""Shipped recorded streams: the demo scenario."""
