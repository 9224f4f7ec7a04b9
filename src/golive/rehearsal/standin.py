"""What the rehearsal's stand-ins for outside systems (credit bureau, legacy system) share:
reading their data files and their booleans, their fault switches (validated all or nothing, set
from loopback only, through one ``/control`` handler), and their command line and serving."""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence, Sized
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def parse_boolean(value: object, *, blank: bool | None = None) -> bool:
    """true/yes/1 or false/no/0 (any case); a blank cell is ``blank``, or an error without it."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if not text and blank is not None:
        return blank
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Switch:
    """One fault switch: the values it accepts, and what a bad value is told."""

    accepts: Callable[[Any], bool]
    says: str
    convert: Callable[[Any], Any] = lambda value: value


def whole_number_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and low <= value <= high


def number_in(low: float, high: float) -> Callable[[Any], bool]:
    return lambda value: type(value) in (int, float) and low <= value <= high


def switched(faults: Any, doc: dict[str, Any], switches: dict[str, Switch]) -> Any:
    """``faults`` with the switches of a /control body applied, all or nothing: an unknown
    switch or a bad value is a ValueError naming it, and nothing is changed."""
    unknown = set(doc) - set(switches)
    if unknown:
        raise ValueError(f"unknown switch {sorted(unknown)[0]!r}")
    values = {f.name: getattr(faults, f.name) for f in fields(faults)}
    for name, switch in switches.items():
        if name in doc:
            if not switch.accepts(doc[name]):
                raise ValueError(switch.says)
            values[name] = switch.convert(doc[name])
    return replace(faults, **values)


class Switchable(Protocol):
    faults: Any
    counts: Counter[str]


async def control(
    request: Request,
    standin: Switchable,
    switches: dict[str, Switch],
    fresh: Callable[[], Any],
    error: Callable[[int, str], Response],
) -> Response:
    """``GET /control``: the switches and counts. ``POST``, from loopback only: a JSON object of
    switches (``reset: true`` first restores ``fresh()`` and clears the counts)."""
    if request.method == "POST":
        host = request.client.host if request.client else ""
        if not is_loopback(host):
            return error(403, "switches can be set from loopback only")
        try:
            doc = json.loads(await request.body() or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("the body must be a JSON object")
            reset = doc.pop("reset", False) is True
            faults = switched(fresh() if reset else standin.faults, doc, switches)
        except ValueError as exc:
            return error(400, str(exc))
        if reset:
            standin.counts.clear()
        standin.faults = faults
    return JSONResponse({**asdict(standin.faults), "counts": dict(standin.counts)})


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
