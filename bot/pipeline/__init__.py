"""The pipeline room: the runner (normalize -> detect -> route -> policy -> deliver -> record)
and its feeds (what each cluster watches and how watch output enters the runner).

May import delivery, store and ops; never the rooms above it.
"""
