"""The kubernetes-configmap flag at its port, with a fake kubectl: only the traffic flag changes,
the patch is a merge of the ConfigMap's flags.json, and a missing kubectl is a clear error."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from golive.errors import TrafficFlagError
from golive.traffic.base import FLAG_KEY
from golive.traffic.configmap import ConfigMapFlag, kubectl_runner
from golive.traffic.document import weight_of

REPO = Path(__file__).resolve().parents[3]


class FakeKubectl:
    """Holds one ConfigMap; answers `get -o json` and applies `patch --type merge`."""

    def __init__(self, flags: dict[str, object]) -> None:
        self.data = {"flags.json": json.dumps(flags), "other.json": "{}"}
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        assert args[:2] == ["-n", "credit-assessment"]
        if args[2] == "get":
            return json.dumps({"kind": "ConfigMap", "data": self.data})
        assert args[2:6] == ["patch", "configmap", "credit-assessment-flags", "--type"]
        self.data.update(json.loads(args[-1])["data"])
        return ""


def test_set_weight_patches_only_the_traffic_flag() -> None:
    other = {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
    kubectl = FakeKubectl({"flags": {"another-flag": other}})
    flag = ConfigMapFlag("credit-assessment", run=kubectl)
    for percent in (10, 50, 100, 0):
        flag.set_weight(percent)
        document = json.loads(kubectl.data["flags.json"])
        assert weight_of(document, FLAG_KEY) == percent
        assert document["flags"]["another-flag"] == other
    assert kubectl.data["other.json"] == "{}"
    assert [c[2] for c in kubectl.calls] == ["get", "patch"] * 4


def test_the_shipped_disabled_flag_is_enabled_by_the_first_weight() -> None:
    shipped = json.loads((REPO / "deploy/k8s/production/flags.json").read_text(encoding="utf-8"))
    assert shipped["flags"][FLAG_KEY]["state"] == "DISABLED"
    kubectl = FakeKubectl(shipped)
    flag = ConfigMapFlag("credit-assessment", run=kubectl)
    assert flag.stored_weights() == {FLAG_KEY: 0}
    flag.set_weight(10)
    document = json.loads(kubectl.data["flags.json"])
    assert document["flags"][FLAG_KEY]["state"] == "ENABLED"
    assert flag.stored_weights() == {FLAG_KEY: 10}
    flag.set_weight(0)
    document = json.loads(kubectl.data["flags.json"])
    assert document["flags"][FLAG_KEY]["state"] == "ENABLED"
    assert flag.stored_weights() == {FLAG_KEY: 0}


def test_invalid_json_in_the_configmap_is_not_overwritten() -> None:
    kubectl = FakeKubectl({})
    kubectl.data["flags.json"] = "{not json"
    with pytest.raises(TrafficFlagError, match="not valid JSON"):
        ConfigMapFlag("credit-assessment", run=kubectl).set_weight(10)
    assert [c[2] for c in kubectl.calls] == ["get"]


def test_missing_kubectl_is_a_clear_error() -> None:
    run = kubectl_runner("kubectl-that-is-not-installed")
    with pytest.raises(TrafficFlagError, match="is not installed") as caught:
        run(["-n", "x", "get", "configmap", "y"])
    assert "traffic.flag_provider" in (caught.value.hint or "")


def test_the_plan_gives_the_flag_the_kubernetes_targets_context() -> None:
    from pathlib import Path

    import yaml

    from golive.plan import parse
    from golive.targets.fake import FakeTarget
    from golive.traffic.configmap import from_plan

    production = Path(__file__).resolve().parents[3] / "deploy/golive/production.yaml"
    data = yaml.safe_load(production.read_text(encoding="utf-8"))
    data["target"]["kubernetes"] = {"context": "lusaka-prod"}
    flag = from_plan(parse(yaml.safe_dump(data), "production.yaml"), FakeTarget())
    assert (flag.namespace, flag.context) == ("credit-assessment", "lusaka-prod")


def test_a_dry_run_records_the_patch_and_sends_nothing() -> None:
    from golive.targets.base import Write

    sent: list[list[str]] = []
    document = json.dumps({"flags": {FLAG_KEY: {"state": "ENABLED"}}})

    def run(args: Sequence[str]) -> str:
        sent.append(list(args))
        return json.dumps({"data": {"flags.json": document}})

    recorded: list[Write] = []
    flag = ConfigMapFlag("credit-assessment", run=run, record=recorded.append)
    flag.set_weight(50)
    assert [a[a.index("-n") + 2] for a in sent] == ["get"], "only the read was sent"
    assert len(recorded) == 1 and "patch configmap credit-assessment-flags" in recorded[0].path
    assert "50%" in recorded[0].summary
