"""What the rehearsal's stand-ins for outside systems (credit bureau, legacy system) share:
reading their data files, the loopback-only rule for their fault switches, and their command
line and serving."""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import os
import random
import sys
from collections.abc import Callable, Sequence, Sized
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


def run(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    data: tuple[str, str],
    secret: tuple[str, str],
    load: Callable[[Path], Sized],
    app: Callable[[Any, str | None, random.Random], Any],
    event: str,
) -> int:
    """A stand-in's command line: ``data`` and ``secret`` are its two options (flag, help).

    The data file is read with ``load`` (a ValueError names the file and line), the secret comes
    from the variable the secret option names; then ``app(records, secret, rng)`` is served.
    Bad input exits 2 with one line on stderr.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(data[0], dest="data", type=Path, required=True, help=data[1])
    parser.add_argument(secret[0], dest="secret", metavar="NAME", help=secret[1])
    parser.add_argument("--seed", type=int, help="seed the failure draws (repeatable runs)")
    args = parser.parse_args(argv)
    try:
        value = secret_from_env(args.secret)
        records = load(args.data)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(
        app(records, value, random.Random(args.seed)),
        args.host,
        args.port,
        event,
        clients=len(records),
    )
    return 0
