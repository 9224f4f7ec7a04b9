"""deploy/k8s/infra/generate.py wraps deploy/monitoring/ rule files and dashboards as
PrometheusRule and ConfigMap objects, and tolerates their absence."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from golive import manifests

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "deploy" / "k8s" / "infra" / "generate.py"


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("infra_generate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nothing_to_wrap_gives_an_empty_kustomization(generate, tmp_path):
    files = generate.render(tmp_path / "absent")
    assert list(files) == ["kustomization.yaml"]
    assert "resources: []" in files["kustomization.yaml"]


def test_rules_and_dashboards_are_wrapped(generate, tmp_path, kubectl):
    source = tmp_path / "deploy" / "monitoring"
    (source / "prometheus" / "rules").mkdir(parents=True)
    (source / "prometheus" / "tests").mkdir()
    (source / "grafana" / "dashboards").mkdir(parents=True)
    rule = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      up == 0\n    for: 1m\n"
    (source / "prometheus" / "rules" / "alerts.rules.yml").write_text(rule)
    (source / "prometheus" / "tests" / "alerts.test.yml").write_text("rule_files: []\ntests: []\n")
    dashboard = {"title": "Service", "panels": [{"type": "timeseries"}]}
    (source / "grafana" / "dashboards" / "service.json").write_text(json.dumps(dashboard))
    (source / "grafana" / "datasource.json").write_text('{"name": "not a dashboard"}')
    output = tmp_path / "out"
    assert generate.main(["--source", str(source), "--output", str(output)]) == 0
    assert generate.main(["--check", "--source", str(source), "--output", str(output)]) == 0
    objects = manifests.render(output, kubectl=kubectl)
    assert sorted(m.ref for m in objects) == [
        "ConfigMap/credit-assessment-dashboard-service",
        "PrometheusRule/credit-assessment-alerts-rules",
    ]
    assert manifests.check(objects) == []
    rule_object = next(m for m in objects if m.kind == "PrometheusRule").doc
    assert rule_object["spec"]["groups"][0]["rules"][0]["expr"] == "up == 0\n"
    assert rule_object["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    board = next(m for m in objects if m.kind == "ConfigMap").doc
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["service.json"]) == dashboard
    (source / "prometheus" / "rules" / "alerts.rules.yml").write_text(rule.replace("1m", "5m"))
    assert generate.main(["--check", "--source", str(source), "--output", str(output)]) == 1


def test_committed_monitoring_objects_are_up_to_date(generate, capsys):
    """Fails when deploy/monitoring/ changed: run `python deploy/k8s/infra/generate.py`."""
    assert generate.main(["--check"]) == 0, capsys.readouterr().err
