"""The traffic flag as this instance sees it: the ``TrafficFlag`` seam, and its flagd provider.

``TrafficFlag`` is what routing, readiness and ``GET /flags`` use, whatever the provider
(``FLAG_PROVIDER``): ``flagd`` here, ``launchdarkly`` in ``routing.launchdarkly``. Both evaluate
the flag in-process with the client id as the targeting key, so a client keeps its engine as
the weight rises; both say why they cannot be trusted in ``problem`` (the instance is then not
ready, and a provider with no good flags sends every request to legacy).

flagd (``FlagdFileFlag``): a watcher polls the flag-definition file. A new version is
validated first (JSON, the flag's shape); only then is it copied to a private file the flagd
provider reads, and the provider is re-created on it, so what ``/flags`` reports is exactly what
the provider evaluates. An invalid or missing file never replaces good flags: the instance keeps
the last good version (and reports why), and with none at all it is not ready and every request
stays on the safe default (legacy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from credit_assessment.routing import FLAG_KEY

log = structlog.get_logger()
PROVIDER = "flagd-file"
PROVIDER_READY_TIMEOUT_S = 2.0


class FlagFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FlagVersion:
    version: str  # first 12 hex characters of the file's SHA-256
    weight_percent: int  # share of clients on the new engine
    content: bytes


def parse_flag_file(content: bytes, flag_key: str = FLAG_KEY) -> FlagVersion:
    """Validate a flagd flag-definition document and read the rollout weight of ``flag_key``."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlagFileError(f"not valid JSON: {exc}") from exc
    flags = document.get("flags") if isinstance(document, dict) else None
    if not isinstance(flags, dict):
        raise FlagFileError("no 'flags' object")
    weight = 0
    flag = flags.get(flag_key)
    if flag is not None:
        weight = _weight(flag, flag_key)
    return FlagVersion(hashlib.sha256(content).hexdigest()[:12], weight, content)


def _weight(flag: Any, flag_key: str) -> int:
    if not isinstance(flag, dict) or not isinstance(flag.get("variants"), dict):
        raise FlagFileError(f"flag {flag_key!r} has no variants")
    variants = flag["variants"]
    if flag.get("state") != "ENABLED":
        return 0
    targeting = flag.get("targeting") or {}
    buckets = targeting.get("fractional") if isinstance(targeting, dict) else None
    if not buckets:
        return 100 if variants.get(flag.get("defaultVariant")) is True else 0
    if not isinstance(buckets, list):
        raise FlagFileError(f"flag {flag_key!r}: 'fractional' must be a list")
    weights: dict[str, float] = {}
    for bucket in buckets:
        if isinstance(bucket, list) and len(bucket) == 2 and isinstance(bucket[0], str):
            if bucket[0] not in variants or not isinstance(bucket[1], int | float) or bucket[1] < 0:
                raise FlagFileError(f"flag {flag_key!r}: bad fractional bucket {bucket!r}")
            weights[bucket[0]] = weights.get(bucket[0], 0) + float(bucket[1])
    total = sum(weights.values())
    if total <= 0:
        raise FlagFileError(f"flag {flag_key!r}: fractional weights add up to zero")
    on = sum(w for name, w in weights.items() if variants.get(name) is True)
    return round(100 * on / total)


class TrafficFlag(Protocol):
    """The legacy-to-new flag of this instance, from whichever provider is configured."""

    @property
    def current(self) -> FlagVersion | None:
        """The flag version evaluated now, and its weight; None before any was loaded."""
        ...

    @property
    def problem(self) -> str | None:
        """Why this instance is not ready to route (None: ready)."""
        ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def enabled_for(self, client_id: uuid.UUID) -> bool:
        """True when this client's application goes to the new engine."""
        ...

    def state(self) -> dict[str, Any]:
        """What ``GET /flags`` answers: provider, flag version, weight in use, problem."""
        ...


def _remove_stale_copies(directory: Path) -> None:
    """Delete private flag copies left by processes that no longer run."""
    for path in directory.glob("flags-*-*.json"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, PermissionError, IndexError):
            continue


class FlagdFileFlag:
    """Evaluates the flag for each client; watches the file for new versions."""

    def __init__(self, source: Path, private_dir: Path, poll_s: float = 0.25) -> None:
        self.source = source
        self._private = private_dir / f"flags-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._poll_s = poll_s
        self._domain = f"credit-assessment-{uuid.uuid4().hex}"
        self._provider: Any = None
        self._client: Any = None
        self._mtime: float | None = None
        self._installs = 0
        self._task: asyncio.Task[None] | None = None
        self.current: FlagVersion | None = None
        self.problem: str | None = "flag file not loaded yet"
        self.last_rejection: str | None = None

    def start(self) -> None:
        _remove_stale_copies(self._private.parent)
        self.reload()
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._provider is not None:
            with contextlib.suppress(Exception):
                self._provider.shutdown()
        # The private copy stays until the next start: the provider's watcher thread may still
        # look at it for a moment after shutdown.

    def enabled_for(self, client_id: uuid.UUID) -> bool:
        """True when this client's application goes to the new engine."""
        if self._client is None:
            return False
        from openfeature.evaluation_context import EvaluationContext

        return bool(
            self._client.get_boolean_value(
                FLAG_KEY, False, EvaluationContext(targeting_key=str(client_id))
            )
        )

    def reload(self) -> None:
        """Load the file if it changed; keep the last good version when it is bad."""
        try:
            stat = self.source.stat()
        except OSError as exc:
            self._reject(f"flag file {self.source} unreadable: {exc.strerror}")
            return
        if self._mtime == stat.st_mtime and self.current is not None:
            return
        self._mtime = stat.st_mtime
        try:
            version = parse_flag_file(self.source.read_bytes())
        except (OSError, FlagFileError) as exc:
            self._reject(f"flag file {self.source} rejected: {exc}")
            return
        if self.current is not None and version.version == self.current.version:
            self.problem = None
            return
        self._install(version)

    def _reject(self, problem: str) -> None:
        if problem != self.last_rejection:
            kept = self.current.version if self.current else None
            log.warning("flags_rejected", problem=problem, kept=kept)
        self.last_rejection = problem
        if self.current is None:  # with last good flags the instance keeps serving, ready
            self.problem = problem

    def _install(self, version: FlagVersion) -> None:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.provider import ProviderStatus

        tmp = self._private.with_suffix(".tmp")
        tmp.write_bytes(version.content)
        os.replace(tmp, self._private)
        # Each version gets its own provider under a new domain; requests move to it only once it
        # has loaded the file, so no request is evaluated against a half-initialised provider.
        self._installs += 1
        domain = f"{self._domain}-{self._installs}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            provider = FlagdProvider(
                resolver_type=ResolverType.IN_PROCESS, offline_flag_source_path=str(self._private)
            )
            api.set_provider(provider, domain=domain)
        client = api.get_client(domain)
        deadline = time.monotonic() + PROVIDER_READY_TIMEOUT_S
        while client.get_provider_status() != ProviderStatus.READY:
            if time.monotonic() > deadline:
                with contextlib.suppress(Exception):
                    provider.shutdown()
                self._reject(f"flag provider did not load version {version.version}")
                return
            time.sleep(0.002)
        previous, self._provider, self._client = self._provider, provider, client
        if previous is not None:
            with contextlib.suppress(Exception):
                previous.shutdown()
        self.current, self.problem, self.last_rejection = version, None, None
        log.info("flags_loaded", version=version.version, weight_percent=version.weight_percent)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                self.reload()
            except Exception:
                log.exception("flags_watch_failed")

    def state(self) -> dict[str, Any]:
        """What ``GET /flags`` answers: the version and weight this instance is using."""
        return {
            "flagSetVersion": self.current.version if self.current else None,
            "flags": {
                FLAG_KEY: {"weightPercent": self.current.weight_percent if self.current else 0}
            },
            "provider": PROVIDER,
            "source": str(self.source),
            "problem": self.problem or self.last_rejection,
        }
