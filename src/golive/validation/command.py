"""``golive validate``: read pairs, compare, write validation.md and validation.json.

    golive validate --database-url-env DATABASE_URL | --export FILE
                    [--source shadow|replay] [--service URL --token-env API_TOKEN]
                    [--config validation.yaml] [--since ISO] [--until ISO] [--sample N]
                    [--out DIR] [--hash-key-env NAME]

Exit 0: no flagged segment or anomaly and the replay answered enough; 16: flagged (the files
are written first); 17: the database or the service could not be read; 2: bad input (options,
config, export, a refused token).

``run_validation`` is the same run as a function, for the plan step and the traffic stages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from golive.errors import UsageError, ValidationFailed
from golive.validation.config import ValidationConfig, load_config
from golive.validation.records import Pair, Stored
from golive.validation.register import Masker
from golive.validation.render import render_markdown, to_json
from golive.validation.result import SourceInfo, Unanswered, ValidationResult, validate

T = TypeVar("T")
DEFAULT_OUT = Path(".data/golive/validation")


@dataclass(frozen=True)
class ValidateRequest:
    database_url: str | None = None
    export: Path | None = None
    source: str | None = None  # shadow | replay; None: replay when service_url is given
    service_url: str | None = None
    token: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sample: int | None = None
    hash_key: bytes | None = None  # None: a fresh key for this run


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)
    return uvloop.run(coro)


def _replay(
    rows: list[Stored], request: ValidateRequest, config: ValidationConfig, masker: Masker
) -> tuple[list[Pair], SourceInfo]:
    from golive.validation.replay import replay
    from golive.validation.transport import make_transport

    if not request.service_url:
        raise UsageError("a replay needs the service's URL", hint="pass --service URL")
    settings = config.replay
    transport = make_transport(
        request.service_url, settings.path, request.token, settings.timeout_s, settings.concurrency
    )
    outcome = _run_async(replay(rows, transport, settings))
    kind = "replay-export" if request.export else "replay-database"
    where = request.export.name if request.export else "stored assessments"
    unanswered = tuple(
        Unanswered(masker.token("application", row.application.ref), cause, attempts)
        for row, cause, attempts in outcome.unanswered
    )
    info = SourceInfo(
        kind,
        f"{where} through {settings.path}",
        len(rows),
        outcome.retries,
        outcome.elapsed_s,
        unanswered,
    )
    return outcome.pairs, info


def run_validation(
    request: ValidateRequest, config: ValidationConfig, today: date | None = None
) -> ValidationResult:
    """Read the pairs the request names, compare them, and return the result."""
    # The sources import psycopg and httpx: loaded only when a run needs them.
    from golive.validation.database import shadow_pairs, stored_applications
    from golive.validation.export import read_export
    from golive.validation.history import select

    masker = Masker(request.hash_key) if request.hash_key else Masker.per_run()
    reason_map = config.match.reason_map
    if request.export is not None:
        rows = select(
            read_export(request.export, reason_map), request.since, request.until, request.sample
        )
        pairs, info = _replay(rows, request, config, masker)
    elif request.database_url is not None:
        source = request.source or ("replay" if request.service_url else "shadow")
        if source == "shadow":
            pairs = shadow_pairs(
                request.database_url, request.since, request.until, request.sample, reason_map
            )
            info = SourceInfo("shadow", "shadow pairs stored with legacy decisions", len(pairs))
        else:
            rows = stored_applications(
                request.database_url, request.since, request.until, request.sample, reason_map
            )
            pairs, info = _replay(rows, request, config, masker)
    else:
        raise UsageError("nothing to compare", hint="pass --database-url-env NAME or --export FILE")
    return validate(pairs, config, info, today or datetime.now(UTC).date(), masker)


def write_outputs(result: ValidationResult, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, document = out_dir / "validation.md", out_dir / "validation.json"
    markdown.write_text(render_markdown(result), encoding="utf-8")
    document.write_text(
        json.dumps(to_json(result), indent=2, default=str, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return markdown, document


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _env(name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise UsageError(f"{what}: the environment variable {name} is not set")
    return value


def validate_command(args: argparse.Namespace) -> None:
    """The handler of ``golive validate``."""
    config = load_config(args.config)
    if args.source == "replay" and not args.service:
        raise UsageError("--source replay needs --service URL")
    if args.export is not None and not args.service:
        raise UsageError("replaying an export needs --service URL")
    key = _env(args.hash_key_env, "--hash-key-env")
    if key is not None and len(key.encode()) < 16:
        raise UsageError(f"the hashing key in {args.hash_key_env} needs at least 16 bytes")
    request = ValidateRequest(
        database_url=_env(args.database_url_env, "--database-url-env"),
        export=args.export,
        source=args.source,
        service_url=args.service,
        token=_env(args.token_env, "--token-env") if args.service else None,
        since=args.since,
        until=args.until,
        sample=args.sample,
        hash_key=key.encode() if key else None,
    )
    result = run_validation(request, config)
    markdown, document = write_outputs(result, args.out)
    print(
        f"{result.pairs} pairs: {result.matched} match, {result.expected} expected, "
        f"{result.unexplained.events} unexplained; {result.unanswered} unanswered; "
        f"wrote {markdown} and {document}"
    )
    failures = result.failures()
    if failures:
        shown = failures[:10] + ([f"… and {len(failures) - 10} more"] if len(failures) > 10 else [])
        raise ValidationFailed(
            "validation failed:\n  " + "\n  ".join(shown),
            hint=f"read {markdown}: fix the engine or policy, or record intended differences in "
            "expected_changes (with a reason and an expiry date) and run again",
        )


def add_validate_command(subparsers: Any) -> None:
    """Register ``validate`` on golive's subcommands (``argparse`` sub-parsers action)."""
    parser = subparsers.add_parser(
        "validate",
        help="compare the new engine with the legacy system's decisions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--database-url-env", metavar="NAME", help="read assessments from the database in $NAME"
    )
    source.add_argument(
        "--export", type=Path, metavar="FILE", help="the legacy system's export (CSV or JSON lines)"
    )
    parser.add_argument(
        "--source",
        choices=("shadow", "replay"),
        help="with --database-url-env: shadow pairs, or a replay of stored assessments "
        "(default: replay when --service is given, else shadow)",
    )
    parser.add_argument("--service", metavar="URL", help="the service to replay through")
    parser.add_argument(
        "--token-env", default="API_TOKEN", metavar="NAME", help="bearer token (default API_TOKEN)"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="validation config (YAML/JSON)")
    parser.add_argument("--since", type=_when, metavar="ISO", help="window start (inclusive)")
    parser.add_argument("--until", type=_when, metavar="ISO", help="window end (exclusive)")
    parser.add_argument("--sample", type=_positive, metavar="N", help="compare N applications")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    parser.add_argument(
        "--hash-key-env",
        metavar="NAME",
        help="key for the masked ids (default: a new key per run, so ids cannot be linked "
        "across runs)",
    )
    parser.set_defaults(handler=validate_command)
