"""What a judge says about one metric in one measurement."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

Figure = float | int | str | bool | None


class Verdict(enum.StrEnum):
    """The outcome of one measurement.

    Judges return PASS, FAIL or INCONCLUSIVE. ERROR is the runner's: the numbers could not be
    measured (a metric source failed), which is never a pass.
    """

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict on one metric, the sentence for the report, and the figures behind it."""

    verdict: Verdict
    metric: str
    reason: str
    figures: dict[str, Figure] = field(default_factory=dict)

    @classmethod
    def error(cls, metric: str, reason: str) -> Judgement:
        """A measurement that could not be taken (the runner records these)."""
        return cls(Verdict.ERROR, metric, reason, {})

    def __str__(self) -> str:
        return f"{self.metric}: {self.verdict}: {self.reason}"
