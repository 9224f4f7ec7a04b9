"""``ConfigMapFlag``: the flagd flag-definition file as a key of a Kubernetes ConfigMap.

In production every pod mounts the ConfigMap ``credit-assessment-flags`` (key ``flags.json``)
at the path ``FLAGD_OFFLINE_FLAG_SOURCE_PATH`` names; the kubelet refreshes the mounted file
(within its sync period, about a minute), each pod's watcher reloads it, and each pod reports
the version it evaluates on ``GET /flags``. ``set_weight`` reads the ConfigMap, changes only
the traffic flag (every other flag and key is kept) and patches it back with
a merge patch; ``verify`` waits until every serving instance evaluates the new version — the
same read-back as the flagd file provider.

The ConfigMap is reached through a ``ConfigMapStore``: the kubernetes target's own API client
(the identity golive acts with: the operator's context through kubectl proxy, or the Job's
ServiceAccount in the cluster; a dry run records the patch), or ``kubectl`` with the plan's
context where no target offers one; its commands run through ``run(argv) -> stdout``, so unit
tests pass a fake.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from golive.errors import TrafficFlagError
from golive.manifests import find_kubectl
from golive.targets.base import Write
from golive.traffic.base import (
    FLAG_KEY,
    Endpoint,
    InstanceFlags,
    InstancePoller,
    PolledFlag,
    check_percent,
    serving_instances,
)
from golive.traffic.document import flag_set_version, parse_document, weight_of, with_weight

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target

PROVIDER = "kubernetes-configmap"
CONFIGMAP = "credit-assessment-flags"
DATA_KEY = "flags.json"
KUBELET_SYNC_S = 120.0  # the kubelet refreshes mounted ConfigMaps within about a minute

Run = Callable[[Sequence[str]], str]


def kubectl_runner(kubectl: str = "kubectl", timeout_s: float = 30.0) -> Run:
    """Runs ``kubectl ARGS``; a missing binary or a refusal raises ``TrafficFlagError``."""

    def run(args: Sequence[str]) -> str:
        binary = shutil.which(kubectl)
        if binary is None:
            raise TrafficFlagError(
                f"{kubectl} is not installed: the kubernetes-configmap traffic flag needs it",
                hint="install kubectl with a context for the cluster, or name another "
                "traffic.flag_provider in the plan",
            )
        try:
            done = subprocess.run(  # noqa: S603 - argv built here, no shell
                [binary, *args], capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TrafficFlagError(f"kubectl {args[2] if len(args) > 2 else ''} timed out") from exc
        if done.returncode != 0:
            command = " ".join(a for a in args if not a.startswith("{"))  # without the patch
            raise TrafficFlagError(f"kubectl {command} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    return run


class ConfigMapStore(Protocol):
    """The namespace's ConfigMaps: read one, merge-patch one."""

    def get(self, name: str) -> dict[str, Any]: ...

    def patch(self, name: str, patch: dict[str, Any], summary: str) -> None: ...


class KubectlConfigMaps:
    """ConfigMaps through ``kubectl`` with the operator's context (``run(argv) -> stdout``);
    a dry run records the patch instead of sending it."""

    def __init__(
        self,
        namespace: str,
        run: Run,
        context: str | None = None,
        record: Callable[[Write], None] | None = None,
    ) -> None:
        self.namespace, self.context = namespace, context
        self._run, self._record = run, record

    def _kubectl(self, *args: str) -> str:
        context = ["--context", self.context] if self.context else []
        return self._run([*context, "-n", self.namespace, *args])

    def get(self, name: str) -> dict[str, Any]:
        raw = self._kubectl("get", "configmap", name, "-o", "json")
        try:
            configmap = json.loads(raw)
        except ValueError as exc:
            raise TrafficFlagError(f"kubectl answered no JSON for configmap {name}") from exc
        return configmap if isinstance(configmap, dict) else {}

    def patch(self, name: str, patch: dict[str, Any], summary: str) -> None:
        if self._record is not None:
            context = f"--context {self.context} " if self.context else ""
            self._record(
                Write(
                    "RUN",
                    f"kubectl {context}-n {self.namespace} patch configmap {name} "
                    f"--type merge -p <{summary}>",
                    summary,
                )
            )
            return
        self._kubectl("patch", "configmap", name, "--type", "merge", "-p", json.dumps(patch))


class ConfigMapFlag(PolledFlag):
    """The traffic flag in a ConfigMap's flagd file, read back from every serving instance."""

    def __init__(
        self,
        namespace: str,
        name: str = CONFIGMAP,
        flag_key: str = FLAG_KEY,
        *,
        data_key: str = DATA_KEY,
        store: ConfigMapStore | None = None,
        run: Run | None = None,
        instances: Sequence[Endpoint] | Callable[[], Sequence[Endpoint]] = (),
        poll_s: float = 1.0,
        context: str | None = None,
        record: Callable[[Write], None] | None = None,
        reader: httpx.Client | None = None,
    ) -> None:
        """``store`` reaches the ConfigMaps (the kubernetes target's API, with its identity);
        without one, ``kubectl`` with ``context`` (``run`` runs it; ``record``: a dry run)."""
        self.namespace = namespace
        self.context = context
        self.name = name
        self.key = flag_key
        self.data_key = data_key
        self._store = store or KubectlConfigMaps(
            namespace, run or kubectl_runner(), context, record
        )
        self._poller = InstancePoller(
            instances, flag_key, poll_s=poll_s, confirmations=3, client=reader
        )

    def _content(self) -> bytes:
        configmap = self._store.get(self.name)
        text = (configmap.get("data") or {}).get(self.data_key)
        return text.encode() if isinstance(text, str) else b'{"flags": {}}'

    def _document(self) -> dict[str, Any]:
        return parse_document(
            self._content(),
            f"configmap {self.namespace}/{self.name} key {self.data_key}",
            hint="fix the ConfigMap by hand, then set the weight again",
        )

    def set_weight(self, percent: int) -> None:
        check_percent(percent)
        content = with_weight(self._document(), self.key, percent)
        self._store.patch(
            self.name,
            {"data": {self.data_key: content}},
            f"traffic flag {self.key} to {percent}%",
        )

    def stored_weights(self) -> dict[str, int]:
        """Every flag of the ConfigMap's file and the share it serves ``on`` (0: disabled or
        at 0%)."""
        document = self._document()
        return {key: weight_of(document, key) for key in document.get("flags") or {}}

    def version(self) -> str:
        """The flag-set version pods report once they load the ConfigMap's current file."""
        return flag_set_version(self._content())

    def verify(
        self,
        instances: Sequence[Endpoint] | None = None,
        percent: int | None = None,
        timeout_s: float = KUBELET_SYNC_S,
    ) -> dict[str, InstanceFlags]:
        wanted = weight_of(self._document(), self.key) if percent is None else percent
        return self._poller.wait_for(
            instances, check_percent(wanted), self.version(), max(timeout_s, KUBELET_SYNC_S)
        )

    def close(self) -> None:
        self._poller.close()


def from_plan(plan: Plan, target: Target) -> ConfigMapFlag:
    """The ``kubernetes-configmap`` provider for the plan's namespace: through the kubernetes
    target's API and identity when the target offers its ConfigMaps (``configmaps()``), else
    through the kubectl context the plan names (``KUBECTL`` overrides the client binary)."""
    kubectl = os.environ.get("KUBECTL") or find_kubectl() or "kubectl"
    configmaps = getattr(target, "configmaps", None)
    return ConfigMapFlag(
        plan.target.namespace,
        flag_key=plan.traffic.flag_key,
        store=configmaps() if callable(configmaps) else None,
        run=kubectl_runner(kubectl),
        instances=lambda: serving_instances(target),
        reader=target.instance_http(2.0),
        poll_s=min(1.0, plan.target.kubernetes.poll_s),
        context=plan.target.kubernetes.context,
        record=target.writes.append if target.dry_run else None,
    )
