"""The review pack of a run: the post-go-live review's agenda, summary, incidents, action items,
attendees, decisions and sign-off, as ``review.md``, ``review.html`` and ``review.ics``.

Built from the report's model and the journal alone (pure, but for ``calendar`` which serialises
with ``icalendar``). The meeting is scheduled by the plan's ``review`` section: business days
after the run finished, at a local time, never on a weekend. Its UID derives from the run id, so
writing the pack again gives the same event (a calendar updates it rather than adding another).
Attendees are the escalation contacts with an e-mail address in their ``reach``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from golive.journal import RunState
from golive.plan import Contact, Plan
from golive.report import html
from golive.report.issues import Issue, issues
from golive.report.model import ReportModel

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
AGENDA = (
    ("Outcome and headline figures", 5),
    ("Timeline walk-through", 10),
    ("Incidents: what happened, what was done", 15),
    ("Action items: owners and due dates", 15),
    ("Lessons learned", 10),
    ("Decisions and sign-off", 5),
)
# Which escalation role owns the follow-up of an incident: the first role naming a keyword.
OWNERS = {
    "rollback": ("release manager", "engineering lead"),
    "failed check": ("engineering lead", "sre"),
    "inconclusive": ("sre", "engineering lead"),
    "alert": ("sre",),
    "retry": ("sre", "release manager"),
    "pause": ("release manager",),
    "approval wait": ("release manager",),
}
DATABASE_WORDS = ("backup", "migrat", "database", "clone")
ACTIONS = {
    "rollback": "Find the root cause of the rollback and fix it before the next attempt",
    "failed check": "Explain the failed check and fix its cause (or the check)",
    "inconclusive": "Review why the gate could not decide: traffic volume, dwell, thresholds",
    "alert": "Review the alert that fired: real problem, or a rule to tune",
    "retry": "Find why the step had to run again and make it succeed the first time",
    "pause": "Review why the go-live paused and whether the runbook covers it",
    "approval wait": "Review the approval wait: was the approver reachable, is manual needed",
}
DUE_BUSINESS_DAYS = {"rollback": 3, "failed check": 5, "alert": 5}


@dataclass(frozen=True)
class Attendee:
    name: str
    role: str
    email: str | None


@dataclass(frozen=True)
class Action:
    text: str
    owner: str
    due: date
    incident: Issue


@dataclass(frozen=True)
class ReviewPack:
    run_id: str
    title: str
    start: datetime
    end: datetime
    location: str
    attendees: list[Attendee]
    contacts: list[Attendee]
    report_path: Path
    summary: list[str]
    incidents: list[Issue]
    actions: list[Action]
    lessons: list[str]
    signoff: list[str]
    stamp: datetime


def add_business_days(day: date, count: int) -> date:
    """``count`` weekdays after ``day``; with 0, ``day`` itself or the Monday after a weekend."""
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def review_start(finished: datetime, plan: Plan) -> datetime:
    zone = ZoneInfo(plan.review_timezone)
    day = add_business_days(finished.astimezone(zone).date(), plan.review.after_business_days)
    hours, minutes = (int(part) for part in plan.review.at.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


def attendee(contact: Contact) -> Attendee:
    found = EMAIL.search(contact.reach)
    return Attendee(contact.name, contact.role, found.group(0) if found else None)


def owner_role(incident: Issue, plan: Plan) -> str:
    roles = [c.role for c in plan.escalation]
    words = OWNERS.get(incident.kind, ())
    if any(w in (incident.step or "") + incident.what.lower() for w in DATABASE_WORDS):
        words = ("database", *words)
    for word in words:
        for role in roles:
            if word in role.lower():
                return role
    return roles[0]


def incidents(found: list[Issue]) -> list[Issue]:
    """One incident per failure: a step's failed check and the rollback it caused are one."""
    merged: list[Issue] = []
    seen: dict[str, int] = {}
    for issue in found:
        key = issue.step if issue.kind in ("rollback", "failed check") else None
        if key is None or key not in seen:
            if key is not None:
                seen[key] = len(merged)
            merged.append(issue)
            continue
        first = merged[seen[key]]
        merged[seen[key]] = replace(first, kind="rollback", done=f"{first.done}; {issue.done}")
    return merged


def _actions(found: list[Issue], plan: Plan, day: date) -> list[Action]:
    return [
        Action(
            f"{ACTIONS.get(i.kind, 'Follow up')} ({i.what})",
            owner_role(i, plan),
            add_business_days(day, DUE_BUSINESS_DAYS.get(i.kind, 10)),
            i,
        )
        for i in found
    ]


def _summary(report: ReportModel, state: RunState, events: list[dict[str, Any]]) -> list[str]:
    outcome = report.section("outcome").lines
    stages = [e for e in events if e["event"] == "traffic_shifted"]
    load = [e["figures"] for e in events if e["event"] == "background_load"]
    lines = [line for line in outcome if line.startswith("- ")]
    reached = max((int(e["weight"]) for e in stages), default=0)
    lines.append(f"- Traffic stages reached: {len(stages)} (weight {reached}%)")
    if load:
        f = load[-1]
        lines.append(
            f"- Background load: {f['requests']} requests, {f['failed']} failed, "
            f"p99 {f['p99_ms']} ms"
        )
    done = sum(1 for r in state.steps.values() if r.outcome == "succeeded")
    lines.append(f"- Steps: {done} of {len(state.order)} succeeded, {len(state.undone)} undone")
    return lines


def build(
    report: ReportModel, events: list[dict[str, Any]], plan: Plan, report_path: Path
) -> ReviewPack:
    state = RunState.fold(events)
    last = state.finished or (events[-1]["ts"] if events else None)
    finished = (
        datetime.fromisoformat(last) if last else datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
    )
    start = review_start(finished, plan)
    found = incidents(issues(events, state))
    contacts = [attendee(c) for c in plan.escalation]
    return ReviewPack(
        run_id=state.run_id or report_path.parent.name,
        title=f"Post-go-live review — credit assessment {plan.release.version}",
        start=start,
        end=start + timedelta(minutes=plan.review.duration_min),
        location=plan.review.location,
        attendees=[c for c in contacts if c.email],
        contacts=contacts,
        report_path=report_path,
        summary=_summary(report, state, events),
        incidents=found,
        actions=_actions(found, plan, start.date()),
        lessons=report.section("lessons").lines,
        signoff=report.section("signoff").lines,
        stamp=finished,
    )


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def sections(pack: ReviewPack) -> list[tuple[str, list[str]]]:
    when = f"{pack.start:%A %d %B %Y, %H:%M}–{pack.end:%H:%M} ({pack.start.tzinfo})"
    agenda = [f"{n}. {item} ({minutes} min)" for n, (item, minutes) in enumerate(AGENDA, 1)]
    incidents = [
        "| # | time | kind | what happened | what was done |",
        "|---|---|---|---|---|",
        *(
            f"| {n} | {i.clock} | {i.kind} | {_cell(i.what)} | {_cell(i.done)} |"
            for n, i in enumerate(pack.incidents, 1)
        ),
    ]
    actions = [f"- [ ] {a.text} — owner: **{a.owner}**, due {a.due:%Y-%m-%d}" for a in pack.actions]
    people = ["| name | role | e-mail |", "|---|---|---|"]
    people += [f"| {_cell(c.name)} | {_cell(c.role)} | {c.email or '—'} |" for c in pack.contacts]
    decisions = [
        "- [ ] The go-live is accepted as it stands",
        "- [ ] The go-live is accepted with the action items above",
        "- [ ] Blue's retirement and the contract migrations may proceed",
        "",
        *pack.signoff,
    ]
    return [
        (
            "Meeting",
            [
                f"- When: {when}",
                f"- Where: {pack.location or 'to be announced'}",
                f"- Run: `{pack.run_id}`",
                f"- Report: `{pack.report_path}`",
            ],
        ),
        ("Agenda", agenda),
        ("Deployment summary", pack.summary),
        ("Incidents", incidents if pack.incidents else ["No incident in this run."]),
        ("Action items", actions or ["No incident, so no action item; add any from the review."]),
        ("Lessons learned", pack.lessons),
        ("Attendees", people),
        ("Decisions and sign-off", decisions),
    ]


def markdown(pack: ReviewPack) -> str:
    lines = [f"# {pack.title}", ""]
    for title, body in sections(pack):
        lines += [f"## {title}", "", *body, ""]
    return "\n".join(lines)


def html_page(pack: ReviewPack) -> str:
    parts = [
        {"key": f"s{n}", "title": t, "body": html.markdown_html(b)}
        for n, (t, b) in enumerate(sections(pack))
    ]
    return html.render_page("review.html.j2", title=pack.title, sections=parts)


def calendar(pack: ReviewPack) -> bytes:
    """The invitation: one VEVENT whose UID derives from the run id."""
    from icalendar import Calendar, Event, vCalAddress, vText

    cal = Calendar()
    cal.add("prodid", "-//credit-assessment//golive review//EN")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = Event()
    event.add("uid", f"golive-review-{pack.run_id}@credit-assessment")
    event.add("dtstamp", pack.stamp.astimezone(ZoneInfo("UTC")))
    event.add("dtstart", pack.start)
    event.add("dtend", pack.end)
    event.add("summary", pack.title)
    if pack.location:
        event.add("location", pack.location)
    report = pack.report_path.resolve()
    event.add(
        "description",
        "\n".join([*pack.summary, "", f"Report: {report} ({report.as_uri()})"]),
    )
    for person in pack.attendees:
        address = vCalAddress(f"mailto:{person.email}")
        address.params["cn"] = vText(person.name)
        address.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", address, encode=False)
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
