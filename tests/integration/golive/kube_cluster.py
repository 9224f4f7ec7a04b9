"""kmock's Kubernetes API emulator on a loopback port, for tests of golive's Kubernetes clients.

No real API server can run here. kmock stores the objects the tests create and applies patches
(as plain JSON merges) over real HTTP, but runs no controllers: tests play them by writing
status themselves. ``kubeconfig()`` points a real kubectl at it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import yaml

NAMESPACE = "credit-assessment"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
SERVICES = f"/api/v1/namespaces/{NAMESPACE}/services"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
PDBS = f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets"
HPAS = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers"
IMAGE = "registry.example.com/credit-assessment"

# The core group's discovery document as a real server gives it (kubectl needs "v1" here).
CORE_DISCOVERY = {
    "apiVersion": "v1",
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {
            "name": plural,
            "kind": kind,
            "singularName": plural[:-1],
            "shortNames": short,
            "verbs": ["get", "list", "patch", "update", "create", "delete"],
            "namespaced": True,
        }
        for plural, kind, short in (
            ("configmaps", "ConfigMap", ["cm"]),
            ("services", "Service", ["svc"]),
        )
    ],
}


class Cluster:
    """kmock's emulator on a loopback port, served from a thread of its own."""

    def __init__(self, *, discovery: bool = True, history: int | None = None) -> None:
        """``discovery``: kmock answers ``GET /api/v1`` itself (for kubectl against kmock
        alone; the API front answers discovery itself). ``history``: how many of the requests
        it served kmock keeps (None: all, for tests that assert on them). Each of the reactions
        kmock holds (its own fallbacks too) scans that history for every request, so a request
        costs time in proportion to the cluster's age: a go-live's tens of thousands of
        requests slow an unbounded kmock to a halt."""
        self.discovery = discovery
        self.history = history
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.emulator: Any = None
        self.url = ""

    def _serve(self) -> None:
        import kmock
        from kmock._internal.apps import Server

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with kmock.KubernetesEmulator() as emulator, Server(emulator):
                self.emulator = emulator
                if self.discovery:
                    emulator["get /api/v1"] << CORE_DISCOVERY
                if self.history is not None:
                    forgetting = asyncio.create_task(self._forget(emulator, self.history))
                self.url = str(emulator.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()
                if self.history is not None:
                    forgetting.cancel()

        asyncio.run(main())

    @staticmethod
    async def _forget(emulator: Any, kept: int) -> None:
        """Drop all but the newest ``kept`` requests from kmock's history, every second (in
        kmock's own loop: never while a request is being matched)."""
        while True:
            await asyncio.sleep(1.0)
            del emulator._requests[:-kept]

    def __enter__(self) -> Cluster:
        self._thread.start()
        assert self._ready.wait(15), "kmock did not start"
        self.http = httpx.Client(base_url=self.url, timeout=5)
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def create(self, path: str, obj: dict[str, Any]) -> None:
        self.http.post(path, json=obj).raise_for_status()

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        response.raise_for_status()
        return dict(response.json())

    def delete(self, path: str) -> None:
        self.http.delete(path).raise_for_status()

    def set_status(self, name: str, **status: Any) -> None:
        self.http.patch(f"{DEPLOYMENTS}/{name}", json={"status": status}).raise_for_status()

    def roll_out(self, name: str) -> None:
        """What the Deployment controller would do once the pods are up."""
        replicas = self.get(f"{DEPLOYMENTS}/{name}")["spec"]["replicas"]
        counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        self.set_status(name, **dict.fromkeys(counts, replicas))

    def kubeconfig(self, path: Path, context: str = "production") -> Path:
        """A kubeconfig whose context ``context`` is this emulator (and not the current one)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "operator", "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": "kmock", "user": "operator"}}],
            "current-context": "elsewhere",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path


def seed_blue_green(cluster: Cluster) -> None:
    """Blue serving 1.9.0 on 3 ready pods; green at 1.9.0 scaled to zero; the live Service on
    blue: the objects of deploy/k8s/production before a go-live."""
    cluster.create(DEPLOYMENTS, _deployment("blue", "1.9.0", 3))
    cluster.roll_out("credit-assessment-blue")
    cluster.create(DEPLOYMENTS, _deployment("green", "1.9.0", 0))
    cluster.create(SERVICES, _service("credit-assessment", _selector("blue")))
    for slot in ("blue", "green"):
        cluster.create(SERVICES, _service(f"credit-assessment-{slot}", _selector(slot)))
        # The slot's other objects of the overlay, which golive's server-side apply updates
        # (kmock merges an apply into an object that exists; it does not create one).
        name = f"credit-assessment-{slot}"
        for path, kind, api in (
            (PDBS, "PodDisruptionBudget", "policy/v1"),
            (HPAS, "HorizontalPodAutoscaler", "autoscaling/v2"),
        ):
            metadata = {"name": name, "namespace": NAMESPACE, "labels": _selector(slot)}
            cluster.create(path, {"apiVersion": api, "kind": kind, "metadata": metadata})
    # deploy/k8s/golive ships the ConfigMap golive and its operators meet in.
    control = {"name": "golive-control", "namespace": NAMESPACE}
    cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": control})


def _deployment(slot: str, version: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"credit-assessment-{slot}", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(slot)},
            "template": {
                "metadata": {"labels": _selector(slot)},
                "spec": {
                    "containers": [
                        {"name": "credit-assessment", "image": f"{IMAGE}:{version}"},
                        {"name": "log-shipper", "image": "fluent-bit:3.1"},
                    ]
                },
            },
        },
    }


def _selector(slot: str) -> dict[str, str]:
    return {"app": "credit-assessment", "slot": slot}


def _service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80}]},
    }
