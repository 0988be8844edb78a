"""The delivery room: receivers (console, Slack, Teams), the durable outbox worker, retries,
rate limits and the Slack and Teams transports.

May import store and ops; never pipeline or the rooms above it.
"""
