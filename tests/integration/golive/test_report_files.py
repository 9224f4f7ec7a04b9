"""The files a run leaves for people: report.md and report.html at the end of every run and from
`golive report RUN`, the review pack from `golive review RUN`, and `golive history`; the page
opened in a headless Chromium with the network off."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml
from icalendar import Calendar

from golive import cli
from golive import journal as j
from golive.plan import parse
from golive.runner import Runner
from golive.targets.fake import FakeTarget
from tests.golive_runs import RUN_ID, write_run
from tests.integration.golive.browser import CHROMIUM, HEADLESS

REPO = Path(__file__).resolve().parents[3]
BROWSER_SERVICES = {
    "clients2.google.com",
    "update.googleapis.com",
    "accounts.google.com",
    "optimizationguide-pa.googleapis.com",
}


def _no_network_prefix() -> list[str]:
    """``unshare -n``: the browser in a network namespace of its own, with no interface but a
    loopback that is down, so the page cannot reach anything (as root, which CI is)."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return []
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    return [unshare, "-n"] if probe.returncode == 0 else []


def write_plan(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def past_run(tmp_path: Path, **kwargs) -> Path:
    run_dir = tmp_path / "state" / "runs" / RUN_ID
    write_run(run_dir, **kwargs)
    return run_dir


def test_golive_report_writes_both_files_of_a_past_run(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path)
    run_dir = past_run(tmp_path)
    assert cli.main(["report", RUN_ID, "--plan", str(plan)]) == 0
    assert (run_dir / "report.md").read_text(encoding="utf-8").startswith("# Go-live report")
    assert "<svg" in (run_dir / "report.html").read_text(encoding="utf-8")
    assert f"written: {run_dir / 'report.html'}" in capsys.readouterr().out
    assert cli.main(["report", str(run_dir), "--plan", str(plan)]) == 0  # by its directory


def test_an_unknown_run_is_a_usage_error_listing_the_known_ones(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path)
    past_run(tmp_path)
    assert cli.main(["report", "20990101T000000Z-9.9.9-0000", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "no run '20990101T000000Z-9.9.9-0000'" in err and f"known runs: {RUN_ID}" in err


def _event(path: Path):
    calendar = Calendar.from_ical(path.read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    return events[0]


def test_the_review_invitation_is_one_stable_event_on_a_business_day(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path)
    run_dir = past_run(tmp_path, rolled_back=True)  # finished on a Friday evening
    assert cli.main(["review", RUN_ID, "--plan", str(plan)]) == 0
    first = _event(run_dir / "review.ics")
    assert cli.main(["review", RUN_ID, "--plan", str(plan)]) == 0
    again = _event(run_dir / "review.ics")

    start = first.decoded("dtstart")
    assert start.tzinfo == ZoneInfo("Africa/Lusaka")
    assert start.weekday() == 0 and start.time() == time(10, 0)  # Monday, not the weekend
    assert start.date() == datetime(2026, 12, 7).date()
    assert first.decoded("dtend") - start == (start.replace(hour=11) - start)
    attendee = first["attendee"]  # one contact of the rehearsal plan has an e-mail address
    assert str(attendee) == "mailto:chanda.mwale@lender.example"
    assert attendee.params["CN"] == "Chanda Mwale"
    assert str(first["uid"]) == f"golive-review-{RUN_ID}@credit-assessment"
    assert str(again["uid"]) == str(first["uid"]) and again.decoded("dtstart") == start
    assert str(run_dir / "report.html") in str(first["description"])

    review = (run_dir / "review.md").read_text(encoding="utf-8")
    assert "## Incidents" in review and "traffic-50: gate failed" in review
    assert re.search(r"- \[ \] Find the root cause .* owner: \*\*Release manager\*\*, due", review)
    assert "invitation: 1 attendee(s)" in capsys.readouterr().out


def test_a_plan_without_e_mail_addresses_invites_nobody_and_says_so(tmp_path, capsys) -> None:
    contacts = [{"name": "Mutale Banda", "role": "On-call SRE", "reach": "pager: primary"}]
    plan = write_plan(tmp_path, escalation=contacts)
    run_dir = past_run(tmp_path)
    assert cli.main(["review", RUN_ID, "--plan", str(plan)]) == 0
    assert "ATTENDEE" not in (run_dir / "review.ics").read_text(encoding="utf-8")
    assert "has no attendees" in capsys.readouterr().out


def test_history_lists_every_run_with_its_rollback(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path)
    past_run(tmp_path, rolled_back=True)
    assert cli.main(["history", "--plan", str(plan), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["outcome"] == "rolled_back" and row["stages"] == [10, 50]
    assert row["switches"] == 1 and row["fault_to_rollback_s"] == 4.0
    assert any("error_rate" in cause for cause in row["rollbacks"])
    assert cli.main(["history", "--plan", str(plan)]) == 0
    table = capsys.readouterr().out
    assert RUN_ID in table and "rolled back: traffic-50" in table


def test_a_finished_run_writes_its_page_and_review_pack_by_itself(tmp_path) -> None:
    plan = parse(write_plan(tmp_path).read_text(encoding="utf-8"), str(tmp_path / "plan.yaml"))
    journal = Runner(plan, FakeTarget(), steps=[]).run()
    names = {p.name for p in journal.run_dir.iterdir()}
    assert {"report.md", "report.html", "review.md", "review.html", "review.ics"} <= names
    assert journal.state().outcome == "succeeded"
    assert j.RUN_FINISHED in [e["event"] for e in journal.events()]


def _colours(png: Path) -> int:
    """Distinct colours of the screenshot (PIL), or 2 when PIL is absent and the PNG is not tiny
    (a blank 1280×4000 PNG compresses to a few kilobytes)."""
    try:
        from PIL import Image
    except ImportError:
        return 2 if png.stat().st_size > 50_000 else 1
    with Image.open(png) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed (make system-deps installs it as root)",
)
def test_the_page_opens_in_a_browser_with_the_network_off(tmp_path) -> None:
    plan = write_plan(tmp_path)
    run_dir = past_run(tmp_path)
    assert cli.main(["report", RUN_ID, "--plan", str(plan)]) == 0
    page = run_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    shot = tmp_path / "report.png"
    flags = [
        *_no_network_prefix(),
        str(CHROMIUM),
        *HEADLESS,
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=180,
    )
    opened = subprocess.run(
        # Verbose logging names every URL the page requests and every console message.
        [*flags, "--enable-logging=stderr", "--v=1", "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom, log = opened.stdout, opened.stderr
    print(f"screenshot: {shot}")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    # Chromium asks its own services (update, clock, accounts) whatever the page; with no
    # network those fail on this machine. Any other request came from the page.
    requested = re.findall(r"NotifyBeforeURLRequest: (\S+)", log)
    from_page = [url for url in requested if urlsplit(url).hostname not in BROWSER_SERVICES]
    assert from_page == [], from_page
    weight = re.search(r'class="chart chart-weight">(.*?)</figure>', dom, re.DOTALL)
    assert weight is not None
    for label in (">0<", ">10<", ">50<", ">100<", "100%"):
        assert label in weight.group(1), label
    for kind in ("load_rate", "latency", "gate", "timings"):
        assert f'class="chart chart-{kind}"' in dom, kind
    assert _colours(shot) > 1, f"the screenshot is blank: {shot}"


def test_prune_deletes_old_finished_runs_and_keeps_the_latest(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path)
    runs = tmp_path / "state" / "runs"
    old = runs / "20200101T000000Z-1.0.0-0001"
    write_run(old)
    text = (old / "journal.jsonl").read_text(encoding="utf-8")
    (old / "journal.jsonl").write_text(text.replace("2026-12-04T", "2020-01-03T"), "utf-8")
    unfinished = runs / "20200102T000000Z-1.0.0-0002"
    unfinished.mkdir(parents=True)
    (unfinished / "journal.jsonl").write_text(
        (old / "journal.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n", "utf-8"
    )
    latest = past_run(tmp_path)
    (runs / "latest").write_text(RUN_ID + "\n", encoding="utf-8")
    assert cli.main(["prune", "--older-than", "30", "--plan", str(plan)]) == 0
    assert "removed 1 run(s): 20200101T000000Z-1.0.0-0001" in capsys.readouterr().out
    assert not old.exists() and unfinished.exists() and latest.exists()
    assert cli.main(["prune", "--older-than", "0", "--plan", str(plan)]) == 2
