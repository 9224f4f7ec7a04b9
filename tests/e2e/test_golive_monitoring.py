"""verify-monitoring against a real Prometheus scraping real slots (the rehearsal's stack), and
the plain skip when Prometheus is not installed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from golive.plan import load
from golive.rehearsal import environment
from golive.rehearsal.prometheus import NOT_INSTALLED
from golive.runner import Runner
from golive.steps.deploy import DeployGreen, WaitGreenReady
from golive.steps.monitoring import VerifyMonitoring
from tests.integration.golive.plans import leftover_processes, needs_haproxy, write_plan

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed: apt-get install prometheus (make test installs it)",
)


@needs_haproxy
@needs_prometheus
@pytest.mark.slow
def test_verify_monitoring_against_real_prometheus_scraping_real_slots(tmp_path: Path):
    plan = load(write_plan(tmp_path))
    target = environment.up(plan)
    try:
        started = target.monitoring()
        assert started["prometheus"]["url"].startswith("http://127.0.0.1:")
        runner = Runner(plan, target, steps=[DeployGreen(), WaitGreenReady(), VerifyMonitoring()])
        time.sleep(2)  # a scrape of green after it is ready (1 s interval)
        journal = runner.run()
        figures = journal.state().figures("verify-monitoring")
        checks = {f["check"]: f["passed"] for f in figures["findings"]}
        assert all(checks.values()), figures["findings"]
        for check in ("targets/blue", "targets/green", "rules/loaded", "alerts"):
            assert checks[check]
        assert checks["samples/flow/green"] and checks["alertmanager"]
        # golive's own metrics reached the rehearsal's Prometheus through file-based discovery.
        assert checks["samples/golive"]
        report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
        assert "## Monitoring" in report and "| targets/green | ok |" in report
    finally:
        stopped = environment.stop_everything(target)
    assert any(s.startswith("prometheus") for s in stopped)
    time.sleep(0.5)
    assert leftover_processes(tmp_path / "state") == []


class NoPrometheusTarget:
    kind = "local"

    def monitoring(self) -> dict[str, Any]:
        return {"skipped": NOT_INSTALLED}


def test_verify_monitoring_says_plainly_when_prometheus_is_missing(tmp_path: Path):
    from golive.journal import Control, open_run
    from golive.steps.base import StepContext

    plan = load(write_plan(tmp_path))
    ctx = StepContext(
        plan=plan,
        target=NoPrometheusTarget(),  # type: ignore[arg-type]
        journal=open_run(tmp_path / "state", "test-run"),
        control=Control(tmp_path / "state"),
    )
    result = VerifyMonitoring().run(ctx)
    assert result.summary == "skipped: prometheus not installed (apt-get install prometheus)"
    assert result.figures["skipped"] is True
