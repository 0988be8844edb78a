"""The immutable collections behave like a dict and a sorted list, and never change in place."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.immutable import PMap, SortedChunks

ops = st.lists(
    st.tuples(st.sampled_from(["set", "remove"]), st.integers(0, 60), st.integers()),
    max_size=200,
)


@given(ops)
def test_pmap_behaves_like_a_dict(steps: list[tuple[str, int, int]]) -> None:
    model: dict[int, int] = {}
    pmap: PMap[int, int] = PMap()
    history = [(pmap, dict(model))]
    for op, key, value in steps:
        if op == "set":
            model[key] = value
            pmap = pmap.set(key, value)
        else:
            model.pop(key, None)
            pmap = pmap.remove(key)
        history.append((pmap, dict(model)))
    for snapshot, expected in history:
        assert dict(snapshot.items()) == expected
        assert len(snapshot) == len(expected)
        assert snapshot == expected
        assert all(k in snapshot for k in expected)


def test_pmap_shares_untouched_buckets() -> None:
    before: PMap[int, str] = PMap((i, str(i)) for i in range(5000))
    after = before.set(7, "seven")
    changed = [a is not b for a, b in zip(before.buckets, after.buckets, strict=True)]
    assert sum(changed) == 1
    assert before[7] == "7" and after[7] == "seven"
    assert before.remove(-1) is before


@given(st.lists(st.integers(0, 50), max_size=700), st.integers(0, 50))
def test_sorted_chunks_keep_order_and_pop_the_head(items: list[int], limit: int) -> None:
    chunks: SortedChunks[tuple[int, int]] = SortedChunks(lambda item: item[0])
    for seq, value in enumerate(items):
        before = list(chunks)
        chunks = chunks.push((value, seq))
        assert len(chunks) == len(before) + 1
    # Sorted by value; equal values stay in the order they were pushed.
    expected = sorted(((v, s) for s, v in enumerate(items)), key=lambda item: item[0])
    assert list(chunks) == expected
    assert chunks.first() == (expected[0] if expected else None)
    taken, rest = chunks.pop_while(lambda item: item[0] <= limit)
    assert taken == [item for item in expected if item[0] <= limit]
    assert list(rest) == [item for item in expected if item[0] > limit]
    assert list(chunks) == expected
