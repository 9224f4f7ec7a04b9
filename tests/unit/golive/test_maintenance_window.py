"""The maintenance window, judged at given instants (golive.schedule: pure, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from golive import schedule
from golive.plan import MaintenanceWindow

LUSAKA = timezone(timedelta(hours=2))  # Africa/Lusaka: UTC+2, no daylight saving


def window(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(fields)


SCHEDULED = {"start": "2026-12-05T22:00:00+02:00", "end": "2026-12-06T02:00:00+02:00"}
WEEKEND_NIGHTS = {"weekly": {"days": ["sat", "sun"], "opens": "22:00", "closes": "02:00"}}


@pytest.mark.parametrize(
    ("fields", "instant", "expected"),
    [
        (SCHEDULED, datetime(2026, 12, 5, 22, 0, tzinfo=LUSAKA), True),  # start included
        (SCHEDULED, datetime(2026, 12, 5, 21, 59, 59, tzinfo=LUSAKA), False),
        (SCHEDULED, datetime(2026, 12, 6, 1, 59, tzinfo=LUSAKA), True),  # past midnight
        (SCHEDULED, datetime(2026, 12, 6, 2, 0, tzinfo=LUSAKA), False),  # end excluded
        (SCHEDULED, datetime(2026, 12, 5, 20, 30, tzinfo=UTC), True),  # 22:30 in Lusaka
        (SCHEDULED, datetime(2026, 12, 6, 0, 30, tzinfo=UTC), False),  # 02:30 in Lusaka
        # An instant without an offset is read as UTC.
        (SCHEDULED, datetime(2026, 12, 5, 20, 30), True),
        # Start and end without an offset are read in the window's zone.
        (
            {"start": "2026-12-05T22:00:00", "end": "2026-12-06T02:00:00"},
            datetime(2026, 12, 5, 20, 0, tzinfo=UTC),
            True,
        ),
        (
            {
                "start": "2026-12-05T22:00:00",
                "end": "2026-12-06T02:00:00",
                "timezone": "America/New_York",
            },
            datetime(2026, 12, 6, 3, 30, tzinfo=UTC),  # 22:30 in New York
            True,
        ),
        # Weekly, crossing midnight: Saturday 2026-12-05, Sunday 12-06, Monday 12-07.
        (WEEKEND_NIGHTS, datetime(2026, 12, 5, 23, 0, tzinfo=LUSAKA), True),  # Saturday night
        (WEEKEND_NIGHTS, datetime(2026, 12, 6, 1, 30, tzinfo=LUSAKA), True),  # its small hours
        (WEEKEND_NIGHTS, datetime(2026, 12, 7, 1, 30, tzinfo=LUSAKA), True),  # Sunday's, on Mon
        (WEEKEND_NIGHTS, datetime(2026, 12, 7, 2, 0, tzinfo=LUSAKA), False),  # closed at 02:00
        (WEEKEND_NIGHTS, datetime(2026, 12, 7, 23, 0, tzinfo=LUSAKA), False),  # Monday night
        (WEEKEND_NIGHTS, datetime(2026, 12, 5, 1, 30, tzinfo=LUSAKA), False),  # Friday's night
        (WEEKEND_NIGHTS, datetime(2026, 12, 5, 21, 30, tzinfo=LUSAKA), False),  # not yet open
        (WEEKEND_NIGHTS, datetime(2026, 12, 5, 21, 30, tzinfo=UTC), True),  # 23:30 in Lusaka
        # Weekly within one day.
        (
            {"weekly": {"days": ["tue"], "opens": "09:00", "closes": "11:30"}},
            datetime(2026, 12, 8, 11, 29, tzinfo=LUSAKA),
            True,
        ),
        (
            {"weekly": {"days": ["tue"], "opens": "09:00", "closes": "11:30"}},
            datetime(2026, 12, 9, 10, 0, tzinfo=LUSAKA),
            False,
        ),
        # Across a daylight-saving change (Europe/London, 2026-03-29 at 01:00 UTC).
        (
            {
                "weekly": {"days": ["sat"], "opens": "23:00", "closes": "03:00"},
                "timezone": "Europe/London",
            },
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 02:30 BST
            True,
        ),
        ({"always": True}, datetime(2030, 1, 1, tzinfo=UTC), True),
    ],
)
def test_is_open(fields: dict[str, Any], instant: datetime, expected: bool) -> None:
    assert schedule.is_open(window(**fields), instant) is expected


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "exactly one of"),
        ({**SCHEDULED, "always": True}, "exactly one of"),
        ({**SCHEDULED, **WEEKEND_NIGHTS}, "exactly one of"),
        ({"start": "2026-12-05T22:00:00+02:00"}, "both start and end"),
        ({"start": SCHEDULED["end"], "end": SCHEDULED["start"]}, "after start"),
        ({"weekly": {"days": ["sat"], "opens": "25:00", "closes": "02:00"}}, "HH:MM"),
        ({"weekly": {"days": [], "opens": "22:00", "closes": "02:00"}}, "at least 1"),
        ({"weekly": {"days": ["someday"], "opens": "22:00", "closes": "02:00"}}, "'mon'"),
        ({**SCHEDULED, "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_a_window_that_is_not_one(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        window(**fields)


def test_describe_names_the_window() -> None:
    assert schedule.describe(window(**SCHEDULED)) == (
        "2026-12-05T22:00:00+02:00 – 2026-12-06T02:00:00+02:00 (Africa/Lusaka)"
    )
    assert schedule.describe(window(**WEEKEND_NIGHTS)) == (
        "every sat, sun 22:00–02:00 (next day) (Africa/Lusaka)"
    )
    assert "any time" in schedule.describe(window(always=True))
