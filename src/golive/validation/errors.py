"""The errors of ``golive validate`` (subclasses of golive's one error tree).

GoLiveError
├── UsageError                      exit 2
│   ├── ValidationConfigError              the validation config is invalid (file: field: why)
│   ├── ExportError                        the export file is malformed (file:row: column: why)
│   └── ReplayRefused                      the service refused the token or the requests
├── ValidationSourceError           exit 1  the database or the service could not be read
└── ValidationFailed                exit 1  flagged segments or anomalies, or too many
                                            applications left unanswered by the replay
"""

from __future__ import annotations

from collections.abc import Sequence

from golive.errors import GoLiveError, UsageError

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
