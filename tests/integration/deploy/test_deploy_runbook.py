"""The story's runbook, replayed over the rendered objects.

No Kubernetes API server can run here, so `kubectl apply` and `kubectl patch` are
simulated over the rendered objects: a Deployment gets `replicas` pods carrying its pod
template labels, a Service's endpoints are the pods whose labels contain its selector, and
`patch` merges a map the way a strategic merge patch does.

    kubectl apply -k deploy/k8s/production -l slot!=green       # blue live (before)
    kubectl apply -k deploy/k8s/production -l slot=green        # deploy green
    kubectl wait --for=condition=ready pod -l app=credit-assessment,slot=green
    kubectl patch service credit-assessment -p '{"spec":{"selector":{"slot":"green"}}}'
    kubectl patch service credit-assessment -p '{"spec":{"selector":{"slot":"blue"}}}'  # rollback
"""

from __future__ import annotations

import copy
from typing import Any

Doc = dict[str, Any]


def _labels(doc: Doc) -> dict[str, str]:
    return doc["metadata"].get("labels") or {}


def _matches(selector: str, labels: dict[str, str]) -> bool:
    """A kubectl label selector: `k=v`, `k!=v`, comma-separated."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=")
            if labels.get(key) == value:
                return False
        else:
            key, value = term.split("=")
            if labels.get(key) != value:
                return False
    return True


def _merge(target: Doc, patch: Doc) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class Cluster:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Doc] = {}

    def apply(self, docs: list[Doc], selector: str = "") -> list[str]:
        applied = []
        for doc in docs:
            if _matches(selector, _labels(doc)):
                self.objects[(doc["kind"], doc["metadata"]["name"])] = copy.deepcopy(doc)
                applied.append(f"{doc['kind']}/{doc['metadata']['name']}")
        return applied

    def patch(self, kind: str, name: str, patch: Doc) -> None:
        _merge(self.objects[(kind, name)], patch)

    def get(self, kind: str, name: str) -> Doc:
        return self.objects[(kind, name)]

    def pods(self, selector: str = "") -> list[dict[str, str]]:
        pods = []
        for (kind, name), doc in sorted(self.objects.items()):
            if kind == "Deployment":
                labels = doc["spec"]["template"]["metadata"]["labels"]
                pods += [{**labels, "pod": f"{name}-{i}"} for i in range(doc["spec"]["replicas"])]
        return [p for p in pods if _matches(selector, p)]

    def endpoints(self, service: str) -> list[str]:
        selector = self.get("Service", service)["spec"]["selector"]
        return sorted(p["pod"] for p in self.pods() if selector.items() <= p.items())


def test_runbook_green_deploy_switch_and_rollback(rendered):
    docs = [m.doc for m in rendered["production"]]
    cluster = Cluster()

    # before: shared objects and blue are live
    cluster.apply(docs, "slot!=green")
    blue_pods = [p["pod"] for p in cluster.pods("app=credit-assessment,slot=blue")]
    assert len(blue_pods) == 3
    assert cluster.endpoints("credit-assessment") == blue_pods

    # 2. deploy to green: only slot=green objects are applied, the live Service is untouched
    applied = cluster.apply(docs, "slot=green")
    assert "Deployment/credit-assessment-green" in applied
    assert not any(a == "Service/credit-assessment" for a in applied)
    green_pods = cluster.pods("app=credit-assessment,slot=green")
    assert len(green_pods) == 3
    assert all(p["slot"] == "green" and p["app"] == "credit-assessment" for p in green_pods)
    assert cluster.endpoints("credit-assessment") == blue_pods
    assert cluster.endpoints("credit-assessment-green") == [p["pod"] for p in green_pods]

    # switch traffic to green
    cluster.patch("Service", "credit-assessment", {"spec": {"selector": {"slot": "green"}}})
    selector = cluster.get("Service", "credit-assessment")["spec"]["selector"]
    assert selector == {"app": "credit-assessment", "slot": "green"}
    assert cluster.endpoints("credit-assessment") == sorted(p["pod"] for p in green_pods)
    for pod in green_pods:
        assert selector.items() <= pod.items()

    # blue is kept for rollback
    assert ("Deployment", "credit-assessment-blue") in cluster.objects
    assert len(cluster.pods("slot=blue")) == 3

    # rollback
    cluster.patch("Service", "credit-assessment", {"spec": {"selector": {"slot": "blue"}}})
    assert cluster.endpoints("credit-assessment") == blue_pods


def test_reapplying_a_slot_never_moves_live_traffic(rendered):
    docs = [m.doc for m in rendered["production"]]
    cluster = Cluster()
    cluster.apply(docs)
    cluster.patch("Service", "credit-assessment", {"spec": {"selector": {"slot": "green"}}})
    cluster.apply(docs, "slot=blue")  # a new blue release while green is live
    assert cluster.get("Service", "credit-assessment")["spec"]["selector"]["slot"] == "green"
