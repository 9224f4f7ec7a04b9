"""The test cluster's controllers, in one polling thread that talks to the API front over HTTP.

Each tick (every ``poll_s``, and at once after any write to the API) reads the objects and plays:

- the Deployment and ReplicaSet controllers: ``spec.replicas`` pods of the current template
  (``<deployment>-<template hash>-<5 chars>``, labelled ``pod-template-hash``); a template change
  starts the new pods and deletes the old ones as the new become ready (maxSurge 100%,
  maxUnavailable 0); ``status`` with replicas, updatedReplicas, readyReplicas,
  availableReplicas, observedGeneration and the Available and Progressing conditions
  (ProgressDeadlineExceeded after ``progressDeadlineSeconds`` without progress). No ReplicaSet
  objects are kept: a pod's owner is its Deployment;
- the Job controller: one pod at a time (``<job>-<5 chars>``), ``backoffLimit`` retries,
  ``activeDeadlineSeconds``; status ``active``, then ``succeeded`` and ``Complete`` or ``failed``
  and ``Failed``;
- the kubelet's side of the API: each pod a ``kubelet.PodProcess``, its ``status`` written back,
  graceful deletion (the object goes once the process has stopped), ConfigMap volumes refreshed
  ``kubelet_sync_s`` after the ConfigMap changed;
- the EndpointSlice controller (one slice per pod port, as pods here differ by port) and the
  Endpoints object of each Service with a selector;
- the garbage collector: pods, slices and Endpoints whose owner is gone are deleted;
- kube-proxy's feed (``kube_proxy.ServiceProxy``) and Prometheus' file-based service discovery
  for the pods the committed ServiceMonitor scrapes (``ScrapeRule``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from tests.integration.golive.kube_api import NODE_NAME, TEMPLATE_PORT_ANNOTATION
from tests.integration.golive.kube_objects import BY_KIND, Kind, Obj, canonical, merge_diff
from tests.integration.golive.kube_proxy import ServiceProxy
from tests.integration.golive.kubelet import (
    PodPlan,
    PodProcess,
    PodState,
    container_env,
    now_iso,
    pod_status,
    remap,
    volume_dirs,
)

PODS, DEPLOYMENTS, JOBS = BY_KIND["Pod"], BY_KIND["Deployment"], BY_KIND["Job"]
SERVICES, CONFIGMAPS = BY_KIND["Service"], BY_KIND["ConfigMap"]
SLICES, ENDPOINTS = BY_KIND["EndpointSlice"], BY_KIND["Endpoints"]
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SERVICE_NAME = "kubernetes.io/service-name"
SLICE_MANAGER = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
FINISHED = ("Succeeded", "Failed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(canonical(template).encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in digest[:10])


def _suffix() -> str:
    return "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))


def _key(obj: Obj) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _labels(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def _owner_uids(obj: Obj) -> list[str]:
    return [r.get("uid", "") for r in obj.get("metadata", {}).get("ownerReferences") or []]


def _owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _selects(selector: dict[str, str], obj: Obj) -> bool:
    labels = _labels(obj)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class ScrapeRule:
    """Which pods a ServiceMonitor scrapes and the job label it gives them."""

    match_labels: dict[str, str]
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...]
    job: str

    @classmethod
    def load(cls, path: Path) -> ScrapeRule:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "ServiceMonitor":
                selector = doc["spec"].get("selector") or {}
                expressions = tuple(
                    (e["key"], e["operator"], tuple(e.get("values") or ()))
                    for e in selector.get("matchExpressions") or []
                )
                job = doc["metadata"]["name"]
                for endpoint in doc["spec"].get("endpoints") or []:
                    for relabel in endpoint.get("relabelings") or []:
                        if relabel.get("targetLabel") == "job" and "replacement" in relabel:
                            job = relabel["replacement"]
                return cls(dict(selector.get("matchLabels") or {}), expressions, job)
        raise ValueError(f"{path} holds no ServiceMonitor")

    def selects(self, service: Obj) -> bool:
        labels = _labels(service)
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for key, operator, values in self.match_expressions:
            present = key in labels
            ok = {
                "In": present and labels[key] in values,
                "NotIn": not present or labels[key] not in values,
                "Exists": present,
                "DoesNotExist": not present,
            }.get(operator, False)
            if not ok:
                return False
        return True


class ControllerApi:
    """The controllers' few calls to the API front."""

    def __init__(self, url: str) -> None:
        headers = {"User-Agent": "pod-cluster-controllers/1.0"}
        self._http = httpx.Client(base_url=url, timeout=10, headers=headers)

    def close(self) -> None:
        self._http.close()

    def list(self, kind: Kind) -> list[Obj]:
        response = self._http.get(kind.prefix(None))
        response.raise_for_status()
        return list(response.json()["items"])

    def create(self, kind: Kind, namespace: str, obj: Obj) -> Obj:
        response = self._http.post(kind.prefix(namespace), json=obj)
        response.raise_for_status()
        return dict(response.json())

    def replace(self, kind: Kind, obj: Obj) -> None:
        namespace, name = _key(obj)
        self._http.put(f"{kind.prefix(namespace)}/{name}", json=obj).raise_for_status()

    def status(self, kind: Kind, obj: Obj, status: Obj) -> None:
        namespace, name = _key(obj)
        patch = {"status": merge_diff(obj.get("status") or {}, status)}
        response = self._http.patch(
            f"{kind.prefix(namespace)}/{name}/status",
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code != 404:  # deleted meanwhile: nothing to report
            response.raise_for_status()

    def delete(self, kind: Kind, namespace: str, name: str, grace: int | None = None) -> None:
        params = {"gracePeriodSeconds": str(grace)} if grace is not None else {}
        response = self._http.delete(f"{kind.prefix(namespace)}/{name}", params=params)
        if response.status_code != 404:
            response.raise_for_status()


@dataclass
class World:
    """One read of every object the controllers look at."""

    deployments: list[Obj]
    jobs: list[Obj]
    pods: list[Obj]
    services: list[Obj]
    configmaps: dict[tuple[str, str], Obj]
    slices: list[Obj]
    endpoints: list[Obj]
    created: list[Obj] = field(default_factory=list)  # pods created in this tick

    def owned(self, uid: str) -> list[Obj]:
        return [p for p in self.pods + self.created if uid in _owner_uids(p)]


@dataclass
class Settings:
    pod_env: dict[str, str]
    overrides: dict[str, str]
    version_env: dict[str, dict[str, str]]
    kubelet_sync_s: float
    prestop_s: float | None
    probe_s: float
    poll_s: float
    cli: str


class PodRunner:
    """The controllers and every pod's kubelet, from a thread of their own."""

    def __init__(
        self,
        api_url: str,
        root: Path,
        settings: Settings,
        *,
        proxy: ServiceProxy,
        sd_file: Path,
        scrape: ScrapeRule,
        revision: Callable[[], int],
    ) -> None:
        self.root, self.settings = root, settings
        self.api = ControllerApi(api_url)
        self.proxy, self.sd_file, self.scrape, self._revision = proxy, sd_file, scrape, revision
        self.errors: list[str] = []
        self._procs: dict[tuple[str, str], PodProcess] = {}
        self._every: list[PodProcess] = []  # every pod ever run: logs and pids
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-controllers", daemon=True)
        self._world: World | None = None
        self._states: dict[tuple[str, str], PodState] = {}
        self._seen = (-1, 0.0)
        self._progress: dict[str, tuple[str, float]] = {}
        self._proxied: set[str] = set()
        self._sd = ""
        self._write_sd([])

    # --- lifecycle and what the cluster asks ------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)
        # The loop is done writing: Prometheus must not go on scraping pods about to be stopped
        # (a later cluster's go-live would see them as down targets of its own slots).
        self._sd = ""
        self._write_sd([])
        with self._lock:
            every = list(self._every)
        for pod in every:
            pod.kill_now()
        for pod in every:
            pod.join(30)
        self.api.close()

    def pods(self) -> list[PodProcess]:
        with self._lock:
            return list(self._procs.values())

    def every_pod(self) -> list[PodProcess]:
        with self._lock:
            return list(self._every)

    def pod_log(self, namespace: str, name: str, *, previous: bool) -> bytes | None:
        with self._lock:
            found = [p for p in self._every if (p.plan.namespace, p.plan.name) == (namespace, name)]
        return found[-1].log(previous) if found else None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:
                text = traceback.format_exc()
                self.errors.append(text.strip().splitlines()[-1])
                with (self.root / "controllers.log").open("a", encoding="utf-8") as log:
                    log.write(f"{now_iso()} {text}\n")
            self._wake.wait(self.settings.poll_s)
            self._wake.clear()
            time.sleep(0.02)  # let a burst of writes settle into one tick

    # --- one tick ---------------------------------------------------------------------------

    def _tick(self) -> None:
        world = self._read()
        self._collect_garbage(world)
        self._kubelet(world)
        # One look at every pod per tick; routes and endpoints first, so that a Deployment
        # reported ready is already routed to.
        self._states = {key: proc.snapshot() for key, proc in list(self._procs.items())}
        self._publish(world)
        self._endpoints(world)
        for deployment in world.deployments:
            self._deployment(deployment, world)
        for job in world.jobs:
            self._job(job, world)
        self._report_pods(world)
        self._sync_volumes(world)

    def _read(self) -> World:
        revision = self._revision()
        fresh = time.monotonic() - self._seen[1] < 30.0  # only the front writes
        if self._world is not None and self._seen[0] == revision and fresh:
            self._world.created = []
            return self._world
        api = self.api
        world = World(
            deployments=api.list(DEPLOYMENTS),
            jobs=api.list(JOBS),
            pods=api.list(PODS),
            services=api.list(SERVICES),
            configmaps={_key(c): c for c in api.list(CONFIGMAPS)},
            slices=api.list(SLICES),
            endpoints=api.list(ENDPOINTS),
        )
        self._world, self._seen = world, (revision, time.monotonic())
        return world

    def _state(self, pod: Obj) -> tuple[bool, str]:
        """(ready, phase) of a pod: the kubelet's own view if it runs it, else its status."""
        proc = self._procs.get(_key(pod))
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if proc is not None:
            state = self._states.get(_key(pod)) or proc.snapshot()
            return state.ready and not deleting and not state.terminating, state.phase
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        return ready and not deleting, str(status.get("phase", "Pending"))

    def _collect_garbage(self, world: World) -> None:
        owners = {o["metadata"]["uid"] for o in world.deployments + world.jobs + world.services}
        for pod in world.pods:
            uids = _owner_uids(pod)
            if uids and not set(uids) & owners and not pod["metadata"].get("deletionTimestamp"):
                self.api.delete(PODS, *_key(pod))
        for kind, objs in ((SLICES, world.slices), (ENDPOINTS, world.endpoints)):
            for obj in objs:
                uids = _owner_uids(obj)
                if uids and not set(uids) & owners:
                    self.api.delete(kind, *_key(obj))

    def _kubelet(self, world: World) -> None:
        """Graceful deletion: stop the process, then remove the object."""
        present = {_key(p): p for p in world.pods}
        for key, proc in list(self._procs.items()):
            pod = present.get(key)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                proc.terminate()
                if proc.snapshot().finished:
                    if pod is not None:
                        self.api.delete(PODS, *key, grace=0)
                    with self._lock:
                        del self._procs[key]

    # --- Deployments ------------------------------------------------------------------------

    def _deployment(self, deployment: Obj, world: World) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        template = spec.get("template") or {}
        current_hash = template_hash(template)
        want = int(spec.get("replicas", 1))
        live = [p for p in world.owned(meta["uid"]) if not p["metadata"].get("deletionTimestamp")]
        current = [p for p in live if _labels(p).get("pod-template-hash") == current_hash]
        old = [p for p in live if p not in current]
        while len(current) < want:
            labels = {**(template.get("metadata", {}).get("labels") or {})}
            labels["pod-template-hash"] = current_hash
            name = f"{meta['name']}-{current_hash}-{_suffix()}"
            current.append(self._run_pod(deployment, template, name, labels, world))

        def doomed_first(pod: Obj) -> tuple[bool, float]:  # not ready first, then newest
            proc = self._procs.get(_key(pod))
            return self._state(pod)[0], -(proc.created if proc else 0.0)

        for pod in sorted(current, key=doomed_first)[: max(0, len(current) - want)]:
            self._delete_pod(pod)
            current.remove(pod)
        ready_new = sum(self._state(p)[0] for p in current)
        keep_old = max(0, want - ready_new)
        for pod in sorted(old, key=doomed_first)[: max(0, len(old) - keep_old)]:
            self._delete_pod(pod)
            old.remove(pod)
        self._deployment_status(deployment, want, current, old)

    def _deployment_status(
        self, deployment: Obj, want: int, current: list[Obj], old: list[Obj]
    ) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        ready = sum(self._state(p)[0] for p in current + old)
        counts = {
            "replicas": len(current) + len(old),
            "updatedReplicas": len(current),
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        complete = len(current) >= want and not old and ready >= want
        signature = canonical([meta.get("generation"), counts])
        seen, since = self._progress.get(meta["uid"], ("", time.monotonic()))
        if seen != signature:
            since = time.monotonic()
            self._progress[meta["uid"]] = (signature, since)
        deadline = float(spec.get("progressDeadlineSeconds") or 600)
        name = meta["name"]
        if complete:
            progressing = ("True", "NewReplicaSetAvailable", f'Deployment "{name}" is available.')
        elif time.monotonic() - since > deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'Deployment "{name}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'Deployment "{name}" is progressing.')
        available = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if ready >= want
            else (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        previous = deployment.get("status") or {}
        status: Obj = {k: v for k, v in counts.items() if v}
        if want > ready:
            status["unavailableReplicas"] = want - ready
        status["observedGeneration"] = meta.get("generation", 1)
        status["conditions"] = _conditions(
            previous, [("Available", *available), ("Progressing", *progressing)]
        )
        if canonical(status) != canonical(previous):
            self.api.status(DEPLOYMENTS, deployment, status)

    # --- Jobs -------------------------------------------------------------------------------

    def _job(self, job: Obj, world: World) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        previous = job.get("status") or {}
        pods = [p for p in world.owned(meta["uid"]) if not p["metadata"].get("deletionTimestamp")]
        phases = [self._state(p)[1] for p in pods]
        active = [p for p, phase in zip(pods, phases, strict=True) if phase not in FINISHED]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        started = previous.get("startTime") or now_iso()
        conditions = [
            (c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
            for c in previous.get("conditions") or []
        ]
        finished = any(c[0] in ("Complete", "Failed") and c[1] == "True" for c in conditions)
        completion = previous.get("completionTime")
        if not finished:
            elapsed = (datetime.now(UTC) - _parse_time(started)).total_seconds()
            limit = spec.get("activeDeadlineSeconds")
            if succeeded >= 1:
                conditions += [
                    (
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ),
                    (
                        "Complete",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ),
                ]
                completion = now_iso()
            elif failed > int(spec.get("backoffLimit", 6)):
                conditions += [
                    (
                        "FailureTarget",
                        "True",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    ),
                    (
                        "Failed",
                        "True",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    ),
                ]
            elif limit is not None and elapsed > float(limit):
                for pod in active:
                    self._delete_pod(pod)
                active = []
                conditions += [
                    (
                        "FailureTarget",
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ),
                    (
                        "Failed",
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ),
                ]
            elif not active and not spec.get("suspend"):
                template = spec.get("template") or {}
                labels = {**(template.get("metadata", {}).get("labels") or {})}
                labels.update(
                    {"job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"]}
                )
                active = [
                    self._run_pod(job, template, f"{meta['name']}-{_suffix()}", labels, world)
                ]
        status: Obj = {"startTime": started, "active": len(active)}
        status["ready"] = sum(self._state(p)[0] for p in active)
        if succeeded:
            status["succeeded"] = succeeded
        if failed:
            status["failed"] = failed
        if completion:
            status["completionTime"] = completion
        status["uncountedTerminatedPods"] = {}
        if conditions:
            status["conditions"] = _conditions(previous, conditions)
        if not status["active"]:
            status.pop("active")
        if canonical(status) != canonical(previous):
            self.api.status(JOBS, job, status)

    # --- pods ---------------------------------------------------------------------------------

    def _run_pod(
        self, owner: Obj, template: Obj, name: str, labels: dict[str, str], world: World
    ) -> Obj:
        """Create the Pod object, then start its process (as the kubelet would)."""
        namespace = owner["metadata"]["namespace"]
        spec = copy.deepcopy(template.get("spec") or {})
        containers = spec.get("containers") or [{"name": "main"}]
        spec["containers"] = containers
        index = next(
            (
                i
                for i, c in enumerate(containers)
                if c.get("name") == "credit-assessment"
                or "credit-assessment" in str(c.get("image", "")).rsplit("/", 1)[-1]
            ),
            0,
        )
        container = containers[index]
        declared = container.get("ports") or []
        long_running = owner["kind"] == "Deployment"
        if long_running and not declared:
            declared = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        port = free_port() if declared else None
        annotations = dict(template.get("metadata", {}).get("annotations") or {})
        if port is not None:
            annotations[TEMPLATE_PORT_ANNOTATION] = str(declared[0]["containerPort"])
            container["ports"] = [{**declared[0], "containerPort": port}, *declared[1:]]
        spec["nodeName"] = NODE_NAME
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_owner_ref(owner)],
            },
            "spec": spec,
        }
        created = self.api.create(PODS, namespace, pod)
        directory = self.root / "pods" / namespace / name
        mounts, volumes = volume_dirs(spec, container, directory)
        env = self._env(container, created, mounts, directory, port)
        probe = container.get("readinessProbe") or {}
        prestop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
        plan = PodPlan(
            namespace=namespace,
            name=name,
            uid=created["metadata"]["uid"],
            owner_kind=owner["kind"],
            labels=labels,
            container=container.get("name", "main"),
            image=str(container.get("image", "")),
            argv=self._argv(container, port),
            env=env,
            directory=directory,
            port=port,
            restart_always=long_running and spec.get("restartPolicy", "Always") != "Never",
            probe_path=(probe.get("httpGet") or {}).get("path") if port and probe else None,
            probe_failures=int(probe.get("failureThreshold", 3)),
            prestop_s=(
                self.settings.prestop_s
                if self.settings.prestop_s is not None
                else float(prestop.get("seconds", 0))
            ),
            grace_s=float(spec.get("terminationGracePeriodSeconds", 30)),
            volumes=tuple(volumes),
        )
        proc = PodProcess(plan, self.settings.probe_s)
        self._mount(proc, world)
        with self._lock:
            self._procs[(namespace, name)] = proc
            self._every.append(proc)
        proc.start()
        world.created.append(created)
        return created

    def _env(
        self, container: Obj, pod: Obj, mounts: dict[str, Path], directory: Path, port: int | None
    ) -> dict[str, str]:
        tmp = remap("/tmp", mounts)
        if tmp == "/tmp":
            tmp = str(directory / "tmp")
        Path(tmp).mkdir(parents=True, exist_ok=True)
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "LANG": "C.UTF-8",
            "HOSTNAME": pod["metadata"]["name"],
            "TMPDIR": tmp,
        }
        if port is not None:
            base.update(HOST="127.0.0.1", PORT=str(port))
        world = self._world
        configmaps = world.configmaps if world else {}
        settings = self.settings
        return base | container_env(
            container,
            pod["metadata"],
            pod["spec"],
            configmaps,
            mounts,
            settings.pod_env,
            settings.overrides,
            settings.version_env,
        )

    def _argv(self, container: Obj, port: int | None) -> list[str]:
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
        if not words:
            words = ["credit-assessment", "serve"]
            if port is not None:
                words += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        if words[0] == "credit-assessment":
            words[0] = self.settings.cli
        return words

    def _delete_pod(self, pod: Obj) -> None:
        self.api.delete(PODS, *_key(pod))
        proc = self._procs.get(_key(pod))
        if proc is not None:
            proc.terminate()

    def _report_pods(self, world: World) -> None:
        for pod in world.pods:
            proc = self._procs.get(_key(pod))
            if proc is None:
                continue
            state = self._states.get(_key(pod)) or proc.snapshot()
            status = pod_status(proc.plan, state, pod.get("status") or {})
            if canonical(status) != canonical(pod.get("status")):
                self.api.status(PODS, pod, status)

    # --- volumes ------------------------------------------------------------------------------

    def _files(self, proc: PodProcess, world: World) -> dict[str, dict[str, str]]:
        wanted = {}
        for volume in proc.plan.volumes:
            configmap = world.configmaps.get((proc.plan.namespace, volume.configmap))
            if configmap is None:
                continue
            data = configmap.get("data") or {}
            items = volume.items or {k: k for k in data}
            wanted[volume.name] = {path: data[k] for k, path in items.items() if k in data}
        return wanted

    def _mount(self, proc: PodProcess, world: World) -> None:
        for volume in proc.plan.volumes:
            files = self._files(proc, world).get(volume.name)
            if files is not None:
                _write_files(volume.directory, files)
                proc.written_volumes[volume.name] = canonical(files)

    def _sync_volumes(self, world: World) -> None:
        """The kubelet's periodic sync: a changed ConfigMap reaches the pod's files
        ``kubelet_sync_s`` after the change was seen."""
        now = time.monotonic()
        for proc in self.pods():
            wanted = self._files(proc, world)
            for volume in proc.plan.volumes:
                files = wanted.get(volume.name)
                if files is None:
                    continue
                digest = canonical(files)
                if proc.written_volumes.get(volume.name) == digest:
                    proc.pending_volumes.pop(volume.name, None)
                    continue
                pending = proc.pending_volumes.get(volume.name)
                if pending is None or pending[0] != digest:
                    proc.pending_volumes[volume.name] = pending = (digest, now)
                if now - pending[1] >= self.settings.kubelet_sync_s:
                    _write_files(volume.directory, files)
                    proc.written_volumes[volume.name] = digest
                    proc.pending_volumes.pop(volume.name, None)

    # --- Services: endpoints, kube-proxy, scrape targets ---------------------------------------

    def _selected(self, service: Obj, world: World) -> list[tuple[Obj, int, bool]]:
        """(pod, its port, ready) for every running pod the Service's selector selects."""
        selector = (service.get("spec") or {}).get("selector") or {}
        namespace = service["metadata"]["namespace"]
        found = []
        for pod in world.pods:
            if pod["metadata"]["namespace"] != namespace or not _selects(selector, pod):
                continue
            ready, phase = self._state(pod)
            port = _pod_port(pod)
            if port is not None and phase not in FINISHED:
                found.append((pod, port, ready))
        return sorted(found, key=lambda item: item[0]["metadata"]["name"])

    def _endpoints(self, world: World) -> None:
        for service in world.services:
            if not (service.get("spec") or {}).get("selector"):
                continue
            selected = self._selected(service, world)
            name = service["metadata"]["name"]
            existing = {
                s["metadata"]["name"]: s
                for s in world.slices
                if _key(s)[0] == service["metadata"]["namespace"]
                and _labels(s).get(SERVICE_NAME) == name
            }
            wanted = {s["metadata"]["name"]: s for s in _slices(service, selected)}
            self._converge(SLICES, service, existing, wanted)
            current = [e for e in world.endpoints if _key(e) == _key(service)]
            self._converge(
                ENDPOINTS,
                service,
                {e["metadata"]["name"]: e for e in current},
                {name: _endpoints_object(service, selected)},
            )

    def _converge(
        self, kind: Kind, service: Obj, existing: dict[str, Obj], wanted: dict[str, Obj]
    ) -> None:
        namespace = service["metadata"]["namespace"]
        for name, obj in wanted.items():
            old = existing.get(name)
            if old is None:
                self.api.create(kind, namespace, obj)
                continue
            shape = {k: v for k, v in obj.items() if k != "metadata"}
            before = {k: old.get(k) for k in shape}
            if canonical(shape) != canonical(before) or _labels(old) != _labels(obj):
                merged = {**copy.deepcopy(old), **copy.deepcopy(shape)}
                merged["metadata"]["labels"] = _labels(obj)
                self.api.replace(kind, merged)
        for name in set(existing) - set(wanted):
            self.api.delete(kind, namespace, name)

    def _publish(self, world: World) -> None:
        seen = set()
        for service in world.services:
            if not (service.get("spec") or {}).get("selector"):
                continue
            key = "/".join(_key(service))
            seen.add(key)
            self.proxy.ensure(key)
            ready = [port for _, port, ok in self._selected(service, world) if ok]
            self.proxy.set_backends(key, ready)
        for key in self._proxied - seen:
            self.proxy.remove(key)
        self._proxied = seen
        targets: dict[str, Obj] = {}
        for service in world.services:
            if not self.scrape.selects(service):
                continue
            for pod, port, _ in self._selected(service, world):
                proc = self._procs.get(_key(pod))
                if proc is None or proc.snapshot().terminating:
                    continue
                labels = _labels(pod)
                targets[pod["metadata"]["name"]] = {
                    "targets": [f"127.0.0.1:{port}"],
                    "labels": {
                        "job": self.scrape.job,
                        "namespace": pod["metadata"]["namespace"],
                        "pod": pod["metadata"]["name"],
                        "slot": labels.get("slot", ""),
                        "version": labels.get("version") or proc.plan.env.get("APP_VERSION", ""),
                    },
                }
        self._write_sd([targets[name] for name in sorted(targets)])

    def _write_sd(self, groups: list[Obj]) -> None:
        text = json.dumps(groups, indent=2)
        if text != self._sd:
            temporary = self.sd_file.with_name(f".{self.sd_file.name}.tmp")
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(self.sd_file)
            self._sd = text


def _pod_port(pod: Obj) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("containerPort"):
                return int(port["containerPort"])
    return None


def _slices(service: Obj, selected: list[tuple[Obj, int, bool]]) -> list[Obj]:
    """One EndpointSlice per pod port (every pod here listens on a port of its own)."""
    meta = service["metadata"]
    first = ((service.get("spec") or {}).get("ports") or [{}])[0]
    by_port: dict[int, list[Obj]] = {}
    for pod, port, ready in selected:
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        by_port.setdefault(port, []).append(
            {
                "addresses": ["127.0.0.1"],
                "conditions": {
                    "ready": ready,
                    "serving": ready or terminating,
                    "terminating": terminating,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": meta["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
                "nodeName": NODE_NAME,
            }
        )
    port_entry = {"port": 0, "protocol": first.get("protocol", "TCP")}
    if first.get("name"):
        port_entry["name"] = first["name"]
    return [
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{meta['name']}-{port}",
                "namespace": meta["namespace"],
                "labels": {SERVICE_NAME: meta["name"], **SLICE_MANAGER},
                "ownerReferences": [_owner_ref(service)],
            },
            "addressType": "IPv4",
            "ports": [{**port_entry, "port": port}],
            "endpoints": endpoints,
        }
        for port, endpoints in sorted(by_port.items())
    ]


def _endpoints_object(service: Obj, selected: list[tuple[Obj, int, bool]]) -> Obj:
    meta = service["metadata"]
    first = ((service.get("spec") or {}).get("ports") or [{}])[0]
    subsets = []
    for pod, port, ready in selected:
        address = {
            "ip": "127.0.0.1",
            "nodeName": NODE_NAME,
            "targetRef": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }
        entry: Obj = {"ports": [{"port": port, "protocol": first.get("protocol", "TCP")}]}
        if first.get("name"):
            entry["ports"][0]["name"] = first["name"]
        entry["addresses" if ready else "notReadyAddresses"] = [address]
        subsets.append(entry)
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [_owner_ref(service)],
        },
    }
    if subsets:
        obj["subsets"] = subsets
    return obj


def _conditions(previous: Obj, wanted: list[tuple[str, str, str, str]]) -> list[Obj]:
    """Conditions in the order given; a condition's times move only when it changes."""
    before = {c["type"]: c for c in previous.get("conditions") or []}
    out = []
    for kind, status, reason, message in wanted:
        old = before.get(kind)
        unchanged = old is not None and (old.get("status"), old.get("reason")) == (status, reason)
        stamp = now_iso()
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": old.get("lastUpdateTime", stamp) if unchanged and old else stamp,
                "lastTransitionTime": (
                    old.get("lastTransitionTime", stamp) if unchanged and old else stamp
                ),
            }
        )
    return out


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _write_files(directory: Path, files: dict[str, str]) -> None:
    """A ConfigMap volume's files, each replaced atomically; keys gone are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        temporary = directory / f".{name}.tmp"
        temporary.write_text(content, encoding="utf-8")
        temporary.replace(directory / name)
    for path in directory.iterdir():
        if not path.name.startswith(".") and path.name not in files:
            path.unlink()
