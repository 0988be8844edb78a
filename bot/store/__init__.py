"""The store room: the durable memory (app states, policy state, outbox, sent messages,
audit), its backend seam, the SQLite and PostgreSQL backends, and the write-behind store.

May import ops only.
"""
