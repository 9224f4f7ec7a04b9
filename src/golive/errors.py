"""The one error tree of golive.

Every failure golive reports is a ``GoLiveError``: it carries the process exit code and a
hint that tells the operator what state things are in and what to do next. Causes are
chained (``raise ... from exc``); messages and hints never contain a secret value.

    GoLiveError                 exit 1   anything golive reports as a failure
    ├── UsageError              exit 2   a bad option or missing setting (VAULT_ADDR, a path)
    │   └── PlanError                    the plan file is invalid (file:line: field.path: why)
    ├── ManifestError           exit 3   rendered manifests cannot be read or are inconsistent
    │   └── SecretWiringError            workloads mount Secret keys no ExternalSecret writes
    └── VaultError              exit 4   Vault could not answer the question
        ├── VaultUnreachableError        connection refused, DNS, TLS or timeout
        ├── VaultAuthError               the token is missing, expired or not allowed
        └── MissingSecretsError  exit 5  required keys are absent (or deleted) in Vault
    ├── TargetError             exit 6   the target (slots, router, database) refused
    │   └── TargetUnreachableError       preflight: nothing was changed
    ├── GoLiveBusyError         exit 7   another go-live holds the lock, or one is unfinished
    ├── StepFailed              exit 8   a step failed; the rollback procedure ran
    │   └── RolledBack          exit 9   a gate breach or an operator asked for the rollback
    ├── RollbackFailed          exit 10  an undo itself failed: the operator must act (see hint)
    └── Interrupted             exit 130 SIGINT/SIGTERM: the step was undone, the run is resumable

``StepFailed`` names the step and lists what was undone, in order.

The CLI prints ``error: <message>`` and ``hint: <hint>`` and exits with ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Sequence


class GoLiveError(Exception):
    """A failure golive reports to the operator, with an exit code and a hint."""

    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(GoLiveError):
    """A bad option or a missing setting."""

    exit_code = 2


class ManifestError(GoLiveError):
    """Rendered manifests cannot be read, rendered or are inconsistent."""

    exit_code = 3
    default_hint = "render them with `kubectl kustomize deploy/k8s/production` and fix the overlay"


class SecretWiringError(ManifestError):
    """Workloads reference Secret keys that no ExternalSecret writes (or the reverse)."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            "secret wiring mismatch:\n  " + "\n  ".join(self.problems),
            hint=hint
            or "make every mounted key an ExternalSecret data entry "
            "(deploy/k8s/production/secrets/externalsecret.yaml), or stop mounting it",
        )


class VaultError(GoLiveError):
    """Vault could not answer."""

    exit_code = 4


class VaultUnreachableError(VaultError):
    """No answer from Vault: connection, DNS, TLS or timeout."""

    default_hint = "check VAULT_ADDR (or --vault-addr), the network path and Vault's status"


class VaultAuthError(VaultError):
    """The token is missing, expired or lacks permission."""

    default_hint = (
        "set VAULT_TOKEN or VAULT_TOKEN_FILE to a token allowed to read the KV v2 metadata "
        "of the paths (policy: read on <mount>/metadata/<prefix>/*)"
    )


class MissingSecretsError(VaultError):
    """Required keys are absent (or their current version is deleted) in Vault."""

    exit_code = 5

    def __init__(self, paths: Sequence[str], *, hint: str | None = None) -> None:
        self.paths = list(paths)
        super().__init__(
            f"{len(self.paths)} required secret(s) missing in Vault: " + ", ".join(self.paths),
            hint=hint
            or "write each one (vault kv put <mount>/<path> value=...), then run the check again",
        )


class PlanError(UsageError):
    """The plan file is invalid; every problem names the file, the line and the field path."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid plan:\n  " + "\n  ".join(self.problems),
            hint=hint or "fix the fields named above (docs/golive.md has the plan reference)",
        )


class TargetError(GoLiveError):
    """The target could not do what was asked (start a slot, switch the router, ...)."""

    exit_code = 6


class TargetUnreachableError(TargetError):
    """A preflight found the target unreachable; nothing was changed."""

    default_hint = "nothing was changed; start the environment (`golive up PLAN`) and run again"


class GoLiveBusyError(GoLiveError):
    """Another go-live holds the lock, or an unfinished one must be resumed or rolled back."""

    exit_code = 7


class StepFailed(GoLiveError):
    """A step failed and the rollback procedure ran; ``undone`` says what it undid."""

    exit_code = 8

    def __init__(
        self, step: str, reason: str, undone: Sequence[str], *, hint: str | None = None
    ) -> None:
        self.step = step
        self.reason = reason
        self.undone = list(undone)
        lines = [f"step {step!r} failed: {reason}", "rolled back:"]
        lines += [f"  - {item}" for item in self.undone] or ["  - nothing needed undoing"]
        super().__init__("\n".join(lines), hint=hint)


class RolledBack(StepFailed):
    """A gate breach, or an operator's `golive rollback`, rolled the go-live back."""

    exit_code = 9


class RollbackFailed(GoLiveError):
    """An undo failed during the rollback: the system needs a human now."""

    exit_code = 10


class Interrupted(GoLiveError):
    """SIGINT or SIGTERM arrived; the step in progress was undone and the run can resume."""

    exit_code = 130


# --- the database steps and `golive db` -----------------------------------------------------


class DatabaseError(GoLiveError):
    """A database step of the go-live failed."""

    exit_code = 6


class ToolNotFoundError(DatabaseError):
    """pg_dump or pg_restore is not installed where golive looks."""

    default_hint = (
        "install the PostgreSQL client programs (same major version as the server or newer), "
        "put them on PATH or set PG_BIN_DIR"
    )


class InsufficientSpaceError(DatabaseError):
    """The backup directory cannot hold the backup."""

    default_hint = "free space in the backup directory or point --backup-dir at a larger volume"


class BackupError(DatabaseError):
    """pg_dump failed, or no backup is recorded where one is needed."""

    default_hint = (
        "nothing was changed; check the database URL, the role's rights and pg_dump's output"
    )


class BackupVerificationError(DatabaseError):
    """The backup does not restore, or differs from the source."""

    default_hint = (
        "the backup is not usable: production was not touched; take a new backup and "
        "check the backup volume"
    )


class CloneTestError(DatabaseError):
    """The migration failed or broke integrity on the clone."""

    default_hint = "production was not touched; fix the migration and rehearse it on a clone again"


class MigrationError(DatabaseError):
    """The migration failed on the target database."""

    default_hint = (
        "each migration commits on its own: the database stays at the last completed "
        "migration, which is backward compatible; the previous release keeps serving"
    )


class VerificationError(DatabaseError):
    """Revision, schema objects, integrity or the previous release's queries failed."""

    def __init__(self, failures: Sequence[str], *, hint: str | None = None) -> None:
        self.failures = list(failures)
        super().__init__(
            "database verification failed:\n  " + "\n  ".join(self.failures),
            hint=hint
            or "the expand migration is backward compatible: keep blue serving, investigate, "
            "restore from the verified backup only if data is wrong (golive db restore)",
        )


class RestoreError(DatabaseError):
    """The restore failed; the current database is untouched."""

    default_hint = "the current database was left in place; the backup file is unchanged"


class RestoreNotConfirmed(DatabaseError):
    """The operator did not confirm the restore."""

    exit_code = 2
    default_hint = "nothing was changed; answer 'yes' or pass --yes to restore"


# --- `golive validate` and the validate step -------------------------------------------------

MAX_LISTED = 20


def _listed(problems: Sequence[str]) -> str:
    shown = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        shown.append(f"… and {len(problems) - MAX_LISTED} more")
    return "\n  ".join(shown)


class ValidationConfigError(UsageError):
    """The validation config (or the plan's ``validation`` section) is invalid."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid validation config:\n  " + _listed(self.problems),
            hint=hint or "fix the fields named above (docs/validation.md has the schema)",
        )


class ExportError(UsageError):
    """The legacy export cannot be used; every problem names the row and the column."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            f"invalid export ({len(self.problems)} problem(s)):\n  " + _listed(self.problems),
            hint=hint or "fix the rows named above (docs/validation.md has the export format)",
        )


class ReplayRefused(UsageError):
    """The service refused the replay outright (bad token, wrong path): nothing to retry."""

    default_hint = "check --service and the token named by --token-env (it needs a valid JWT)"


class ValidationSourceError(GoLiveError):
    """The database or the service could not be read."""

    exit_code = 1


class ValidationFailed(GoLiveError):
    """The comparison found flagged segments or anomalies beyond tolerance."""

    exit_code = 1
    default_hint = (
        "read validation.md: fix the engine or policy, or record intended differences in "
        "expected_changes (with a reason and an expiry date) and run again"
    )


class ValidationGateFailed(GoLiveError):
    """The validate step, with ``validation.gate: true``, judged the shadow pairs and failed."""

    exit_code = 8
    default_hint = (
        "the discrepancy register in validation.md (beside the report) lists every class; "
        "explain intended ones in the plan's validation.expected_changes"
    )


# --- raised inside steps ----------------------------------------------------------------------


class RollbackRequested(GoLiveError):
    """An operator (``golive rollback``) or a gate asked for the rollback."""

    exit_code = 9


class GateBreached(RollbackRequested):
    """A gate judged the live figures and failed them."""


class TrafficFlagError(TargetError):
    """The flag store refused the change, or instances did not converge on it."""

    default_hint = (
        "traffic is as the instances report it (see above); set the weight again or roll back "
        "with `golive rollback`"
    )


class MetricSourceError(GoLiveError):
    """A metric source could not answer (unreachable, an error, a malformed answer)."""

    default_hint = (
        "the measurement counts as an ERROR; after consecutive_error_limit errors in a row the "
        "stage fails and traffic returns to legacy. Check the source's address and health."
    )


class MonitoringUnavailableError(GoLiveError):
    """Prometheus could not be reached, or answered with an error."""

    default_hint = "check the Prometheus URL (--prometheus-url) and that Prometheus is running"
