"""The live page in headless Chromium while the real runner goes (fake target): the weight shown
changes from 10% to 50% without a reload. Chromium can reach nothing but loopback: everything
else goes to a proxy on a closed port (loopback is bypassed by Chromium's implicit rules, which
``<-loopback>`` would remove), and it is driven over ``--remote-debugging-pipe``."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from golive import control
from golive import journal as j
from golive.plan import Plan, load
from golive.runner import Runner
from golive.steps.base import StepContext, StepResult
from golive.targets.fake import FakeTarget
from tests.integration.golive.browser import CHROMIUM, Browser

REPO = Path(__file__).resolve().parents[3]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed (make system-deps installs it as root)",
)


class Stage:
    """A traffic stage that journals its verified weight, then holds until the test lets go."""

    def __init__(self, weight: int, previous: int, go_on: threading.Event) -> None:
        self.weight, self.previous, self.go_on = weight, previous, go_on
        self.name = f"traffic-{weight}"
        self.title = f"Traffic stage: {weight}%"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.journal.append(
            "traffic_shifted",
            step=self.name,
            weight=self.weight,
            previous=self.previous,
            deadline_s=60,
        )
        assert self.go_on.wait(120)
        return StepResult(f"{self.weight}%")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


def exporter_url(journal_path: Path, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in j.Journal(journal_path).events():
            if event["event"] == "exporter_started":
                return str(event["url"]).rsplit("/", 1)[0]
        time.sleep(0.05)
    raise AssertionError("the exporter never started")


def test_the_live_endpoints_are_read_only_beside_the_metrics(tmp_path) -> None:
    from golive.exporter import RunExporter

    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    plan = load(tmp_path / "plan.yaml")
    assert plan.monitoring.exporter is not None
    exporter = RunExporter(plan.monitoring.exporter, plan).start()
    try:
        journal = j.Journal(tmp_path / "journal.jsonl")
        journal.append("run_started", run_id="r1", release="2.0.0", steps=[])
        exporter.follow(journal)
        base = exporter.live_url.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{base}/live", timeout=10) as answer:
            assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
            assert "<script>" in answer.read().decode()
        with urllib.request.urlopen(f"{base}/live.json", timeout=10) as answer:
            assert json.load(answer)["run_id"] == "r1"
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            assert b"golive_run_info" in answer.read()
        refused = urllib.request.Request(f"{base}/live.json", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=10)
        assert caught.value.code == 405
    finally:
        exporter.stop()


@needs_chromium
def test_the_live_page_shows_the_weight_change_without_a_reload(tmp_path) -> None:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    plan = load(tmp_path / "plan.yaml")
    first, second = threading.Event(), threading.Event()
    runner = Runner(plan, FakeTarget(), steps=[Stage(10, 0, first), Stage(50, 10, second)])
    thread = threading.Thread(target=runner.run, kwargs={"report": False}, daemon=True)
    thread.start()
    browser = None
    try:
        latest = tmp_path / "state" / "runs" / "latest"
        deadline = time.monotonic() + 30
        while not latest.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        base = exporter_url(
            tmp_path / "state" / "runs" / latest.read_text().strip() / "journal.jsonl"
        )
        with urllib.request.urlopen(f"{base}/live.json", timeout=10) as answer:
            assert json.load(answer)["weight"] == 10.0
        assert f"live page: {base}/live" in control.status(tmp_path / "plan.yaml")
        browser = Browser(f"{base}/live", tmp_path / "profile")
        browser.attach(f"{base}/live")
        weight = "document.getElementById('weight').textContent"
        browser.wait_for(weight, "10%")
        browser.evaluate("window.loadedOnce = 'yes'")  # gone if the page reloaded
        assert "traffic-10" in browser.evaluate("document.getElementById('step').textContent")
        first.set()
        browser.wait_for(weight, "50%")
        assert browser.evaluate("window.loadedOnce") == "yes"
        assert "traffic-50" in browser.evaluate("document.getElementById('step').textContent")
        assert browser.evaluate("document.querySelectorAll('#charts svg').length") >= 1
    finally:
        first.set()
        second.set()
        if browser is not None:
            browser.close()
        thread.join(timeout=60)
