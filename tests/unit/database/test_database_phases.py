"""The migration graph's phases, the phase targets, readiness compatibility, backoff: pure rules."""

from __future__ import annotations

import pytest

from credit_assessment.store.schema import (
    Migration,
    MigrationPhaseError,
    MigrationPolicy,
    backoff_delays,
    compatible,
    migration_chain,
    parse_phase,
    phase_target,
)


def chain_of(spec: str) -> list[Migration]:
    """'e e c e' -> revisions 1..n with those phases."""
    phases = {"e": "expand", "c": "contract"}
    out, previous = [], None
    for i, p in enumerate(spec.split(), start=1):
        out.append(Migration(str(i), previous, phases[p], f"m{i}"))  # type: ignore[arg-type]
        previous = str(i)
    return out


@pytest.mark.parametrize(
    ("doc", "phase"),
    [
        ("Add x.\n\nRevision ID: 2\nPhase: expand\n", "expand"),
        ("Drop y.\nPhase: contract", "contract"),
        ("Drop y.\n  Phase:   Contract  ", "contract"),
    ],
)
def test_phase_is_read_from_the_docstring(doc: str, phase: str):
    assert parse_phase(doc, "2") == phase


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("Add x.\nRevision ID: 2\n", "exactly one"),
        (None, "exactly one"),
        ("Phase: expand\nPhase: contract", "exactly one"),
        ("Phase: migrate", "use 'expand' or 'contract'"),
    ],
)
def test_a_migration_without_a_valid_phase_is_an_error(doc: str | None, message: str):
    with pytest.raises(MigrationPhaseError, match=message):
        parse_phase(doc, "2")


def test_every_shipped_migration_has_a_phase_and_contract_comes_last():
    chain = migration_chain()
    assert chain[0].revision == "0001"
    assert [m.phase for m in chain][-1] == "contract"
    assert all(m.title for m in chain)


@pytest.mark.parametrize(
    ("spec", "current", "phase", "target"),
    [
        ("e e e c", None, "expand", "3"),
        ("e e e c", "1", "expand", "3"),
        ("e e e c", "3", "expand", None),
        ("e e e c", "3", "contract", "4"),
        ("e e e c", "4", "contract", None),
        ("e e e c", "4", "expand", None),
        ("e c c e c", "1", "contract", "3"),
        ("e c c e c", "3", "expand", "4"),
        ("e c c e c", "4", "contract", "5"),
        ("e e", "1", "expand", "2"),
    ],
)
def test_phase_target(spec: str, current: str | None, phase: str, target: str | None):
    assert phase_target(chain_of(spec), current, phase) == target  # type: ignore[arg-type]


def test_contract_with_pending_expand_is_refused():
    with pytest.raises(MigrationPhaseError, match="expand migration 2 is pending"):
        phase_target(chain_of("e e c"), "1", "contract")


def test_unknown_database_revision_is_refused():
    with pytest.raises(MigrationPhaseError, match="unknown to this release"):
        phase_target(chain_of("e e c"), "zz", "expand")


@pytest.mark.parametrize(
    ("spec", "db", "code", "ok"),
    [
        ("e e e c", "1", "1", True),
        ("e e e c", "3", "1", True),  # blue (at 1) on a database expanded to 3: rollback works
        ("e e e c", "4", "1", False),  # after the contract, blue is no longer compatible
        ("e e e c", "3", "4", True),  # green (head 4) before its contract migration ran
        ("e e e c", "2", "4", False),  # green needs its expand migrations
        ("e c e", "3", "1", False),  # a contract in between
        ("e e", None, "2", False),
    ],
)
def test_readiness_compatibility(spec: str, db: str | None, code: str, ok: bool):
    assert compatible(db, code, chain_of(spec)) is ok


def test_compatibility_with_a_revision_only_the_database_knows():
    chain = chain_of("e e")  # this release knows 1 and 2; the database was migrated to 4
    assert compatible(
        "4",
        "2",
        chain,
        applied=[("1", "expand"), ("2", "expand"), ("3", "expand"), ("4", "expand")],
    )
    assert not compatible(
        "4", "2", chain, applied=[("2", "expand"), ("3", "contract"), ("4", "expand")]
    )
    assert not compatible("4", "2", chain)


def test_compatibility_against_the_shipped_migrations():
    assert compatible("0006", "0001")
    assert compatible("0006", "0007")
    assert not compatible("0007", "0001")


def test_backoff_doubles_with_jitter_up_to_a_cap():
    policy = MigrationPolicy(backoff_initial_s=0.1, backoff_max_s=0.8)
    top = backoff_delays(policy, rng=lambda: 1.0)
    assert [round(next(top), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    low = backoff_delays(policy, rng=lambda: 0.0)
    assert [round(next(low), 3) for _ in range(3)] == [0.05, 0.1, 0.2]


def test_policy_from_environment():
    policy = MigrationPolicy.from_env(
        {"MIGRATION_LOCK_TIMEOUT_MS": "250", "MIGRATION_RETRY_BUDGET_S": "7.5"}
    )
    assert policy.lock_timeout_ms == 250
    assert policy.retry_budget_s == 7.5
    assert policy.batch_size == 1000
