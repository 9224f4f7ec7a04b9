"""What the rehearsal's stand-ins for outside systems (credit bureau, legacy system) share:
reading their data files, the loopback-only rule for their fault switches, and serving."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_records(
    path: Path, error: type[ValueError], required: Sequence[str] = ()
) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) pairs from a CSV file with a header or a JSON-lines file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = set(required) - set(reader.fieldnames or ())
        if missing:
            raise error(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
        return list(enumerate(reader, start=2))
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except ValueError as exc:
                raise error(f"{path}:{number}: not JSON ({exc})") from exc
    return out


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_from_env(name: str | None) -> str | None:
    """The secret in ``$name`` (None when no name is given); a ValueError when it is empty."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"${name} is empty or unset")
    return value


def serve(app: Any, host: str, port: int, event: str, **fields: Any) -> None:
    """Announce the stand-in on stdout (one JSON line), then serve until stopped."""
    import uvicorn

    print(json.dumps({"event": event, "port": port, **fields}), flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
