"""Operators and a running go-live meet in a ConfigMap: ``golive-control`` in the namespace.

Key ``requests.json`` holds the operators' requests (pause, rollback, an approval, who asked), as
``control.json`` does in a state directory; the runner polls it at every checkpoint. Key
``status.json`` holds the runner's status, written by the runner as its journal grows: the run,
its step, weight, dwell and latest gate figures (the live page's state), and who holds the
Lease. So ``golive status|pause|resume|rollback|approve --plan PLAN`` work from any shell with
access to the namespace, never the volume.

Every write is a read-modify-write guarded by the ConfigMap's resourceVersion (a 409 reads it
again and retries), so an operator's request and the runner's status never erase each other.
The ConfigMap ships with deploy/k8s/golive, so golive needs only ``get`` and ``patch`` on it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from golive.errors import ControlRequestError, KubernetesApiError
from golive.journal import control_request, now_iso
from golive.targets.kubeapi import KubernetesApi

REQUESTS_KEY = "requests.json"
STATUS_KEY = "status.json"
ATTEMPTS = 8


class ConfigMapControl:
    """The control channel and status board of a go-live on Kubernetes."""

    def __init__(self, api: KubernetesApi, name: str) -> None:
        self.api = api
        self.name = name

    @property
    def where(self) -> str:
        return f"configmap {self.api.namespace}/{self.name} (key {REQUESTS_KEY})"

    def _configmap(self) -> dict[str, Any]:
        found = self.api.find("configmaps", self.name)
        if found is None:
            raise ControlRequestError(
                f"the ConfigMap {self.api.namespace}/{self.name} does not exist",
                hint="apply deploy/k8s/golive (it ships the ConfigMap golive and operators "
                "meet in)",
            )
        return found

    @staticmethod
    def _key(configmap: dict[str, Any], key: str) -> Any:
        text = (configmap.get("data") or {}).get(key)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def read(self) -> dict[str, Any]:
        return control_request(self._key(self._configmap(), REQUESTS_KEY))

    def _update(self, key: str, change: Any) -> dict[str, Any]:
        """Write ``key`` as ``change(current value)``, guarded by the resourceVersion."""
        for _ in range(ATTEMPTS):
            configmap = self._configmap()
            value = change(self._key(configmap, key))
            patch = {
                "metadata": {"resourceVersion": configmap["metadata"].get("resourceVersion")},
                "data": {key: json.dumps(value, default=str, sort_keys=True)},
            }
            try:
                return self.api.patch_own("configmaps", self.name, patch)
            except KubernetesApiError as exc:
                if exc.status != 409:
                    raise
                time.sleep(0.05)
        raise ControlRequestError(
            f"{self.name}: {ATTEMPTS} writes in a row met a change made meanwhile",
            hint="try again; `golive status` shows what the ConfigMap holds",
        )

    def write(self, **changes: Any) -> dict[str, Any]:
        def merged(current: Any) -> dict[str, Any]:
            before = current if isinstance(current, dict) else {}
            return {**before, **changes, "updated": now_iso()}

        return control_request(self._key(self._update(REQUESTS_KEY, merged), REQUESTS_KEY))

    def reset(self) -> None:
        self.write(pause=False, rollback=False, approval=None, by=None)

    def publish(self, status: dict[str, Any]) -> None:
        """The runner's status, for ``golive status`` anywhere."""
        self._update(STATUS_KEY, lambda _: {**status, "published": now_iso()})

    def status(self) -> dict[str, Any] | None:
        value = self._key(self._configmap(), STATUS_KEY)
        return value if isinstance(value, dict) else None
