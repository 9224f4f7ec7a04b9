"""``golive fetch-run``: a run's directory copied from the volume of golive's Job, through the
Job's pod while it runs, else through a reader pod that is always deleted afterwards.

kubectl is the port here (``run(argv) -> stdout``): the test cluster has no ``exec``, which
``kubectl cp`` needs, so the commands are checked as sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from golive.errors import TargetError
from golive.targets.kubefetch import RunFetcher

JOB_SPEC = {
    "spec": {
        "template": {
            "spec": {
                "securityContext": {"runAsNonRoot": True},
                "containers": [
                    {
                        "name": "golive",
                        "image": "registry.example.com/credit-assessment-golive:2.0.0",
                        "securityContext": {"readOnlyRootFilesystem": True},
                    }
                ],
            }
        }
    }
}


class Kubectl:
    """Answers like kubectl; records every command (and the reader pod it was given)."""

    def __init__(self, pods: list[dict[str, Any]], fail_cp: bool = False) -> None:
        self.pods, self.fail_cp = pods, fail_cp
        self.sent: list[list[str]] = []
        self.created: dict[str, Any] | None = None

    def __call__(self, args: Sequence[str]) -> str:
        args = list(args)
        self.sent.append(args)
        verb = args[args.index("-n") + 2]
        if verb == "get" and "pods" in args:
            return json.dumps({"items": self.pods})
        if verb == "get" and "job" in args:
            return json.dumps(JOB_SPEC)
        if verb == "create":
            self.created = json.loads(Path(args[-1]).read_text(encoding="utf-8"))
        if verb == "exec":
            return "20261207T010000Z-2.0.0-abcd\n"
        if verb == "cp" and self.fail_cp:
            raise TargetError("kubectl cp failed: tar: not found")
        return ""

    def verbs(self) -> list[str]:
        return [a[a.index("-n") + 2] for a in self.sent]


def running(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": "Running"}}


def test_a_running_job_pod_is_copied_from_directly(tmp_path: Path) -> None:
    kubectl = Kubectl([running("golive-x7k2p")])
    copied = RunFetcher("credit-assessment", kubectl, context="production").fetch(
        "20261207T010000Z-2.0.0-abcd", tmp_path
    )
    assert copied == tmp_path / "20261207T010000Z-2.0.0-abcd"
    assert kubectl.verbs() == ["get", "cp"], "no reader pod when the Job's pod runs"
    cp = kubectl.sent[-1]
    assert cp[:2] == ["--context", "production"]
    assert "golive-x7k2p:/var/lib/golive/state/runs/20261207T010000Z-2.0.0-abcd" in cp


def test_after_the_job_a_reader_pod_mounts_the_claim_read_only_and_is_deleted(
    tmp_path: Path,
) -> None:
    kubectl = Kubectl([{"metadata": {"name": "golive-old"}, "status": {"phase": "Succeeded"}}])
    copied = RunFetcher("credit-assessment", kubectl).fetch(None, tmp_path)
    assert copied.name == "20261207T010000Z-2.0.0-abcd"  # the latest, read from the claim
    assert kubectl.verbs() == ["get", "get", "create", "wait", "exec", "cp", "delete"]
    reader = kubectl.created
    assert reader is not None
    spec = reader["spec"]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "golive-state",
        "readOnly": True,
    }
    (container,) = spec["containers"]
    assert container["image"].endswith("credit-assessment-golive:2.0.0")
    assert container["volumeMounts"][0]["readOnly"] is True
    assert spec["automountServiceAccountToken"] is False
    assert kubectl.sent[-1][-2] == reader["metadata"]["name"]  # the pod deleted is the reader


def test_the_reader_pod_is_deleted_when_the_copy_fails(tmp_path: Path) -> None:
    kubectl = Kubectl([], fail_cp=True)
    with pytest.raises(TargetError, match="tar: not found"):
        RunFetcher("credit-assessment", kubectl).fetch("20261207T010000Z-2.0.0-abcd", tmp_path)
    assert kubectl.verbs()[-1] == "delete"


@pytest.mark.parametrize("run", ["../../etc", ".hidden", ""])
def test_a_run_id_that_names_no_run_directory_is_refused(tmp_path: Path, run: str) -> None:
    kubectl = Kubectl([running("golive-x7k2p")])
    with pytest.raises(TargetError, match="names no run directory"):
        RunFetcher("credit-assessment", kubectl).fetch(run, tmp_path)
    assert "cp" not in kubectl.verbs()
