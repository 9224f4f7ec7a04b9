"""``golive report``, ``golive review``, ``golive history`` and ``golive prune``: the files of past
runs, from their journals alone. The plan gives the state directory and the names, roles and
thresholds the pages show; nothing here reaches the target.
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.errors import UsageError
from golive.journal import Journal, RunLock
from golive.report import history, publish

DEFAULT_PLAN = Path("deploy/golive/rehearsal.yaml")


def _plan(args: argparse.Namespace) -> Any:
    from golive.plan import load

    return load(args.plan)


def _run(args: argparse.Namespace) -> tuple[Any, Journal]:
    plan = _plan(args)
    return plan, publish.find_run(plan.state_dir.resolve(), args.run)


def report(args: argparse.Namespace) -> None:
    plan, journal = _run(args)
    for path in publish.write_report_files(journal, plan):
        print(f"written: {path}")


def review(args: argparse.Namespace) -> None:
    plan, journal = _run(args)
    paths, attendees = publish.write_review(journal, plan)
    for path in paths:
        print(f"written: {path}")
    if attendees == 0:
        print(
            "note: no escalation contact has an e-mail address in its reach, so the "
            "invitation (review.ics) has no attendees; send it by hand"
        )
    else:
        print(f"invitation: {attendees} attendee(s) from the plan's escalation contacts")


def history_rows(state_dir: Path) -> list[history.HistoryRow]:
    rows = []
    for run_id in publish.known_runs(state_dir):
        journal = Journal(j.runs_dir(state_dir) / run_id / "journal.jsonl")
        rows.append(history.row(run_id, journal.events(), torn=journal.torn_tail()))
    return sorted(rows, key=lambda r: r.started or "")


def show_history(args: argparse.Namespace) -> None:
    rows = history_rows(_plan(args).state_dir.resolve())
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(history.table(rows))


def prune(args: argparse.Namespace) -> None:
    """Delete the run directories of finished runs started more than DAYS ago (never the latest)."""
    if args.older_than < 1:
        raise UsageError(f"--older-than must be at least 1 day, not {args.older_than}")
    state_dir = _plan(args).state_dir.resolve()
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than)
    latest = j.latest_run(state_dir)
    removed = []
    with RunLock(state_dir):
        for row in history_rows(state_dir):
            started = datetime.fromisoformat(row.started) if row.started else None
            keep = latest is not None and latest.run_dir.name == row.run_id
            final = row.outcome in j.FINAL_OUTCOMES
            if started is not None and started < cutoff and final and not keep:
                shutil.rmtree(j.runs_dir(state_dir) / row.run_id)
                removed.append(row.run_id)
    print(f"removed {len(removed)} run(s)" + (f": {', '.join(removed)}" if removed else ""))


def _plan_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plan",
        type=Path,
        default=DEFAULT_PLAN,
        help=f"the go-live plan (default: {DEFAULT_PLAN})",
    )


def add_report_commands(commands: Any) -> None:
    for name, handler, what in (
        ("report", report, "write report.md and report.html of a past run"),
        ("review", review, "write the review pack of a run: review.md, review.html, review.ics"),
    ):
        parser = commands.add_parser(name, help=what)
        parser.add_argument(
            "run", metavar="RUN", help="a run id (see `golive history`), `latest`, or a run dir"
        )
        _plan_option(parser)
        parser.set_defaults(handler=handler)
    shown = commands.add_parser("history", help="every go-live of the state directory")
    _plan_option(shown)
    shown.add_argument("--json", action="store_true", help="one JSON object per run")
    shown.set_defaults(handler=show_history)
    pruning = commands.add_parser("prune", help="delete finished runs older than DAYS")
    _plan_option(pruning)
    pruning.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    pruning.set_defaults(handler=prune)
