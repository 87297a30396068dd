import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.domain.cells import neutralise_cell
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key


def test_key_is_stable_for_the_same_row_of_the_same_version() -> None:
    assert row_idempotency_key("b", "k.csv", "v1", 7) == row_idempotency_key("b", "k.csv", "v1", 7)


@pytest.mark.parametrize(
    "other",
    [("b2", "k.csv", "v1", 7), ("b", "k2.csv", "v1", 7), ("b", "k.csv", "v2", 7), ("b", "k.csv", "v1", 8)],
)
def test_key_changes_with_each_part(other: tuple[str, str, str, int]) -> None:
    assert row_idempotency_key("b", "k.csv", "v1", 7) != row_idempotency_key(*other)


def test_parts_cannot_collide_by_concatenation() -> None:
    assert row_idempotency_key("ab", "c", "v", 1) != row_idempotency_key("a", "bc", "v", 1)


def test_row_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        row_idempotency_key("b", "k", "v", 0)


@given(st.text(), st.text(), st.text(min_size=1), st.integers(min_value=1))
def test_key_is_a_header_safe_token(bucket: str, key: str, version: str, row: int) -> None:
    token = row_idempotency_key(bucket, key, version, row)
    assert token.startswith("s3stagger-")
    assert token.isascii()
    assert len(token) < 64


@pytest.mark.parametrize("cell", ["=SUM(A1:A2)", "+1", "-2+3", "@cmd", "\tx", "\rx"])
def test_formula_cells_are_prefixed_with_a_quote(cell: str) -> None:
    assert neutralise_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "plain", "1-2", " =not at start", "'quoted"])
def test_other_cells_are_unchanged(cell: str) -> None:
    assert neutralise_cell(cell) == cell


def test_undecodable_bytes_become_replacement_characters() -> None:
    assert neutralise_cell("caf\udce9") == "caf\ufffd"
    assert neutralise_cell("=\udcff") == "'=\ufffd"
    assert neutralise_cell("\ud800x") == "?x"


@pytest.mark.parametrize(
    ("version_id", "etag", "token"),
    [
        ("3HL4kqtJlcpXroDTDmJ", "abc", "3HL4kqtJlcpXroDTDmJ"),
        (None, "abc", "abc"),
        ("", "abc", "abc"),
        ("null", "abc", "abc"),
    ],
)
def test_version_token_is_the_version_id_unless_s3_shares_it_across_overwrites(
    version_id: str | None, etag: str, token: str
) -> None:
    assert object_version_token(version_id, etag) == token


def test_overwrites_on_an_unversioned_bucket_get_different_row_keys() -> None:
    first = row_idempotency_key("b", "k.csv", object_version_token("null", "etag-one"), 1)
    second = row_idempotency_key("b", "k.csv", object_version_token("null", "etag-two"), 1)
    assert first != second
