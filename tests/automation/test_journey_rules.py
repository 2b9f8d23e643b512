"""Journey definitions and timing rules, as pure functions (DST and DST-free zones)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kizuna.automation.runner import _quiet_until, parse
from kizuna.domain.journeys import birthday_due, choose_branch, in_holdout, wait_until
from kizuna.errors import JourneyError

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def test_wait_until_local_time_and_weekday_in_a_dst_free_zone() -> None:
    # Friday 2025-03-07 20:00 Tokyo; next weekday 09:00 is Monday 10 March.
    now = local(TOKYO, 2025, 3, 7, 20, 0)
    due = wait_until(
        {"until": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}, now, TOKYO
    )
    assert due == local(TOKYO, 2025, 3, 10, 9, 0)
    assert wait_until({"until": "21:00"}, now, TOKYO) == local(TOKYO, 2025, 3, 7, 21, 0)
    assert wait_until({"days": 2}, now, TOKYO) == local(TOKYO, 2025, 3, 9, 20, 0)


def test_wait_until_across_the_us_spring_forward() -> None:
    # Saturday 8 March 2025 10:00 EST; Sunday 9 March clocks jump 02:00 -> 03:00.
    now = local(NEW_YORK, 2025, 3, 8, 10, 0)
    due = wait_until({"until": "09:00"}, now, NEW_YORK)
    assert due.astimezone(NEW_YORK).hour == 9 and due.astimezone(NEW_YORK).day == 9
    assert due == datetime(2025, 3, 9, 13, 0, tzinfo=UTC)  # EDT, UTC-4
    skipped = wait_until({"until": "02:30"}, now, NEW_YORK)
    assert skipped.astimezone(NEW_YORK).hour == 3  # a wall time that does not exist moves forward


def test_quiet_hours_hold_until_the_local_end_in_both_kinds_of_zone() -> None:
    late = local(TOKYO, 2025, 6, 1, 22, 30)
    assert _quiet_until("21:00-09:00", late, TOKYO) == local(TOKYO, 2025, 6, 2, 9, 0)
    early = local(TOKYO, 2025, 6, 2, 6, 0)
    assert _quiet_until("21:00-09:00", early, TOKYO) == local(TOKYO, 2025, 6, 2, 9, 0)
    assert _quiet_until("21:00-09:00", local(TOKYO, 2025, 6, 2, 12, 0), TOKYO) is None
    # New York, the night the clocks go back (2 Nov 2025): 25 hours in the day.
    night = local(NEW_YORK, 2025, 11, 1, 23, 0)
    end = _quiet_until("21:00-09:00", night, NEW_YORK)
    assert end is not None and end.astimezone(NEW_YORK).hour == 9
    assert end == datetime(2025, 11, 2, 14, 0, tzinfo=UTC)  # EST, UTC-5
    assert (end - night).total_seconds() == 11 * 3600  # 10 wall hours + the repeated hour


def test_holdout_is_stable_and_near_its_percentage() -> None:
    flags = [in_holdout(c, "j", 10) for c in range(20000)]
    assert flags == [in_holdout(c, "j", 10) for c in range(20000)]
    assert 0.09 < sum(flags) / len(flags) < 0.11
    assert flags != [in_holdout(c, "other", 10) for c in range(20000)]


def test_split_is_weighted_and_stable() -> None:
    journey = parse(
        {"name": "ab", "trigger": {"segment_entry": "x"},
         "steps": [{"id": "s", "split": [{"next": "a", "weight": 3}, {"next": "b", "weight": 1}]},
                   {"id": "a", "exit": True}, {"id": "b", "exit": True}]}
    )  # fmt: skip
    step = journey.step("s")
    picks = [choose_branch(step, c, "ab") for c in range(8000)]
    assert 0.72 < picks.count("a") / len(picks) < 0.78
    assert picks == [choose_branch(step, c, "ab") for c in range(8000)]


def test_birthday_on_29_february_falls_on_28_february() -> None:
    assert birthday_due(date(2000, 2, 29), 0, date(2025, 2, 28)) == date(2025, 2, 28)
    assert birthday_due(date(2000, 2, 29), 0, date(2024, 2, 28)) is None
    assert birthday_due(date(2000, 4, 1), -7, date(2025, 3, 25)) == date(2025, 3, 25)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"trigger": {"birthday": {}}, "steps": [{"id": "a", "exit": True}]}, "/name"),
        (
            {"name": "j", "trigger": {"moon_phase": 1}, "steps": [{"id": "a", "exit": True}]},
            "unknown trigger",
        ),
        (
            {"name": "j", "trigger": {"birthday": {}}, "steps": [{"id": "a", "action": "fax"}]},
            "unknown action 'fax'",
        ),
        (
            {
                "name": "j",
                "trigger": {"birthday": {}},
                "steps": [{"id": "a", "if": {"consent": "email"}, "then": "zz", "else": "a"}],
            },
            "unknown step 'zz'",
        ),
        (
            {
                "name": "j",
                "trigger": {"birthday": {}},
                "steps": [{"id": "a", "wait": {"until": "25:00"}}],
            },
            "/steps/0/wait/until",
        ),
        (
            {
                "name": "j",
                "trigger": {"birthday": {}},
                "steps": [{"id": "a", "action": "webhook", "url": "http://x", "secret": "inline"}],
            },
            "secret_env",
        ),
        (
            {
                "name": "j",
                "trigger": {"birthday": {}},
                "steps": [
                    {"id": "a", "if": {"field": "nope", "value": 1}, "then": "a", "else": "a"}
                ],
            },
            "/steps/0/if/field",
        ),
        (
            {
                "name": "j",
                "trigger": {"birthday": {}},
                "holdout_percent": 95,
                "steps": [{"id": "a", "exit": True}],
            },
            "holdout_percent",
        ),
    ],
)
def test_bad_journeys_are_refused_with_the_path(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(Exception) as info:
        parse(doc)
    assert words in str(info.value)
    assert isinstance(info.value, JourneyError) or "segment rule" in str(info.value)
