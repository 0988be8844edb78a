"""The ops room: what every other room uses to be operated: logs, metrics and the HTTP edge of
the inbound webhooks (the body read under a cap and a deadline, one handler shape for the
signed ones).

The bottom of bot/: it imports no other room.
"""
