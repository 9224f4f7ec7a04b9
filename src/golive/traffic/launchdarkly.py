"""``LaunchDarklyFlag``: the traffic weight as a LaunchDarkly percentage rollout (optional).

The change is the story's script, as a JSON patch on the flag::

    PATCH {base_url}/api/v2/flags/{project}/{flag}
    Authorization: <API key>
    {"patch": [{"op": "replace",
                "path": "/environments/production/rules/0/rollout/variations/0/weight",
                "value": <percent x 1000>}]}

LaunchDarkly weights are thousandths of a percent (100000 = 100%). The script replaced only
variation 0; a rollout whose weights do not add up to 100000 is not a valid split, so a second
operation sets the other variation to the remainder (``complement_variation=None`` sends the
script's single operation only).

The API key comes from ``LD_API_KEY`` or the file named by ``LD_API_KEY_FILE`` (as Kubernetes
mounts secrets); it is sent only in the Authorization header and never appears in a message,
a log line or ``repr``. ``base_url`` lets a test point the flag at a local stand-in.
Read-back: the weight each serving instance evaluates comes from its ``GET /flags``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from golive.errors import TrafficFlagError
from golive.traffic.base import (
    FLAG_KEY,
    Endpoint,
    InstanceFlags,
    InstancePoller,
    PolledFlag,
    check_percent,
    serving_instances,
)

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target

PROVIDER = "launchdarkly"
DEFAULT_BASE_URL = "https://app.launchdarkly.com"
RETRYABLE = {429, 500, 502, 503, 504}


def api_key_from(environ: Mapping[str, str] | None = None) -> str:
    """``LD_API_KEY``, or the contents of the file ``LD_API_KEY_FILE`` names."""
    env = os.environ if environ is None else environ
    if env.get("LD_API_KEY"):
        return env["LD_API_KEY"].strip()
    path = env.get("LD_API_KEY_FILE")
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TrafficFlagError(f"cannot read LD_API_KEY_FILE {path}: {exc.strerror}") from exc
        if key:
            return key
    raise TrafficFlagError(
        "no LaunchDarkly API key",
        hint="set LD_API_KEY, or LD_API_KEY_FILE to a file holding a writer token for the flag",
    )


class LaunchDarklyFlag(PolledFlag):
    """A LaunchDarkly flag's percentage rollout on one rule of one environment."""

    def __init__(
        self,
        flag_key: str = FLAG_KEY,
        *,
        project: str = "production",
        environment: str = "production",
        rule: int = 0,
        variation: int = 0,
        complement_variation: int | None = 1,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        instances: Sequence[Endpoint] | Callable[[], Sequence[Endpoint]] = (),
        timeout_s: float = 10.0,
        attempts: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.key = flag_key
        self.project = project
        self.environment = environment
        self.rule = rule
        self.variation = variation
        self.complement_variation = complement_variation
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self._api_key = api_key or api_key_from()
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)
        self._poller = InstancePoller(instances, flag_key, confirmations=3, transport=transport)

    def __repr__(self) -> str:
        return f"LaunchDarklyFlag({self.project}/{self.key}, env={self.environment}, key=***)"

    @property
    def _flag_path(self) -> str:
        return f"/api/v2/flags/{self.project}/{self.key}"

    def _weight_path(self, variation: int) -> str:
        return (
            f"/environments/{self.environment}/rules/{self.rule}/rollout/variations/"
            f"{variation}/weight"
        )

    def patch_body(self, percent: int) -> dict[str, Any]:
        check_percent(percent)
        operations = [
            {"op": "replace", "path": self._weight_path(self.variation), "value": percent * 1000}
        ]
        if self.complement_variation is not None:
            operations.append(
                {
                    "op": "replace",
                    "path": self._weight_path(self.complement_variation),
                    "value": (100 - percent) * 1000,
                }
            )
        return {"patch": operations}

    def set_weight(self, percent: int) -> None:
        self._send("PATCH", self._flag_path, json=self.patch_body(percent))

    def weight(self) -> int:
        """The weight LaunchDarkly holds for the rule's variation (thousandths -> percent)."""
        flag = self._send("GET", self._flag_path, params={"env": self.environment}).json()
        try:
            rollout = flag["environments"][self.environment]["rules"][self.rule]["rollout"]
            weight = next(
                v["weight"] for v in rollout["variations"] if v["variation"] == self.variation
            )
        except (KeyError, IndexError, TypeError, StopIteration) as exc:
            raise TrafficFlagError(
                f"LaunchDarkly flag {self.project}/{self.key} has no rollout on rule {self.rule} "
                f"of {self.environment}"
            ) from exc
        return round(int(weight) / 1000)

    def stored_weights(self) -> dict[str, int]:
        return {self.key: self.weight()}

    def verify(
        self,
        instances: Sequence[Endpoint] | None = None,
        percent: int | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, InstanceFlags]:
        """Wait until every serving instance evaluates ``percent`` (SDKs stream the change)."""
        wanted = self.weight() if percent is None else check_percent(percent)
        return self._poller.wait_for(instances, wanted, None, timeout_s)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": self._api_key, "Content-Type": "application/json"}
        what = f"LaunchDarkly {method} {path}"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == self.attempts:
                    raise TrafficFlagError(f"{what} failed: {type(exc).__name__}") from exc
            else:
                if response.status_code < 300:
                    return response
                if response.status_code not in RETRYABLE or attempt == self.attempts:
                    raise TrafficFlagError(
                        f"{what} answered {response.status_code}: {_message(response)}"
                    )
            time.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._http.close()
        self._poller.close()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no detail"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or "no detail")[:200]
    return "no detail"


def from_plan(plan: Plan, target: Target) -> LaunchDarklyFlag:
    """The ``launchdarkly`` provider: the plan's flag, read back from every serving slot.

    ``LD_PROJECT`` and ``LD_ENVIRONMENT`` name the project and environment (default
    ``production``); the API key comes from ``LD_API_KEY`` / ``LD_API_KEY_FILE``.
    """

    return LaunchDarklyFlag(
        plan.traffic.flag_key,
        project=os.environ.get("LD_PROJECT", "production"),
        environment=os.environ.get("LD_ENVIRONMENT", "production"),
        instances=lambda: serving_instances(target),
    )
