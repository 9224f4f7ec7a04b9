"""``credit-assessment``: serve the API, migrate, seed, mint development tokens.

Thin on purpose: parse, delegate, turn errors into an exit code and a message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from credit_assessment.settings import Settings, SettingsError, load_settings

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _database_url(settings: Settings) -> Settings:
    """Settings with a database: the configured one, or the embedded PostgreSQL started now."""
    if settings.database_url is not None:
        return settings
    from credit_assessment.store import embedded

    url = embedded.start(settings.data_dir)
    return settings.model_copy(update={"database_url": SecretStr(url)})


def _migrate(settings: Settings, phase: str = "expand", revision: str = "head") -> str | None:
    """Apply pending migrations of ``phase``. Serving only ever expands: contract migrations
    run on their own, after the previous release is retired."""
    from credit_assessment.store import schema

    assert settings.database_url is not None
    return schema.upgrade(
        settings.database_url.get_secret_value(),
        revision,
        phase=None if revision != "head" else phase,  # type: ignore[arg-type]
        policy=schema.MigrationPolicy.from_env(),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {
        k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v
    }
    settings = _database_url(load_settings(**overrides))
    from credit_assessment.server import serve
    from credit_assessment.telemetry.logs import configure_logging, get_logger

    configure_logging(settings.log_level, slot=settings.slot, version=settings.version)
    if settings.migrate_on_start:
        revision = _migrate(settings)
        get_logger().info("schema_ready", revision=revision, embedded=settings.embedded_database)
    else:
        get_logger().info("schema_left_as_is", reason="MIGRATE_ON_START=false")
    return serve(settings)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _database_url(load_settings())
    if args.revision:
        revision = _migrate(settings, revision=args.revision)
        print(f"database at revision {revision}")
        return 0
    revision = _migrate(settings, args.phase)
    print(f"database at revision {revision} ({args.phase} phase applied)")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from credit_assessment.seed import client_rows, write_legacy_clients
    from credit_assessment.sources.bureau_export import write_reports
    from credit_assessment.store.clients import upsert_clients
    from credit_assessment.store.schema import sync_url

    try:
        rows = client_rows(args.clients)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.legacy_file:
        write_legacy_clients(args.legacy_file, args.clients)
        print(f"wrote the legacy system's clients ({args.clients}) to {args.legacy_file}")
    if args.bureau_file:
        write_reports(args.bureau_file, args.clients)
        print(f"wrote the bureau's reports for {args.clients} clients to {args.bureau_file}")
    settings = _database_url(load_settings())
    if settings.migrate_on_start:
        _migrate(settings)
    assert settings.database_url is not None
    engine = sa.create_engine(sync_url(settings.database_url.get_secret_value()))
    try:
        with engine.begin() as conn:
            count = upsert_clients(conn, rows)
    finally:
        engine.dispose()
    print(f"seeded {count} clients")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from credit_assessment.api.auth import mint_token

    if args.ttl < 1:
        print("error: --ttl must be at least 1 second", file=sys.stderr)
        return EXIT_USAGE
    print(mint_token(load_settings(), args.subject, args.ttl))
    return 0


def cmd_model_train(train_args: list[str]) -> int:
    try:
        from credit_assessment.model.train import main as train
    except ImportError as exc:
        print(
            f"error: training needs the [train] extra (pip install -e '.[train]'): {exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return train(train_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credit-assessment", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="serve the API (embedded PostgreSQL when DATABASE_URL is unset)"
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply pending migrations of one phase")
    upgrade.add_argument(
        "--phase",
        choices=("expand", "contract"),
        default="expand",
        help="expand (default: safe while the previous release serves) or contract (only after "
        "the previous release is retired)",
    )
    upgrade.add_argument(
        "--revision",
        help="stop at this revision instead (e.g. to stand up the previous release's schema)",
    )
    upgrade.set_defaults(func=cmd_db_upgrade)

    seed = sub.add_parser("seed", help="load deterministic client profiles")
    seed.add_argument("--clients", type=int, default=500, help="how many clients (default 500)")
    seed.add_argument(
        "--bureau-file", type=Path, help="also write the credit bureau emulator's reports here"
    )
    seed.add_argument(
        "--legacy-file", type=Path, help="also write the legacy system emulator's clients here"
    )
    seed.set_defaults(func=cmd_seed)

    model = sub.add_parser("model", help="the scorecard")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    train = model_sub.add_parser(
        "train",
        help="retrain the scorecard from the packaged credit data (needs the [train] extra)",
        add_help=False,
    )
    train.set_defaults(func=lambda _: cmd_model_train(["--help"]))

    token = sub.add_parser("token", help="mint a development bearer token (HS256)")
    token.add_argument("--subject", default="release-manager", help="the token's subject")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["model", "train"]:  # its options belong to the training command
        return cmd_model_train(argv[2:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"error: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: a message, not a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
