"""The store room: the durable memory (app states, policy state, outbox, sent messages,
audit: a module a table, the policy state's rows pure), its backend seam, the SQLite and
PostgreSQL backends, and the write-behind store.

May import ops only.
"""
