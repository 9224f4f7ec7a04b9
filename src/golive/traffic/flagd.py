"""``FlagdFileFlag``: the traffic weight as a flagd flag-definition file (the local target).

The flag is a ``fractional`` rollout on the targeting key (the client id), so each client keeps
its engine as the weight rises::

    {"flags": {"new-credit-assessment-enabled": {
        "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
        "targeting": {"fractional": [["on", 10], ["off", 90]]}}}}

Weight 0 is the same shape with ``["on", 0], ["off", 100]``: a valid file in which every client
gets the default, ``off``. Other flags and top-level keys in the file are kept as they are.
The file is replaced atomically (temporary file, fsync, rename, fsync of the directory), so an
instance never reads half a file.

Each serving instance answers ``GET /flags`` with the version of the flag set it evaluates
(first 12 hex characters of the file's SHA-256) and the weight; ``verify`` polls until every
instance reports both, or raises :class:`TrafficFlagError` naming the ones that did not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from golive.errors import TrafficFlagError
from golive.traffic.instances import InstanceFlags, InstancePoller

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets import Target

__all__ = [
    "FLAG_KEY",
    "PROVIDER",
    "FlagdFileFlag",
    "InstanceFlags",
    "InstancePoller",
    "check_percent",
    "flag_definition",
    "flag_file",
    "flag_set_version",
    "from_plan",
    "weight_of",
    "write_disabled",
]

FLAG_KEY = "new-credit-assessment-enabled"
PROVIDER = "flagd-file"


def flag_definition(percent: int) -> dict[str, Any]:
    """The flagd definition of the traffic flag at ``percent``."""
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"fractional": [["on", percent], ["off", 100 - percent]]},
    }


def parse_document(content: bytes, where: str, hint: str) -> dict[str, Any]:
    """A flagd flag-definition document, refused when it could not be rewritten safely."""
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise TrafficFlagError(
            f"{where} is not valid JSON; refusing to overwrite it ({exc})", hint=hint
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags", {}), dict):
        raise TrafficFlagError(f"{where} has no 'flags' object")
    return document


def with_weight(document: dict[str, Any], key: str, percent: int) -> str:
    """The document's text with the traffic flag at ``percent``, every other flag kept."""
    document.setdefault("flags", {})[key] = flag_definition(check_percent(percent))
    return json.dumps(document, indent=2) + "\n"


def flag_set_version(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def check_percent(percent: int) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise TrafficFlagError(f"a traffic weight is a whole percentage 0-100, not {percent!r}")
    return percent


def weight_of(document: Mapping[str, Any], key: str) -> int:
    """The share of clients a flag definition sends to ``on`` (0 when absent or disabled)."""
    flag = (document.get("flags") or {}).get(key)
    if not isinstance(flag, dict) or flag.get("state") != "ENABLED":
        return 0
    variants = flag.get("variants") or {}
    buckets = (flag.get("targeting") or {}).get("fractional")
    if not buckets:
        return 100 if variants.get(flag.get("defaultVariant")) is True else 0
    weights = [b for b in buckets if isinstance(b, list) and len(b) == 2]
    total = sum(float(w) for _, w in weights)
    on = sum(float(w) for name, w in weights if variants.get(name) is True)
    return round(100 * on / total) if total > 0 else 0


class FlagdFileFlag:
    """The traffic flag in a flagd flag-definition file, read back from every instance."""

    def __init__(
        self,
        path: str | Path,
        flag_key: str = FLAG_KEY,
        *,
        instances: Sequence[str] | Callable[[], Sequence[str]] = (),
        timeout_s: float = 2.0,
        poll_s: float = 0.2,
        confirmations: int = 1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.path = Path(path)
        self.key = flag_key
        self._poller = InstancePoller(
            instances,
            flag_key,
            timeout_s=timeout_s,
            poll_s=poll_s,
            confirmations=confirmations,
            transport=transport,
        )

    # ------------------------------------------------------------------ the file

    def _document(self) -> dict[str, Any]:
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return {"flags": {}}
        except OSError as exc:
            raise TrafficFlagError(f"cannot read flag file {self.path}: {exc.strerror}") from exc
        return parse_document(
            content,
            f"flag file {self.path}",
            hint="fix or remove the file, then set the weight again",
        )

    def set_weight(self, percent: int) -> None:
        """Write the flag at ``percent``, keeping every other flag; atomic on the filesystem."""
        check_percent(percent)
        content = with_weight(self._document(), self.key, percent).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise TrafficFlagError(f"cannot write flag file {self.path}: {exc.strerror}") from exc
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def weight(self) -> int:
        """The weight the file asks for (what instances should converge on)."""
        return weight_of(self._document(), self.key)

    def version(self) -> str | None:
        """The flag-set version instances report once they load the current file."""
        try:
            return flag_set_version(self.path.read_bytes())
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ the instances

    def read_weights(self) -> dict[str, int]:
        """The weight each serving instance evaluates now (the ``TrafficFlag`` port)."""
        return self._poller.read_weights()

    def verify(
        self,
        instances: Sequence[str] | None = None,
        percent: int | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, InstanceFlags]:
        """Wait until every instance evaluates this file's version at ``percent``."""
        wanted = self.weight() if percent is None else check_percent(percent)
        return self._poller.wait_for(instances, wanted, self.version(), timeout_s)

    def close(self) -> None:
        self._poller.close()


def flag_file(plan: Plan) -> Path:
    """Where the local target keeps the flag file its slots read (under the state directory)."""
    return plan.state_dir.resolve() / "local" / "flags" / "flags.json"


def write_disabled(path: Path, flag_key: str = FLAG_KEY) -> None:
    """A fresh flag file with the traffic flag DISABLED: every client on legacy (story AC 5)."""
    document = {"flags": {flag_key: {**flag_definition(0), "state": "DISABLED"}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def from_plan(plan: Plan, target: Target) -> FlagdFileFlag:
    """The ``flagd-file`` provider: the local target's flag file, read back from every slot."""
    from golive.traffic import serving_instances

    return FlagdFileFlag(
        flag_file(plan),
        plan.traffic.flag_key,
        instances=lambda: serving_instances(target),
        poll_s=0.1,
        confirmations=3,
    )
