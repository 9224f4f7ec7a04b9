"""The maintenance window: is it open at a given instant? Pure: no clock, no I/O.

A plan's ``maintenance_window`` takes one of three forms:

    start/end   one scheduled window, two instants (an instant without an offset is read in
                the window's ``timezone``); open from ``start`` included to ``end`` excluded
    weekly      a window that recurs: ``days`` it opens on, ``opens`` and ``closes`` as local
                times in ``timezone``; ``closes`` at or before ``opens`` ends it the next day
                (Saturday 22:00 to 02:00 is open on Sunday at 01:30)
    always      no window: the database steps may run at any time (a rehearsal)

``is_open(window, instant)`` answers for an aware instant; the database steps ask it with the
runner's clock (``golive.steps.base.Clock.wall``) before they touch anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from golive.plan import MaintenanceWindow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def clock_time(text: str) -> time:
    """``HH:MM`` as a time of day."""
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


def _aware(instant: datetime, zone: tzinfo) -> datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=zone)


def is_open(window: MaintenanceWindow, instant: datetime) -> bool:
    """Whether ``window`` is open at ``instant`` (an aware datetime; naive is read as UTC)."""
    if window.always:
        return True
    zone = ZoneInfo(window.timezone)
    instant = _aware(instant, UTC)
    if window.weekly is None:
        if window.start is None or window.end is None:
            return False
        return _aware(window.start, zone) <= instant < _aware(window.end, zone)
    local = instant.astimezone(zone)
    opens, closes = clock_time(window.weekly.opens), clock_time(window.weekly.closes)
    days = {WEEKDAYS.index(day) for day in window.weekly.days}
    # The window that opened today, and the one that opened yesterday (it may run past midnight).
    for back in (0, 1):
        day = (local - timedelta(days=back)).date()
        if day.weekday() not in days:
            continue
        start = datetime.combine(day, opens, tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1 if closes <= opens else 0), closes, zone)
        if start <= local < end:
            return True
    return False


def describe(window: MaintenanceWindow) -> str:
    """The window in words, for the runbook, the report and the refusal."""
    if window.always:
        return "none (the database steps may run at any time)"
    if window.weekly is not None:
        crosses = clock_time(window.weekly.closes) <= clock_time(window.weekly.opens)
        return (
            f"every {', '.join(window.weekly.days)} {window.weekly.opens}–{window.weekly.closes}"
            + (" (next day)" if crosses else "")
            + f" ({window.timezone})"
        )
    start = window.start.isoformat() if window.start else "?"
    end = window.end.isoformat() if window.end else "?"
    return f"{start} – {end} ({window.timezone})"
