"""The pure rules of GET /admin/participants: query parsing, case folding, typed attribute values."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import make_mocked_request

from projections.participants.listing import ParticipantListing, fold, typed_value
from services.api.participant_list_views import PATH, listing
from services.validation import ValidationFailed


def parsed(**params: str) -> ParticipantListing:
    return listing(make_mocked_request("GET", f"{PATH}?{urlencode(params)}"))


def test_no_parameters_list_everyone_newest_first_fifty_a_page() -> None:
    assert parsed() == ParticipantListing(sort="first_seen_at", descending=True, page_size=50)


def test_every_parameter_reaches_the_listing() -> None:
    spec = parsed(
        search="Jo_%",
        is_active="no",
        tier="gold",
        sort="balance",
        order="asc",
        page="3",
        page_size="200",
        **{"attribute.plan": "pro", "attribute.age": "30", "attribute.note": ""},
    )
    assert spec == ParticipantListing(
        search="Jo_%",
        is_active=False,
        tier="gold",
        attributes=(("plan", "pro"), ("age", "30"), ("note", "")),
        sort="balance",
        descending=False,
        page=3,
        page_size=200,
    )


def test_empty_search_and_tier_are_no_filter() -> None:
    assert parsed(search="", tier="", sort="", order="") == ParticipantListing()


def test_every_bad_parameter_is_named_in_one_422() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parsed(search="x" * 256, tier="\x07", sort="age", order="up", page="x", page_size="0")
    locs = [e["loc"][1] for e in caught.value.errors]
    assert locs == ["search", "tier", "sort", "order", "page", "page_size"]


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Alice", "alice"),
        ("ÄÖÜ Ωmega", "äöü ωmega"),
        ("ΟΔΟΣ", "οδοσ"),  # no final sigma: PostgreSQL's lower() maps Σ to σ everywhere
        ("İstanbul", "istanbul"),  # one character for one, as PostgreSQL
        ("50%_\\", "50%_\\"),
    ],
)
def test_folding_lower_cases_each_character_alone(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert len(fold(text)) == len(text)


@pytest.mark.parametrize(
    ("value", "typed"),
    [
        ("30", 30),
        ("-1.5", -1.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("pro", ...),
        ('"30"', ...),  # a JSON string is compared as the text it is
        ("[1]", ...),
        ("{}", ...),
        ("1e400", ...),  # not a finite number
        ("9007199254740991", 9007199254740991),
        ("18446744073709551615", ...),  # beyond any attribute's number (and SQLite's integers)
        ("", ...),
    ],
)
def test_a_value_may_also_spell_a_json_scalar(value: str, typed: object) -> None:
    found = typed_value(value)
    assert found is typed if typed in (..., None, True, False) else found == typed
