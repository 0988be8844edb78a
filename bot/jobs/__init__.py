"""The jobs room: what time sets going in `driftbot run`: the scheduler (policy ticks, digests,
mute expiry, resync), digests and config hot reload.

May import actions, pipeline, delivery, store and ops; never app, chat, inbound or web.
"""
