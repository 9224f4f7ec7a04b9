"""Kubernetes objects of monitoring: ServiceMonitor labels and the log-shipping pipeline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "deploy" / "monitoring"
ALLOY = MONITORING / "logging" / "alloy" / "config.alloy"
DOCS = REPO / "docs" / "monitoring.md"


def test_servicemonitor_sets_the_job_and_slot_labels_rules_rely_on() -> None:
    documents = list(
        yaml.safe_load_all((MONITORING / "kubernetes" / "servicemonitor.yaml").read_text())
    )
    service = next(d for d in documents if d["kind"] == "ServiceMonitor")
    assert service["apiVersion"] == "monitoring.coreos.com/v1"
    relabel = {r["targetLabel"]: r for r in service["spec"]["endpoints"][0]["relabelings"]}
    assert relabel["job"]["replacement"] == "credit-assessment"
    assert relabel["slot"]["sourceLabels"] == ["__meta_kubernetes_pod_label_slot"]
    assert service["spec"]["endpoints"][0]["path"] == "/metrics"
    golive = next(d for d in documents if d["kind"] == "PodMonitor")
    assert golive["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["replacement"] == "golive"


def test_alloy_pipeline_parses_the_documented_log_fields() -> None:
    config = ALLOY.read_text()
    documented = set(
        re.findall(r"^\| `([a-z_]+)`", DOCS.read_text().split("## Logs", 1)[1], flags=re.M)
    )
    block = re.search(r"stage\.json \{\s*expressions = \{(.*?)\}", config, flags=re.S)
    assert block is not None
    extracted = set(re.findall(r"^\s*(\w+)\s*=", block.group(1), flags=re.M))
    assert {"timestamp", "level", "event", "request_id", "version"} <= extracted
    assert extracted <= documented
    assert 'label = "app=credit-assessment"' in config
    assert re.search(r'format\s*=\s*"RFC3339Nano"', config)
    # balanced blocks: a cheap syntax check without the alloy binary
    assert config.count("{") == config.count("}")


def test_log_shipping_kustomization_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("SKIP: kubectl not installed")
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(MONITORING / "logging")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config_map = yaml.safe_load(result.stdout)
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "alloy-credit-assessment"
    assert config_map["data"]["config.alloy"] == ALLOY.read_text()
