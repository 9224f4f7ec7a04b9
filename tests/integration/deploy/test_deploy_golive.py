"""golive in the cluster (deploy/k8s/golive, rendered by deploy/k8s/golive-production): the
objects pass every policy, the Role grants exactly what golive's steps use and nothing broad,
the Job resumes interruptions but never a finished outcome, the pod is hardened like the
service's, the plan it runs is the production plan with in-cluster paths."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.golive.kube_objects import role_grants

from golive import cli, manifests, plan, secrets

REPO = Path(__file__).resolve().parents[3]
COMPONENT = REPO / "deploy" / "k8s" / "golive"
PLAN = REPO / "deploy" / "golive" / "production.yaml"
PLAN_COPY = COMPONENT / "plan" / "production.yaml"
IN_CLUSTER = COMPONENT / "plan" / "in-cluster.yaml"
MONITORING = REPO / "deploy" / "monitoring" / "kubernetes" / "servicemonitor.yaml"
NAMESPACE = "credit-assessment"
ALLOWED_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
FOUR_DAYS_S = 4 * 86400

Doc = dict[str, Any]


def expected_grants() -> set[tuple[str, str, str | None, str]]:
    """What golive's go-live asks of the API server (golive.targets.kubernetes.permissions,
    which its preflight checks too), one tuple per grant: (group, resource, name, verb)."""
    from golive.targets.kubernetes import permissions

    return {
        (
            p.group,
            f"{p.resource}/{p.subresource}" if p.subresource else p.resource,
            p.name or None,
            p.verb,
        )
        for p in permissions(plan.load(IN_CLUSTER))
    }


def by_kind(objects: list[manifests.Manifest], kind: str) -> list[Doc]:
    return [m.doc for m in objects if m.kind == kind]


def one(objects: list[manifests.Manifest], kind: str) -> Doc:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def golive(rendered) -> list[manifests.Manifest]:
    return rendered["golive-production"]


@pytest.fixture(scope="module")
def job(golive) -> Doc:
    found = one(golive, "Job")
    assert found["metadata"]["name"] == "golive"
    return found


def role_problems(role: Doc) -> list[str]:
    """What makes a Role broader than golive may have: wildcards, Secrets, other verbs."""
    problems = []
    for index, rule in enumerate(role.get("rules") or []):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            if "*" in (rule.get(field) or []):
                problems.append(f"rules[{index}].{field}: a wildcard")
        if any(r == "secrets" or r.startswith("secrets/") for r in rule.get("resources") or []):
            problems.append(f"rules[{index}].resources: secrets")
        extra = set(rule.get("verbs") or []) - ALLOWED_VERBS
        if extra:
            problems.append(f"rules[{index}].verbs: {sorted(extra)} not allowed")
        if rule.get("nonResourceURLs"):
            problems.append(f"rules[{index}].nonResourceURLs: not allowed")
    return problems


# ---------------------------------------------------------------- render and policies


def test_the_overlay_renders_and_passes_every_policy(golive):
    kinds = sorted(m.kind for m in golive)
    assert kinds == sorted([
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "ConfigMap",
        "PersistentVolumeClaim", "Job", "ExternalSecret", "PodMonitor", "NetworkPolicy",
    ])  # fmt: skip
    for m in golive:
        assert m.doc["metadata"]["namespace"] == NAMESPACE, m.ref
        assert m.kind != "Secret", m.ref
    findings = manifests.check(golive)
    assert not findings, "\n".join(str(f) for f in findings)


def test_the_strict_schema_is_applied_to_the_job(job):
    """kubernetes-validate --strict really sees the Job: a misspelled field fails."""
    wrong = copy.deepcopy(job)
    wrong["spec"]["podFailurePolicy"]["rule"] = wrong["spec"]["podFailurePolicy"].pop("rules")
    findings = manifests.check_schema([manifests.Manifest(wrong, "golive/job.yaml")])
    assert findings and "rule" in str(findings[0])


def test_a_misspelled_pod_monitor_field_is_caught(golive):
    wrong = copy.deepcopy(one(golive, "PodMonitor"))
    wrong["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    findings = manifests.check([manifests.Manifest(wrong, "golive/podmonitor.yaml")])
    assert findings and "intervall" in str(findings[0]), findings


# ---------------------------------------------------------------- RBAC


def test_the_role_grants_exactly_what_golive_uses(golive):
    role = one(golive, "Role")
    assert role["metadata"]["name"] == "golive"
    assert role_problems(role) == []
    assert role_grants(role) == expected_grants()


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["list"]}, "apiGroups: a wildcard"),
        ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, "resources: a wildcard"),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, "verbs: a wildcard"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "resources: secrets"),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["escalate"]}, "not allowed"),
    ],
)
def test_a_broader_rule_is_caught(golive, rule, problem):
    role = copy.deepcopy(one(golive, "Role"))
    role["rules"].append(rule)
    found = role_problems(role)
    assert any(problem in f for f in found), found
    assert role_grants(role) != expected_grants()


def test_the_role_binding_binds_only_golive(golive):
    binding = one(golive, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "golive",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "golive", "namespace": NAMESPACE}
    ]
    account = one(golive, "ServiceAccount")
    assert account["metadata"]["name"] == "golive"
    assert account["automountServiceAccountToken"] is True


def test_the_control_config_map_ships_empty(golive):
    names = {d["metadata"]["name"]: d for d in by_kind(golive, "ConfigMap")}
    control = names["golive-control"]
    assert not control.get("data"), "golive writes requests.json/status.json; ship none"


# ---------------------------------------------------------------- the Job


def test_the_job_runs_the_in_cluster_plan_as_golive(job, golive):
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "golive"
    assert pod["automountServiceAccountToken"] is True
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["name"] == "golive"
    assert container["command"] == [
        "golive", "run", "--resume-or-start", "/etc/golive/plan/in-cluster.yaml", "--plain"
    ]  # fmt: skip
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "golive"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[_mount_named(mounts, "/var/lib/golive")]["persistentVolumeClaim"] == {
        "claimName": "golive-state"
    }
    plan_volume = volumes[_mount_named(mounts, "/etc/golive/plan")]["configMap"]["name"]
    (plan_map,) = [d for d in by_kind(golive, "ConfigMap") if d["metadata"]["name"] == plan_volume]
    assert set(plan_map["data"]) == {"production.yaml", "in-cluster.yaml"}
    assert plan_map["data"]["in-cluster.yaml"] == IN_CLUSTER.read_text(encoding="utf-8")
    assert plan_map["data"]["production.yaml"] == PLAN.read_text(encoding="utf-8")
    claim = one(golive, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "golive-state"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def _mount_named(mounts: dict[str, str], path: str) -> str:
    names = [name for name, mount in mounts.items() if mount == path]
    assert len(names) == 1, f"nothing mounted at {path}: {mounts}"
    return names[0]


def _failure_action(job: Doc, exit_code: int) -> str:
    """What the podFailurePolicy does with golive exiting with exit_code (first match wins,
    as the Job controller reads it; no match: counted)."""
    for rule in job["spec"]["podFailurePolicy"]["rules"]:
        codes = rule.get("onExitCodes")
        if codes and codes.get("containerName", "golive") == "golive":
            inside = exit_code in codes["values"]
            if inside == (codes["operator"] == "In"):
                return str(rule["action"])
    return "Count"


@pytest.mark.parametrize("code", [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 21, 22, 23])
def test_a_finished_outcome_fails_the_job_without_retry(job, code):
    assert _failure_action(job, code) == "FailJob"


@pytest.mark.parametrize("code", [1, 6, 130, 137, 143])
def test_an_interruption_is_retried_and_resumed(job, code):
    assert _failure_action(job, code) == "Count"


def test_a_rollback_counted_as_a_retry_is_caught(job):
    """Were 13 left out of the FailJob rule, a rolled-back go-live would start again."""
    wrong = copy.deepcopy(job)
    for rule in wrong["spec"]["podFailurePolicy"]["rules"]:
        if rule["action"] == "FailJob":
            rule["onExitCodes"]["values"].remove(13)
    assert _failure_action(wrong, 13) == "Count"


def test_disruptions_are_ignored_and_the_job_outlives_the_go_live(job):
    spec = job["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert 4 <= spec["backoffLimit"] <= 10
    assert spec.get("activeDeadlineSeconds", FOUR_DAYS_S) >= FOUR_DAYS_S
    assert spec["ttlSecondsAfterFinished"] >= 86400
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec.get("parallelism", 1) == 1 and spec.get("completions", 1) == 1


def test_the_pod_is_hardened_like_the_service(job, rendered):
    service = next(
        d for d in by_kind(rendered["production"], "Deployment")
        if d["metadata"]["name"] == "credit-assessment-green"
    )["spec"]["template"]["spec"]  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"] == service["securityContext"]
    reference = service["containers"][0]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert container["securityContext"] == reference["securityContext"], container["name"]
        assert set(container["resources"]) == {"requests", "limits"}, container["name"]
        assert container["image"].startswith("registry.example.com/credit-assessment-golive:")
        assert manifests.image_problem(container["image"]) is None
    volumes = {v["name"]: v for v in pod["volumes"]}
    (golive,) = pod["containers"]
    tmp = next(m["name"] for m in golive["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in volumes[tmp]


def test_the_pod_monitor_scrapes_the_job_pod_as_in_the_monitoring_stack(golive, job):
    monitor = one(golive, "PodMonitor")
    stack = next(
        d for d in yaml.safe_load_all(MONITORING.read_text(encoding="utf-8"))
        if d and d["kind"] == "PodMonitor"
    )  # fmt: skip
    assert monitor == stack, f"{COMPONENT / 'podmonitor.yaml'} differs from {MONITORING}"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for c in job["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports


def test_the_network_policy_admits_only_prometheus_on_the_metrics_port(golive):
    policy = one(golive, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "golive"}}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9464}]
    (source,) = ingress["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {53, 6443, 5432, 443}


# ---------------------------------------------------------------- secrets


def test_the_credentials_come_from_vault_and_every_key_is_wired(golive, rendered):
    wiring = secrets.wire(rendered["production"] + golive, None, "credit-assessment/production")
    assert wiring.problems == []
    readers = {r for vp in wiring.vault_paths for r in vp.readers}
    assert {r.split(":")[0] for r in readers if "golive" in r} == {
        "ExternalSecret/golive-credentials"
    }
    (container,) = one(golive, "Job")["spec"]["template"]["spec"]["containers"]
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert from_secret == dict.fromkeys(
        ("GOLIVE_CLIENT_ID", "GOLIVE_CLIENT_SECRET", "DATABASE_URL", "GOLIVE_ONCALL_URL",
         "GOLIVE_STATUS_PAGE_URL"),
        "golive-credentials",
    )  # fmt: skip
    external = one(golive, "ExternalSecret")
    written = {d["secretKey"] for d in external["spec"]["data"]}
    read = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert written == read, "every key written is read, and every key read is written"
    assert Path("deploy/k8s/golive-production") in secrets.DEFAULT_MANIFESTS


def test_a_credential_the_external_secret_does_not_write_is_a_wiring_problem(golive):
    broken = copy.deepcopy([m.doc for m in golive])
    external = next(d for d in broken if d["kind"] == "ExternalSecret")
    external["spec"]["data"] = [
        d for d in external["spec"]["data"] if d["secretKey"] != "oncall-url"
    ]
    wiring = secrets.wire([manifests.Manifest(d, "x.yaml") for d in broken], None, None)
    assert any("GOLIVE_ONCALL_URL" in p and "'oncall-url'" in p for p in wiring.problems)


# ---------------------------------------------------------------- the plan


PLAN_REL = PLAN.relative_to(REPO)
PLAN_COPY_REL = PLAN_COPY.relative_to(REPO)


def plan_copy_problem(root: Path) -> str | None:
    """Why the component's plan under root is not the production plan, with the fix."""
    if (root / PLAN_COPY_REL).read_bytes() == (root / PLAN_REL).read_bytes():
        return None
    return f"{PLAN_COPY_REL} is not a copy of {PLAN_REL}; run\n  cp {PLAN_REL} {PLAN_COPY_REL}"


def test_the_component_plan_is_a_byte_copy_of_the_production_plan():
    problem = plan_copy_problem(REPO)
    assert problem is None, problem


def test_a_drifted_copy_names_the_cp_that_fixes_it(tmp_path):
    for rel in (PLAN_REL, PLAN_COPY_REL):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, tmp_path / rel)
    edited = tmp_path / PLAN_REL
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("refresh_s: 300", "refresh_s: 240")
    )
    problem = plan_copy_problem(tmp_path)
    assert problem is not None
    assert problem.endswith(
        "cp deploy/golive/production.yaml deploy/k8s/golive/plan/production.yaml"
    )
    shutil.copyfile(tmp_path / PLAN_REL, tmp_path / PLAN_COPY_REL)  # the command it names
    assert plan_copy_problem(tmp_path) is None


def test_the_in_cluster_plan_passes_the_structure_check(capsys):
    assert cli.main(["check", "--structure-only", str(IN_CLUSTER)]) == 0
    assert "valid (3 traffic stages, target kubernetes)" in capsys.readouterr().out


def test_the_in_cluster_plan_is_production_with_every_path_on_the_volume():
    production = plan.load(PLAN)
    in_cluster = plan.load(IN_CLUSTER)
    assert in_cluster.state_dir == Path("/var/lib/golive/state")
    assert in_cluster.database.backup_dir == Path("/var/lib/golive/backups")
    checklist = in_cluster.checklist
    assert checklist is not None
    assert checklist.security_scan.summaries == Path("/var/lib/golive/evidence/audit")
    assert checklist.staging_tests.junit.startswith("/var/lib/golive/evidence/")
    assert checklist.rollback_tested.state_dir == Path("/var/lib/golive/evidence/rehearsals")
    # everything else is the production plan's
    same = {"release", "traffic", "gates", "hold", "monitoring", "notify", "maintenance_window"}
    for key in same:
        assert getattr(in_cluster, key) == getattr(production, key), key
