"""The rehearsal's LaunchDarkly stand-in as the environment runs it: its own process on the
plan's loopback port, generated secrets, the slots' variables, golive's flag through it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from golive.errors import StepFailed
from golive.plan import parse
from golive.rehearsal import emulators
from golive.runner import Runner
from golive.steps.shift import TrafficStage
from golive.targets.base import Instance
from golive.targets.fake import FakeTarget
from golive.traffic import launchdarkly
from tests.integration.traffic.conftest import free_port
from tests.integration.traffic.launchdarkly_rig import (
    API_TOKEN,
    RunningStandIn,
    eventually,
    instances,
)

REPO = Path(__file__).resolve().parents[3]


def test_the_environment_starts_the_stand_in_and_points_the_slots_at_it(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("LAUNCHDARKLY_API_TOKEN", raising=False)
    monkeypatch.delenv("LAUNCHDARKLY_API_TOKEN_FILE", raising=False)
    source = tmp_path / "plan.yaml"
    port = free_port()
    source.write_text(
        yaml.safe_dump(
            {
                "extends": str(REPO / "deploy/golive/rehearsal-launchdarkly.yaml"),
                "target": {"state_dir": str(tmp_path / "state")},
                "traffic": {"launchdarkly": {"api_url": f"http://127.0.0.1:{port}"}},
            }
        ),
        encoding="utf-8",
    )
    plan = parse(source.read_text(encoding="utf-8"), str(source))
    home = plan.state_dir.resolve() / "local"
    try:
        url = emulators.start_launchdarkly(home, plan)
        assert url == f"http://127.0.0.1:{port}"
        assert emulators.start_launchdarkly(home, plan) == url  # running: kept
        env = emulators.slot_env(home)
        assert env["FLAG_PROVIDER"] == "launchdarkly"
        assert env["LAUNCHDARKLY_BASE_URI"] == env["LAUNCHDARKLY_STREAM_URI"] == url
        key_file = Path(env["LAUNCHDARKLY_SDK_KEY_FILE"])
        token_file = launchdarkly.rehearsal_token_file(plan)
        for secret in (key_file, token_file):
            assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
        assert key_file.read_text() not in str(env)
        assert [d.name for d in emulators.dependencies(home)] == ["LaunchDarkly"]

        flag = launchdarkly.from_plan(plan, FakeTarget())
        assert flag.stored_weights() == {"new-credit-assessment-enabled": 0}
        flag.set_weight(10)
        assert flag.weight() == 10
        flag.close()
    finally:
        stopped = emulators.stop(home)
    assert any("launchdarkly" in s for s in stopped)


class ServingTarget(FakeTarget):
    """The fake target with green's instances real: the service's flag through the SDK."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(running={"green": "2.0.0"}, active="green")
        self.urls = urls

    def instances(self, slot):  # type: ignore[no-untyped-def]
        return [Instance(url, url) for url in self.urls] if slot in self.running else []


def test_a_stage_whose_patch_no_instance_sees_is_undone_in_launchdarkly_too(
    tmp_path: Path, monkeypatch
) -> None:
    standin = RunningStandIn()
    monkeypatch.setenv("LAUNCHDARKLY_API_TOKEN", API_TOKEN)
    source = tmp_path / "plan.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "extends": str(REPO / "deploy/golive/rehearsal-launchdarkly.yaml"),
                "target": {"state_dir": str(tmp_path / "state")},
                "monitoring": {"exporter": None},
                "traffic": {"launchdarkly": {"api_url": standin.url}, "verify_timeout_s": 2},
            }
        ),
        encoding="utf-8",
    )
    plan = parse(source.read_text(encoding="utf-8"), str(source))
    try:
        with instances(standin, 1) as serving:
            eventually(lambda: serving[0].flag.problem is None, 20, "the SDK did not start")
            standin.control(hold_patches=1)  # LaunchDarkly takes 10%, the SDKs never hear it
            target = ServingTarget([serving[0].url])
            stage = TrafficStage(plan.traffic.stages[0], previous_weight=0)
            with pytest.raises(StepFailed) as caught:
                Runner(plan, target, steps=[stage]).run()
            assert "did not converge on weight 10%" in caught.value.reason
            assert caught.value.undone == [
                "traffic-10: flag new-credit-assessment-enabled back to 0%"
            ]
            held = standin.golive_flag()
            assert held.weight() == 0  # not left at 10% for the stream to deliver later
            assert serving[0].flag.current is not None
            assert serving[0].flag.current.weight_percent == 0
    finally:
        standin.stop()
