"""The one error tree of golive, and the exit code of every outcome.

Every failure golive reports is a ``GoLiveError``: it carries the process exit code and a hint
that tells the operator what state things are in and what to do next. Causes are chained
(``raise ... from exc``); messages and hints never contain a secret value. The CLI maps an
exception to its exit code in one place (``golive.cli.report_failure``): it prints
``error: <message>`` and ``hint: <hint>`` and exits with ``exit_code``. Each code stands for one
kind of outcome, so a script can tell them apart; docs/golive.md has the same table for
operators.

    code  class                         outcome
       0                                done
       1                                golive failed unexpectedly (a Python traceback): a defect
          GoLiveError                   the root of the tree; never raised itself
    2     ├── UsageError                a bad option, a missing setting or an invalid input;
          │   │                         nothing was done
          │   ├── PlanError             the plan file is invalid (file:line: field.path: why)
          │   ├── ValidationConfigError the validation config is invalid (file: field: why)
          │   ├── ExportError           the legacy export is malformed (file:row: column: why)
          │   ├── ReplayRefused         the service refused the replay's token or path
          │   ├── RestoreNotConfirmed   the operator did not confirm `golive db restore`
          │   └── ExporterAddressError  golive's metrics address is in use or not of this machine
    3     ├── ManifestError             rendered manifests cannot be read or are inconsistent
          │   └── SecretWiringError     workloads mount Secret keys no ExternalSecret writes
    4     ├── VaultError                Vault could not answer the question
          │   ├── VaultUnreachableError connection refused, DNS, TLS, timeout, sealed
          │   ├── VaultAuthError        the token is missing, expired or not allowed
    5     │   └── MissingSecretsError   required keys are absent (or deleted) in Vault
    6     ├── TargetError               the target (router, slots, flag store, the local
          │   │                         environment) refused or could not be reached
          │   ├── TargetUnreachableError  the preflight of `golive run` failed: nothing changed
          │   ├── KubernetesApiError    the Kubernetes API answered an error (404, 409, 403...)
          │   └── TrafficFlagError      the flag store refused the weight, or instances disagree
    7     ├── GoLiveBusyError           another go-live holds the lock or the Lease, or one is
          │   │                         unfinished
          │   └── LeaseLost             the Lease went to another runner while this one ran
    8     ├── StepFailed                a step failed (a cause not below); the run rolled back
    9     │   ├── RolledBack            an operator's `golive rollback` rolled the run back
    12    │   ├── DatabaseStepFailed    a database step failed; the run rolled back
    13    │   ├── GateRolledBack        a gate failed the measured figures; the run rolled back
    14    │   └── ValidationRolledBack  the validation gate failed; the run rolled back
    10    ├── RollbackFailed            an undo failed during the rollback: act by hand (hint)
    11    ├── DatabaseError             a `golive db` command failed
          │   ├── ToolNotFoundError     pg_dump / pg_restore not found
          │   ├── InsufficientSpaceError  the backup directory cannot hold the backup
          │   ├── BackupError           pg_dump failed, or no backup is recorded
          │   ├── BackupVerificationError  the backup does not restore, or differs from the source
          │   ├── CloneTestError        the migration failed or broke integrity on the clone
          │   ├── MigrationError        the migration failed on the target database
          │   ├── VerificationError     revision, schema objects, integrity or N-1 check failed
          │   └── RestoreError          the restore failed (the current database is untouched)
    15    ├── SmokeFailed               a smoke test failed (`golive smoke`)
    16    ├── ValidationFailed          `golive validate` flagged differences, or too many
          │                             applications were left unanswered
    17    ├── ValidationSourceError     `golive validate` could not read the database or service
    18    ├── DowntimeObserved          `golive rehearse`: the go-live succeeded, but background
          │                             requests failed or a window's p99 was over the limit
    19    ├── ControlRequestError       a pause, resume, rollback or approval request could not be
          │                             recorded
    20    ├── ApprovalRefused           `golive approve`: no stage is waiting for approval, or it
          │                             is already approved
    21    ├── OutsideMaintenanceWindow  `golive run`: a database step refused to start outside
          │                             the plan's maintenance window; nothing was changed
    22    ├── AuditFailed               `golive audit`: a scanner could not run, or a finding
          │                             blocks (critical, high or unknown, not ignored)
    23    ├── StateWriteError           the state directory (journal) could not be written: the
          │                             volume is full or read-only; the step did not start
    130   ├── Interrupted               SIGINT/SIGTERM; a run undid its step and is resumable
          │
          │   raised inside a step only; the runner reports the outcome named:
    9     ├── RollbackRequested         an operator asked, seen at a checkpoint -> RolledBack
    13    ├── GateBreached              the hold, a traffic stage or green's performance SLO
          │                             failed the figures -> GateRolledBack
    14    ├── ValidationGateFailed      the validate step with validation.gate: true
          │                             -> ValidationRolledBack
    8     ├── MetricSourceError         a metric source could not answer -> StepFailed
    8     ├── CredentialError           the plan's auth gave no token (variable unset, file
          │                             missing, command failed or printed none) -> StepFailed
    8     └── MonitoringUnavailableError  Prometheus unreachable, or monitoring not live
                                        -> StepFailed

Inside a run, a step that fails is undone with every completed step, and the runner raises the
``StepFailed`` its cause selects (``run_outcome``): ``RollbackRequested``, ``GateBreached`` and
``ValidationGateFailed`` their outcome above, a ``DatabaseError`` ``DatabaseStepFailed``, anything
else (a ``TargetError``, a ``SmokeFailed``, a bug in a step) ``StepFailed`` itself. Four outcomes
take precedence over the cause: an undo that fails is ``RollbackFailed``, a signal is
``Interrupted``, a preflight that changed nothing is its own ``TargetUnreachableError``, and a
database step refused outside the maintenance window, with nothing to undo, is its own
``OutsideMaintenanceWindow``.
``StepFailed`` names the step and lists what was undone, in order.
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


# --- usage: nothing was done --------------------------------------------------------------------

MAX_LISTED = 20


def _listed(problems: Sequence[str]) -> str:
    shown = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        shown.append(f"… and {len(problems) - MAX_LISTED} more")
    return "\n  ".join(shown)


class UsageError(GoLiveError):
    """A bad option, a missing setting or an invalid input: nothing was done."""

    exit_code = 2


class PlanError(UsageError):
    """The plan file is invalid; every problem names the file, the line and the field path."""

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid plan:\n  " + "\n  ".join(self.problems),
            hint=hint or "fix the fields named above (docs/golive.md has the plan reference)",
        )


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


class RestoreNotConfirmed(UsageError):
    """The operator did not confirm the restore."""

    default_hint = "nothing was changed; answer 'yes' or pass --yes to restore"


class ExporterAddressError(UsageError):
    """golive cannot serve its metrics on the plan's ``monitoring.exporter`` address."""

    default_hint = "set another monitoring.exporter.port in the plan (0: any free port)"


# --- manifests and Vault (`golive secrets check`) -----------------------------------------------


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


# --- the target ---------------------------------------------------------------------------------


class TargetError(GoLiveError):
    """The target could not do what was asked (start a slot, switch the router, ...)."""

    exit_code = 6


class TargetUnreachableError(TargetError):
    """A preflight found the target unreachable; nothing was changed."""

    default_hint = "nothing was changed; start the environment (`golive up PLAN`) and run again"


class KubernetesApiError(TargetError):
    """The Kubernetes API answered an error status (``status``: 404, 409, ...)."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class TrafficFlagError(TargetError):
    """The flag store refused the change, or instances did not converge on it."""

    default_hint = (
        "traffic is as the instances report it (see above); set the weight again or roll back "
        "with `golive rollback`"
    )


class GoLiveBusyError(GoLiveError):
    """Another go-live holds the lock or the Lease, or an unfinished one must be resumed or
    rolled back."""

    exit_code = 7


class LeaseLost(GoLiveBusyError):
    """The run's Lease could not be renewed in time, or another runner holds it now: this
    runner stops acting at once and undoes nothing (the holder decides)."""

    default_hint = (
        "`golive status` names the runner that holds the Lease now; the journal is on the "
        "volume, so the holder resumes from it"
    )


# --- the outcomes of a run that failed ----------------------------------------------------------


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
    """An operator's `golive rollback` rolled the running go-live back."""

    exit_code = 9


class DatabaseStepFailed(StepFailed):
    """A database step (backup, verification, clone test, migration) failed; rolled back."""

    exit_code = 12


class GateRolledBack(StepFailed):
    """A gate failed the measured figures and the go-live was rolled back."""

    exit_code = 13


class ValidationRolledBack(StepFailed):
    """The validation gate failed and the go-live was rolled back."""

    exit_code = 14


class RollbackFailed(GoLiveError):
    """An undo failed during the rollback: the system needs a human now."""

    exit_code = 10


class Interrupted(GoLiveError):
    """SIGINT or SIGTERM arrived; the step in progress was undone and the run can resume."""

    exit_code = 130


# --- `golive db` ------------------------------------------------------------------------------


class DatabaseError(GoLiveError):
    """A database operation failed (in a run: ``DatabaseStepFailed``)."""

    exit_code = 11


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
    """The migration failed or broke integrity on the clone, or no clone test is recorded."""

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


# --- checks outside a run -----------------------------------------------------------------------


class SmokeFailed(GoLiveError):
    """A smoke test failed against a URL (in a run: ``StepFailed``)."""

    exit_code = 15


class ValidationFailed(GoLiveError):
    """The comparison found flagged segments or anomalies beyond tolerance."""

    exit_code = 16
    default_hint = (
        "read validation.md: fix the engine or policy, or record intended differences in "
        "expected_changes (with a reason and an expiry date) and run again"
    )


class ValidationSourceError(GoLiveError):
    """The database or the service could not be read (in a run: ``StepFailed``)."""

    exit_code = 17


class DowntimeObserved(GoLiveError):
    """The rehearsed go-live succeeded, but the background load saw downtime."""

    exit_code = 18


class ControlRequestError(GoLiveError):
    """A pause, resume, rollback or approval request could not be recorded in the control file."""

    exit_code = 19
    default_hint = (
        "nothing was asked of a running go-live; check that <state_dir>/control.json is a "
        "writable file"
    )


class ApprovalRefused(GoLiveError):
    """``golive approve`` found no stage waiting for approval, or the stage already approved."""

    exit_code = 20
    default_hint = (
        "nothing was recorded; `golive status` shows where the go-live stands (a stage with "
        "approval: manual asks once its gates pass at the end of its dwell)"
    )


class OutsideMaintenanceWindow(GoLiveError):
    """A database step of ``golive run`` refused to start: the plan's maintenance window is
    closed, and no ``--outside-window --reason TEXT`` was given."""

    exit_code = 21
    default_hint = (
        "nothing was changed; run inside the window, or give `golive run PLAN --outside-window "
        "--reason TEXT` to run anyway (the reason is journaled and shown in the report)"
    )


class AuditFailed(GoLiveError):
    """``golive audit``: a scanner could not run, or a finding blocks the release."""

    exit_code = 22
    default_hint = (
        "the files written so far are in the audit folder; fix the finding (upgrade the "
        "dependency, change the code) or list it, reviewed, in deploy/security/audit-ignore.yaml "
        "with a reason and an expiry date"
    )


class StateWriteError(GoLiveError):
    """The state directory could not be written (a full or read-only volume): golive writes its
    journal before it acts, so the step that would have followed did not start."""

    exit_code = 23
    default_hint = (
        "free space on the state directory's volume or make it writable, then continue with "
        "`golive run PLAN --resume`; nothing was changed after the last journaled step"
    )


# --- raised inside a step only: the runner reports them as a StepFailed ---------------------


class RollbackRequested(GoLiveError):
    """An operator asked for the rollback (``golive rollback``); seen at a checkpoint."""

    exit_code = RolledBack.exit_code


class GateBreached(GoLiveError):
    """A gate judged the measured figures and failed them."""

    exit_code = GateRolledBack.exit_code


class ValidationGateFailed(GoLiveError):
    """The validate step, with ``validation.gate: true``, judged the shadow pairs and failed."""

    exit_code = ValidationRolledBack.exit_code
    default_hint = (
        "the discrepancy register in validation.md (beside the report) lists every class; "
        "explain intended ones in the plan's validation.expected_changes"
    )


class MetricSourceError(GoLiveError):
    """A metric source could not answer (unreachable, an error, a malformed answer)."""

    exit_code = StepFailed.exit_code
    default_hint = (
        "the measurement counts as an ERROR; after consecutive_error_limit errors in a row the "
        "stage fails and traffic returns to legacy. Check the source's address and health."
    )


class CredentialError(GoLiveError):
    """The plan's ``auth`` gave no token: variable unset, file unreadable, command failed."""

    exit_code = StepFailed.exit_code
    default_hint = (
        "fix the plan's auth section (token_env, token_file or token_command; docs/golive.md) "
        "and resume with `golive run PLAN --resume`"
    )


class MonitoringUnavailableError(GoLiveError):
    """Prometheus could not be reached or answered an error, or monitoring is not live."""

    exit_code = StepFailed.exit_code
    default_hint = "check the Prometheus URL (--prometheus-url) and that Prometheus is running"


RUN_OUTCOMES: tuple[tuple[type[GoLiveError], type[StepFailed]], ...] = (
    (RollbackRequested, RolledBack),
    (GateBreached, GateRolledBack),
    (ValidationGateFailed, ValidationRolledBack),
    (DatabaseError, DatabaseStepFailed),
)


def run_outcome(cause: BaseException) -> type[StepFailed]:
    """The ``StepFailed`` the runner raises for a step that failed with ``cause``."""
    for kind, outcome in RUN_OUTCOMES:
        if isinstance(cause, kind):
            return outcome
    return StepFailed
