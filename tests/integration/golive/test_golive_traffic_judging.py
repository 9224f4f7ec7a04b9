"""Traffic stages judged on live slots with no fault: 0 -> 10 -> 50 -> 100, three times in a row,
never a FAIL (no false alarm), the load's split following the flag, and every assessment the
load was given stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.golive.plans import needs_haproxy
from tests.integration.golive.traffic_rig import Rig, start_rig

pytestmark = [needs_haproxy, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    yield from start_rig(tmp_path_factory.mktemp("traffic-judging"))


def test_clean_stages_never_fail_and_follow_the_flag(rig: Rig) -> None:
    plan = rig.plan_with("clean.yaml")
    for attempt in range(3):
        rig.reset()
        with rig.load_through_router(200) as load:
            run = rig.run_stages(plan, load)
        assert run.error is None, f"attempt {attempt}: {run.error}"
        assert run.rolled_back() is None
        measured = [e for e in run.events if e["event"] == "stage_measured"]
        assert measured and all(e["verdict"] != "FAIL" for e in measured)
        finished = {e["step"]: e["figures"] for e in run.events if e["event"] == "step_finished"}
        assert [f["verdict"] for f in finished.values()] == ["PASS", "PASS", "PASS"]
        shares = {step: f["engines"]["share_new"] for step, f in finished.items()}
        # The load's share decided by the new engine follows the weight (sticky per client,
        # 2,000 distinct clients): a few points either side.
        assert 0.03 <= shares["traffic-10"] <= 0.2, shares
        assert 0.35 <= shares["traffic-50"] <= 0.65, shares
        assert shares["traffic-100"] >= 0.97, shares
        assert load.result.failed == 0, load.result.statuses()
        assert load.stored() == len(load.ids)
