"""``golive db ...``: backup, verify a backup, restore. Registered by golive's CLI with
``add_db_commands(subparsers)``; each handler prints its result or raises a GoLiveError, which
the CLI turns into its exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from golive.database.backup import backup, load_backup, verify_backup
from golive.database.postgres import PgTools
from golive.database.restore import restore
from golive.errors import UsageError


def _url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise UsageError("no database: pass --database-url or set DATABASE_URL", hint="")
    return str(url)


def _tools(args: argparse.Namespace) -> PgTools:
    return PgTools(Path(args.pg_bin_dir) if args.pg_bin_dir else None)


def _ask(prompt: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(prompt).strip().lower() == "yes"


def cmd_backup(args: argparse.Namespace) -> None:
    url = _url(args)
    result = backup(url, Path(args.dir), _tools(args))
    verified = verify_backup(result, url, _tools(args)) if args.verify else None
    summary = {**result.to_dict(), "verified": verified.to_dict() if verified else None}
    summary.pop("source")
    print(json.dumps(summary, indent=2))


def cmd_verify(args: argparse.Namespace) -> None:
    verified = verify_backup(load_backup(Path(args.backup)), _url(args), _tools(args))
    print(json.dumps({"backup": args.backup, **verified.to_dict()}, indent=2))


def cmd_restore(args: argparse.Namespace, ask: Callable[[str], bool] = _ask) -> None:
    confirm: Callable[[str], bool] = (lambda _prompt: True) if args.yes else ask
    result = restore(Path(args.backup), _url(args), confirm, _tools(args))
    print(json.dumps(result.to_dict(), indent=2))


def add_db_commands(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="database backup, verification and restore")
    db_sub = db.add_subparsers(dest="db_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--database-url", help="the database (default: DATABASE_URL)")
        parser.add_argument("--pg-bin-dir", help="directory of pg_dump/pg_restore")

    take = db_sub.add_parser("backup", help="pg_dump -Fc with a SHA-256 manifest")
    common(take)
    take.add_argument("--dir", default="backups", help="backup directory (default ./backups)")
    take.add_argument(
        "--no-verify", dest="verify", action="store_false", help="skip the restore test"
    )
    take.set_defaults(handler=cmd_backup)

    check = db_sub.add_parser("verify", help="restore a backup into a scratch database, compare")
    common(check)
    check.add_argument("backup", help="the .dump file (its .json manifest next to it)")
    check.set_defaults(handler=cmd_verify)

    back = db_sub.add_parser(
        "restore",
        help="replace the database with a backup (asks first)",
        description="Data-loss window: writes after the backup was taken are absent from the "
        "restored database; the replaced database is kept as <name>_replaced_<time>.",
    )
    common(back)
    back.add_argument("backup", help="the .dump file (its .json manifest next to it)")
    back.add_argument("--yes", action="store_true", help="do not ask (non-interactive use)")
    back.set_defaults(handler=cmd_restore)
