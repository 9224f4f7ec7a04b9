"""The run's files, brought home from the volume of golive's Job (``golive fetch-run``).

The state directory lives on the PersistentVolumeClaim of deploy/k8s/golive, which only a pod can
read. ``fetch`` copies a run's directory (journal, report, review pack, validation) with
``kubectl cp`` from the Job's pod while it runs; once it has finished, from a short-lived reader
pod that mounts the claim read-only (the Job's image and security context, ``sleep``), deleted
afterwards whatever happens. The operator's kubectl context is used as it is: it needs ``get``,
``create`` and ``delete`` on pods and ``create`` on ``pods/exec`` (what ``kubectl cp`` uses),
which golive's own Role does not grant.

The commands run through ``run(argv) -> stdout`` (``golive.traffic.configmap.kubectl_runner``
shape), so a unit test passes a fake.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from golive.errors import TargetError

Run = Callable[[Sequence[str]], str]

JOB = "golive"
CLAIM = "golive-state"
MOUNT = "/var/lib/golive"
STATE = f"{MOUNT}/state"  # deploy/k8s/golive/plan/in-cluster.yaml's target.state_dir
READER_WAIT_S = 120.0


def kubectl_runner(kubectl: str, timeout_s: float = 300.0) -> Run:
    """Runs ``kubectl ARGS`` with the operator's context; a refusal raises ``TargetError``."""

    def run(args: Sequence[str]) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - argv built here, no shell
                [kubectl, *args], capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TargetError(f"kubectl {' '.join(args[:4])} did not finish: {exc}") from exc
        if done.returncode != 0:
            raise TargetError(
                f"kubectl {' '.join(a for a in args if len(a) < 80)} failed: "
                f"{done.stderr.strip()[-500:]}",
                hint="fetch-run uses your kubectl context: it needs get, create and delete on "
                "pods and create on pods/exec in the namespace",
            )
        return done.stdout

    return run


class RunFetcher:
    """Copies run directories from the claim to this machine."""

    def __init__(self, namespace: str, run: Run, *, context: str | None = None) -> None:
        self.namespace, self.context, self._run = namespace, context, run

    def _kubectl(self, *args: str) -> str:
        context = ["--context", self.context] if self.context else []
        return self._run([*context, "-n", self.namespace, *args])

    def _json(self, *args: str) -> dict[str, Any]:
        try:
            found = json.loads(self._kubectl(*args, "-o", "json"))
        except ValueError as exc:
            raise TargetError(f"kubectl {' '.join(args)} answered no JSON") from exc
        return found if isinstance(found, dict) else {}

    def job_pod(self) -> str | None:
        """The Job's running pod, which mounts the claim (None: none runs)."""
        pods = self._json("get", "pods", "-l", f"batch.kubernetes.io/job-name={JOB}")
        for pod in pods.get("items") or []:
            if (pod.get("status") or {}).get("phase") == "Running":
                return str(pod["metadata"]["name"])
        return None

    def reader_pod(self) -> dict[str, Any]:
        """A pod that mounts the claim read-only and sleeps: the Job's image and security."""
        job = self._json("get", "job", JOB)
        template = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = template.get("containers") or []
        if not containers:
            raise TargetError(
                f"the Job {self.namespace}/{JOB} is not there to take its image from",
                hint="the run's files are on the claim golive-state; mount it in any pod",
            )
        main = containers[0]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"golive-fetch-{secrets.token_hex(3)}",
                "labels": {"app": "golive-fetch"},
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": template.get("securityContext") or {},
                "containers": [
                    {
                        "name": "reader",
                        "image": main["image"],
                        "command": ["sleep", "600"],
                        "securityContext": main.get("securityContext") or {},
                        "volumeMounts": [{"name": "state", "mountPath": MOUNT, "readOnly": True}],
                    }
                ],
                "volumes": [
                    {
                        "name": "state",
                        "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True},
                    }
                ],
            },
        }

    def fetch(self, run_id: str | None, destination: Path) -> Path:
        """Copy ``state/runs/<run_id>`` (None: the latest) to ``destination/<run_id>``."""
        pod, container, made = self.job_pod(), "golive", None
        if pod is None:
            made = self.reader_pod()
            with tempfile.TemporaryDirectory(prefix="golive-fetch-") as scratch:
                manifest = Path(scratch) / "reader.json"
                manifest.write_text(json.dumps(made), encoding="utf-8")
                self._kubectl("create", "-f", str(manifest))
            pod, container = made["metadata"]["name"], "reader"
        try:
            if made is not None:
                self._kubectl(
                    "wait", "--for=condition=Ready", f"pod/{pod}", f"--timeout={READER_WAIT_S:.0f}s"
                )
            if run_id is None:
                latest = self._kubectl(
                    "exec", pod, "-c", container, "--", "cat", f"{STATE}/runs/latest"
                )
                run_id = latest.strip()
            if not run_id or "/" in run_id or run_id.startswith("."):
                raise TargetError(f"no run to fetch: {run_id!r} names no run directory")
            target = destination / run_id
            target.parent.mkdir(parents=True, exist_ok=True)
            self._kubectl("cp", "-c", container, f"{pod}:{STATE}/runs/{run_id}", str(target))
            return target
        finally:
            if made is not None:
                self._kubectl("delete", "pod", str(made["metadata"]["name"]), "--wait=false")
