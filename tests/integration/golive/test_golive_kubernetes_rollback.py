"""The runner's own steps on the kubernetes target: deploy green, wait for its rollout, switch,
and, when a later step fails, roll back by itself: the Service back on blue, green at zero.

kmock stands in for the API server. Two small stand-ins play what a cluster does by itself: a
Deployment controller that marks every rollout complete, and the live Service's routing, which
answers each request from whichever slot the Service selects (with its X-Slot header).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from golive.errors import StepFailed
from golive.plan import Plan, parse
from golive.runner import Runner
from golive.steps.base import StepContext, StepResult
from golive.steps.deploy import DeployGreen, WaitGreenReady
from golive.steps.switch import SwitchToGreen
from golive.targets import create
from tests.integration.golive.kube_cluster import (
    DEPLOYMENTS,
    SERVICES,
    Cluster,
    seed_blue_green,
)

pytest.importorskip("kmock")
REPO = Path(__file__).resolve().parents[3]


class Controller:
    """Marks each Deployment's rollout complete once its spec asks for replicas."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.cluster.url, timeout=5) as http:
            while not self._stop.wait(0.05):
                for item in http.get(DEPLOYMENTS).json().get("items", []):
                    wanted = item["spec"].get("replicas", 0)
                    status = item.get("status") or {}
                    if status.get("readyReplicas") != wanted:
                        counts = ("replicas", "updatedReplicas", "readyReplicas")
                        http.patch(
                            f"{DEPLOYMENTS}/{item['metadata']['name']}",
                            json={
                                "status": {
                                    **dict.fromkeys(counts, wanted),
                                    "availableReplicas": wanted,
                                }
                            },
                        )

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


class LiveService:
    """Answers every request as the slot the live Service selects would (X-Slot)."""

    def __init__(self, cluster: Cluster) -> None:
        api = cluster.url

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                selector = httpx.get(f"{api}{SERVICES}/credit-assessment").json()["spec"]
                body = b'{"status":"ok"}'
                self.send_response(200)
                self.send_header("X-Slot", selector["selector"]["slot"])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LiveService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class GateFails:
    """Stands for a traffic stage whose gate fails after the switch."""

    name = "traffic-10"
    title = "Traffic stage: 10%"

    def run(self, ctx: StepContext) -> StepResult:
        raise RuntimeError("error-rate gate FAIL: 4.1% against 0.1%")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as cluster, Controller(cluster):
        seed_blue_green(cluster)
        yield cluster


def _plan(tmp_path: Path, api_url: str, service_url: str) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/production.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["target"]["public_url"] = service_url
    data["target"]["kubernetes"] = {"api_url": api_url, "poll_s": 0.05}
    data["deploy"]["ready_timeout_s"] = 20
    data["monitoring"]["exporter"] = {"host": "127.0.0.1", "port": 0}  # tests bind loopback
    source = tmp_path / "production.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


def test_a_failed_stage_after_the_switch_rolls_the_cluster_back_to_blue(
    cluster: Cluster, tmp_path: Path
) -> None:
    with LiveService(cluster) as live:
        plan = _plan(tmp_path, cluster.url, live.url)
        steps = [DeployGreen(), WaitGreenReady(), SwitchToGreen(), GateFails()]
        runner = Runner(plan, create(plan), steps=steps)
        with pytest.raises(StepFailed) as failed:
            runner.run(report=False)

    message = str(failed.value)
    assert "step 'traffic-10' failed: RuntimeError: error-rate gate FAIL" in message
    assert "switch-to-green: router back to blue" in message
    assert "deploy-green: green stopped" in message
    assert cluster.get(f"{SERVICES}/credit-assessment")["spec"]["selector"]["slot"] == "blue"
    assert cluster.get(f"{DEPLOYMENTS}/credit-assessment-green")["spec"]["replicas"] == 0
    assert cluster.get(f"{DEPLOYMENTS}/credit-assessment-blue")["spec"]["replicas"] == 3
    assert runner.journal is not None
    state = runner.journal.state()
    assert [s["to"] for s in state.switches] == ["green", "blue"]  # journaled, there and back
    assert {"switch-to-green", "deploy-green"} <= set(state.undone)
