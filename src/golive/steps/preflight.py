"""Preflight: is everything reachable before anything changes? Reads only.

The target (router up, blue serving), the database (a ``SELECT 1`` and its size), the secrets
the plan requires (each present as a variable or a ``<NAME>_FILE``), and free disk for the
backup (the database size times the plan's headroom), and the flag store: every flag of the
flag set disabled or at 0% (story AC 5: the go-live starts with every client on legacy; a flag
already serving clients is named). Then the plan's pre-deployment checklist
(``golive.checklist``: security scan, staging tests, rollback tested, on-call notified), each
item journaled with its evidence (``checklist_checked``). Any failure -- of a required checklist
item too -- stops the go-live with nothing changed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from golive import checklist
from golive import journal as j
from golive.errors import GoLiveError, TargetUnreachableError
from golive.plan import Plan
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures
from golive.targets.base import Check
from golive.traffic import create as traffic_flag

# The database the URL names, and its size in bytes.
DatabaseProbe = Callable[[str], tuple[str, int]]


def database_size(url: str) -> tuple[str, int]:
    """Connect and measure the database the URL names, the one backed up and migrated (raises
    when unreachable)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_database(), pg_database_size(current_database())"
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else ("", 0)


def _free_bytes(directory: Path) -> int:
    probe = directory
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def signing_key_published(token: str, jwks_url: str, timeout_s: float = 10.0) -> Check:
    """The JWKS answers and publishes the ``kid`` the identity provider signs with now (the
    one of golive's own token): a rotation that removed it, or a JWKS the service cannot read,
    would answer every request 401. Names the kid, never the token."""
    import httpx
    import jwt

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return Check("signing keys", False, "golive's token has no readable JWT header")
    try:
        answer = httpx.get(jwks_url, timeout=timeout_s)
        answer.raise_for_status()
        published = [str(k.get("kid")) for k in answer.json().get("keys", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return Check("signing keys", False, f"the JWKS does not answer: {type(exc).__name__}")
    if kid not in published:
        return Check(
            "signing keys",
            False,
            f"the JWKS publishes {len(published)} key(s), not kid {kid!r} that the identity "
            "provider signs with",
        )
    return Check("signing keys", True, f"the JWKS publishes kid {kid} ({len(published)} keys)")


class Preflight:
    name = "preflight"
    title = "Preflight: target, database, secrets, disk for the backup"

    def __init__(self, probe: DatabaseProbe = database_size) -> None:
        self.probe = probe

    def run(self, ctx: StepContext) -> StepResult:
        checks = list(ctx.target.preflight())
        failed = [c for c in checks if not c.passed]
        if not failed:
            checks += self._database_and_disk(ctx)
            checks.append(self._secrets(ctx))
            if ctx.plan.traffic.flag_provider and ctx.plan.traffic.stages:
                checks.append(self._flags(ctx))
            if ctx.plan.auth is not None:
                checks.append(self._credentials(ctx))
                if ctx.plan.auth.jwks_url and checks[-1].passed:
                    checks.append(signing_key_published(ctx.token(), ctx.plan.auth.jwks_url))
            failed = [c for c in checks if not c.passed]
        for check in checks:
            ctx.observer.message(str(check))
        items = self._checklist(ctx)
        blocking = [str(item) for item in items if item.status == "fail"]
        if failed or blocking:
            raise TargetUnreachableError(
                "preflight failed, nothing was changed:\n  "
                + "\n  ".join([*map(str, failed), *blocking])
            )
        return StepResult(
            f"{len(checks)} checks passed"
            + (f", checklist {sum(i.passed for i in items)}/{len(items)}" if items else ""),
            {
                "checks": [
                    {"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks
                ],
                "checklist": [item.as_dict() for item in items],
            },
        )

    def _checklist(self, ctx: StepContext) -> list[checklist.ChecklistResult]:
        """The plan's checklist, each item journaled with its evidence."""
        items = checklist.check(
            ctx.plan,
            now=ctx.clock.wall(),
            read_events=ctx.journal.events,
            sleep=ctx.clock.sleep,
            monotonic=ctx.clock.monotonic,
            current_run=ctx.journal.run_dir.name,
        )
        if items:
            ctx.journal.append(j.CHECKLIST_CHECKED, items=[item.as_dict() for item in items])
            for item in items:
                ctx.observer.message(str(item))
        return items

    def _credentials(self, ctx: StepContext) -> Check:
        """The plan's token source answers now, not first at smoke-green (after the migration);
        the token itself is never shown. (The local default mints at first use.)"""
        try:
            ctx.token()
        except GoLiveError as exc:
            return Check(
                "bearer token", False, f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            )
        return Check("bearer token", True, "fetched for the smoke, performance and verify checks")

    def _database_and_disk(self, ctx: StepContext) -> list[Check]:
        plan = ctx.plan
        try:
            url = ctx.target.database_url()
            name, size = self.probe(url)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
            return [Check("database", False, f"not reachable: {type(exc).__name__}: {exc}")]
        # The URL decides what is backed up and migrated; the plan's name is how people call it.
        called = "" if name == plan.database.name else f" (the plan calls it {plan.database.name})"
        need = int(size * plan.database.backup_headroom)
        free = _free_bytes(plan.database.backup_dir.resolve())
        return [
            Check("database", True, f"{name}{called} answers, {size / 1e6:.1f} MB"),
            Check(
                "backup disk",
                free >= need,
                f"{free / 1e9:.1f} GB free in {plan.database.backup_dir}, "
                f"{need / 1e6:.1f} MB needed",
            ),
        ]

    def _flags(self, ctx: StepContext) -> Check:
        """Every flag of the store's flag set is disabled or at 0%: no client leaves legacy
        before the first traffic stage."""
        try:
            flag = traffic_flag(ctx.plan, ctx.target)
            try:
                weights = dict(flag.stored_weights())
            finally:
                close = getattr(flag, "close", None)
                if close is not None:
                    close()
        except GoLiveError as exc:
            return Check("flags", False, f"cannot read the flag set: {exc.message}")
        serving = {key: weight for key, weight in weights.items() if weight}
        if serving:
            named = ", ".join(f"{key} at {weight}%" for key, weight in sorted(serving.items()))
            return Check("flags", False, f"not disabled or at 0%: {named}")
        return Check("flags", True, f"{len(weights)} flag(s), each disabled or at 0%")

    def _secrets(self, ctx: StepContext) -> Check:
        provided = {**os.environ, **ctx.target.service_env()}
        missing = [
            name
            for name in ctx.plan.secrets.required
            if not provided.get(name) and not provided.get(f"{name}_FILE")
        ]
        if missing:
            return Check("secrets", False, "missing: " + ", ".join(missing))
        return Check("secrets", True, "present: " + ", ".join(ctx.plan.secrets.required))

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("preflight")

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).inspect()
