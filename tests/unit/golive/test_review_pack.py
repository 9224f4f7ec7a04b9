"""The review pack's pure parts: the meeting never falls on a weekend, the plan's `review` section
rejects bad values naming the field, incidents become action items with an owner role, and the
history row of a run."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.golive_runs import RUN_ID, write_run

from golive.errors import PlanError
from golive.plan import Plan, load, parse
from golive.report import history, review
from golive.report.issues import Issue

REPO = Path(__file__).resolve().parents[3]
REHEARSAL = REPO / "deploy" / "golive" / "rehearsal.yaml"


def plan_with(tmp_path: Path, **section: Any) -> Plan:
    data = yaml.safe_load(REHEARSAL.read_text(encoding="utf-8"))
    data["review"] = {**copy.deepcopy(data.get("review") or {}), **section}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load(path)


@pytest.mark.parametrize(
    ("finished", "days", "expected"),
    [
        (date(2026, 12, 4), 1, date(2026, 12, 7)),  # Friday + 1 business day: Monday
        (date(2026, 12, 5), 1, date(2026, 12, 7)),  # Saturday: Monday
        (date(2026, 12, 6), 0, date(2026, 12, 7)),  # Sunday, same day asked: Monday
        (date(2026, 12, 2), 0, date(2026, 12, 2)),  # Wednesday, same day
        (date(2026, 12, 3), 2, date(2026, 12, 7)),  # Thursday + 2: Monday
        (date(2026, 12, 4), 5, date(2026, 12, 11)),  # a week of business days
    ],
)
def test_business_days_skip_the_weekend(finished: date, days: int, expected: date) -> None:
    assert review.add_business_days(finished, days) == expected
    assert expected.weekday() < 5


def test_the_meeting_is_at_the_plan_time_in_the_plan_zone(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, at="14:30", timezone="Europe/London", after_business_days=1)
    # Friday 23:30 UTC is already Saturday in Lusaka, still Friday in London.
    start = review.review_start(datetime(2026, 12, 4, 23, 30, tzinfo=UTC), plan)
    assert (start.date(), start.hour, start.minute) == (date(2026, 12, 7), 14, 30)
    assert str(start.tzinfo) == "Europe/London"


def test_without_a_review_zone_the_maintenance_window_zone_is_used(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    assert plan.review.timezone is None and plan.review_timezone == "Africa/Lusaka"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"at": "25:00"}, "review.at", "24-hour time HH:MM"),
        ({"at": "10am"}, "review.at", "24-hour time HH:MM"),
        ({"timezone": "Mars/Olympus"}, "review.timezone", "unknown time zone 'Mars/Olympus'"),
        ({"after_business_days": -1}, "review.after_business_days", "greater than or equal"),
        ({"duration_min": 0}, "review.duration_min", "greater than or equal to 15"),
        ({"when": "soon"}, "review.when", "unknown key"),
    ],
)
def test_bad_review_values_are_rejected_naming_the_field(
    tmp_path: Path, change: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(PlanError) as caught:
        plan_with(tmp_path, **change)
    assert any(f": {field}: " in p and reason in p for p in caught.value.problems), caught.value


def test_a_bad_maintenance_zone_is_rejected_when_the_review_relies_on_it() -> None:
    text = REHEARSAL.read_text(encoding="utf-8").replace(
        "timezone: Africa/Lusaka", "timezone: Nowhere/Town", 1
    )
    with pytest.raises(PlanError) as caught:
        parse(text, "plan.yaml")
    assert "unknown time zone 'Nowhere/Town'" in str(caught.value.problems)


def test_each_incident_gets_an_owner_role_from_the_escalation_list() -> None:
    plan = load(REPO / "deploy/golive/production.yaml")
    ts = "2026-12-04T20:00:00+00:00"
    rollback = Issue(ts, "rollback", "traffic-50: gate failed", "flag back", "traffic-50")
    database = Issue(ts, "failed check", "migrate failed: lock timeout", "undone", "migrate")
    waiting = Issue(ts, "inconclusive", "traffic-10: 3 inconclusive", "held", None)
    assert review.owner_role(rollback, plan) == "Release manager"
    assert review.owner_role(database, plan) == "Database administrator"
    assert review.owner_role(waiting, plan) == "On-call SRE (primary)"


def test_a_failed_step_and_the_rollback_it_caused_are_one_incident() -> None:
    ts = "2026-12-04T20:00:00+00:00"
    found = [
        Issue(ts, "rollback", "traffic-50: gate failed", "flag back", "traffic-50"),
        Issue(ts, "failed check", "traffic-50 failed", "undone", "traffic-50"),
        Issue(ts, "inconclusive", "traffic-10 waited", "held", None),
    ]
    merged = review.incidents(found)
    assert [i.kind for i in merged] == ["rollback", "inconclusive"]
    assert merged[0].done == "flag back; undone"


def test_the_history_row_of_a_rolled_back_run(tmp_path: Path) -> None:
    journal = write_run(tmp_path / RUN_ID, rolled_back=True)
    row = history.row(RUN_ID, journal.events())
    assert (row.outcome, row.version, row.switches, row.stages) == (
        "rolled_back",
        "2.0.0",
        1,
        [10, 50],
    )
    assert row.fault_to_rollback_s == 4.0  # the FAIL judgement to the flag back at 0%
    assert row.duration_s == 135.0
    assert "rolled back: traffic-50" in history.table([row])
