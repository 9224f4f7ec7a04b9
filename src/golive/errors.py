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
