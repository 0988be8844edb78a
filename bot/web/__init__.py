"""The web room: the read-only status page, its badges, its JSON and its live updates, for
people outside chat; who may read it (basic or proxy sign-in, per-user grants).

May import actions, pipeline, delivery, store and ops; never app, chat, jobs or inbound.
"""
