"""Schema migrations shipped inside the package, applied with Alembic, expand/contract.

Every migration says in its docstring whether it is ``Phase: expand`` (backward compatible: the
previous release keeps working on the new schema) or ``Phase: contract`` (it removes or tightens
something the previous release may rely on: run only once that release is retired). A migration
without a phase is an error.

``upgrade(url, phase="expand")`` applies the pending migrations up to the last expand migration
before the first contract one; ``phase="contract"`` then applies the contract run that follows.
Every migration runs with a short ``lock_timeout`` so that it never queues application queries
behind it for long; on a lock timeout (SQLSTATE 55P03) the migration is rolled back and retried
with exponential backoff and jitter until a budget is spent, then ``MigrationLockTimeout`` names
the migration and the session holding the lock.

One migration run at a time: ``upgrade`` holds a PostgreSQL advisory lock, so two slots starting
together cannot race.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_ID = 0x43524544  # "CRED"
LOCK_NOT_AVAILABLE = "55P03"

Phase = Literal["expand", "contract"]
PHASES: tuple[Phase, ...] = ("expand", "contract")
_PHASE_LINE = re.compile(r"^\s*Phase:\s*(\S+)\s*$", re.MULTILINE)


class MigrationPhaseError(ValueError):
    """A migration has no ``Phase:`` line, an unknown phase, or the graph branches."""


class MigrationLockTimeout(RuntimeError):
    """A migration could not take its lock within the retry budget."""

    def __init__(self, revision: str, waited_s: float, attempts: int, blocker: str) -> None:
        super().__init__(
            f"migration {revision} gave up after {attempts} lock timeouts in {waited_s:.1f}s; "
            f"blocking lock: {blocker}"
        )
        self.revision = revision
        self.waited_s = waited_s
        self.attempts = attempts
        self.blocker = blocker


@dataclass(frozen=True, slots=True)
class Migration:
    revision: str
    down_revision: str | None
    phase: Phase
    title: str


@dataclass(frozen=True, slots=True)
class MigrationPolicy:
    """How migrations behave on a live database (pgroll's and GitLab's defaults)."""

    lock_timeout_ms: int = 500
    statement_timeout_ms: int = 30_000  # DDL that holds a lock must be quick
    long_statement_timeout_ms: int = 30 * 60_000  # CONCURRENTLY, VALIDATE, one backfill batch
    retry_budget_s: float = 60.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    batch_size: int = 1000
    batch_pause_ms: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MigrationPolicy:
        """Overrides from ``MIGRATION_*`` environment variables (e.g. MIGRATION_LOCK_TIMEOUT_MS)."""
        env = os.environ if env is None else env
        values: dict[str, float | int] = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = env.get(f"MIGRATION_{name.upper()}")
            if raw is not None:
                values[name] = float(raw) if field.type == "float" else int(raw)
        return cls(**values)  # type: ignore[arg-type]


def alembic_config(url: str | None = None, output_buffer: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output_buffer)
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def sync_url(url: str) -> str:
    """The SQLAlchemy URL for psycopg 3, from any postgres:// form."""
    for prefix in (
        "postgresql+psycopg://",
        "postgresql+asyncpg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


# --- the migration graph and its phases (pure once read) -------------------------------------


def parse_phase(docstring: str | None, revision: str) -> Phase:
    """The ``Phase:`` line of a migration docstring; an error when missing or unknown."""
    found = _PHASE_LINE.findall(docstring or "")
    if len(found) != 1:
        raise MigrationPhaseError(
            f"migration {revision} must have exactly one 'Phase: expand|contract' line "
            f"in its docstring (found {len(found)})"
        )
    phase = found[0].lower()
    if phase not in PHASES:
        raise MigrationPhaseError(
            f"migration {revision} has phase {found[0]!r}; use 'expand' or 'contract'"
        )
    return "expand" if phase == "expand" else "contract"


def read_chain(script_dir: ScriptDirectory) -> list[Migration]:
    """The migrations from base to head; every one must carry a phase and the graph a line."""
    chain: list[Migration] = []
    for script in script_dir.walk_revisions("base", "heads"):
        if isinstance(script.down_revision, tuple | list) or script.is_merge_point:
            raise MigrationPhaseError(f"migration {script.revision} merges branches: keep a line")
        doc = ast.get_docstring(ast.parse(Path(script.path).read_text(encoding="utf-8"))) or ""
        chain.append(
            Migration(
                revision=script.revision,
                down_revision=script.down_revision,
                phase=parse_phase(doc, script.revision),
                title=doc.strip().splitlines()[0] if doc.strip() else "",
            )
        )
    if len(script_dir.get_heads()) > 1:
        raise MigrationPhaseError(f"migrations have several heads: {script_dir.get_heads()}")
    chain.reverse()
    return chain


@cache
def migration_chain() -> tuple[Migration, ...]:
    """The package's migrations, base first (read once per process)."""
    return tuple(read_chain(ScriptDirectory.from_config(alembic_config())))


def pending(chain: Sequence[Migration], current: str | None) -> list[Migration]:
    revisions = [m.revision for m in chain]
    if current is None:
        return list(chain)
    if current not in revisions:
        raise MigrationPhaseError(f"database is at revision {current}, unknown to this release")
    return list(chain[revisions.index(current) + 1 :])


def phase_target(chain: Sequence[Migration], current: str | None, phase: Phase) -> str | None:
    """Where ``upgrade(phase=...)`` stops: None when there is nothing of that phase to apply.

    expand: the last expand migration before the first pending contract one.
    contract: the last contract migration of the run that starts at the next pending migration;
    refused while expand migrations before it are still pending.
    """
    todo = pending(chain, current)
    target: str | None = None
    for migration in todo:
        if migration.phase != phase:
            if phase == "contract" and target is None:
                raise MigrationPhaseError(
                    f"expand migration {migration.revision} is pending: run the expand phase first"
                )
            break
        target = migration.revision
    return target


def compatible(
    db_revision: str | None,
    code_head: str,
    chain: Sequence[Migration] | None = None,
    applied: Sequence[tuple[str, str]] = (),
) -> bool:
    """Can a release whose newest migration is ``code_head`` serve a database at ``db_revision``?

    Yes when the database is at the release's head; or ahead of it by expand migrations only
    (backward compatible: this is how a rollback to the previous release stays possible); or
    behind it by contract migrations only (a release never needs its own contract migrations:
    they run after the release before it is retired). A database revision unknown to this
    release is judged from ``applied``, the (revision, phase) ledger read from the database.
    """
    if db_revision is None:
        return False
    if db_revision == code_head:
        return True
    chain = migration_chain() if chain is None else chain
    revisions = [m.revision for m in chain]
    if db_revision in revisions and code_head in revisions:
        db_at, code_at = revisions.index(db_revision), revisions.index(code_head)
        if db_at > code_at:
            return all(m.phase == "expand" for m in chain[code_at + 1 : db_at + 1])
        return all(m.phase == "contract" for m in chain[db_at + 1 : code_at + 1])
    ledger = [revision for revision, _ in applied]
    if code_head in ledger and ledger[-1] == db_revision:
        return all(phase == "expand" for _, phase in applied[ledger.index(code_head) + 1 :])
    return False


def backoff_delays(
    policy: MigrationPolicy, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, 0.4 s ... capped, each times U(0.5, 1]."""
    delay = policy.backoff_initial_s
    while True:
        yield delay * (0.5 + rng() / 2)
        delay = min(delay * 2, policy.backoff_max_s)


# --- applying migrations ----------------------------------------------------------------------


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)


def _relations_named(statement: str | None) -> list[str]:
    words = re.findall(
        r'(?:TABLE|ON|INTO|UPDATE|FROM)\s+(?:ONLY\s+)?"?(\w+)"?', statement or "", re.I
    )
    return [w.lower() for w in words]


def describe_blocker(conn: sa.Connection, statement: str | None = None) -> str:
    """The sessions holding locks on the tables a failed statement touched (best effort)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT a.pid, l.mode, l.relation::regclass::text AS relation, a.state,
                   round(extract(epoch FROM now() - a.xact_start)::numeric, 1) AS xact_s,
                   left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) AS query
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.granted AND l.relation IS NOT NULL AND a.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.relation::regclass::text NOT LIKE 'pg\\_%'
            ORDER BY a.xact_start NULLS LAST
            """
        )
    ).all()
    named = set(_relations_named(statement))
    chosen = [r for r in rows if r.relation.split(".")[-1] in named] or list(rows)
    if not chosen:
        return "no lock holder visible any more (the blocking transaction has ended)"
    return "; ".join(
        f"pid {r.pid} holds {r.mode} on {r.relation} ({r.state}, in transaction {r.xact_s}s: "
        f"{r.query})"
        for r in chosen[:3]
    )


def _set_session_limits(conn: sa.Connection, policy: MigrationPolicy) -> None:
    conn.exec_driver_sql(f"SET lock_timeout = '{int(policy.lock_timeout_ms)}ms'")
    conn.exec_driver_sql(f"SET statement_timeout = '{int(policy.statement_timeout_ms)}ms'")
    conn.commit()


def _resolve_target(conn: sa.Connection, revision: str, phase: Phase | None) -> str | None:
    if phase is None:
        return revision
    if revision != "head":
        raise MigrationPhaseError("give either a phase or a revision, not both")
    return phase_target(migration_chain(), current_revision(conn), phase)


def _apply_with_retries(
    conn: sa.Connection,
    target: str,
    policy: MigrationPolicy,
    sleep: Callable[[float], None],
) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    cfg.attributes["policy"] = policy
    started = time.monotonic()
    delays = backoff_delays(policy)
    attempts = 0
    while True:
        try:
            command.upgrade(cfg, target)
            conn.commit()
            return
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            attempts += 1
            waited = time.monotonic() - started
            delay = next(delays)
            if waited + delay > policy.retry_budget_s:
                running = pending(migration_chain(), current_revision(conn))
                name = running[0].revision if running else target
                blocker = describe_blocker(conn, str(getattr(exc, "statement", "") or ""))
                conn.rollback()
                raise MigrationLockTimeout(name, waited, attempts, blocker) from exc
            sleep(delay)


def upgrade(
    url: str,
    revision: str = "head",
    phase: Phase | None = None,
    policy: MigrationPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Apply migrations up to ``revision`` (or to the end of ``phase``); returns the revision the
    database is at afterwards. Each migration commits on its own: a failure leaves the database
    at the last migration that completed."""
    policy = policy or MigrationPolicy()
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            conn.commit()
            try:
                _set_session_limits(conn, policy)
                target = _resolve_target(conn, revision, phase)
                conn.rollback()  # alembic must start each migration's transaction itself
                if target is not None:
                    _apply_with_retries(conn, target, policy, sleep)
                return current_revision(conn)
            finally:
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                conn.commit()
    finally:
        engine.dispose()


def offline_sql(start: str | None = None, end: str = "head") -> str:
    """The SQL the migrations emit in offline mode (``alembic upgrade --sql``), for linting."""
    buffer = io.StringIO()
    cfg = alembic_config("postgresql+psycopg://lint@localhost/lint", output_buffer=buffer)
    cfg.attributes["policy"] = MigrationPolicy()
    command.upgrade(cfg, f"{start}:{end}" if start else end, sql=True)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    revision: str
    phase: str
    applied_at: object
    duration_ms: int | None


def applied_migrations(connection: sa.Connection) -> list[AppliedMigration]:
    """The migration ledger (``migration_history``), oldest first; empty before it exists."""
    if connection.scalar(sa.text("SELECT to_regclass('migration_history')")) is None:
        return []
    rows = connection.execute(
        sa.text(
            "SELECT revision, phase, applied_at, duration_ms FROM migration_history "
            "ORDER BY applied_at, revision"
        )
    )
    return [AppliedMigration(*row) for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m credit_assessment.store.schema [--phase expand|contract]`` with DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m credit_assessment.store.schema")
    parser.add_argument("--phase", choices=PHASES, help="apply only this phase's migrations")
    parser.add_argument("--revision", default="head", help="target revision (default head)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("error: DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        revision = upgrade(url, args.revision, phase=args.phase, policy=MigrationPolicy.from_env())
    except (MigrationLockTimeout, MigrationPhaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"database at revision {revision}")
    return 0


if __name__ == "__main__":  # run the imported module, so its classes are the ones env.py sees
    from credit_assessment.store import schema as _schema  # noqa: PLW0406

    sys.exit(_schema.main())
