"""A standfirst is shown only when it is not the start of the body."""

from __future__ import annotations

import pytest

from mirror.build.standfirst import body_text, repeats_opening

BODY = "<p>The city council voted on Tuesday to close the old bridge for repairs.</p><p>More.</p>"


@pytest.mark.parametrize(
    "standfirst",
    [
        "The city council voted on Tuesday to close the old bridge for repairs.",  # equal
        "The city council voted on Tuesday…",  # a prefix, cut with an ellipsis
        "THE CITY COUNCIL voted, on Tuesday, to close the old bridge for repairs!",  # normalised
        "On Tuesday the city council voted to close the old bridge.",  # mostly contained
        "",
    ],
)
def test_a_standfirst_repeating_the_opening_is_not_shown(standfirst: str) -> None:
    assert repeats_opening(standfirst, body_text(BODY))


@pytest.mark.parametrize(
    "standfirst",
    [
        "Residents will need a detour of twelve kilometres until spring.",
        "Жители будут объезжать мост до весны.",
    ],
)
def test_a_different_standfirst_is_shown(standfirst: str) -> None:
    assert not repeats_opening(standfirst, body_text(BODY))


def test_russian_standfirst_equal_to_the_first_paragraph() -> None:
    body = "<p>Городской совет во вторник закрыл старый мост на ремонт.</p>"
    assert repeats_opening(
        "Городской совет во вторник закрыл старый мост на ремонт", body_text(body)
    )
    assert not repeats_opening("Ремонт продлится до весны.", body_text(body))
