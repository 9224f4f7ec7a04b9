"""The discrepancy register: every class of difference, with counts, masked examples and a
status (open / expected / accepted).

Personal data never reaches the register: client and application ids are replaced by a keyed
hash (HMAC-SHA256 under a key drawn per run unless the operator supplies one), amounts by their
band, the decision time by its day; names are never read at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from golive.validation.bands import amount_band, term_band
from golive.validation.config import FIELDS, ExpectedChange, ValidationConfig
from golive.validation.records import Pair, Side

OPEN, EXPECTED, ACCEPTED = "open", "expected", "accepted"


class Masker:
    """Keyed hashes of identifiers: the same id gives the same token within one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the hashing key needs at least 16 bytes")
        self._key = key

    @classmethod
    def per_run(cls) -> Masker:
        return cls(secrets.token_bytes(32))

    def token(self, kind: str, raw: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{raw}".encode(), hashlib.sha256).hexdigest()
        return f"{kind[0]}-{digest[:16]}"


@dataclass(frozen=True, slots=True)
class DiffClass:
    id: str  # stable across runs: a hash of the class key (no personal data in it)
    kind: str  # the first differing field: decision > grade > score > reasons
    title: str


def classify(pair: Pair, diffs: frozenset[str], config: ValidationConfig) -> DiffClass:
    kind = next(f for f in FIELDS if f in diffs)
    legacy, new = pair.legacy, pair.new
    term = term_band(pair.application.loan_term, config.segments.loan_term_edges)
    grade = new.grade or "?"
    if kind == "decision":
        title = f"legacy {legacy.decision} → new {new.decision}, grade {grade}, term {term}"
    elif kind == "grade":
        title = f"grade {legacy.grade} → {new.grade} (both {new.decision}), term {term}"
    elif kind == "score":
        direction = "up" if (new.score or 0) > (legacy.score or 0) else "down"
        tolerance = config.match.score_abs_tolerance
        title = (
            f"score {direction} by more than {tolerance} (both {new.decision}), "
            f"grade {grade}, term {term}"
        )
    else:
        title = f"reasons differ (both {new.decision}), grade {grade}, term {term}"
    ident = hashlib.sha256(title.encode()).hexdigest()[:10]
    return DiffClass(ident, kind, title)


def _side(side: Side) -> dict[str, Any]:
    return {
        "decision": side.decision,
        "grade": side.grade,
        "score": side.score,
        "reasons": sorted(side.reasons),
    }


def masked_example(
    pair: Pair, diffs: frozenset[str], masker: Masker, config: ValidationConfig
) -> dict[str, Any]:
    app = pair.application
    return {
        "application": masker.token("application", app.ref),
        "client": masker.token("client", app.client_id),
        "client_type": "existing" if app.existing_client else "new",
        "amount_band": amount_band(app.loan_amount, config.segments.loan_amount_edges),
        "term_months": app.loan_term,
        "decided_on": app.decided_at.date().isoformat(),
        "differs": [f for f in FIELDS if f in diffs],
        "legacy": _side(pair.legacy),
        "new": _side(pair.new),
    }


@dataclass
class RegisterEntry:
    diff_class: DiffClass
    status: str
    change: ExpectedChange | None = None
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "class_id": self.diff_class.id,
            "kind": self.diff_class.kind,
            "title": self.diff_class.title,
            "status": self.status,
            "count": self.count,
            "expected_change": self.change.id if self.change else None,
            "reason": self.change.reason if self.change else None,
            "examples": self.examples,
        }


class Register:
    """Collects differences into classes as the comparison runs."""

    def __init__(self, config: ValidationConfig, masker: Masker) -> None:
        self._config = config
        self._masker = masker
        self._entries: dict[tuple[str, str | None], RegisterEntry] = {}

    def add(
        self,
        pair: Pair,
        diffs: frozenset[str],
        diff_class: DiffClass,
        change: ExpectedChange | None,
    ) -> None:
        key = (diff_class.id, change.id if change else None)
        entry = self._entries.get(key)
        if entry is None:
            status = OPEN if change is None else change.status
            entry = self._entries[key] = RegisterEntry(diff_class, status, change)
        entry.count += 1
        if len(entry.examples) < self._config.examples_per_class:
            entry.examples.append(masked_example(pair, diffs, self._masker, self._config))

    def entries(self) -> list[RegisterEntry]:
        order = {OPEN: 0, ACCEPTED: 1, EXPECTED: 2}
        return sorted(
            self._entries.values(),
            key=lambda e: (order[e.status], -e.count, e.diff_class.title),
        )
