"""The whole rehearsal, as `make run` runs it: real PostgreSQL, real slots, real HAProxy, a
background load of 150 requests/s through the router for the whole run — and not one
failed request, through the switch to green, the rehearsed switch back and forward again; the
on-call channel and the status page told at the start, the migration and the end; and the live
page, loaded once in headless Chromium while the run goes, showing the weight go from 10% to 50%
without a reload."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN
from tests.integration.golive.browser import CHROMIUM, Browser
from tests.integration.golive.plans import leftover_processes, needs_haproxy, write_plan

pytestmark = [needs_haproxy, pytest.mark.slow]

WEIGHT = "document.getElementById('weight').textContent"
STEP = "document.getElementById('step').textContent"


def live_page_of(state: Path, golive: subprocess.Popen[bytes], timeout_s: float = 120) -> str:
    """The live page's address, once the run has journaled its exporter."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        latest = state / "runs" / "latest"
        if latest.exists():
            journal = state / "runs" / latest.read_text().strip() / "journal.jsonl"
            for line in journal.read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                if event["event"] == "exporter_started":
                    return str(event["url"]).rsplit("/", 1)[0] + "/live"
        assert golive.poll() is None, "golive ended before serving its live page"
        time.sleep(0.2)
    raise AssertionError("the run never served its live page")


def watch_the_weight_go_from_10_to_50(browser: Browser, live: str) -> None:
    """One load of the live page, then only its own polling: 10% during traffic-10, 50% during
    traffic-50, and a mark set in the page after the first still there (no reload)."""
    browser.navigate(live)
    browser.wait_for(WEIGHT, "10%", timeout_s=240)
    browser.evaluate("window.loadedOnce = 'yes'")  # gone if the page reloaded
    assert "traffic-10" in browser.evaluate(STEP)
    browser.wait_for(WEIGHT, "50%", timeout_s=120)
    assert browser.evaluate("window.loadedOnce") == "yes"
    assert "traffic-50" in browser.evaluate(STEP)


def test_rehearsal_under_load_has_zero_failed_requests(tmp_path):
    plan = write_plan(tmp_path)
    browser = None
    if CHROMIUM.exists():  # started before the run, so its start costs the run nothing
        browser = Browser("about:blank", tmp_path / "profile")
        browser.attach("about:blank")
    log = tmp_path / "rehearse.log"
    with log.open("wb") as out:
        golive = subprocess.Popen(
            [str(VENV_BIN / "golive"), "rehearse", str(plan), "--plain"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        if browser is not None:
            try:
                live = live_page_of(tmp_path / "state", golive)
                watch_the_weight_go_from_10_to_50(browser, live)
            except AssertionError as exc:
                tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise AssertionError(f"{exc}\ngolive rehearse said:\n{tail}") from None
            browser.close()
            browser = None
        golive.wait(timeout=300)
    finally:
        if browser is not None:
            browser.close()
        if golive.poll() is None:  # stopped as Ctrl-C would: it stops what it started
            golive.send_signal(signal.SIGINT)
            try:
                golive.wait(timeout=60)
            except subprocess.TimeoutExpired:
                golive.kill()
                golive.wait(timeout=30)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert golive.returncode == 0, output[-5000:]
    assert "go-live complete" in output and "report: " in output
    # Both slots share one Redis for bureau reports, as in production: green is switched in
    # with the reports blue fetched (docs/golive.md, "The background load").
    assert "cache: Redis on redis://127.0.0.1:" in output and "(shared by both slots)" in output

    runs = tmp_path / "state" / "runs"
    run_dir = runs / (runs / "latest").read_text().strip()
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    load = next(e for e in events if e["event"] == "background_load")["figures"]
    assert load["failed"] == 0, load["failures"]
    assert load["rate_per_s"] == 150 and load["achieved_rps"] >= 0.95 * 150
    assert load["requests"] >= 150 * 60
    switches = [e["to"] for e in events if e["event"] == "router_switched"]
    assert switches == ["green", "blue", "green"]  # the switch, and the rehearsed way back
    assert [w["failed"] for w in load["switch_windows"]] == [0, 0, 0]
    assert all(w["requests"] > 0 for w in load["switch_windows"])
    # All flags start disabled (every client on legacy); the stages move them to the new engine.
    assert {"blue/legacy", "green/new"} <= set(load["by_tag"])
    stages = {e["step"]: e["figures"] for e in events if e["event"] == "step_finished"}
    assert [stages[f"traffic-{w}"]["verdict"] for w in (10, 50, 100)] == ["PASS"] * 3
    assert next(e for e in events if e["event"] == "run_finished")["outcome"] == "succeeded"

    # Zero downtime is bounded latency too: every 10 s window, and the steps that ran in it.
    assert load["slow_windows"] == [], load["slow_windows"]
    assert all(w["p99_ms"] <= load["max_window_p99_ms"] for w in load["windows"] if w["requests"])
    assert sum(w["requests"] for w in load["windows"]) == load["requests"]
    running = {step for w in load["windows"] for step in w["steps"]}
    assert {"migrate", "switch-to-green", "traffic-50", "hold"} <= running
    series = json.loads((run_dir / "background-load.json").read_text())
    assert sum(w["requests"] for w in series["windows"]) == load["requests"]

    # golive served its own metrics for the whole run, and the rehearsal's Prometheus had them.
    exporter = next(e for e in events if e["event"] == "exporter_started")
    assert exporter["url"].startswith("http://127.0.0.1:")
    monitoring = stages["verify-monitoring"]
    if not monitoring.get("skipped"):  # Prometheus installed
        found = {f["check"]: f["passed"] for f in monitoring["findings"]}
        assert found["samples/golive"], monitoring["findings"]

    smoke = stages["smoke-green"]["checks"]
    checked = {c["name"]: c["status"] for c in smoke}
    assert checked["external service: credit bureau"] == "passed"
    assert checked["external service: legacy system"] == "passed"

    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "**Succeeded**" in report and "**0 failed requests**" in report
    assert "Latency per 10 s window" in report
    assert f"{load['requests']} requests at" in report

    # The rehearsal's webhook got the on-call messages (Apprise json://) and the status page's.
    got = [
        json.loads(line)
        for line in (tmp_path / "state" / "local" / "notifications.jsonl").read_text().splitlines()
    ]
    oncall = [g["body"]["title"] for g in got if g["path"] == "/oncall"]
    assert [t.split(":")[0].split(" (")[0] for t in oncall] == [
        "Go-live 2.0.0 started",
        "Maintenance in progress",
        "Go-live 2.0.0 finished",
    ], oncall
    assert [g["body"]["status"] for g in got if g["path"] == "/status"] == [
        "maintenance",
        "operational",
    ]
    assert "| oncall | apprise | 3 | 0 | 0 | 0 | 0 |" in report

    target = json.loads((tmp_path / "state" / "local" / "target.json").read_text())
    assert target["slots"] == {} and "router" not in target  # everything it started is stopped
    assert leftover_processes(tmp_path / "state") == []
