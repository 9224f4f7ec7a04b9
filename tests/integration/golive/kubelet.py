"""The kubelet's part for one pod: a real process, its log files, its readiness, its restarts.

``PodProcess`` runs the pod's one emulated container (the credit-assessment service, or a Job's
command) as a child process with the environment a kubelet would give it (``container_env``:
literal values, field references, ConfigMap keys; secrets come from the cluster's ``pod_env``
instead of mounted files), volumes as directories of the pod (``volume_dirs``), and output to one
log file per run (``pods/{name}/log``, ``?previous=true``). Readiness is a poll of the
container's readinessProbe path every ``probe_s`` (the template's failureThreshold counts);
a process that exits is restarted with a growing back-off (restartPolicy Always) or ends the pod
(Never). Termination is the kubelet's: preStop sleep, SIGTERM, terminationGracePeriodSeconds,
SIGKILL.

Not covered: liveness and startup probes, resource limits, security contexts, image pulls (every
image runs this checkout's code), init and sidecar containers (only the first container whose
image or name is ``credit-assessment``, else the first one, runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.integration.golive.kube_objects import Obj

RESTART_BACKOFF_S = (0.5, 10.0)  # first delay and cap (a kubelet's are 10 s and 5 min)
TEARDOWN_WAIT_S = 5.0


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConfigMapVolume:
    name: str
    configmap: str
    items: dict[str, str]  # key -> file name; empty: every key under its own name
    directory: Path


@dataclass(frozen=True)
class PodPlan:
    """What the kubelet is told to run for one pod."""

    namespace: str
    name: str
    uid: str
    owner_kind: str
    labels: dict[str, str]
    container: str
    image: str
    argv: list[str]
    env: dict[str, str]
    directory: Path
    port: int | None
    restart_always: bool
    probe_path: str | None
    probe_failures: int
    prestop_s: float
    grace_s: float
    volumes: tuple[ConfigMapVolume, ...] = ()


@dataclass
class PodState:
    phase: str = "Pending"
    ready: bool = False
    restart_count: int = 0
    pid: int | None = None
    running_since: str | None = None
    waiting: str | None = "ContainerCreating"
    last_exit: Obj | None = None  # {exitCode, reason, startedAt, finishedAt}
    terminating: bool = False
    finished: bool = False  # no process now and none to come
    pids: list[int] = field(default_factory=list)


class PodProcess:
    """One pod's container as a child process, run by a thread of its own."""

    def __init__(self, plan: PodPlan, probe_s: float) -> None:
        self.plan = plan
        self.probe_s = probe_s
        self.created = time.monotonic()
        self.state = PodState()
        self.written_volumes: dict[str, str] = {}  # volume -> digest of what is on disk
        self.pending_volumes: dict[str, tuple[str, float]] = {}  # volume -> (digest, since)
        self._lock = threading.Lock()
        self._terminate = threading.Event()
        self._teardown = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._runs = 0
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{plan.name}", daemon=True)
        (plan.directory / "logs").mkdir(parents=True, exist_ok=True)

    # --- what the controllers call ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def snapshot(self) -> PodState:
        with self._lock:
            return PodState(**{**self.state.__dict__, "pids": list(self.state.pids)})

    def terminate(self) -> None:
        """Stop the pod as a kubelet does when its object is deleted (graceful)."""
        with self._lock:
            self.state.terminating = True
            self.state.ready = False
        self._terminate.set()

    def kill_now(self) -> None:
        """The cluster is going away: SIGTERM twice (skip the drain), then SIGKILL."""
        self._teardown.set()
        self.terminate()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def log(self, previous: bool) -> bytes | None:
        runs = self._runs - (1 if previous else 0)
        if runs < 1:
            return None
        path = self._log_path(runs)
        return path.read_bytes() if path.exists() else b""

    # --- the kubelet's loop -----------------------------------------------------------------

    def _log_path(self, run: int) -> Path:
        return self.plan.directory / "logs" / f"{self.plan.container}-{run}.log"

    def _run(self) -> None:
        delay, cap = RESTART_BACKOFF_S
        with httpx.Client(timeout=2.0) as probe:
            while not self._terminate.is_set():
                started = time.monotonic()
                process = self._spawn()
                if process is not None:
                    self._follow(process, probe)
                    if self._terminate.is_set():
                        break
                    self._exited(process)
                if not self.plan.restart_always:
                    with self._lock:
                        code = (self.state.last_exit or {}).get("exitCode", 1)
                        self.state.phase = "Succeeded" if code == 0 else "Failed"
                        self.state.finished = True
                    return
                delay = RESTART_BACKOFF_S[0] if time.monotonic() - started > cap else delay
                with self._lock:
                    self.state.waiting = "CrashLoopBackOff"
                if self._terminate.wait(delay):
                    break
                delay = min(delay * 2, cap)
                with self._lock:
                    self.state.restart_count += 1
        self._shutdown()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        self._runs += 1
        log_path = self._log_path(self._runs)
        stamp = now_iso()
        with log_path.open("wb") as log:
            try:
                process = subprocess.Popen(  # the pod's own argv, no shell
                    self.plan.argv,
                    env=self.plan.env,
                    cwd=self.plan.directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                log.write(f"failed to start container: {exc}\n".encode())
                with self._lock:
                    self.state.last_exit = _terminated(128, "StartError", stamp)
                return None
        with self._lock:
            self._process = process
            self.state.pid = process.pid
            self.state.pids.append(process.pid)
            self.state.phase = "Running"
            self.state.running_since = stamp
            self.state.waiting = None
        return process

    def _follow(self, process: subprocess.Popen[bytes], probe: httpx.Client) -> None:
        """Probe readiness until the process exits or the pod is told to stop."""
        failures = 0
        while process.poll() is None and not self._terminate.is_set():
            if self.plan.probe_path is None or self.plan.port is None:
                ok = True
            else:
                url = f"http://127.0.0.1:{self.plan.port}{self.plan.probe_path}"
                try:
                    ok = 200 <= probe.get(url).status_code < 400
                except httpx.HTTPError:
                    ok = False
            failures = 0 if ok else failures + 1
            with self._lock:
                if self._terminate.is_set():
                    break
                if ok:
                    self.state.ready = True
                elif failures >= self.plan.probe_failures:
                    self.state.ready = False
            self._terminate.wait(self.probe_s)

    def _exited(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        with self._lock:
            since = self.state.running_since or now_iso()
            reason = "Completed" if code == 0 else "Error"
            self.state.last_exit = _terminated(code, reason, since)
            self.state.ready = False
            self.state.pid = None
            self._process = None

    def _shutdown(self) -> None:
        with self._lock:
            self.state.ready = False
            process = self._process
        if process is not None and process.poll() is None:
            if self._teardown.is_set():
                self._stop_fast(process)
            else:
                self._stop_gracefully(process)
        with self._lock:
            if process is not None:
                code = process.poll()
                since = self.state.running_since or now_iso()
                self.state.last_exit = _terminated(
                    code if code is not None else 137, "Completed" if code == 0 else "Error", since
                )
            self.state.pid = None
            self.state.finished = True

    def _stop_gracefully(self, process: subprocess.Popen[bytes]) -> None:
        if self._teardown.wait(self.plan.prestop_s):
            self._stop_fast(process)
            return
        _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + self.plan.grace_s
        while time.monotonic() < deadline:
            try:
                process.wait(0.2)
                return
            except subprocess.TimeoutExpired:
                if self._teardown.is_set():
                    self._stop_fast(process)
                    return
        _kill(process)

    def _stop_fast(self, process: subprocess.Popen[bytes]) -> None:
        _signal(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.3)
            return
        _signal(process, signal.SIGTERM)  # the service skips its drain on a second signal
        try:
            process.wait(TEARDOWN_WAIT_S)
        except subprocess.TimeoutExpired:
            _kill(process)


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the pod's process group (its session, started for it, led by its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _terminated(code: int, reason: str, started: str) -> Obj:
    return {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_iso()}


# --------------------------------------------------------------------------- the pod's world


def volume_dirs(pod_spec: Obj, container: Obj, directory: Path) -> tuple[dict[str, Path], list]:
    """Each volume as a directory of the pod; the container's mount paths mapped onto them."""
    volumes: list[ConfigMapVolume] = []
    paths: dict[str, Path] = {}
    for volume in pod_spec.get("volumes") or []:
        path = directory / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        paths[volume["name"]] = path
        source = volume.get("configMap")
        if source:
            items = {i["key"]: i.get("path", i["key"]) for i in source.get("items") or []}
            volumes.append(ConfigMapVolume(volume["name"], source["name"], items, path))
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        base = paths.get(mount["name"])
        if base is not None:
            mounts[mount["mountPath"].rstrip("/")] = base / mount.get("subPath", "")
    return mounts, volumes


def remap(value: str, mounts: dict[str, Path]) -> str:
    """A path inside a mounted volume, as the same path in the pod's directory."""
    for mount in sorted(mounts, key=len, reverse=True):
        if value == mount or value.startswith(mount + "/"):
            return str(mounts[mount]) + value[len(mount) :]
    return value


def field_value(path: str, meta: Obj, spec: Obj) -> str | None:
    if path.startswith(("metadata.labels['", "metadata.annotations['")):
        group, key = path.split("['", 1)
        return (meta.get(group.split(".")[1]) or {}).get(key.rstrip("']"))
    values = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    return values.get(path)


def container_env(
    container: Obj,
    meta: Obj,
    spec: Obj,
    configmaps: dict[tuple[str, str], Obj],
    mounts: dict[str, Path],
    given: dict[str, str],
    overrides: dict[str, str],
    by_version: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The container's environment: the template's literal values, field and ConfigMap
    references (``*_FILE`` secret paths left out), then ``given`` (what mounted secrets would
    give), ``APP_VERSION`` from the image tag, what ``by_version`` holds for that tag (an older
    release played by this checkout's code), then ``overrides``."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name = item["name"]
        if name.endswith("_FILE"):
            continue
        source = item.get("valueFrom") or {}
        value: Any = None
        if "value" in item:
            value = item["value"]
        elif "fieldRef" in source:
            value = field_value(source["fieldRef"]["fieldPath"], meta, spec)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = configmaps.get((meta["namespace"], ref["name"]), {}).get("data") or {}
            value = data.get(ref["key"])
        if value is not None:
            env[name] = remap(str(value), mounts)
    env.update(given)
    env["APP_VERSION"] = image_tag(str(container.get("image", "")))
    env.update((by_version or {}).get(env["APP_VERSION"], {}))
    env.update(overrides)
    return env


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def pod_status(plan: PodPlan, state: PodState, previous: Obj) -> Obj:
    """The Pod's ``status`` as a kubelet reports it (timestamps kept while nothing changes)."""
    before = {c["type"]: c for c in previous.get("conditions") or []}

    def condition(kind: str, true: bool) -> Obj:
        status = "True" if true else "False"
        old = before.get(kind)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
        return {"type": kind, "status": status, "lastTransitionTime": since}

    if state.pid is not None:
        current: Obj = {"running": {"startedAt": state.running_since}}
    elif state.finished and state.last_exit:
        current = {"terminated": state.last_exit}
    else:
        current = {"waiting": {"reason": state.waiting or "ContainerCreating"}}
    container: Obj = {
        "name": plan.container,
        "image": plan.image,
        "imageID": "",
        "ready": state.ready,
        "started": state.pid is not None,
        "restartCount": state.restart_count,
        "state": current,
        "lastState": (
            {"terminated": state.last_exit}
            if state.last_exit and "terminated" not in current
            else {}
        ),
    }
    return {
        "phase": state.phase,
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", True),
            condition("ContainersReady", state.ready),
            condition("Ready", state.ready),
        ],
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": previous.get("startTime") or now_iso(),
        "containerStatuses": [container],
        "qosClass": "Burstable",
    }
