"""The rehearsal's LaunchDarkly stand-in on a loopback port, and service instances evaluating
the flag through the real LaunchDarkly SDK connected to it, each answering ``GET /flags``."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from credit_assessment.routing.launchdarkly import LaunchDarklyFlag as ServiceFlag
from golive.rehearsal.launchdarkly import LaunchDarklyStandIn, create_app
from golive.traffic.launchdarkly import LaunchDarklyFlag
from tests.integration.traffic.conftest import Recorded, StubServer, free_port, json_answer

API_TOKEN = "api-token-for-tests"
SDK_KEY = "sdk-key-for-tests"


class RunningStandIn:
    def __init__(self) -> None:
        self.standin = LaunchDarklyStandIn(API_TOKEN, {"production": SDK_KEY})
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.standin),
                host="127.0.0.1",
                port=port,
                log_config=None,
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        eventually(lambda: self._server.started, 10, "the stand-in did not start")

    def control(self, **switches: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/control", json=switches, timeout=5)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def golive_flag(self, instances: list[str] | None = None, **options: Any) -> LaunchDarklyFlag:
        return LaunchDarklyFlag(
            api_token=options.pop("api_token", API_TOKEN),
            api_url=options.pop("api_url", self.url),
            instances=instances or [],
            poll_s=0.05,
            **options,
        )

    def stop(self) -> None:
        self._server.should_exit = True
        self.standin.drop_streams()
        self._thread.join(10)


class Instance:
    """One service instance's flag (the real SDK) behind a real ``GET /flags``."""

    def __init__(self, standin_url: str, sdk_key: str = SDK_KEY, **options: Any) -> None:
        self.flag = ServiceFlag(sdk_key, base_uri=standin_url, stream_uri=standin_url, **options)
        self.flag.start()
        self._http = StubServer(self._answer)
        self.url = self._http.url

    def _answer(self, request: Recorded) -> tuple[int, str, bytes]:
        return json_answer(200, self.flag.state())

    def new_engine(self, clients: list[uuid.UUID]) -> set[uuid.UUID]:
        return {c for c in clients if self.flag.enabled_for(c)}

    def stop(self) -> None:
        self._http.stop()
        asyncio.run(self.flag.stop())


def eventually(check: Callable[[], object], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)


@contextmanager
def instances(standin: RunningStandIn, count: int, **options: Any) -> Iterator[list[Instance]]:
    started = [Instance(standin.url, **options) for _ in range(count)]
    try:
        yield started
    finally:
        for instance in started:
            instance.stop()
