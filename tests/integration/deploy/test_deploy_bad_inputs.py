"""The checks catch what they claim to: deliberately broken copies of the manifests, in a
temporary directory, each fail with the file and the field named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from golive import manifests

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"


@pytest.fixture
def tree(tmp_path: Path, kubectl: str) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def findings(tree: Path, overlay: str, kubectl: str) -> list[str]:
    rendered = manifests.render_with_origins(tree, overlay, kubectl=kubectl)
    return [str(f) for f in manifests.check(rendered)]


def test_a_misspelled_field_fails_naming_file_and_field(tree, kubectl):
    edit(tree / "base/deployment.yaml", "terminationGracePeriodSeconds:", "terminationGracePeriod:")
    found = findings(tree, "production", kubectl)
    assert found
    assert all(f.startswith("base/deployment.yaml: Deployment/credit-assessment-") for f in found)
    assert any("spec.template.spec" in f and "terminationGracePeriod'" in f for f in found)


def test_a_missing_probe_fails_naming_file_and_field(tree, kubectl):
    edit(
        tree / "base/deployment.yaml",
        "          readinessProbe:\n            httpGet:\n              path: /ready\n"
        "              port: http\n            periodSeconds: 5\n            timeoutSeconds: 2\n"
        "            failureThreshold: 2\n",
        "",
    )
    assert findings(tree, "blue", kubectl) == [
        "base/deployment.yaml: Deployment/credit-assessment-blue: "
        "spec.template.spec.containers[0].readinessProbe: "
        "missing: every long-running container needs one"
    ]


def test_a_missing_probe_in_a_plain_manifest(tree, kubectl):
    edit(
        tree / "infra/redis/deployment.yaml",
        "          livenessProbe:\n            tcpSocket:\n              port: redis\n"
        "            periodSeconds: 10\n            failureThreshold: 3\n",
        "",
    )
    found = findings(tree, "infra", kubectl)
    assert found == [
        "infra/redis/deployment.yaml: Deployment/credit-assessment-cache: "
        "spec.template.spec.containers[0].livenessProbe: "
        "missing: every long-running container needs one"
    ]


def test_a_latest_tag_fails_in_the_overlay_and_in_the_rendered_object(tree, kubectl):
    edit(tree / "green/kustomization.yaml", "newTag: 2.0.0", "newTag: latest")
    source = [str(f) for f in manifests.check_kustomizations(tree)]
    assert len(source) == 1
    assert source[0].startswith("green/kustomization.yaml: Kustomization: images[0].newTag:")
    found = findings(tree, "green", kubectl)
    assert found == [
        "base/deployment.yaml: Deployment/credit-assessment-green: "
        "spec.template.spec.containers[0].image: "
        "'registry.example.com/credit-assessment:latest' uses the latest tag"
    ]


@pytest.mark.parametrize(
    ("image", "problem"),
    [("docker.io/library/redis:latest", "latest tag"), ("docker.io/library/redis", "no tag")],
)
def test_latest_or_untagged_images_fail(tree, kubectl, image, problem):
    edit(tree / "infra/redis/deployment.yaml", "docker.io/library/redis:7.4.2", image)
    (found,) = findings(tree, "infra", kubectl)
    assert found.startswith("infra/redis/deployment.yaml: Deployment/credit-assessment-cache:")
    assert "containers[0].image" in found
    assert problem in found


def test_a_misspelled_operator_field_fails(tree, kubectl):
    edit(tree / "infra/postgres/cluster.yaml", "  instances: 3", "  instance: 3")
    found = findings(tree, "infra", kubectl)
    assert (
        "infra/postgres/cluster.yaml: Cluster/credit-assessment-db: spec.instance: unknown field"
        in found
    )
    assert (
        "infra/postgres/cluster.yaml: Cluster/credit-assessment-db: spec.instances: "
        "required field missing"
    ) in found


def test_security_context_weakened_fails(tree, kubectl):
    edit(
        tree / "base/deployment.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    )
    edit(
        tree / "base/deployment.yaml",
        "            - name: secrets\n",
        "            - name: secrets\n",
    )
    found = findings(tree, "blue", kubectl)
    assert found == [
        "base/deployment.yaml: Deployment/credit-assessment-blue: "
        "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: must be true"
    ]


def test_missing_limits_fail(tree, kubectl):
    edit(tree / "migration/job.yaml", "              memory: 512Mi\n", "")
    found = findings(tree, "migration", kubectl)
    assert found == [
        "migration/job.yaml: Job/db-migration: "
        "spec.template.spec.containers[0].resources.limits.memory: missing resource limit"
    ]


def test_secret_values_fail(tree, kubectl):
    edit(
        tree / "base/deployment.yaml",
        "            - name: BUREAU_URL\n              value: https://bureau.example.com/api/v1\n",
        "            - name: BUREAU_URL\n"
        "              value: https://svc:Hunter2x@bureau.example.com/api/v1\n"
        "            - name: BUREAU_API_KEY\n              value: sk-live-0123456789\n",
    )
    (tree / "production/leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\n"
        "stringData:\n  password: correct-horse\n",
        encoding="utf-8",
    )
    edit(
        tree / "production/kustomization.yaml",
        "  - service.yaml\n",
        "  - service.yaml\n  - leak.yaml\n",
    )
    found = findings(tree, "production", kubectl)
    assert (
        "production/leak.yaml: Secret/leak: data: Secret with values: deliver it from Vault"
        in found
    )
    assert (
        "production/leak.yaml: Secret/leak: stringData.password: literal value for a secret"
        in found
    )
    url = [f for f in found if "credentials in a URL" in f]
    key = [f for f in found if "BUREAU_API_KEY set literally" in f]
    assert len(url) == 2 and len(key) == 2  # one per slot
    assert all(f.startswith("base/deployment.yaml: Deployment/") for f in url + key)
    assert not any("Hunter2x" in f or "sk-live" in f or "correct-horse" in f for f in found)
