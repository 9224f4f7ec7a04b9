"""Flag providers against real HTTP servers: instances answering /flags (LaunchDarkly: see
test_launchdarkly_flag.py, against the rehearsal's stand-in and the real SDK)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from golive.errors import TrafficFlagError
from golive.traffic.base import FLAG_KEY
from golive.traffic.document import weight_of
from golive.traffic.flagd import FlagdFileFlag
from tests.integration.traffic.conftest import Recorded, json_answer


class FlagInstance:
    """Stands in for a service instance: reloads the flag file on a delay, answers /flags."""

    def __init__(self, path: Path, lag_polls: int = 0) -> None:
        self.path = path
        self.lag_polls = lag_polls
        self.polls = 0
        self.lock = threading.Lock()

    def __call__(self, request: Recorded) -> tuple[int, str, bytes]:
        import hashlib

        with self.lock:
            self.polls += 1
            stale = self.polls <= self.lag_polls
        content = b'{"flags": {}}' if stale or not self.path.exists() else self.path.read_bytes()
        weight = weight_of(json.loads(content), FLAG_KEY)
        return json_answer(
            200,
            {
                "flagSetVersion": hashlib.sha256(content).hexdigest()[:12],
                "flags": {FLAG_KEY: {"weightPercent": weight}},
                "provider": "flagd-file",
            },
        )


def test_flagd_file_verified_on_every_instance(tmp_path: Path, stub_server) -> None:
    path = tmp_path / "flags.json"
    fast = stub_server(FlagInstance(path))
    slow = stub_server(FlagInstance(path, lag_polls=3))  # loads the file a few polls later
    flag = FlagdFileFlag(path, instances=[fast.url, slow.url], poll_s=0.05)
    for percent in (0, 10, 50, 100):
        flag.set_weight(percent)
        states = flag.verify(percent=percent, timeout_s=5)
        assert {s.weight for s in states.values()} == {percent}
        assert {s.version for s in states.values()} == {flag.version()}
    assert flag.read_weights() == {fast.url: 100, slow.url: 100}


def test_an_instance_that_never_converges_is_named(tmp_path: Path, stub_server) -> None:
    path = tmp_path / "flags.json"
    good = stub_server(FlagInstance(path))
    stuck = stub_server(FlagInstance(path, lag_polls=10**6))
    flag = FlagdFileFlag(path, instances=[good.url, stuck.url], poll_s=0.05)
    flag.set_weight(10)
    with pytest.raises(TrafficFlagError) as caught:
        flag.verify(percent=10, timeout_s=0.5)
    assert f"1 of 2 instance(s) did not converge on weight 10%, version {flag.version()}" in str(
        caught.value
    )
    assert stuck.url in str(caught.value) and good.url not in str(caught.value)
