"""The cluster's ServiceMonitor and the monitoring stack's copy must scrape the same way."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def _relabelings(path: Path) -> list[dict[str, object]]:
    monitors = [
        d
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d and d["kind"] == "ServiceMonitor"
    ]
    assert len(monitors) == 1, path
    (endpoint,) = monitors[0]["spec"]["endpoints"]
    return sorted(
        ({k: v for k, v in r.items()} for r in endpoint["relabelings"]),
        key=lambda r: str(r.get("targetLabel")),
    )


def test_both_service_monitors_label_job_slot_and_pod_alike() -> None:
    infra = _relabelings(REPO / "deploy/k8s/infra/servicemonitor.yaml")
    stack = _relabelings(REPO / "deploy/monitoring/kubernetes/servicemonitor.yaml")
    assert infra == stack
    job = next(r for r in infra if r.get("targetLabel") == "job")
    assert job["replacement"] == "credit-assessment"
