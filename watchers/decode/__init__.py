"""Typed decoding of what driftbot reads: watch lines and list pages straight from bytes.

An Argo CD Application is 10-20 KB of JSON of which the normalizer reads a few hundred bytes.
msgspec decodes a line into Structs (`views`) that declare only the fields the normalizers
read, skipping the rest without building Python objects for it; `lines` holds the decoders of
watch lines and list pages, `recorded` the decoder of `driftbot replay`'s recorded lines (every
kind in one stream, so a union of the views tagged by `kind`); `unchanged` tells an update that
moved nothing the pipeline reads (Argo CD's refresh every three minutes, Flux's reconcile at
every interval) from a change, by a digest of that relevant view.

Anything the Structs cannot take (a field of an unexpected type, an unknown kind) is decoded
in full with orjson instead, so the normalizers still see it and reject or accept it as before:
typed decoding changes what is parsed, never what is decided. One difference is left, for
made-up objects only: a nested object holding none of the fields its view declares (a history
entry `{"x": 1}`) reads as empty on the typed path, so the Argo CD normalizer skips it as it
skips `{}`, where the full parse would have made an entry of nothing. And, in the parts of a
line driftbot does not read, msgspec only checks the JSON's syntax: a number orjson refuses
(past a double's range, like `1e400`) or nesting deeper than orjson's 1,024 levels passes
there, where the full parse would have called the whole line invalid. An integer past 64 bits
in a field driftbot reads stays an integer, where orjson makes it a float.
"""
