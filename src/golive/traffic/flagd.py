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
import os
import tempfile
from collections.abc import Callable, Sequence
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
from golive.traffic.document import flag_set_version, parse_document, weight_of, with_weight

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target

__all__ = ["PROVIDER", "FlagdFileFlag", "flag_file", "from_plan"]

PROVIDER = "flagd-file"


class FlagdFileFlag(PolledFlag):
    """The traffic flag in a flagd flag-definition file, read back from every instance."""

    def __init__(
        self,
        path: str | Path,
        flag_key: str = FLAG_KEY,
        *,
        instances: Sequence[Endpoint] | Callable[[], Sequence[Endpoint]] = (),
        timeout_s: float = 2.0,
        poll_s: float = 0.2,
        confirmations: int = 1,
        transport: httpx.BaseTransport | None = None,
        reader: httpx.Client | None = None,
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
            client=reader,
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

    def stored_weights(self) -> dict[str, int]:
        """Every flag of the file and the share it serves ``on`` (0: disabled or at 0%)."""
        document = self._document()
        return {key: weight_of(document, key) for key in document.get("flags") or {}}

    def version(self) -> str | None:
        """The flag-set version instances report once they load the current file."""
        try:
            return flag_set_version(self.path.read_bytes())
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ the instances

    def verify(
        self,
        instances: Sequence[Endpoint] | None = None,
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


def from_plan(plan: Plan, target: Target) -> FlagdFileFlag:
    """The ``flagd-file`` provider: the local target's flag file, read back from every slot."""

    return FlagdFileFlag(
        flag_file(plan),
        plan.traffic.flag_key,
        instances=lambda: serving_instances(target),
        poll_s=0.1,
        confirmations=3,
        reader=target.instance_http(2.0),
    )
