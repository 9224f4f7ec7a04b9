"""A Kubernetes cluster that runs real pods, for tests: ``PodCluster``.

No real cluster can run here, so this one is put together from parts that each do what the
real part does, on loopback:

- kmock (``kube_cluster.Cluster``) stores the objects;
- the API front (``kube_api.ApiFront``, at ``cluster.url``) answers the Kubernetes API as a
  real API server does for the kinds the go-live touches: discovery for kubectl, list and watch
  with selectors, server-side apply, merge/strategic/JSON patches, resourceVersion (409 on a
  stale one), generation, managedFields, the status and scale subresources, graceful pod
  deletion, dry runs, the pod and service proxies and pod logs, Leases; bearer tokens
  (``service_account_token``, ``kubeconfig(token=...)``) and RBAC of Roles and RoleBindings for
  them, SelfSubjectAccessReviews, a log of every request (``api_requests``) and hooks run after
  a write is stored and before its answer is sent (``after_write``);
- the controllers and kubelets (``pod_runner.PodRunner``, ``kubelet.PodProcess``) run every
  Deployment's pods and every Job's pod as real ``credit-assessment`` processes, keep
  EndpointSlices current and refresh ConfigMap volumes ``kubelet_sync_s`` after a change;
- kube-proxy (``kube_proxy.ServiceProxy``): a loopback port per Service
  (``cluster.service_url(name)``) that sends each new connection to a ready selected pod;
- Prometheus' file-based service discovery (``cluster.prometheus_sd_file``) lists the pods the
  committed ServiceMonitor scrapes, with its labels (job, namespace, pod, slot) and version.

What a real cluster adds is in docs/golive.md ("The test cluster"). Pods get what mounted
secrets would give them from ``pod_env`` (``pod_env_overrides`` win over everything), and the
service's ``*_FILE`` variables are left out.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import yaml

from golive.service import service_cli
from tests.integration.golive.kube_api import ApiFront, ApiRequest
from tests.integration.golive.kube_cluster import NAMESPACE, Cluster
from tests.integration.golive.kube_objects import BY_KIND, Obj
from tests.integration.golive.kube_proxy import ServiceProxy
from tests.integration.golive.pod_runner import PodRunner, ScrapeRule, Settings

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "deploy/k8s/production"
GOLIVE = REPO / "deploy/k8s/golive-production"
# What of deploy/k8s/golive ``seed`` applies: golive's identity and the ConfigMap operators
# meet it in (the Job, its volume and its plan are the test's to play).
GOLIVE_KINDS = ("ServiceAccount", "Role", "RoleBinding")
GOLIVE_CONTROL = "golive-control"
SERVICE_MONITOR = REPO / "deploy/monitoring/kubernetes/servicemonitor.yaml"
# Kinds ``seed`` applies; the overlay's others (Namespace, Ingress, NetworkPolicy, SecretStore,
# ExternalSecret) have nothing here to act on them and are skipped.
SEEDED_KINDS = (
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
)
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
T = TypeVar("T")


@dataclass(frozen=True)
class PodInfo:
    """One running pod as a test sees it."""

    name: str
    namespace: str
    slot: str | None
    version: str
    url: str
    ready: bool
    pid: int | None
    restarts: int
    owner: str  # Deployment or Job
    labels: Mapping[str, str]


class PodCluster:
    """The whole cluster; ``with PodCluster(tmp_path, pod_env=...) as cluster:``."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        pod_env: Mapping[str, str],
        pod_env_overrides: Mapping[str, str] | None = None,
        version_env: Mapping[str, Mapping[str, str]] | None = None,
        kubelet_sync_s: float = 1.0,
        prestop_s: float | None = None,
        probe_s: float = 0.25,
        poll_s: float = 0.2,
    ) -> None:
        """``prestop_s`` replaces the template's preStop sleep (None: the template's);
        ``version_env`` adds variables to the pods of an image tag, for example
        ``{"1.9.0": {"EXPECTED_SCHEMA_REVISION": "0001"}}`` for blue playing the previous
        release (every tag runs this checkout's code)."""
        self.root = tmp_path / "pod-cluster"
        self.namespace = NAMESPACE
        self.prometheus_sd_file = self.root / "prometheus-sd.json"
        self._settings = Settings(
            pod_env=dict(pod_env),
            overrides=dict(pod_env_overrides or {}),
            version_env={tag: dict(env) for tag, env in (version_env or {}).items()},
            kubelet_sync_s=kubelet_sync_s,
            prestop_s=prestop_s,
            probe_s=probe_s,
            poll_s=poll_s,
            cli=service_cli(),
        )
        self._store: Cluster | None = None
        self._front: ApiFront | None = None
        self._proxy: ServiceProxy | None = None
        self._runner: PodRunner | None = None
        self.url = ""

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> PodCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._store = Cluster(discovery=False, history=1000).__enter__()
            self._front = ApiFront(self._store.url)
            self.url = self._front.start()
            self._proxy = ServiceProxy()
            self._proxy.start()
            self._runner = PodRunner(
                self.url,
                self.root,
                self._settings,
                proxy=self._proxy,
                sd_file=self.prometheus_sd_file,
                scrape=ScrapeRule.load(SERVICE_MONITOR),
                revision=lambda: self._front.revision if self._front else 0,
            )
            self._front.logs = self._runner
            self._front.on_write.append(self._runner.wake)
            self._runner.start()
            self.http = httpx.Client(base_url=self.url, timeout=10)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        """Stop every pod (by pid), then kube-proxy, the front and kmock, whatever failed."""
        with contextlib.suppress(AttributeError):
            self.http.close()
        steps: list[Callable[[], None]] = []
        if self._runner is not None:
            steps.append(self._runner.stop)
        if self._proxy is not None:
            steps.append(self._proxy.stop)
        if self._front is not None:
            steps.append(self._front.stop)
        if self._store is not None:
            store = self._store
            steps.append(lambda: store.__exit__(None, None, None))
        failures = []
        for step in steps:
            try:
                step()
            except Exception as exc:
                failures.append(exc)
        self._runner = self._proxy = self._front = self._store = None
        if failures:
            raise failures[0]

    # --- what tests use -----------------------------------------------------------------------

    def kubeconfig(self, path: Path, context: str = "production", token: str | None = None) -> Path:
        """A kubeconfig whose context ``context`` is this cluster (and not the current one), as
        the operator or, with ``token``, as the token's user (``service_account_token``)."""
        user = {"token": token} if token else {}
        # kubectl sends a token only over TLS: a token's kubeconfig names the TLS address.
        server: dict[str, str] = {"server": self.url}
        if token:
            front = self._running_front()
            ca = base64.b64encode(front.ca_pem).decode()
            server = {"server": front.secure_url, "certificate-authority-data": ca}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "pod-cluster", "cluster": server}],
            "users": [{"name": "operator", "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": "pod-cluster",
                        "user": "operator",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": "elsewhere",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    @property
    def secure_url(self) -> str:
        """The API over TLS (as a pod reaches it: a token is only sent over TLS)."""
        return self._running_front().secure_url

    @property
    def ca_pem(self) -> bytes:
        """The certificate the TLS port presents (a pod's ``ca.crt``)."""
        return self._running_front().ca_pem

    def service_account_token(self, name: str, namespace: str | None = None) -> str:
        """A bearer token for ServiceAccount ``name``: its requests are
        ``system:serviceaccount:<namespace>:<name>``'s, allowed what its RoleBindings grant."""
        namespace = namespace or self.namespace
        return self.user_token(
            f"system:serviceaccount:{namespace}:{name}",
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
        )

    def user_token(self, username: str, groups: tuple[str, ...] = ()) -> str:
        """A bearer token for ``username`` in ``groups`` (``system:masters`` is unrestricted)."""
        token = secrets.token_urlsafe(24)
        self._running_front().add_token(token, username, groups)
        return token

    def api_requests(self, user: str | None = None) -> list[ApiRequest]:
        """Every request the API answered so far, in order (only ``user``'s if given)."""
        return self._running_front().requests(user)

    def after_write(self, hook: Callable[[ApiRequest], None]) -> None:
        """Call ``hook`` after each successful write is stored, before the writer's answer is
        sent (in a worker thread: it may block, e.g. to kill the writer)."""
        self._running_front().after_write.append(hook)

    def service_url(self, name: str, namespace: str | None = None, timeout_s: float = 10) -> str:
        """``http://127.0.0.1:P``: the Service's kube-proxy port (waits for it to be opened)."""
        key = f"{namespace or self.namespace}/{name}"
        port = self.wait_for(
            lambda: self._running_proxy().port(key),
            timeout_s,
            f"a kube-proxy port for Service {key} (does the Service exist, with a selector?)",
        )
        return f"http://127.0.0.1:{port}"

    def refused_connections(self, name: str, namespace: str | None = None) -> int:
        """Connections to the Service that found no ready pod and were reset."""
        return self._running_proxy().refused(f"{namespace or self.namespace}/{name}")

    def pods(self, slot: str | None = None, *, include_jobs: bool = False) -> list[PodInfo]:
        """Running pods (not terminating), oldest first."""
        found = []
        for proc in self._running_runner().pods():
            state, plan = proc.snapshot(), proc.plan
            if state.terminating or state.finished:
                continue
            if plan.owner_kind != "Deployment" and not include_jobs:
                continue
            if slot is not None and plan.labels.get("slot") != slot:
                continue
            found.append(
                PodInfo(
                    name=plan.name,
                    namespace=plan.namespace,
                    slot=plan.labels.get("slot"),
                    version=plan.env.get("APP_VERSION", ""),
                    url=f"http://127.0.0.1:{plan.port}" if plan.port else "",
                    ready=state.ready,
                    pid=state.pid,
                    restarts=state.restart_count,
                    owner=plan.owner_kind,
                    labels=dict(plan.labels),
                )
            )
        return found

    def pids(self) -> list[int]:
        """Every process any pod has run (restarts included)."""
        return [pid for proc in self._running_runner().every_pod() for pid in proc.snapshot().pids]

    @property
    def controller_errors(self) -> list[str]:
        return list(self._running_runner().errors)

    # --- the API, for tests -------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        """The API path of ``kind`` (``Deployment``, ``Pod``...) in the namespace."""
        prefix = BY_KIND[kind].prefix(namespace or self.namespace)
        return f"{prefix}/{name}" if name else prefix

    def get(self, kind: str, name: str) -> Obj:
        response = self.http.get(self.path(kind, name))
        response.raise_for_status()
        return dict(response.json())

    def list(self, kind: str, selector: str | None = None) -> list[Obj]:
        params = {"labelSelector": selector} if selector else {}
        response = self.http.get(self.path(kind), params=params)
        response.raise_for_status()
        return list(response.json()["items"])

    def merge_patch(self, kind: str, name: str, patch: Obj) -> Obj:
        response = self.http.patch(self.path(kind, name), json=patch, headers=MERGE)
        response.raise_for_status()
        return dict(response.json())

    def apply(self, doc: Obj, manager: str = "golive", force: bool = True) -> Obj:
        """Server-side apply of ``doc`` (as ``kubectl apply --server-side`` sends it)."""
        params = {"fieldManager": manager, "force": "true" if force else "false"}
        path = self.path(doc["kind"], doc["metadata"]["name"])
        response = self.http.patch(path, params=params, content=yaml.safe_dump(doc), headers=APPLY)
        response.raise_for_status()
        return dict(response.json())

    def wait_for(self, probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
        """``probe()`` once it is truthy; an AssertionError naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if value:
                return value
            errors = self._running_runner().errors
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s:g}s waiting for {what}"
                    + (f"; controller errors: {errors[-3:]}" if errors else "")
                )
            time.sleep(0.1)

    def wait_rollout(self, name: str, timeout_s: float = 120) -> Obj:
        """The Deployment once its rollout is complete, as ``kubectl rollout status`` judges."""

        def complete() -> Obj | None:
            deployment = self.get("Deployment", name)
            spec, status = deployment["spec"], deployment.get("status") or {}
            want = int(spec.get("replicas", 1))
            done = (
                status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == want
                and status.get("replicas", 0) == want
                and status.get("availableReplicas", 0) == want
            )
            return deployment if done else None

        return self.wait_for(complete, timeout_s, f"the rollout of {name}")

    # --- seeding ------------------------------------------------------------------------------

    def seed(
        self,
        *,
        blue_version: str = "1.9.0",
        green_version: str = "1.9.0",
        blue_replicas: int = 3,
        green_replicas: int = 0,
        wait_s: float | None = 180,
    ) -> list[str]:
        """The objects of deploy/k8s/production before a go-live, applied as
        ``kubectl apply -k`` would (manager ``kubectl-client-side-apply``): both slots'
        Deployments (blue at ``blue_version`` with ``blue_replicas``, green at ``green_version``
        with ``green_replicas``), their Services, PodDisruptionBudgets and
        HorizontalPodAutoscalers, the live Service on blue, the flags ConfigMap and the
        ServiceAccounts; and of deploy/k8s/golive golive's ServiceAccount, Role, RoleBinding and
        the ``golive-control`` ConfigMap. Namespace, Ingress, NetworkPolicy, SecretStore and
        ExternalSecret are skipped: nothing here would act on them (the pods' secrets come from
        ``pod_env``).
        Waits for blue's rollout unless ``wait_s`` is None; returns ``Kind/name`` of each object.
        """
        from golive.manifests import render

        versions = {"blue": (blue_version, blue_replicas), "green": (green_version, green_replicas)}
        applied = []
        for manifest in render(PRODUCTION):
            doc = manifest.doc
            if doc.get("kind") not in SEEDED_KINDS:
                continue
            if doc["kind"] == "Deployment":
                slot = doc["spec"]["template"]["metadata"]["labels"]["slot"]
                version, replicas = versions[slot]
                doc["spec"]["replicas"] = replicas
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    image = container["image"]
                    container["image"] = f"{image.rsplit(':', 1)[0]}:{version}"
            response = self.http.post(
                self.path(doc["kind"]),
                json=doc,
                params={"fieldManager": "kubectl-client-side-apply"},
            )
            response.raise_for_status()
            applied.append(f"{doc['kind']}/{doc['metadata']['name']}")
        for manifest in render(GOLIVE):
            doc = manifest.doc
            name = doc["metadata"]["name"]
            if doc["kind"] not in GOLIVE_KINDS and (doc["kind"], name) != (
                "ConfigMap",
                GOLIVE_CONTROL,
            ):
                continue
            response = self.http.post(
                self.path(doc["kind"]),
                json=doc,
                params={"fieldManager": "kubectl-client-side-apply"},
            )
            response.raise_for_status()
            applied.append(f"{doc['kind']}/{name}")
        if wait_s is not None and blue_replicas:
            self.wait_rollout("credit-assessment-blue", wait_s)
        return applied

    # --- internals ----------------------------------------------------------------------------

    def _running_runner(self) -> PodRunner:
        if self._runner is None:
            raise RuntimeError("the cluster is not running (use it inside `with PodCluster(...)`)")
        return self._runner

    def _running_front(self) -> ApiFront:
        if self._front is None:
            raise RuntimeError("the cluster is not running (use it inside `with PodCluster(...)`)")
        return self._front

    def _running_proxy(self) -> ServiceProxy:
        if self._proxy is None:
            raise RuntimeError("the cluster is not running (use it inside `with PodCluster(...)`)")
        return self._proxy


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid is still there (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status != "Z"
    return True
