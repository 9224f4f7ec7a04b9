"""The Kubernetes API as the kubernetes target uses it: a few calls over plain HTTP, and the
``kubectl proxy`` that carries the operator's credentials.

Errors say what to do: a 401/403 names the permissions the context lacks, a 404 says to apply
the overlays, a 409 says someone changed the object meanwhile (nothing was overwritten).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from golive.errors import KubernetesApiError, TargetError, TargetUnreachableError
from golive.targets.base import Write

_MERGE_PATCH = {"content-type": "application/merge-patch+json"}
_APPLY_PATCH = {"content-type": "application/apply-patch+yaml"}
FIELD_MANAGER = "golive"

# Where each kind golive touches lives in the API (group/version, plural).
API_GROUPS = {
    "deployments": "/apis/apps/v1",
    "jobs": "/apis/batch/v1",
    "endpointslices": "/apis/discovery.k8s.io/v1",
    "horizontalpodautoscalers": "/apis/autoscaling/v2",
    "poddisruptionbudgets": "/apis/policy/v1",
    "leases": "/apis/coordination.k8s.io/v1",
}
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Job": "jobs",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "ServiceAccount": "serviceaccounts",
    "Pod": "pods",
}
SERVICEACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_PROXY_LINE = re.compile(rb"Starting to serve on 127\.0\.0\.1:(\d+)")
PROXY_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ServiceAccount:
    """The pod's ServiceAccount: its token (read again for every request, as the kubelet
    rotates it), the cluster's CA and the API server the pod reaches through
    KUBERNETES_SERVICE_HOST/PORT. ``GOLIVE_SERVICEACCOUNT_DIR`` names another directory."""

    directory: Path

    @classmethod
    def from_environment(cls) -> ServiceAccount | None:
        directory = Path(os.environ.get("GOLIVE_SERVICEACCOUNT_DIR") or SERVICEACCOUNT_DIR)
        return cls(directory) if (directory / "token").is_file() else None

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    def token(self) -> str:
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TargetUnreachableError(
                f"cannot read the ServiceAccount token {self.token_file}: {exc.strerror or exc}"
            ) from exc
        if not token:
            raise TargetUnreachableError(f"the ServiceAccount token {self.token_file} is empty")
        return token

    def ca_file(self) -> Path | None:
        ca = self.directory / "ca.crt"
        return ca if ca.is_file() else None

    def api_url(self) -> str:
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise TargetUnreachableError(
                "KUBERNETES_SERVICE_HOST is unset: golive is not in a pod",
                hint="set target.kubernetes.api_url, or target.kubernetes.credentials: kubectl",
            )
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port}"

    def auth(self) -> httpx.Auth:
        return _BearerFromFile(self)


class _BearerFromFile(httpx.Auth):
    def __init__(self, account: ServiceAccount) -> None:
        self.account = account

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.account.token()}"
        yield request


class KubectlProxy:
    """``kubectl proxy`` on a free loopback port, stopped when golive exits."""

    def __init__(self, kubectl: str, context: str | None) -> None:
        self._argv = [kubectl, "proxy", "--port=0", "--address=127.0.0.1"]
        if context:
            self._argv.append(f"--context={context}")
        self._process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    def start(self) -> str:
        if self.url is not None and self._process is not None and self._process.poll() is None:
            return self.url
        try:
            process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
                self._argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise TargetUnreachableError(
                f"could not run {self._argv[0]!r}: {exc.strerror or exc}",
                hint="install kubectl, or set target.kubernetes.api_url to a running kubectl proxy",
            ) from exc
        port: list[int] = []
        said: collections.deque[str] = collections.deque(maxlen=20)
        started = threading.Event()
        # Reads kubectl's output for as long as it runs, so a chatty proxy never blocks on a
        # full pipe; the last lines are kept to explain a failure.
        threading.Thread(
            target=self._follow, args=(process, port, said, started), daemon=True
        ).start()
        started.wait(PROXY_START_TIMEOUT_S)
        if not port:
            process.kill()
            process.wait(5)
            detail = " ".join(said).strip()[-500:] or "no output"
            raise TargetUnreachableError(
                f"kubectl proxy did not start: {detail}",
                hint="check `kubectl config current-context` and your access to the cluster",
            )
        self._process = process
        self.url = f"http://127.0.0.1:{port[0]}"
        atexit.register(self.stop)
        return self.url

    @staticmethod
    def _follow(
        process: subprocess.Popen[bytes],
        port: list[int],
        said: collections.deque[str],
        started: threading.Event,
    ) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            said.append(line.decode(errors="replace").strip())
            match = _PROXY_LINE.search(line)
            if match and not port:
                port.append(int(match.group(1)))
                started.set()
        started.set()  # kubectl exited

    def stop(self) -> None:
        process, self._process, self.url = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
            if process.poll() is None:
                process.kill()


class KubernetesApi:
    """The few calls the target makes, with errors that say what to do.

    With ``dry_run`` every write is recorded in ``writes`` and not sent (reads still are): a
    dry run of the go-live lists what it would change, in order, and changes nothing.
    """

    def __init__(
        self,
        base_url: str,
        namespace: str,
        timeout_s: float,
        *,
        dry_run: bool = False,
        account: ServiceAccount | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self.dry_run = dry_run
        self.account = account
        self.writes: list[Write] = []
        ca = account.ca_file() if account is not None else None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            auth=account.auth() if account is not None else None,
            verify=str(ca) if ca is not None else True,
        )

    def client(self, timeout_s: float) -> httpx.Client:
        """A client of its own with this API's identity and CA, for URLs under it (the pods'
        proxy). Its connections to the API server are kept: each request still reaches the
        pod its path names, and a TLS handshake per read would cost more than the read."""
        ca = self.account.ca_file() if self.account is not None else None
        return httpx.Client(
            timeout=timeout_s,
            auth=self.account.auth() if self.account is not None else None,
            verify=str(ca) if ca is not None else True,
        )

    def collection(self, kind: str) -> str:
        group = API_GROUPS.get(kind, "/api/v1")
        return f"{group}/namespaces/{self.namespace}/{kind}"

    def path(self, kind: str, name: str) -> str:
        return f"{self.collection(kind)}/{name}"

    def version(self) -> str:
        return str(self._call("GET", "/version").get("gitVersion", "unknown"))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self._call("GET", self.path(kind, name))

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when the API says 404."""
        try:
            return self.get(kind, name)
        except KubernetesApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        body = self._call("GET", self.collection(kind), params=params)
        return list(body.get("items") or [])

    def text(self, path: str, params: dict[str, str] | None = None) -> str:
        """A plain-text answer (pod logs)."""
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise TargetUnreachableError(
                f"the Kubernetes API at {self.base_url} did not answer GET {path}: "
                f"{type(exc).__name__}",
                hint="nothing was changed; check the cluster and kubectl's context",
            ) from exc
        if response.status_code >= 400:
            raise _api_error("GET", path, response, self.namespace)
        return response.text

    def merge_patch(
        self, kind: str, name: str, patch: dict[str, Any], summary: str = ""
    ) -> dict[str, Any]:
        return self._write(
            "PATCH", self.path(kind, name), summary, json=patch, headers=_MERGE_PATCH
        )

    def apply(self, obj: dict[str, Any], summary: str = "") -> dict[str, Any]:
        """Server-side apply of ``obj`` (field manager golive, conflicts forced: golive owns
        the fields it releases)."""
        kind = PLURALS.get(str(obj.get("kind")))
        if kind is None:
            raise TargetError(f"golive does not apply objects of kind {obj.get('kind')!r}")
        name = str(obj.get("metadata", {}).get("name", ""))
        return self._write(
            "PATCH",
            self.path(kind, name),
            summary or f"server-side apply {obj.get('kind')} {name}",
            content=json.dumps(obj).encode(),
            headers=_APPLY_PATCH,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    def create(self, kind: str, obj: dict[str, Any], summary: str = "") -> dict[str, Any]:
        return self._write("POST", self.collection(kind), summary, json=obj)

    # Coordination objects (the Lease, the control ConfigMap) are golive's own bookkeeping, not
    # changes of the go-live: never listed in ``writes``, never made in a dry run.

    def create_own(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", self.collection(kind), json=obj)

    def replace_own(self, kind: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT: refused with 409 when ``obj``'s resourceVersion is no longer the stored one."""
        return self._call("PUT", self.path(kind, name), json=obj)

    def patch_own(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", self.path(kind, name), json=patch, headers=_MERGE_PATCH)

    def allowed(
        self, verb: str, resource: str, *, group: str = "", subresource: str = "", name: str = ""
    ) -> tuple[bool | None, str]:
        """Whether this identity may ``verb`` the resource in the namespace (a
        SelfSubjectAccessReview: asks, changes nothing); with the API server's reason. None: the
        server answered no review (no ``status``), so nothing is known."""
        attributes = {"namespace": self.namespace, "verb": verb, "group": group}
        attributes["resource"] = resource
        if subresource:
            attributes["subresource"] = subresource
        if name:
            attributes["name"] = name
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        status = self._call("POST", SELF_SUBJECT_ACCESS_REVIEWS, json=review).get("status")
        if not isinstance(status, dict):
            return None, ""
        return bool(status.get("allowed")), str(status.get("reason") or "")

    def delete(self, kind: str, name: str, summary: str = "") -> bool:
        """Delete with its dependents (a Job's pods); False when it was not there."""
        try:
            self._write(
                "DELETE",
                self.path(kind, name),
                summary,
                params={"propagationPolicy": "Background"},
            )
        except KubernetesApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _write(self, method: str, path: str, summary: str, **kwargs: Any) -> dict[str, Any]:
        self.writes.append(Write(method, path, summary))
        if self.dry_run:
            return {}
        return self._call(method, path, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TargetUnreachableError(
                f"the Kubernetes API at {self.base_url} did not answer {method} {path}: "
                f"{type(exc).__name__}",
                hint="nothing was changed; check the cluster and kubectl's context",
            ) from exc
        if response.status_code >= 400:
            raise _api_error(method, path, response, self.namespace)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            return {}
        return body


def _api_error(
    method: str, path: str, response: httpx.Response, namespace: str
) -> KubernetesApiError:
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text[:200]
    status = response.status_code
    what = f"{method} {path} answered {status}: {message}".rstrip(": ")
    if status == 403 and "forbidden" in message:
        hint = (
            "the identity golive acts with lacks this permission: grant it in the Role of "
            "deploy/k8s/golive (role.yaml) or the operator's context; nothing else was changed"
        )
    elif status in (401, 403):
        hint = (
            f"the context needs get, list, patch, create and delete on deployments, services, "
            f"jobs, pods (and pods/proxy, pods/log), endpointslices in {namespace}"
        )
    elif status == 404:
        hint = "apply the overlays first: kubectl apply -k deploy/k8s/production"
    elif status == 409:
        hint = "someone changed the object meanwhile; nothing was overwritten; run again"
    else:
        hint = None
    return KubernetesApiError(what, status=status, hint=hint)
