"""The application room: the `driftbot` command line, the composition root of `driftbot run`
(service, HTTP server, leader election), `driftbot replay`/`demo` and `driftbot audit`.

The top of bot/: it may import every other room.
"""
