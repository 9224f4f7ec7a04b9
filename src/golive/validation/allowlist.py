"""Expected changes: the allowlist of intended differences between the legacy system and the
new engine. A difference matched by a live entry is reported as expected (or accepted), not as
a discrepancy; an entry past its ``expires`` date excuses nothing and is reported as a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from golive.validation.config import ExpectedChange, When
from golive.validation.records import Pair


def holds(when: When, pair: Pair, diffs: frozenset[str], class_id: str) -> bool:
    """Whether every condition of ``when`` holds for this differing pair."""
    app, legacy, new = pair.application, pair.legacy, pair.new
    checks = (
        when.legacy_decision is None or legacy.decision in when.legacy_decision,
        when.new_decision is None or new.decision in when.new_decision,
        when.legacy_grade is None or legacy.grade in when.legacy_grade,
        when.new_grade is None or new.grade in when.new_grade,
        when.loan_term_gt is None or app.loan_term > when.loan_term_gt,
        when.loan_term_gte is None or app.loan_term >= when.loan_term_gte,
        when.loan_term_lt is None or app.loan_term < when.loan_term_lt,
        when.loan_term_lte is None or app.loan_term <= when.loan_term_lte,
        when.loan_amount_gt is None or app.loan_amount > when.loan_amount_gt,
        when.loan_amount_gte is None or app.loan_amount >= when.loan_amount_gte,
        when.loan_amount_lt is None or app.loan_amount < when.loan_amount_lt,
        when.loan_amount_lte is None or app.loan_amount <= when.loan_amount_lte,
        when.client is None or (when.client == "existing") == app.existing_client,
        when.new_reason is None or when.new_reason in new.reasons,
        when.legacy_reason is None or when.legacy_reason in legacy.reasons,
        when.fields is None or diffs <= frozenset(when.fields),
        when.class_id is None or when.class_id == class_id,
    )
    return all(checks)


@dataclass
class EntryUse:
    """How one allowlist entry was used in this run."""

    entry: ExpectedChange
    expired: bool
    matched: int = 0  # differences excused (0 when expired)
    matched_while_expired: int = 0  # differences it would have excused

    @property
    def warning(self) -> str | None:
        if self.expired:
            return (
                f"expected change {self.entry.id!r} expired on {self.entry.expires.isoformat()}: "
                f"{self.matched_while_expired} matching difference(s) are reported as open; "
                "renew it with a new date and reason, or remove it"
            )
        return None


@dataclass
class Allowlist:
    entries: Sequence[ExpectedChange]
    today: date
    uses: list[EntryUse] = field(init=False)

    def __post_init__(self) -> None:
        self.uses = [EntryUse(e, expired=e.expires < self.today) for e in self.entries]

    def explain(self, pair: Pair, diffs: frozenset[str], class_id: str) -> ExpectedChange | None:
        """The first live entry that excuses this difference (expired matches are counted)."""
        for use in self.uses:
            if not holds(use.entry.when, pair, diffs, class_id):
                continue
            if use.expired:
                use.matched_while_expired += 1
                continue
            use.matched += 1
            return use.entry
        return None

    def warnings(self) -> list[str]:
        return [w for use in self.uses if (w := use.warning) is not None]
