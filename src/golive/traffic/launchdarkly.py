"""``LaunchDarklyFlag``: the traffic weight as a LaunchDarkly percentage rollout.

The change is the story's script, as one JSON patch on the flag::

    PATCH {api_url}/api/v2/flags/{project}/{flag}
    Authorization: <API token>
    {"patch": [
      {"op": "replace", "path": "/environments/production/rules/0/rollout/variations/0/weight",
       "value": <percent x 1000>},
      {"op": "replace", "path": ".../rules/0/rollout/variations/1/weight",
       "value": <(100 - percent) x 1000>},
      {"op": "replace", "path": "/environments/production/on", "value": true}]}

LaunchDarkly weights are thousandths of a percent (100000 = 100%). The script replaced only
variation 0; a rollout whose weights do not add up to 100000 is refused, so the second operation
sets the other variation to the remainder. The third turns the flag on: it ships off (every
client gets the off variation, legacy), the first stage enables it at its weight, and a rollback
to 0% leaves it on at 0% (docs/golive.md). ``rule=None`` patches the fallthrough's rollout.

After the patch the flag is read back from LaunchDarkly (``GET ...?env=``): its weight must be
the one asked for, and its environment version is what every serving instance must then report
on ``GET /flags`` (the SDKs stream the change) before the stage counts as started.

Errors: 401 and 403 are a ``CredentialError`` (the token is refused, or may not change the
flag); 404, 409 and 400 a ``TrafficFlagError`` saying which (no such project or flag; changed
meanwhile or waiting for an approval; a patch the flag cannot take); a 429 is retried after its
``Retry-After`` (at most ``max_retry_after_s``), a 5xx or a lost connection after a back-off,
``attempts`` times in all. When a PATCH's outcome is unknown (no answer, or a 5xx on the last
attempt) the flag is read: if it holds the weight asked for, the change stands; otherwise it is
as it was, and the error says so. The flag is never left at a weight nobody asked for.

The API token comes from the plan's ``traffic.launchdarkly.api_token_env`` variable, or the file
``<NAME>_FILE`` names (as Kubernetes mounts secrets); it is sent only in the Authorization header
and never appears in a message, a log line or ``repr``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from golive.errors import CredentialError, TrafficFlagError
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

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target

PROVIDER = "launchdarkly"
DEFAULT_API_URL = "https://app.launchdarkly.com"
DEFAULT_TOKEN_ENV = "LAUNCHDARKLY_API_TOKEN"  # noqa: S105 - a variable's name
TOTAL_WEIGHT = 100_000
PAGE = 100  # flags listed per request
REHEARSAL_TOKEN_FILE = "launchdarkly-api-token"  # noqa: S105 - a file's name


def api_token_from(
    name: str = DEFAULT_TOKEN_ENV,
    environ: Mapping[str, str] | None = None,
    fallback: Path | None = None,
) -> str:
    """``$NAME``, or the contents of the file ``$NAME_FILE`` names (else ``fallback``)."""
    env = os.environ if environ is None else environ
    if env.get(name, "").strip():
        return env[name].strip()
    path = env.get(f"{name}_FILE") or (str(fallback) if fallback and fallback.exists() else "")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialError(
                f"cannot read the LaunchDarkly API token file {path}: {exc.strerror}",
                hint=f"{name}_FILE must name a readable file holding the token",
            ) from exc
        if token:
            return token
    raise CredentialError(
        f"no LaunchDarkly API token: {name} and {name}_FILE are unset or empty",
        hint=f"set {name}, or {name}_FILE to a file holding an API access token with a writer "
        "role on the flag (the plan's traffic.launchdarkly.api_token_env names the variable)",
    )


class LaunchDarklyFlag(PolledFlag):
    """A LaunchDarkly flag's percentage rollout on one rule of one environment."""

    def __init__(
        self,
        flag_key: str = FLAG_KEY,
        *,
        project: str = "production",
        environment: str = "production",
        rule: int | None = 0,
        variation: int = 0,
        complement_variation: int | None = 1,
        api_token: str | None = None,
        token_env: str = DEFAULT_TOKEN_ENV,
        api_url: str = DEFAULT_API_URL,
        instances: Sequence[Endpoint] | Callable[[], Sequence[Endpoint]] = (),
        timeout_s: float = 10.0,
        attempts: int = 5,
        max_retry_after_s: float = 60.0,
        poll_s: float = 0.2,
        confirmations: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        record: Callable[[Write], None] | None = None,
        reader: httpx.Client | None = None,
    ) -> None:
        self.key = flag_key
        self.project = project
        self.environment = environment
        self.rule = rule
        self.variation = variation
        self.complement_variation = complement_variation
        self.api_url = api_url.rstrip("/")
        self.token_env = token_env
        self.attempts = max(1, attempts)
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._record = record  # a dry run: the patch is recorded, not sent
        self._token = api_token or api_token_from(token_env)
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout_s, transport=transport)
        self._poller = InstancePoller(
            instances,
            flag_key,
            poll_s=poll_s,
            confirmations=confirmations,
            transport=transport,
            client=reader,
        )
        self._version: str | None = None  # the environment's version after our last write

    def __repr__(self) -> str:
        return f"LaunchDarklyFlag({self.project}/{self.key}, env={self.environment}, token=***)"

    @property
    def _flag_path(self) -> str:
        return f"/api/v2/flags/{self.project}/{self.key}"

    def _serve_path(self) -> str:
        serve = "fallthrough" if self.rule is None else f"rules/{self.rule}"
        return f"/environments/{self.environment}/{serve}/rollout"

    def patch_body(self, percent: int) -> dict[str, Any]:
        check_percent(percent)
        weights = f"{self._serve_path()}/variations"
        operations: list[dict[str, Any]] = [
            {"op": "replace", "path": f"{weights}/{self.variation}/weight", "value": percent * 1000}
        ]
        if self.complement_variation is not None:
            operations.append(
                {
                    "op": "replace",
                    "path": f"{weights}/{self.complement_variation}/weight",
                    "value": (100 - percent) * 1000,
                }
            )
        operations.append(
            {"op": "replace", "path": f"/environments/{self.environment}/on", "value": True}
        )
        return {"patch": operations}

    # ------------------------------------------------------------------ the store

    def read(self) -> dict[str, Any]:
        """The flag as LaunchDarkly holds it for the environment."""
        flag = self._send("GET", self._flag_path, params={"env": self.environment}).json()
        if not isinstance(flag, dict):
            raise TrafficFlagError(f"LaunchDarkly answered no flag for {self._where()}")
        return flag

    def _settings(self, flag: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            settings: Mapping[str, Any] = flag["environments"][self.environment]
        except (KeyError, TypeError) as exc:
            raise TrafficFlagError(
                f"LaunchDarkly flag {self._where()} has no environment {self.environment!r}"
            ) from exc
        return settings

    def weight_in(self, flag: Mapping[str, Any]) -> int:
        """The share (percent) ``flag`` serves the rollout's variation; 0 while it is off."""
        settings = self._settings(flag)
        if not settings.get("on"):
            return 0
        try:
            serve = settings["fallthrough"] if self.rule is None else settings["rules"][self.rule]
            weight = next(
                v["weight"]
                for v in serve["rollout"]["variations"]
                if v["variation"] == self.variation
            )
        except (KeyError, IndexError, TypeError, StopIteration) as exc:
            where = "the fallthrough" if self.rule is None else f"rule {self.rule}"
            raise TrafficFlagError(
                f"LaunchDarkly flag {self._where()} has no percentage rollout on {where} of "
                f"{self.environment}",
                hint="give the flag a percentage rollout on variations 0 (new engine) and 1, "
                "or name its rule in traffic.launchdarkly.rule",
            ) from exc
        return round(int(weight) * 100 / TOTAL_WEIGHT)

    def weight(self) -> int:
        """The weight LaunchDarkly holds now (percent)."""
        return self.weight_in(self.read())

    def stored_weights(self) -> dict[str, int]:
        """Every flag of the project in the environment, and the share each serves its first
        rollout's ``true`` (0: off, or on at 0%)."""
        found: dict[str, int] = {}
        while True:  # LaunchDarkly answers a page at a time
            params = {"env": self.environment, "limit": PAGE, "offset": len(found)}
            answer = self._send("GET", f"/api/v2/flags/{self.project}", params=params).json()
            items = answer.get("items") if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise TrafficFlagError(f"LaunchDarkly listed no flags for project {self.project}")
            found.update({str(i.get("key")): _share(i, self.environment) for i in items})
            total = answer.get("totalCount")
            if not items or len(items) < PAGE or (isinstance(total, int) and len(found) >= total):
                return found

    def set_weight(self, percent: int) -> None:
        """One PATCH, then the flag read back: it must hold ``percent``, switched on."""
        body = self.patch_body(percent)
        if self._record is not None:
            self._record(
                Write(
                    "PATCH",
                    f"{self.api_url}{self._flag_path}  <JSON patch: {self.key} to {percent}%>",
                    f"traffic flag {self.key} to {percent}% in {self.environment}",
                )
            )
            return
        try:
            self._send("PATCH", self._flag_path, json=body)
        except _Unanswered as lost:
            flag = self._settle(percent, lost)
        else:
            flag = self.read()
        held = self.weight_in(flag)
        if held != percent:
            raise TrafficFlagError(
                f"LaunchDarkly accepted {self.key} at {percent}% but reads back {held}%: someone "
                "else changed the flag meanwhile",
                hint="read the flag in LaunchDarkly; the stage is undone to its previous weight",
            )
        self._version = str(self._settings(flag).get("version"))

    def _settle(self, percent: int, lost: _Unanswered) -> dict[str, Any]:
        """A PATCH whose outcome is unknown: the flag as it is now decides."""
        try:
            flag = self.read()
        except TrafficFlagError as exc:
            raise TrafficFlagError(
                f"{lost.message}; the flag could not be read back, so {self.key} may or may not "
                f"be at {percent}%",
                hint="read the flag in LaunchDarkly before going on; `golive rollback` sets it "
                "back to the previous weight",
            ) from exc
        if self.weight_in(flag) == percent:
            return flag
        raise TrafficFlagError(
            f"{lost.message}; the flag is unchanged at {self.weight_in(flag)}%",
            hint="LaunchDarkly did not apply the change; nothing was changed",
        ) from lost

    def verify(
        self,
        instances: Sequence[Endpoint] | None = None,
        percent: int | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, InstanceFlags]:
        """Wait until every serving instance evaluates ``percent`` at the flag's version (the
        SDKs stream the change)."""
        if percent is None or self._version is None:
            flag = self.read()
            self._version = str(self._settings(flag).get("version"))
            wanted = self.weight_in(flag) if percent is None else check_percent(percent)
        else:
            wanted = check_percent(percent)
        return self._poller.wait_for(instances, wanted, self._version, timeout_s)

    # ------------------------------------------------------------------ HTTP

    def _where(self) -> str:
        return f"{self.project}/{self.key}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": self._token, "Content-Type": "application/json"}
        what = f"LaunchDarkly {method} {path}"
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise _lost(method, f"{what} failed: {type(exc).__name__}") from exc
                self._sleep(_backoff_s(attempt))
                continue
            status = response.status_code
            if status < 300:
                return response
            if status == 429 and not last:
                self._sleep(self._retry_after_s(response, attempt))
                continue
            if status >= 500:
                if last:
                    raise _lost(method, f"{what} answered {status} {attempt} times")
                self._sleep(_backoff_s(attempt))
                continue
            raise self._refusal(method, status, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after_s(self, response: httpx.Response, attempt: int) -> float:
        given = response.headers.get("Retry-After", "").strip()
        seconds: float | None = None
        if given.isdigit():
            seconds = float(given)
        elif given:
            try:
                seconds = parsedate_to_datetime(given).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
        if seconds is None:
            seconds = _backoff_s(attempt)
        return min(max(seconds, 0.0), self.max_retry_after_s)

    def _refusal(self, method: str, status: int, response: httpx.Response) -> Exception:
        said = _message(response)
        where = f"flag {self._where()} ({self.environment})"
        if status == 401:
            return CredentialError(
                f"LaunchDarkly refused the API token (401: {said})",
                hint=f"set {self.token_env} (or {self.token_env}_FILE) to a valid API access "
                "token; nothing was changed",
            )
        if status == 403:
            return CredentialError(
                f"the LaunchDarkly API token may not {method} {where} (403: {said})",
                hint=f"give the token behind {self.token_env} a writer role on project "
                f"{self.project}, environment {self.environment}; nothing was changed",
            )
        if status == 404:
            return TrafficFlagError(
                f"LaunchDarkly has no {where} (404)",
                hint="check traffic.launchdarkly.project and traffic.flag_key in the plan",
            )
        if status == 409:
            return TrafficFlagError(
                f"LaunchDarkly refused the change of {where} as a conflict (409: {said})",
                hint="the flag changed meanwhile, or the environment asks for approvals; read "
                "it in LaunchDarkly; golive changed nothing",
            )
        if status == 400:
            return TrafficFlagError(
                f"LaunchDarkly refused the patch of {where} (400: {said})",
                hint="the flag needs a percentage rollout on variations 0 (new engine) and 1 "
                "on the rule the plan names (traffic.launchdarkly.rule); nothing was changed",
            )
        return TrafficFlagError(f"LaunchDarkly {method} {where} answered {status}: {said}")

    def close(self) -> None:
        self._http.close()
        self._poller.close()


class _Unanswered(Exception):
    """A PATCH with no usable answer after every attempt: its outcome is unknown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _lost(method: str, message: str) -> Exception:
    """No usable answer: a PATCH's outcome is unknown (the flag decides), a read just failed."""
    return _Unanswered(message) if method == "PATCH" else TrafficFlagError(message)


def _backoff_s(attempt: int) -> float:
    return float(min(8.0, 0.5 * 2 ** (attempt - 1)))


def _share(flag: Mapping[str, Any], environment: str) -> int:
    """What a flag of any shape serves ``true``, by its first rollout (0 while off)."""
    settings = (flag.get("environments") or {}).get(environment) or {}
    values = [v.get("value") for v in flag.get("variations") or []]

    def is_true(index: Any) -> bool:
        return isinstance(index, int) and 0 <= index < len(values) and values[index] is True

    if not settings.get("on"):
        return 100 if is_true(settings.get("offVariation")) else 0
    serves = [r for r in settings.get("rules") or [] if r.get("rollout")]
    serve = serves[0] if serves else (settings.get("fallthrough") or {})
    if not serve.get("rollout"):
        return 100 if is_true(serve.get("variation")) else 0
    weights = serve["rollout"].get("variations") or []
    on = sum(int(w.get("weight", 0)) for w in weights if is_true(w.get("variation")))
    return round(on * 100 / TOTAL_WEIGHT)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no detail"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or "no detail")[:200]
    return "no detail"


def rehearsal_token_file(plan: Plan) -> Path:
    """Where a rehearsal keeps the API token of its LaunchDarkly stand-in (local target)."""
    return plan.state_dir.resolve() / "local" / "secrets" / REHEARSAL_TOKEN_FILE


def from_plan(plan: Plan, target: Target) -> LaunchDarklyFlag:
    """The ``launchdarkly`` provider: the plan's project, environment and token variable
    (``traffic.launchdarkly``); read back from every serving slot. On the local target, with the
    variable unset, the token of the rehearsal's stand-in."""
    settings = plan.traffic.launchdarkly
    if settings is None:  # the plan's validation requires the section
        raise TrafficFlagError("the plan has no traffic.launchdarkly section")
    fallback = rehearsal_token_file(plan) if plan.target.kind == "local" else None
    return LaunchDarklyFlag(
        plan.traffic.flag_key,
        project=settings.project,
        environment=settings.environment,
        rule=settings.rule,
        api_token=api_token_from(settings.api_token_env, fallback=fallback),
        token_env=settings.api_token_env,
        api_url=settings.api_url,
        instances=lambda: serving_instances(target),
        reader=target.instance_http(2.0),
        timeout_s=settings.timeout_s,
        attempts=settings.attempts,
        max_retry_after_s=settings.max_retry_after_s,
        poll_s=0.1,
        record=target.writes.append if target.dry_run else None,
    )
