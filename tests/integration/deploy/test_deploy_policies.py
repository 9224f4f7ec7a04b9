"""What the rendered production objects must say: blue and green are the same workload,
the live Service selects one slot, probes and the drain budget line up, flags start off,
the migration Job runs the release's image with the service's secrets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

Doc = dict[str, Any]
DRAIN_S = 20  # SHUTDOWN_DRAIN_S default of the service


def by_kind(objects, kind: str) -> list[Doc]:
    return [m.doc for m in objects if m.kind == kind]


def one(objects, kind: str, name: str) -> Doc:
    found = [d for d in by_kind(objects, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _normalise(node: Any, slot: str) -> Any:
    """Replace what may differ between slots: the slot name and the image."""
    if isinstance(node, dict):
        return {k: "<image>" if k == "image" else _normalise(v, slot) for k, v in node.items()}
    if isinstance(node, list):
        return [_normalise(v, slot) for v in node]
    if isinstance(node, str):
        return re.sub(rf"(^|-){slot}$", r"\1<slot>", node)
    return node


def test_blue_and_green_differ_only_in_slot_label_names_and_image(rendered):
    blue = sorted((_normalise(m.doc, "blue") for m in rendered["blue"]), key=json.dumps)
    green = sorted((_normalise(m.doc, "green") for m in rendered["green"]), key=json.dumps)
    assert blue == green
    raw_blue = {m.ref for m in rendered["blue"]}
    raw_green = {m.ref for m in rendered["green"]}
    assert raw_blue.isdisjoint(raw_green), "the slots must not share object names"


def test_each_slot_labels_its_pods_and_selects_only_them(rendered):
    for slot in ("blue", "green"):
        deployment = one(rendered[slot], "Deployment", f"credit-assessment-{slot}")
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {"app": "credit-assessment", "slot": slot}
        assert deployment["spec"]["template"]["metadata"]["labels"]["slot"] == slot
        service = one(rendered[slot], "Service", f"credit-assessment-{slot}")
        assert service["spec"]["selector"] == selector
        pdb = one(rendered[slot], "PodDisruptionBudget", f"credit-assessment-{slot}")
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        hpa = one(rendered[slot], "HorizontalPodAutoscaler", f"credit-assessment-{slot}")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"credit-assessment-{slot}"


def test_production_service_selects_exactly_one_slot(rendered):
    objects = rendered["production"]
    live = one(objects, "Service", "credit-assessment")
    selector = live["spec"]["selector"]
    assert selector == {"app": "credit-assessment", "slot": "blue"}
    assert live["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}
    ]
    matching = [
        d["metadata"]["name"]
        for d in by_kind(objects, "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert matching == ["credit-assessment-blue"]
    # the live Service carries no slot label, so `apply -l slot=green` never resets it
    assert "slot" not in live["metadata"].get("labels", {})


def test_production_namespace_replicas_and_images(rendered):
    for m in rendered["production"]:
        if m.kind != "Namespace":
            assert m.doc["metadata"]["namespace"] == "credit-assessment", m.ref
    for deployment in by_kind(rendered["production"], "Deployment"):
        assert deployment["spec"]["replicas"] == 3
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert re.fullmatch(r"registry\.example\.com/credit-assessment:\d+\.\d+\.\d+", image)


def test_pod_contract_probes_resources_drain(rendered):
    deployment = one(rendered["production"], "Deployment", "credit-assessment-green")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"][0]["containerPort"] == 8080
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (8080, "http")
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain_s = float(env["SHUTDOWN_DRAIN_S"])
    assert drain_s == DRAIN_S
    pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + drain_s
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["topologySpreadConstraints"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/credit-assessment", "/var/run/secrets/credit-assessment"} <= mounts
    assert env["DATA_DIR"] == "/var/lib/credit-assessment"
    for name in ("DATABASE_URL", "BUREAU_API_KEY", "LEGACY_API_TOKEN", "REDIS_URL"):
        assert env[f"{name}_FILE"].startswith("/var/run/secrets/credit-assessment/")
        assert name not in env, f"{name} must come from a file, not the environment"


def test_service_account_mounts_no_token(rendered):
    for account in by_kind(rendered["production"], "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_flags_start_disabled(rendered):
    config_map = one(rendered["production"], "ConfigMap", "credit-assessment-flags")
    flags = json.loads(config_map["data"]["flags.json"])["flags"]
    assert "new-credit-assessment-enabled" in flags
    for key, flag in flags.items():
        assert flag["state"] == "DISABLED", key
        assert flag["variants"][flag["defaultVariant"]] is False, key
        for variant, weight in (flag.get("targeting") or {}).get("fractional", []):
            if flag["variants"][variant]:
                assert weight == 0, f"{key}: {variant} gets {weight}%"
    deployment = one(rendered["production"], "Deployment", "credit-assessment-blue")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert next(v["configMap"] for v in volumes if "configMap" in v) == {
        "name": "credit-assessment-flags"
    }


def test_network_policy_admits_only_ingress_and_prometheus(rendered):
    policy = one(rendered["production"], "NetworkPolicy", "credit-assessment")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": "credit-assessment"}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    sources = [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["spec"]["ingress"]
        for p in rule["from"]
    ]
    assert sorted(sources) == ["ingress-nginx", "monitoring"]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 6379, 443}


def test_migration_job_runs_the_release_image_with_the_service_secrets(rendered):
    job = one(rendered["migration"], "Job", "db-migration")
    assert job["metadata"]["namespace"] == "credit-assessment"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["credit-assessment", "db", "upgrade", "--phase", "expand"]
    green = one(rendered["production"], "Deployment", "credit-assessment-green")
    green_pod = green["spec"]["template"]["spec"]
    assert container["image"] == green_pod["containers"][0]["image"]
    secret_of = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    green_secrets = {
        v["name"]: v["secret"]["secretName"] for v in green_pod["volumes"] if "secret" in v
    }
    assert set(secret_of.values()) == set(green_secrets.values()) == {"credit-assessment-secrets"}
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0


def test_service_monitor_scrapes_both_slots_once_and_keeps_the_slot(rendered):
    monitor = one(rendered["infra"], "ServiceMonitor", "credit-assessment")
    selector = monitor["spec"]["selector"]
    services = by_kind(rendered["production"], "Service")

    def selected(service: Doc) -> bool:
        labels = service["metadata"].get("labels", {})
        if not selector["matchLabels"].items() <= labels.items():
            return False
        return all(labels.get(e["key"]) in e["values"] for e in selector["matchExpressions"])

    assert sorted(s["metadata"]["name"] for s in services if selected(s)) == [
        "credit-assessment-blue",
        "credit-assessment-green",
    ]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert any(
        r["sourceLabels"] == ["__meta_kubernetes_pod_label_slot"] and r["targetLabel"] == "slot"
        for r in endpoint["relabelings"]
    )


def test_postgres_cluster_replicates_backs_up_and_pools(rendered):
    infra = rendered["infra"]
    cluster = one(infra, "Cluster", "credit-assessment-db")["spec"]
    assert cluster["instances"] == 3
    assert cluster["postgresql"]["synchronous"]["number"] >= 1
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    assert cluster["backup"]["retentionPolicy"] == "30d"
    assert {ref["name"] for ref in store["s3Credentials"].values()} == {
        "credit-assessment-backup-object-store"
    }
    backup = one(infra, "ScheduledBackup", "credit-assessment-db-nightly")["spec"]
    assert len(backup["schedule"].split()) == 6  # CloudNativePG cron has seconds
    assert backup["cluster"]["name"] == "credit-assessment-db"
    pooler = one(infra, "Pooler", "credit-assessment-db-pooler-rw")["spec"]
    assert pooler["cluster"]["name"] == "credit-assessment-db"
    assert pooler["type"] == "rw"


def test_redis_is_a_cache_without_persistence(rendered):
    redis = one(rendered["infra"], "Deployment", "credit-assessment-cache")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    assert "--maxmemory-policy" in args


@pytest.mark.parametrize("overlay", ["production", "migration", "infra"])
def test_no_stringdata_or_secret_objects_in_our_manifests(rendered, overlay):
    for m in rendered[overlay]:
        assert m.kind != "Secret", m.ref
        assert "stringData" not in json.dumps(m.doc), m.ref
