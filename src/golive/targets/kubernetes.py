"""The production target: blue and green Deployments on Kubernetes, one live Service between them.

The cluster's objects are those of ``deploy/k8s``: a Deployment and a Service per slot
(``<workload>-blue``, ``<workload>-green``) and the live Service (``target.service``) whose
selector names one slot. Deploying a slot sets its Deployment's image and replicas; readiness is
the Deployment's own rollout status; switching patches the live Service's selector and reads it
back; stopping a slot scales its Deployment to zero, never the one the live Service selects.

The client speaks plain HTTP to the Kubernetes API. Unless ``target.kubernetes.api_url`` is given,
golive starts ``kubectl proxy`` on a loopback port for as long as it runs, so the operator's
kubectl context and credentials (exec plugins, certificates, tokens) are used as they are and
golive never handles them. Every write carries the object's resourceVersion: a change made by
someone else in between is refused by the API server instead of being overwritten.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from golive.errors import KubernetesApiError, ManifestError, TargetError, TargetUnreachableError
from golive.manifests import find_kubectl, render
from golive.service import service_cli
from golive.targets.base import (
    Action,
    Check,
    Instance,
    RouterState,
    SlotStatus,
    SwitchResult,
    Write,
)
from golive.targets.kubeapi import KubectlProxy, KubernetesApi, ServiceAccount
from golive.targets.kubecontrol import ConfigMapControl
from golive.targets.kubelease import RunLease

if TYPE_CHECKING:
    from golive.plan import Plan, SlotName
    from golive.smoke import Dependency

SLOT_LABEL = "slot"
VERSION_ANNOTATION = "golive/version"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
JOB_NAME_LABEL = "job-name"
LOG_LINES = 40
# Kinds of a slot's rendered overlay golive applies; the rest (Ingress, NetworkPolicy, the
# secrets' operator objects) belong to `kubectl apply -k deploy/k8s/production` by a person.
SLOT_KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


class KubernetesTarget:
    kind = "kubernetes"
    slot_metrics_complete = False

    def __init__(self, plan: Plan, *, dry_run: bool = False) -> None:
        self.plan = plan
        self.config = plan.target.kubernetes
        self.namespace = plan.target.namespace
        self.dry_run = dry_run
        self._dry_selected: str | None = None  # the slot a dry-run switch would select
        self._api: KubernetesApi | None = None
        self._proxy: KubectlProxy | None = None

    # --- the API and the names of things ------------------------------------------------------

    @property
    def api(self) -> KubernetesApi:
        if self._api is None:
            account = self.service_account()
            url = self.config.api_url
            if url is None and account is not None:
                url = account.api_url()
            if url is None:
                kubectl = self.config.kubectl
                if kubectl == "kubectl":  # the default: on PATH, or installed beside golive
                    kubectl = find_kubectl() or kubectl
                self._proxy = KubectlProxy(kubectl, self.config.context)
                url = self._proxy.start()
            self._api = KubernetesApi(
                url,
                self.namespace,
                self.config.request_timeout_s,
                dry_run=self.dry_run,
                account=account,
            )
        return self._api

    def service_account(self) -> ServiceAccount | None:
        """The pod's ServiceAccount when golive acts with it (``credentials``: in-cluster, or
        auto in a pod); None: the operator's kubectl context."""
        if self.config.credentials == "kubectl":
            return None
        account = ServiceAccount.from_environment()
        if account is None and self.config.credentials == "in-cluster":
            raise TargetUnreachableError(
                "target.kubernetes.credentials is in-cluster, but there is no ServiceAccount "
                "token (GOLIVE_SERVICEACCOUNT_DIR or /var/run/secrets/kubernetes.io/"
                "serviceaccount)",
                hint="run golive in its Job (deploy/k8s/golive), or set credentials: kubectl",
            )
        return account

    def instance_http(self, timeout_s: float) -> httpx.Client:
        """The pods' URLs are the API server's pod proxy: the API's identity and CA."""
        return self.api.client(timeout_s)

    def coordination(self) -> KubernetesCoordination:
        return KubernetesCoordination(self.api, self.plan)

    def configmaps(self) -> KubernetesConfigMaps:
        """ConfigMaps of the namespace as the flag provider reads and patches them."""
        return KubernetesConfigMaps(self.api)

    @property
    def writes(self) -> list[Write]:
        """Every write sent to the API so far (in a dry run: every write it would send)."""
        return self.api.writes

    def workload(self, slot: SlotName) -> str:
        return f"{self.config.workload}-{slot}"

    def image(self, version: str) -> str:
        """The release image with the slot's version as its tag."""
        repository = self.plan.release.image
        last = repository.rsplit("/", 1)[-1]
        if "@" in last:
            raise TargetError(f"release.image {repository!r} is pinned by digest; give a tag")
        if ":" in last:
            repository = repository[: repository.rfind(":")]
        return f"{repository}:{version}"

    # --- credentials for the service's own CLI --------------------------------------------------

    def database_url(self) -> str:
        url = os.environ.get(self.plan.database.url_env)
        if not url:
            raise TargetUnreachableError(
                f"{self.plan.database.url_env} is unset: golive reaches the production database "
                "through it (backup, migration, verification)",
                hint="export it, e.g. through a port-forward to the pooler; nothing was changed",
            )
        return url

    def service_env(self) -> dict[str, str]:
        """The database only: on this target the service's CLI runs on the operator's machine
        just for the clone test's migration, which needs no more. (``APP_ENV=production`` would
        ask for the pods' token settings, which the operator does not hold; the cluster's
        migration Job has its own environment.)"""
        return {"DATABASE_URL": self.database_url()}

    def monitoring(self) -> dict[str, Any]:
        return {}  # the plan names the cluster's Prometheus and Alertmanager

    def service_cli(self) -> str:
        return service_cli()  # migrations and tokens run from the operator's machine

    def dependencies(self) -> list[Dependency]:
        return []  # the cluster's services are named in the plan (smoke.dependencies)

    # --- slots ----------------------------------------------------------------------------------

    def slot_url(self, slot: SlotName) -> str:
        given = getattr(self.config.slot_urls, slot)
        return given or self._service_proxy(self.workload(slot))

    def service_url(self) -> str:
        return self.plan.target.public_url or self._service_proxy(self.plan.target.service)

    def _service_proxy(self, service: str) -> str:
        return f"{self.api.base_url}{self.api.path('services', service)}:http/proxy"

    def slot_objects(self, slot: SlotName, version: str | None = None) -> list[dict[str, Any]]:
        """The slot's objects of the overlay (``target.kubernetes.manifests``), rendered with
        kustomize, at the release image and the plan's replicas."""
        version = version or self.plan.slots.of(slot).version
        try:
            rendered = render(self._repository_path(self.config.manifests))
        except ManifestError as exc:
            raise TargetError(exc.message, hint=exc.hint) from exc
        objects = []
        for manifest in rendered:
            doc = copy.deepcopy(manifest.doc)
            labels = (doc.get("metadata") or {}).get("labels") or {}
            if manifest.kind not in SLOT_KINDS or labels.get(SLOT_LABEL) != slot:
                continue
            doc["metadata"]["namespace"] = self.namespace
            if manifest.kind == "Deployment":
                self._release(doc, version)
            objects.append(doc)
        if not any(o["kind"] == "Deployment" for o in objects):
            raise TargetError(
                f"{self.config.manifests} renders no Deployment labelled {SLOT_LABEL}={slot}",
                hint="target.kubernetes.manifests must name the production overlay "
                "(deploy/k8s/production)",
            )
        return objects

    def _release(self, deployment: dict[str, Any], version: str) -> None:
        name = deployment["metadata"]["name"]
        spec = deployment.setdefault("spec", {})
        spec["replicas"] = self.config.replicas
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {}).setdefault("annotations", {})[VERSION_ANNOTATION] = (
            version
        )
        containers = _containers(deployment)
        containers[_container_index(containers, self.config.container, name)]["image"] = self.image(
            version
        )

    def _repository_path(self, path: Path) -> Path:
        """A manifests path as given, else relative to the repository a plan file lives in."""
        if path.is_absolute() or path.exists():
            return path
        for source in reversed(self.plan.sources):  # the plan, then the plans it extends
            for parent in source.resolve().parents:
                if (parent / path).exists():
                    return parent / path
        raise TargetError(
            f"{path} does not exist here",
            hint="run golive from the repository root, or give target.kubernetes.manifests / "
            "migration as absolute paths",
        )

    def deploy(self, slot: SlotName, version: str | None = None) -> bool:
        """Server-side apply of the slot's overlay (field manager golive) at the release image;
        False when the Deployment already runs that image at the plan's replicas."""
        version = version or self.plan.slots.of(slot).version
        image = self.image(version)
        name = self.workload(slot)
        current = self.api.find("deployments", name)
        if current is not None:
            containers = _containers(current)
            index = _container_index(containers, self.config.container, name)
            replicas = int(current.get("spec", {}).get("replicas") or 0)
            if containers[index].get("image") == image and replicas == self.config.replicas:
                return False
        for obj in self.slot_objects(slot, version):
            what = f"server-side apply {obj['kind']} {obj['metadata']['name']}"
            if obj["kind"] == "Deployment":
                what += f": image {image}, {self.config.replicas} replicas"
            self.api.apply(obj, what)
        if self.dry_run:
            return True
        after = _containers(self.api.get("deployments", name))
        index = _container_index(after, self.config.container, name)
        if after[index].get("image") != image:
            raise TargetError(f"{name}: the image reads {after[index].get('image')}, not {image}")
        return True

    def wait_ready(self, slot: SlotName, timeout_s: float) -> float:
        name = self.workload(slot)
        started = time.monotonic()
        while True:
            deployment = self.api.get("deployments", name)
            rollout = Rollout.of(deployment)
            if rollout.failed:
                raise TargetError(f"{name}: the rollout failed: {rollout.failed}")
            if rollout.complete:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise TargetError(
                    f"{name} was not ready within {timeout_s:g}s: {rollout.summary()}",
                    hint=f"kubectl -n {self.namespace} describe deployment {name}",
                )
            time.sleep(self.config.poll_s)

    def slot_status(self, slot: SlotName) -> SlotStatus:
        name = self.workload(slot)
        deployment = self.api.get("deployments", name)
        rollout = Rollout.of(deployment)
        template = deployment.get("spec", {}).get("template", {})
        annotations = template.get("metadata", {}).get("annotations") or {}
        containers = _containers(deployment)
        index = _container_index(containers, self.config.container, name)
        image = str(containers[index].get("image", ""))
        return SlotStatus(
            slot,
            running=rollout.wanted > 0,
            ready=rollout.complete,
            version=annotations.get(VERSION_ANNOTATION) or image.rsplit(":", 1)[-1],
            url=self.slot_url(slot),
            detail=f"{rollout.summary()}, image {image}",
            size=f"{self.config.replicas} replicas",
        )

    def stop(self, slot: SlotName) -> bool:
        name = self.workload(slot)
        if self._selected() == slot:
            raise TargetError(
                f"refusing to stop {slot}: the Service {self.plan.target.service} selects it; "
                "switch to the other slot first"
            )
        deployment = self.api.get("deployments", name)
        if not deployment.get("spec", {}).get("replicas"):
            return False
        self.api.merge_patch(
            "deployments",
            name,
            _guarded(deployment, {"replicas": 0}),
            f"scale {name} to 0 replicas",
        )
        return True

    # --- the live Service -----------------------------------------------------------------------

    def _selected(self) -> str | None:
        if self._dry_selected is not None:
            return self._dry_selected
        service = self.api.get("services", self.plan.target.service)
        selector = service.get("spec", {}).get("selector") or {}
        return selector.get(SLOT_LABEL)

    def router_state(self) -> RouterState:
        active = self._selected()
        servers = {}
        for slot in ("blue", "green"):
            rollout = Rollout.of(self.api.get("deployments", self.workload(slot)))
            role = "serving" if slot == active else "idle"
            servers[slot] = f"{role}, {rollout.ready}/{rollout.wanted} ready"
        return RouterState(active=active, servers=servers)

    def switch(self, slot: SlotName) -> SwitchResult:
        name = self.plan.target.service
        service = self.api.get("services", name)
        before = (service.get("spec", {}).get("selector") or {}).get(SLOT_LABEL)
        if before == slot:
            return SwitchResult(before, slot, changed=False, command="", elapsed_ms=0.0)
        rollout = Rollout.of(self.api.get("deployments", self.workload(slot)))
        if not rollout.complete and not self.dry_run:
            raise TargetError(
                f"refusing to switch: {self.workload(slot)} is not ready ({rollout.summary()}); "
                "nothing was changed"
            )
        command = (
            f"kubectl -n {self.namespace} patch service {name} --type merge "
            f'-p \'{{"spec":{{"selector":{{"{SLOT_LABEL}":"{slot}"}}}}}}\''
        )
        started = time.perf_counter()
        self.api.merge_patch(
            "services",
            name,
            _guarded(service, {"selector": {SLOT_LABEL: slot}}),
            f"the Service {name} selects {slot} (was {before})",
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        if self.dry_run:
            self._dry_selected = slot
            return SwitchResult(before, slot, changed=True, command=command, elapsed_ms=0.0)
        after = self._selected()
        if after != slot:
            raise TargetError(f"switch to {slot} not verified: the Service selects {after}")
        return SwitchResult(before, slot, changed=True, command=command, elapsed_ms=elapsed_ms)

    # --- instances: the pods behind a Service --------------------------------------------------

    def _ready_endpoints(self, service: str) -> dict[str, int]:
        """Pod name -> port of every ready endpoint of ``service`` (its EndpointSlices)."""
        found: dict[str, int] = {}
        for endpoint_slice in self.api.list("endpointslices", f"{SERVICE_NAME_LABEL}={service}"):
            ports = endpoint_slice.get("ports") or []
            port = next((p.get("port") for p in ports if p.get("port")), None)
            for endpoint in endpoint_slice.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                ready = (endpoint.get("conditions") or {}).get("ready")
                if ref.get("kind") == "Pod" and ref.get("name") and ready is not False and port:
                    found[str(ref["name"])] = int(port)
        return found

    def instances(self, slot: SlotName) -> list[Instance]:
        """The slot's ready pods (EndpointSlices of its Service), each reached through the API
        server's pod proxy, so every pod is read on its own."""
        pods = self._ready_endpoints(self.workload(slot))
        base = f"{self.api.base_url}/api/v1/namespaces/{self.namespace}/pods"
        return [
            Instance(name, f"{base}/{name}:{port}/proxy", {"pod": name})
            for name, port in sorted(pods.items())
        ]

    def metric_selector(self, slot: SlotName) -> str:
        """Every pod of the slot as the ServiceMonitor labels them (job, namespace, slot)."""
        return f'job="credit-assessment",namespace="{self.namespace}",{SLOT_LABEL}="{slot}"'

    def _ready_pods(self, slot: SlotName) -> set[str]:
        selector = f"app={self.config.workload},{SLOT_LABEL}={slot}"
        ready = set()
        for pod in self.api.list("pods", selector):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                ready.add(str(pod["metadata"]["name"]))
        return ready

    def check_endpoints(self, slot: SlotName) -> Check:
        """The live Service's EndpointSlices hold exactly ``slot``'s ready pods."""
        service = self.plan.target.service
        routed = set(self._ready_endpoints(service))
        wanted = self._ready_pods(slot)
        name = f"endpoints {service}"
        if not wanted:
            return Check(name, False, f"{slot} has no ready pod")
        if routed == wanted:
            return Check(
                name,
                True,
                f"exactly {slot}'s {len(wanted)} ready pods: {', '.join(sorted(wanted))}",
            )
        extra, missing = sorted(routed - wanted), sorted(wanted - routed)
        return Check(
            name,
            False,
            f"not exactly {slot}'s ready pods: "
            + "; ".join(
                part
                for part in (
                    f"routes to {', '.join(extra)} too" if extra else "",
                    f"lacks {', '.join(missing)}" if missing else "",
                )
                if part
            ),
        )

    # --- the migration Job ------------------------------------------------------------------

    def migration_job(self) -> dict[str, Any]:
        """The migration Job of ``target.kubernetes.migration`` at the release image."""
        try:
            rendered = render(self._repository_path(self.config.migration))
        except ManifestError as exc:
            raise TargetError(exc.message, hint=exc.hint) from exc
        jobs = [m.doc for m in rendered if m.kind == "Job"]
        if len(jobs) != 1:
            raise TargetError(
                f"{self.config.migration} renders {len(jobs)} Jobs, not one",
                hint="target.kubernetes.migration must name the migration overlay "
                "(deploy/k8s/migration)",
            )
        job = copy.deepcopy(jobs[0])
        job["metadata"]["namespace"] = self.namespace
        for container in job["spec"]["template"]["spec"]["containers"]:
            container["image"] = self.image(self.plan.release.version)
        return job

    def run_migration(
        self, command: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        """Run the migration as the cluster does: the Job, replaced, waited for, its logs read.

        ``command`` must be the Job's own command (the one golive tested on the clone);
        ``env`` is the operator's and is not sent: the Job has its secrets from the cluster.
        """
        job = self.migration_job()
        name = job["metadata"]["name"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        runs = [*container.get("command", []), *container.get("args", [])]
        if list(runs[1:]) != list(command[1:]):
            raise TargetError(
                f"the migration Job runs {' '.join(runs)!r}, golive tested "
                f"{' '.join(['credit-assessment', *command[1:]])!r} on the clone",
                hint=f"make {self.config.migration} run the expand phase",
            )
        if self.api.find("jobs", name) is not None:  # a previous run's Job keeps the name
            self.api.delete("jobs", name, f"remove the previous migration Job {name}")
            self._wait_gone("jobs", name, 60.0)
        self.api.create("jobs", job, f"create the migration Job {name} ({container['image']})")
        if self.dry_run:
            return subprocess.CompletedProcess(runs, 0, "", "")
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.api.get("jobs", name).get("status") or {}
            conditions = {
                c.get("type"): c
                for c in status.get("conditions") or []
                if c.get("status") == "True"
            }
            if "Complete" in conditions or "Failed" in conditions:
                logs = self._job_logs(name)
                if "Complete" in conditions:
                    return subprocess.CompletedProcess(runs, 0, logs, "")
                why = conditions["Failed"].get("message") or conditions["Failed"].get("reason")
                return subprocess.CompletedProcess(runs, 1, logs, f"{logs}\nJob failed: {why}")
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(runs, timeout_s, self._job_logs(name))
            time.sleep(self.config.poll_s)

    def _job_logs(self, job: str) -> str:
        lines = []
        for pod in self.api.list("pods", f"{JOB_NAME_LABEL}={job}"):
            pod_name = pod["metadata"]["name"]
            text = self.api.text(
                f"{self.api.path('pods', pod_name)}/log", params={"tailLines": str(LOG_LINES)}
            )
            lines.append(f"--- pod {pod_name}\n{text.rstrip()}")
        return "\n".join(lines) or f"(job {job} left no pod logs)"

    def _wait_gone(self, kind: str, name: str, timeout_s: float) -> None:
        if self.dry_run:
            return
        deadline = time.monotonic() + timeout_s
        while self.api.find(kind, name) is not None:
            if time.monotonic() > deadline:
                raise TargetError(f"{kind}/{name} was not deleted within {timeout_s:g}s")
            time.sleep(self.config.poll_s)

    # --- reachability -------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        """Reads only: the API answers, and every object the go-live touches exists."""
        try:
            version = self.api.version()
        except TargetError as exc:
            return [Check("kubernetes api", False, f"{exc.message}; {exc.hint}")]
        checks = [Check("kubernetes api", True, f"{self.api.base_url} ({version})")]
        for slot in ("blue", "green"):
            name = self.workload(slot)
            try:
                rollout = Rollout.of(self.api.get("deployments", name))
                checks.append(Check(f"deployment {name}", True, rollout.summary()))
            except TargetError as exc:
                checks.append(Check(f"deployment {name}", False, f"{exc.message}; {exc.hint}"))
        try:
            active = self._selected()
            checks.append(Check(f"service {self.plan.target.service}", True, f"selects {active}"))
            checks.append(
                Check("blue serves", active == "blue", f"the Service selects {active or 'no slot'}")
            )
        except TargetError as exc:
            checks.append(
                Check(f"service {self.plan.target.service}", False, f"{exc.message}; {exc.hint}")
            )
        checks += self.check_permissions()
        return checks

    def check_permissions(self) -> list[Check]:
        """Each permission the go-live uses, asked of the API server (SelfSubjectAccessReview:
        nothing is changed): a missing one is named with its verb and resource."""
        missing, asked = [], 0
        for permission in permissions(self.plan):
            try:
                allowed, reason = self.api.allowed(
                    permission.verb,
                    permission.resource,
                    group=permission.group,
                    subresource=permission.subresource,
                    name=permission.name,
                )
            except KubernetesApiError as exc:
                if exc.status not in (401, 403):  # no review here: each request judged as made
                    detail = f"not checked: the API server answered the review {exc.status}"
                    return [Check("permissions", True, detail)]
                return [Check("permissions", False, f"could not ask the API server: {exc.message}")]
            except TargetError as exc:
                return [Check("permissions", False, f"could not ask the API server: {exc.message}")]
            if allowed is None:
                detail = "not checked: the API server answers no SelfSubjectAccessReview"
                return [Check("permissions", True, detail)]
            asked += 1
            if not allowed:
                said = f": {reason}" if reason else ""
                missing.append(f"{permission} ({permission.why}){said}")
        if missing:
            return [
                Check(
                    "permissions",
                    False,
                    "missing: " + "; ".join(missing) + " — grant them in deploy/k8s/golive "
                    "(role.yaml) or the operator's context",
                )
            ]
        return [Check("permissions", True, f"all {asked} the go-live uses are granted")]

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()


@dataclass(frozen=True)
class Permission:
    """One thing the go-live does in the namespace, as RBAC names it."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    name: str = ""
    why: str = ""

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {resource}{group}" + (f" {self.name}" if self.name else "")


def permissions(plan: Plan) -> list[Permission]:
    """Every permission a go-live of ``plan`` uses: deploy/k8s/golive's Role grants exactly
    these (tests/e2e/test_golive_in_cluster.py compares them with the requests golive made)."""
    workload = "deploy and scale the slots; read their rollout"
    lease = plan.target.kubernetes.lease.name
    control = plan.target.kubernetes.control_configmap
    found = [
        Permission("get", "deployments", "apps", why=workload),
        Permission("patch", "deployments", "apps", why=workload),
        Permission("get", "services", why="read the live Service's selector"),
        Permission("patch", "services", why="switch the live Service; apply the slot Services"),
        Permission("list", "pods", why="ready pods, the migration Job's pods"),
        Permission("get", "pods", subresource="proxy", why="each pod's flags, read back"),
        Permission("get", "pods", subresource="log", why="the migration Job's logs"),
        Permission("list", "endpointslices", "discovery.k8s.io", why="where the Services route"),
        Permission("get", "jobs", "batch", why="the migration Job"),
        Permission("create", "jobs", "batch", why="the migration Job"),
        Permission("delete", "jobs", "batch", why="the previous migration Job"),
        Permission("patch", "horizontalpodautoscalers", "autoscaling", why="applied with a slot"),
        Permission("patch", "poddisruptionbudgets", "policy", why="applied with a slot"),
        Permission("create", "leases", "coordination.k8s.io", why="one runner at a time"),
        Permission("get", "leases", "coordination.k8s.io", name=lease, why="one runner at a time"),
        Permission("update", "leases", "coordination.k8s.io", name=lease, why="renew the Lease"),
        Permission("get", "configmaps", name=control, why="operators' requests"),
        Permission("patch", "configmaps", name=control, why="the runner's status"),
    ]
    if plan.traffic.flag_provider == "kubernetes-configmap":
        flags = "credit-assessment-flags"
        found += [
            Permission("get", "configmaps", name=flags, why="the traffic flag"),
            Permission("patch", "configmaps", name=flags, why="the traffic flag's weight"),
        ]
    return found


class KubernetesCoordination:
    """One runner at a time (the Lease) and the operators' ConfigMap, in the namespace."""

    def __init__(self, api: KubernetesApi, plan: Plan) -> None:
        self.api = api
        self.settings = plan.target.kubernetes.lease
        self.channel = ConfigMapControl(api, plan.target.kubernetes.control_configmap)

    def lease(self, identity: str) -> RunLease:
        return RunLease(
            self.api,
            self.settings.name,
            identity,
            duration_s=self.settings.duration_s,
            renew_s=self.settings.renew_s,
        )

    def claim(self, identity: str) -> contextlib.AbstractContextManager[RunLease]:
        return self.lease(identity).held()

    def holder(self) -> str | None:
        holder = self.lease("").holder()
        return holder.describe() if holder is not None and not holder.expired() else None

    def control(self) -> ConfigMapControl:
        return self.channel

    def publish(self, status: dict[str, Any]) -> None:
        self.channel.publish(status)

    def status(self) -> dict[str, Any] | None:
        return self.channel.status()


class KubernetesConfigMaps:
    """The namespace's ConfigMaps through the target's API (its identity, its dry run)."""

    def __init__(self, api: KubernetesApi) -> None:
        self.api = api

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get("configmaps", name)

    def patch(self, name: str, patch: dict[str, Any], summary: str) -> None:
        self.api.merge_patch("configmaps", name, patch, summary)


class Rollout:
    """A Deployment's rollout as its status tells it."""

    def __init__(self, wanted: int, updated: int, ready: int, available: int) -> None:
        self.wanted, self.updated, self.ready, self.available = wanted, updated, ready, available
        self.observed = True
        self.failed: str | None = None

    @classmethod
    def of(cls, deployment: dict[str, Any]) -> Rollout:
        spec, status = deployment.get("spec", {}), deployment.get("status") or {}
        rollout = cls(
            wanted=int(spec.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
        )
        generation = deployment.get("metadata", {}).get("generation")
        observed = status.get("observedGeneration")
        rollout.observed = generation is None or (observed is not None and observed >= generation)
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and condition.get("status") == "False":
                rollout.failed = f"{condition.get('reason')}: {condition.get('message', '')}"
        return rollout

    @property
    def complete(self) -> bool:
        return (
            self.wanted > 0
            and self.observed
            and self.updated >= self.wanted
            and self.ready >= self.wanted
            and self.available >= self.wanted
        )

    def summary(self) -> str:
        return (
            f"{self.ready}/{self.wanted} ready, {self.updated} updated, {self.available} available"
            + ("" if self.observed else ", change not yet observed")
        )


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    return list(containers or [])


def _container_index(containers: list[dict[str, Any]], wanted: str, deployment: str) -> int:
    for index, container in enumerate(containers):
        if container.get("name") == wanted:
            return index
    names = ", ".join(str(c.get("name")) for c in containers) or "none"
    raise TargetError(
        f"{deployment} has no container {wanted!r} (containers: {names})",
        hint="set target.kubernetes.container to the service's container",
    )


def _guarded(obj: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of ``spec`` that only applies to ``obj`` as it was read (resourceVersion)."""
    patch: dict[str, Any] = {"spec": spec}
    version = obj.get("metadata", {}).get("resourceVersion")
    if version is not None:
        patch["metadata"] = {"resourceVersion": str(version)}
    return patch


class KubernetesProcedures:
    """The Kubernetes target by hand: kubectl against the plan's namespace and Service."""

    EXPECTED_S: ClassVar[dict[Action, float]] = {
        "preflight": 60,
        "backup": 600,
        "verify-backup": 900,
        "clone-test": 1800,
        "migrate": 900,
        "verify-database": 300,
        "deploy": 300,
        "wait-ready": 120,
        "smoke": 60,
        "switch": 60,
        "verify-switch": 900,
        "validate": 120,
    }

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.namespace = plan.target.namespace
        self.service = plan.target.service

    def expected_s(self, action: Action) -> float:
        return self.EXPECTED_S[action]

    def inspect(self) -> list[str]:
        return [
            f"kubectl -n {self.namespace} get deploy,svc,pods -l app=credit-assessment",
            f'psql "${self.plan.database.url_env}" '
            '-c "SELECT pg_database_size(current_database())"',
            "golive secrets check --prefix credit-assessment/production",
            "df -h <backup directory>",
        ]

    def backup(self, dump: str) -> list[str]:
        directory = self.plan.database.backup_dir
        return [
            "kubectl exec credit-assessment-db-1 -c postgres -- \\\n"
            f"  pg_dump -Fc creditassessment > {dump}",
            f"sha256sum {directory}/*.dump",
            "# or, from a machine that reaches the database:",
            f"golive db backup --dir {directory} --no-verify",
        ]

    def migrate(self) -> list[str]:
        return [
            f"kubectl kustomize {self.plan.target.kubernetes.migration} "
            "| kubectl apply --dry-run=server -f -",
            "kubectl delete job db-migration --ignore-not-found --wait",
            f"kubectl apply -k {self.plan.target.kubernetes.migration}   "
            "# credit-assessment db upgrade --phase expand",
            "kubectl wait --for=condition=complete job/db-migration --timeout=900s",
            "kubectl logs job/db-migration",
        ]

    def deploy(self, slot: SlotName) -> list[str]:
        return [
            f"kubectl kustomize {self.plan.target.kubernetes.manifests} | kubectl apply -f - "
            f"-l slot={slot} --namespace={self.namespace} --server-side --field-manager=golive",
            f"kubectl rollout status deployment/credit-assessment-{slot} --timeout=300s",
        ]

    def wait_ready(self, slot: SlotName) -> list[str]:
        return [
            f"kubectl wait --for=condition=ready pod -l app=credit-assessment,slot={slot} "
            f"--timeout={self.plan.deploy.ready_timeout_s:.0f}s"
        ]

    def switch(self, to: SlotName) -> list[str]:
        return [
            f"kubectl -n {self.namespace} patch service {self.service} "
            f'-p \'{{"spec":{{"selector":{{"slot":"{to}"}}}}}}\'',
            f"kubectl -n {self.namespace} get endpoints {self.service} -o wide",
        ]

    def scale_down(self, slot: SlotName) -> list[str]:
        return [
            f"kubectl -n {self.namespace} scale deployment/credit-assessment-{slot} --replicas=0"
        ]


def target(plan: Plan, *, dry_run: bool = False) -> KubernetesTarget:
    return KubernetesTarget(plan, dry_run=dry_run)


def procedures(plan: Plan) -> KubernetesProcedures:
    return KubernetesProcedures(plan)
