"""The ops room: what every other room uses to be operated: logs, metrics and the small HTTP
helpers of the inbound webhooks.

The bottom of bot/: it imports no other room.
"""
