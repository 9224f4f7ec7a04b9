"""The golive command line: parse, delegate, exit code.

Each command is a function ``(args) -> None`` registered with its own parser by
``_add_<command>``; a GoLiveError becomes ``error:``/``hint:`` lines on stderr and its exit
code. Adding a command is a parser function and one line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from golive.errors import GoLiveError

Handler = Callable[[argparse.Namespace], None]
Subcommands = argparse._SubParsersAction  # the object add_subparsers() returns


def _secrets_check(args: argparse.Namespace) -> None:
    from golive import secrets  # lazily: `golive --help` needs no hvac

    secrets.check(
        vault_addr=args.vault_addr,
        mount=args.mount,
        prefix=args.prefix,
        manifests=args.manifests or secrets.DEFAULT_MANIFESTS,
    )


def _add_secrets(commands: Subcommands) -> None:
    group = commands.add_parser("secrets", help="production secrets in Vault and Kubernetes")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="every required key exists in Vault (metadata only) and is wired to the workloads",
    )
    check.add_argument("--vault-addr", help="Vault address (default: $VAULT_ADDR)")
    check.add_argument("--mount", help="KV v2 mount (default: the SecretStore's path, 'secret')")
    check.add_argument(
        "--prefix",
        help="every Vault path read must lie under this prefix (e.g. credit-assessment/production)",
    )
    check.add_argument(
        "--manifests",
        type=Path,
        action="append",
        metavar="PATH",
        help="a kustomize overlay or rendered YAML; repeatable "
        "(default: deploy/k8s/production, deploy/k8s/migration, deploy/k8s/infra)",
    )
    check.set_defaults(handler=_secrets_check)


COMMANDS: tuple[Callable[[Subcommands], None], ...] = (_add_secrets,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="golive", description="Take the credit assessment service to production."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        handler(args)
    except GoLiveError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
