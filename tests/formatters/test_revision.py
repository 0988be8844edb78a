from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formatters.revision import MAX_SHORT, short_revision

DIGEST = "4e5cbb7b97d00a8039be97ebd37b4a8c2d8d8f4bc2c8b2a0e6e4d6f2c6a1b3c9"


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("ea8759964626a583667a2bfd08f334ec2070040a", "ea87599"),
        ("main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9", "main@67e2c98"),
        (
            "refs/heads/main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9",
            "refs/heads/main@67e2c98",
        ),
        ("v1.2.3@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9", "v1.2.3@67e2c98"),
        ("main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1", "main@731f7ea"),
        ("master/67e2c98a60dc92283531412a9e604dd4bae005a9", "master@67e2c98"),
        (f"latest@sha256:{DIGEST}", "latest@sha256:4e5cbb7"),
        (f"sha256:{DIGEST}", "sha256:4e5cbb7"),
        ("6.6.0", "6.6.0"),
        ("6.6.1+0cc9a8446c95", "6.6.1+0cc9a8446c95"),
        ("", ""),
        ("  \n", ""),
        (
            "ea8759964626a583667a2bfd08f334ec2070040a,6.6.0",
            "ea87599, 6.6.0",
        ),
        ("x" * 100, "x" * (MAX_SHORT - 1) + "…"),
        ("20231120", "20231120"),
    ],
)
def test_short_revision(revision: str, expected: str) -> None:
    assert short_revision(revision) == expected


@given(st.text())
def test_short_revision_is_short_and_on_one_line(revision: str) -> None:
    short = short_revision(revision)
    assert len(short) <= MAX_SHORT
    assert "\n" not in short
