"""What is compared: one application and the two decisions taken on it.

``legacy`` is the baseline (the legacy system's decision, or a stored decision of an earlier
new-engine run); ``new`` is the new engine's decision. Each side says which score scale it is
on: scores are compared pair by pair only when both sides share a scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SCALE_LEGACY = "legacy"  # the legacy system's 300-850 scale
SCALE_NEW = "new"  # the new scorecard (PDO 20, 600 at 50:1)

# The legacy vocabulary and ours; anything else is an unknown decision.
DECISION_WORDS = {
    "APPROVE": "APPROVED",
    "DECLINE": "DECLINED",
    "REVIEW": "REFER",
    "APPROVED": "APPROVED",
    "DECLINED": "DECLINED",
    "REFER": "REFER",
    "COUNTER_OFFER": "COUNTER_OFFER",
}
LEGACY_PREFIX = "LEGACY_"


def normal_decision(word: str) -> str | None:
    """Our decision word for either vocabulary (case-insensitive); None when unknown."""
    return DECISION_WORDS.get(word.strip().upper())


def normal_grade(value: object) -> str | None:
    """A–E from a grade such as "b" or "B2"; None when absent or not on the A–E ladder."""
    text = str(value or "").strip().upper()
    return text[0] if text and text[0] in "ABCDE" else None


@dataclass(frozen=True, slots=True)
class Side:
    decision: str  # APPROVED | COUNTER_OFFER | REFER | DECLINED
    score: int | None
    grade: str | None  # A–E, or None when the side gives none we can read
    reasons: frozenset[str]
    scale: str  # SCALE_LEGACY | SCALE_NEW
    version: str | None = None  # model version, when the side reports one


@dataclass(frozen=True, slots=True)
class Application:
    ref: str  # application id or assessment id: masked in every output
    client_id: str  # masked in every output
    loan_amount: float
    loan_term: int
    decided_at: datetime  # when the baseline decision was taken
    existing_client: bool  # the client had an assessment before the window


@dataclass(frozen=True, slots=True)
class Pair:
    application: Application
    legacy: Side
    new: Side


def map_reasons(codes: Iterable[str], reason_map: dict[str, str]) -> frozenset[str]:
    """Legacy reason codes in our vocabulary: the LEGACY_ prefix dropped, then mapped."""
    out = set()
    for code in codes:
        bare = code[len(LEGACY_PREFIX) :] if code.startswith(LEGACY_PREFIX) else code
        out.add(reason_map.get(code, reason_map.get(bare, bare)))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Stored:
    """A historical application and the decision taken on it then: input to a replay."""

    application: Application
    legacy: Side
