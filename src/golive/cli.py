"""The golive command line: parse, delegate, exit code.

Each command is a function ``(args) -> None`` registered with its own parser by
``_add_<command>``. Its outcome becomes the exit code in one place, ``report_failure``: a
GoLiveError prints ``error:``/``hint:`` lines on stderr and exits with its code (the table is in
golive/errors.py and docs/golive.md), Ctrl+C exits 130, success 0; anything else is a defect and
Python's traceback exits 1. Adding a command is a parser function and one line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from golive.errors import GoLiveError, Interrupted, UsageError

if TYPE_CHECKING:
    from golive.smoke import Dependency

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


DEFAULT_PLAN = Path("deploy/golive/rehearsal.yaml")


# --- go-live commands: each delegates to the module that owns the work --------------------


def _check_plan(args: argparse.Namespace) -> None:
    from golive import plan, providers

    loaded = plan.load(args.plan)
    if not args.structure_only:
        providers.check_runnable(loaded)
    stages = len(loaded.traffic.stages)
    print(f"{args.plan}: valid ({stages} traffic stages, target {loaded.target.kind})")


def _runbook(args: argparse.Namespace) -> None:
    from golive import plan
    from golive.report import runbook

    text = runbook.render(plan.load(args.plan), args.alerts)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"runbook written to {args.output}")


def _run(args: argparse.Namespace) -> None:
    from golive import control

    if args.resume and args.resume_or_start:
        raise UsageError("--resume and --resume-or-start do not go together: choose one")
    if args.dry_run:
        if args.resume or args.resume_or_start:
            raise UsageError("--dry-run and --resume do not go together: a dry run changes nothing")
        print(control.dry_run(args.plan))
        return
    reason = (args.reason or "").strip()
    if args.outside_window and not reason:
        raise UsageError(
            "--outside-window needs --reason TEXT: why the database steps run outside the "
            "maintenance window (journaled and shown in the report)"
        )
    if reason and not args.outside_window:
        raise UsageError("--reason goes with --outside-window")
    control.run_plan(
        args.plan,
        resume=None if args.resume_or_start else args.resume,
        plain=args.plain,
        outside_window_reason=reason if args.outside_window else None,
    )


def _rehearse(args: argparse.Namespace) -> None:
    from golive.rehearsal import rehearse

    rehearse.main(args.plan, keep=args.keep, plain=args.plain)


def _up(args: argparse.Namespace) -> None:
    from golive import plan
    from golive.rehearsal import environment
    from golive.report.progress import PlainObserver

    target = environment.up(plan.load(args.plan), PlainObserver())
    print(
        f"up: the service is at {target.service_url()} (blue); `golive down {args.plan}` stops it"
    )


def _down(args: argparse.Namespace) -> None:
    from golive import plan
    from golive.rehearsal import environment

    stopped = environment.down(plan.load(args.plan))
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _status(args: argparse.Namespace) -> None:
    from golive import control

    print(control.status(args.plan))


def _switch(args: argparse.Namespace) -> None:
    from golive import control

    print(control.switch(args.plan, args.slot))


def _rollback(args: argparse.Namespace) -> None:
    from golive import control

    print(control.rollback(args.plan, args.wait))


def _pause(args: argparse.Namespace) -> None:
    from golive import control

    print(control.pause(args.plan, args.paused))


def _approve(args: argparse.Namespace) -> None:
    from golive import control

    print(control.approve(args.plan, args.by, args.note))


def _fetch_run(args: argparse.Namespace) -> None:
    from golive import control

    print(control.fetch_run(args.plan, args.run, args.to))


def _smoke(args: argparse.Namespace) -> None:
    from golive import smoke

    dependencies = list(args.dependency)
    if args.bureau_url:
        dependencies.append(smoke.Dependency("credit bureau", args.bureau_url))
    smoke.main(args.url, args.token_env, dependencies)


def _plan_argument(parser: argparse.ArgumentParser, *, optional: bool = False) -> None:
    if optional:
        parser.add_argument(
            "--plan",
            type=Path,
            default=DEFAULT_PLAN,
            help=f"the go-live plan (default: {DEFAULT_PLAN})",
        )
    else:
        parser.add_argument("plan", type=Path, metavar="PLAN", help="the go-live plan (YAML)")


def _add_plan(commands: Subcommands) -> None:
    check = commands.add_parser("check", help="validate a plan (structure, then providers)")
    _plan_argument(check)
    check.add_argument(
        "--structure-only", action="store_true", help="skip the check of the providers it names"
    )
    check.set_defaults(handler=_check_plan)


def _add_runbook(commands: Subcommands) -> None:
    runbook = commands.add_parser("runbook", help="render the runbook (Markdown) from a plan")
    _plan_argument(runbook)
    runbook.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    runbook.add_argument(
        "--alerts",
        type=Path,
        default=Path("deploy/monitoring/prometheus/rules/alerts.rules.yml"),
        help="Prometheus alert rules (one runbook section per alert)",
    )
    runbook.set_defaults(handler=_runbook)


def _add_run(commands: Subcommands) -> None:
    run = commands.add_parser("run", help="run the go-live plan (journaled, resumable)")
    _plan_argument(run)
    run.add_argument("--resume", action="store_true", help="continue the unfinished go-live")
    run.add_argument(
        "--resume-or-start",
        action="store_true",
        help="continue the unfinished go-live, or start one; nothing when the latest run of "
        "this plan succeeded (the in-cluster Job's command: a restarted pod resumes)",
    )
    run.add_argument("--plain", action="store_true", help="plain progress lines, no live panel")
    run.add_argument(
        "--outside-window",
        action="store_true",
        help="let the database steps run outside the plan's maintenance window (needs --reason)",
    )
    run.add_argument(
        "--reason", metavar="TEXT", help="why the go-live runs outside the window (journaled)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print every write the go-live would make, in order, reading the target only",
    )
    run.set_defaults(handler=_run)


def _add_rehearse(commands: Subcommands) -> None:
    rehearse = commands.add_parser(
        "rehearse",
        help="the whole go-live on this machine under background load (local target)",
    )
    rehearse.add_argument("plan", type=Path, nargs="?", default=DEFAULT_PLAN, metavar="PLAN")
    rehearse.add_argument("--keep", action="store_true", help="leave green, router, database up")
    rehearse.add_argument("--plain", action="store_true", help="plain progress lines")
    rehearse.set_defaults(handler=_rehearse)


def _add_environment(commands: Subcommands) -> None:
    up = commands.add_parser(
        "up", help="local target: database, seeded clients, blue behind HAProxy"
    )
    _plan_argument(up)
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", help="local target: stop everything it started (by pid)")
    _plan_argument(down)
    down.set_defaults(handler=_down)


def _add_control(commands: Subcommands) -> None:
    status = commands.add_parser("status", help="where the go-live stands (journal and router)")
    _plan_argument(status, optional=True)
    status.set_defaults(handler=_status)
    switch = commands.add_parser("switch", help="route the service to a slot (verified)")
    switch.add_argument("slot", choices=("blue", "green"))
    _plan_argument(switch, optional=True)
    switch.set_defaults(handler=_switch)
    rollback = commands.add_parser("rollback", help="roll the go-live back (service to blue)")
    _plan_argument(rollback, optional=True)
    rollback.add_argument(
        "--wait", type=float, default=120, help="seconds to wait for a running go-live"
    )
    rollback.set_defaults(handler=_rollback)
    for name, paused in (("pause", True), ("resume", False)):
        parser = commands.add_parser(
            name, help=f"{name} the running go-live at its next checkpoint"
        )
        _plan_argument(parser, optional=True)
        parser.set_defaults(handler=_pause, paused=paused)
    approve = commands.add_parser(
        "approve", help="approve the traffic stage waiting for a person (approval: manual)"
    )
    _plan_argument(approve, optional=True)
    approve.add_argument(
        "--by", required=True, type=_named, metavar="NAME", help="who approves (journaled)"
    )
    approve.add_argument("--note", default="", metavar="TEXT", help="why, for the report")
    approve.set_defaults(handler=_approve)
    fetch = commands.add_parser(
        "fetch-run",
        help="copy a run's directory (journal, report, review pack) from the volume of "
        "golive's Job to this machine",
    )
    fetch.add_argument("run", nargs="?", metavar="RUN", help="a run id (default: the latest)")
    _plan_argument(fetch, optional=True)
    fetch.add_argument(
        "--to", type=Path, default=Path(".data/golive-runs"), help="where (default: %(default)s)"
    )
    fetch.set_defaults(handler=_fetch_run)


def _named(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a name is required: who approves")
    return text.strip()


def _add_smoke(commands: Subcommands) -> None:
    smoke = commands.add_parser("smoke", help="run the smoke tests against a URL")
    smoke.add_argument("url", metavar="URL")
    smoke.add_argument("--token-env", default="API_TOKEN", help="variable holding the bearer token")
    smoke.add_argument(
        "--dependency",
        action="append",
        default=[],
        type=_dependency,
        metavar="NAME=URL[,FIELD=VALUE...]",
        help="an external service's health URL; it must answer 200, with these JSON fields "
        "when given (repeatable; default: none, the check says it is skipped)",
    )
    smoke.add_argument("--bureau-url", help="shorthand for --dependency 'credit bureau=URL'")
    smoke.set_defaults(handler=_smoke)


def _dependency(text: str) -> Dependency:
    from golive.smoke import Dependency

    name, _, rest = text.partition("=")
    url, *fields = rest.split(",")
    pairs = [f.partition("=") for f in fields]
    malformed = any(not k or not eq for k, eq, _ in pairs)
    if not name.strip() or not url.startswith(("http://", "https://")) or malformed:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=URL[,FIELD=VALUE...] with an http(s) URL"
        )
    return Dependency(name.strip(), url, {k: v for k, _, v in pairs})


def _add_db(commands: Subcommands) -> None:
    from golive.database.cli import add_db_commands  # lazily: psycopg only for `golive db`

    add_db_commands(commands)


def _add_reports(commands: Subcommands) -> None:
    from golive.report.commands import add_report_commands

    add_report_commands(commands)


def _add_validate(commands: Subcommands) -> None:
    from golive.validation.command import add_validate_command

    add_validate_command(commands)


def _add_audit(commands: Subcommands) -> None:
    from golive.security.command import add_audit_command

    add_audit_command(commands)


COMMANDS: tuple[Callable[[Subcommands], None], ...] = (
    _add_secrets,
    _add_plan,
    _add_runbook,
    _add_run,
    _add_rehearse,
    _add_environment,
    _add_control,
    _add_smoke,
    _add_db,
    _add_validate,
    _add_reports,
    _add_audit,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="golive", description="Take the credit assessment service to production."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


SUCCESS = 0
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@", re.IGNORECASE)


def _masked(text: str) -> str:
    """The last guard against a credential in a URL (``scheme://user:password@``) on stderr."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def report_failure(exc: GoLiveError | KeyboardInterrupt) -> int:
    """The one place an outcome becomes an exit code: print ``error:``/``hint:``, return it."""
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return Interrupted.exit_code
    print(f"error: {_masked(exc.message)}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {_masked(exc.hint)}", file=sys.stderr)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a bad option exits 2 (argparse): UsageError's code
    handler: Handler = args.handler
    try:
        handler(args)
    except (GoLiveError, KeyboardInterrupt) as exc:
        return report_failure(exc)
    return SUCCESS


if __name__ == "__main__":
    sys.exit(main())
