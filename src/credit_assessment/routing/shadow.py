"""Comparing what the legacy system decided with what the new engine would have decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from credit_assessment.domain import Decision
from credit_assessment.routing.legacy import LegacyDecision

FIELDS = ("decision", "grade", "score", "reasons")


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    matches: dict[str, bool]  # field -> same on both sides
    legacy: dict[str, Any]
    new: dict[str, Any]

    @property
    def decision_matches(self) -> bool:
        return self.matches["decision"]

    def document(self) -> dict[str, Any]:
        return {"matches": self.matches, "legacy": self.legacy, "new": self.new}


def compare(
    legacy: LegacyDecision, new: Decision, new_latency_s: float, score_tolerance: int = 5
) -> ShadowComparison:
    legacy_side = {
        "decision": legacy.outcome.value,
        "grade": legacy.grade,
        "score": legacy.score,
        "reasons": sorted(r.code for r in legacy.reasons),
        "latencyMs": round(legacy.latency_s * 1000, 2),
        "reference": legacy.reference,
    }
    new_side = {
        "decision": new.outcome.value,
        "grade": new.risk_grade,
        "score": new.score,
        "reasons": sorted(r.code for r in new.reasons),
        "latencyMs": round(new_latency_s * 1000, 3),
        "modelVersion": new.model_version,
        "policyVersion": new.policy_version,
    }
    matches = {
        "decision": legacy_side["decision"] == new_side["decision"],
        "grade": legacy_side["grade"] == new_side["grade"],
        "score": abs(legacy.score - new.score) <= score_tolerance,
        "reasons": legacy_side["reasons"] == new_side["reasons"],
    }
    return ShadowComparison(matches, legacy_side, new_side)
