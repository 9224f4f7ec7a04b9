"""golive's LaunchDarkly provider against the rehearsal's stand-in, read back from instances
that evaluate the flag with the real LaunchDarkly SDK streaming from that stand-in."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from golive.errors import CredentialError, TrafficFlagError
from golive.traffic.base import FLAG_KEY
from tests.integration.traffic.launchdarkly_rig import (
    Instance,
    RunningStandIn,
    eventually,
    instances,
)

CLIENTS = [uuid.UUID(int=n * 7919 + 1) for n in range(2000)]


@pytest.fixture
def standin() -> Iterator[RunningStandIn]:
    running = RunningStandIn()
    yield running
    running.stop()


def test_each_client_keeps_its_engine_from_10_to_50_to_100(standin: RunningStandIn) -> None:
    with instances(standin, 2) as serving:
        for instance in serving:
            eventually(lambda i=instance: i.flag.problem is None, 20, i_problem(instance))
        flag = standin.golive_flag([i.url for i in serving])
        assert flag.stored_weights() == {FLAG_KEY: 0}  # shipped off: the preflight passes
        assert all(not i.new_engine(CLIENTS) for i in serving)
        previous: set[uuid.UUID] = set()
        for percent in (10, 50, 100):
            flag.set_weight(percent)
            states = flag.verify(percent=percent, timeout_s=20)
            assert {s.weight for s in states.values()} == {percent}
            assert len({s.version for s in states.values()}) == 1
            chosen = [i.new_engine(CLIENTS) for i in serving]
            assert chosen[0] == chosen[1]  # the SDK buckets the same on every instance
            assert previous <= chosen[0], "a client on the new engine went back to legacy"
            share = len(chosen[0]) / len(CLIENTS)
            assert abs(share - percent / 100) < 0.05, (percent, share)
            previous = chosen[0]
        flag.set_weight(0)  # the rollback: on at 0%, every client on legacy
        flag.verify(percent=0, timeout_s=20)
        assert all(not i.new_engine(CLIENTS) for i in serving)
        assert standin.standin.flags[FLAG_KEY]["environments"]["production"]["on"] is True
        assert standin.control()["counts"].get("event_posts", 0) == 0  # analytics off


def i_problem(instance: Instance) -> str:
    return f"the SDK did not initialise: {instance.flag.state()}"


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (400, TrafficFlagError, "refused the patch"),
        (401, CredentialError, "refused the API token (401"),
        (403, CredentialError, "may not PATCH"),
        (404, TrafficFlagError, "has no flag"),
        (409, TrafficFlagError, "as a conflict (409"),
    ],
)
def test_each_refusal_is_named_and_changes_nothing(
    standin: RunningStandIn, status: int, error: type[Exception], says: str
) -> None:
    flag = standin.golive_flag()
    before = flag.read()
    standin.control(fail_status=status, fail_times=1)
    with pytest.raises(error) as caught:
        flag.set_weight(10)
    assert says in str(caught.value)
    assert API_TOKEN_TEXT not in str(caught.value)
    assert flag.read() == before
    assert standin.control()["counts"][f"fault_{status}"] == 1


API_TOKEN_TEXT = "api-token-for-tests"


def test_real_refusals_a_wrong_token_an_unknown_project_a_patch_that_does_not_apply(
    standin: RunningStandIn,
) -> None:
    with pytest.raises(CredentialError) as caught:
        standin.golive_flag(api_token="not-the-token-1").set_weight(10)
    assert "not-the-token-1" not in f"{caught.value} {caught.value.hint}"
    with pytest.raises(TrafficFlagError, match="has no flag elsewhere/"):
        standin.golive_flag(project="elsewhere").set_weight(10)
    with pytest.raises(TrafficFlagError, match=r"refused the patch .*rules/3"):
        standin.golive_flag(rule=3).set_weight(10)
    assert standin.golive_flag().weight() == 0


def test_rate_limits_wait_for_retry_after(standin: RunningStandIn) -> None:
    standin.control(fail_status=429, fail_times=2, retry_after_s=4)
    slept: list[float] = []
    flag = standin.golive_flag(sleep=slept.append)
    flag.set_weight(10)
    assert slept == [4.0, 4.0]
    assert flag.weight() == 10


def test_server_errors_are_retried_a_bounded_number_of_times(standin: RunningStandIn) -> None:
    standin.control(fail_status=503, fail_times=10, retry_after_s=0)
    slept: list[float] = []
    with pytest.raises(TrafficFlagError, match=r"answered 503 3 times.*unchanged at 0%"):
        standin.golive_flag(attempts=3, sleep=slept.append).set_weight(50)
    assert len(slept) == 2
    assert standin.control()["counts"]["fault_503"] == 3
    standin.control(reset=True)
    assert standin.golive_flag().weight() == 0


def test_a_patch_no_instance_sees_times_out_the_read_back_and_the_undo_is_seen(
    standin: RunningStandIn,
) -> None:
    with instances(standin, 1) as serving:
        eventually(lambda: serving[0].flag.problem is None, 20, i_problem(serving[0]))
        flag = standin.golive_flag([serving[0].url])
        standin.control(hold_patches=1)
        flag.set_weight(10)  # LaunchDarkly holds 10%; the SDKs are never told
        with pytest.raises(TrafficFlagError, match="did not converge on weight 10%") as caught:
            flag.verify(percent=10, timeout_s=1.5)
        assert serving[0].url in str(caught.value)
        assert serving[0].flag.current is not None
        assert serving[0].flag.current.weight_percent == 0
        flag.set_weight(0)  # the stage's undo: streamed, at the flag's newest version
        (state,) = flag.verify(percent=0, timeout_s=20).values()
        assert state.version == "3"
        assert standin.control()["counts"]["patches_held"] == 1


def test_a_stream_dropped_mid_stage_keeps_the_last_good_flags(standin: RunningStandIn) -> None:
    skew = [0.0]
    with instances(standin, 1, stale_s=60, clock=lambda: time.time() + skew[0]) as serving:
        instance = serving[0]
        eventually(lambda: instance.flag.problem is None, 20, i_problem(instance))
        flag = standin.golive_flag([instance.url])
        flag.set_weight(50)
        flag.verify(percent=50, timeout_s=20)
        at_50 = instance.new_engine(CLIENTS)

        standin.control(refuse_streams=True, drop_streams=True)
        eventually(
            lambda: "interrupted" in instance.flag.state()["dataSource"],
            20,
            "the SDK did not notice the stream was gone",
        )
        assert instance.flag.problem is None  # within the stale limit: still ready
        assert instance.new_engine(CLIENTS) == at_50
        assert flag.read_weights() == {instance.url: 50}

        skew[0] = 61.0  # past the stale limit: not ready, every client on legacy
        assert "data source interrupted" in (instance.flag.problem or "")
        assert instance.new_engine(CLIENTS) == set()

        skew[0] = 0.0
        standin.control(refuse_streams=False)
        eventually(lambda: instance.flag.state()["dataSource"] == "valid", 30, "no reconnection")
        assert instance.new_engine(CLIENTS) == at_50


def test_a_wrong_sdk_key_is_refused_and_the_instance_is_not_ready(
    standin: RunningStandIn,
) -> None:
    with instances(standin, 1, sdk_key="sdk-key-of-nobody-42") as serving:
        instance = serving[0]
        eventually(
            lambda: "refused the SDK key (401)" in (instance.flag.problem or ""),
            20,
            f"no refusal seen: {instance.flag.state()}",
        )
        state = instance.flag.state()
        assert state["flagSetVersion"] is None
        assert "sdk-key-of-nobody-42" not in str(state)
        assert instance.new_engine(CLIENTS[:200]) == set()
    assert standin.control()["counts"]["sdk_refused"] >= 1
