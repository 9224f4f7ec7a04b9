"""The validation config: match rules, segments, anomaly thresholds, replay bounds and the
allowlist of expected changes. Every mapping forbids unknown keys; the golive plan embeds the
same model as its ``validation`` section, and ``golive validate --config FILE`` reads it from a
YAML or JSON file. The reference is docs/validation.md.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from golive.errors import ValidationConfigError

DECISIONS = ("APPROVED", "COUNTER_OFFER", "REFER", "DECLINED")
GRADES = ("A", "B", "C", "D", "E")
FIELDS = ("decision", "grade", "score", "reasons")

DecisionName = Literal["APPROVED", "COUNTER_OFFER", "REFER", "DECLINED"]
GradeName = Literal["A", "B", "C", "D", "E"]
FieldName = Literal["decision", "grade", "score", "reasons"]
Share = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class MatchRules(_Strict):
    """When a pair counts as a match; a pair matches when every compared field does."""

    # exact: the same decision; same_class: APPROVED and COUNTER_OFFER both count as "credit
    # offered" (the legacy system never counter-offers).
    decision: Literal["exact", "same_class"] = "exact"
    grade: Literal["exact", "within_one", "ignore"] = "within_one"
    # |Δscore| allowed; None: scores are not compared pair by pair. Applies only when both sides
    # score on the same scale (never legacy 300-850 against the new scorecard).
    score_abs_tolerance: Annotated[int, Field(ge=0)] | None = 5
    reasons: Literal["exact", "jaccard", "ignore"] = "ignore"
    reasons_min_jaccard: Share = 0.5
    # Legacy reason codes (with or without the LEGACY_ prefix) mapped to ours before comparing.
    reason_map: dict[str, str] = Field(default_factory=dict)
    # COUNTER_OFFER counts as an approval in approval rates.
    counter_offer_is_approval: bool = True


class Segments(_Strict):
    # Upper-inclusive band edges: amounts in ZMW, terms in months.
    loan_amount_edges: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [10_000.0, 25_000.0, 50_000.0, 100_000.0, 250_000.0]
    )
    loan_term_edges: list[Annotated[int, Field(gt=0)]] = Field(
        default_factory=lambda: [12, 24, 36, 48, 60]
    )
    # A segment is flagged when the LOWER Wilson bound of its unexplained mismatch rate is
    # above this tolerance, and only with at least min_count pairs.
    mismatch_tolerance: Share = 0.05
    min_count: Annotated[int, Field(ge=1)] = 50
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95

    @field_validator("loan_amount_edges", "loan_term_edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if not edges:
            raise ValueError("give at least one band edge")
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("band edges must be strictly increasing")
        return edges


class TrainingScores(_Strict):
    """The training score distribution (the model card's bands) for PSI new vs training."""

    model_version: str | None = None  # warns when the new side reports another version
    edges: list[float]  # upper-inclusive cut points, as in Segments
    shares: list[Share]

    @model_validator(mode="after")
    def _shape(self) -> TrainingScores:
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError("shares needs one entry more than edges")
        if abs(sum(self.shares) - 1.0) > 0.01:
            raise ValueError(f"shares must sum to 1, not {sum(self.shares):.4f}")
        if any(b <= a for a, b in itertools.pairwise(self.edges)):
            raise ValueError("edges must be strictly increasing")
        return self


class Anomalies(_Strict):
    psi_warn: Annotated[float, Field(gt=0)] = 0.10
    psi_alert: Annotated[float, Field(gt=0)] = 0.25
    training: TrainingScores | None = None
    # Flagged when the whole interval of (new − legacy) approval rate lies beyond ± this.
    approval_shift_tolerance: Share = 0.05
    window_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60
    window_min_count: Annotated[int, Field(ge=1)] = 100
    # A window is flagged when its mismatch rate rose by at least this much over the previous
    # window, significant at alpha after a Bonferroni correction over all window pairs.
    window_min_increase: Share = 0.02
    window_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    min_count: Annotated[int, Field(ge=1)] = 100

    @model_validator(mode="after")
    def _order(self) -> Anomalies:
        if self.psi_alert < self.psi_warn:
            raise ValueError("psi_alert must not be below psi_warn")
        return self


class Replay(_Strict):
    concurrency: Annotated[int, Field(ge=1, le=256)] = 32
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 0.2  # doubles per attempt, with jitter
    backoff_max_s: Annotated[float, Field(ge=0, le=300)] = 5.0
    # The run fails when more than this share of the applications got no answer.
    max_unanswered_ratio: Share = 0.001
    path: str = "/api/v1/assessment/evaluate"


class When(_Strict):
    """Conditions on one pair; all given conditions must hold."""

    legacy_decision: list[DecisionName] | None = None
    new_decision: list[DecisionName] | None = None
    legacy_grade: list[GradeName] | None = None
    new_grade: list[GradeName] | None = None
    loan_term_gt: int | None = None
    loan_term_gte: int | None = None
    loan_term_lt: int | None = None
    loan_term_lte: int | None = None
    loan_amount_gt: float | None = None
    loan_amount_gte: float | None = None
    loan_amount_lt: float | None = None
    loan_amount_lte: float | None = None
    client: Literal["new", "existing"] | None = None
    new_reason: str | None = None  # the new side gives this reason code
    legacy_reason: str | None = None  # the legacy side gives this code (after reason_map)
    # The differing fields must all be among these (e.g. [score] excuses score-only changes).
    fields: list[FieldName] | None = None
    # A register class id from an earlier report (to accept a known class as it is).
    class_id: str | None = None

    _normalise = field_validator(
        "legacy_decision", "new_decision", "legacy_grade", "new_grade", "fields", mode="before"
    )(_as_list)

    @model_validator(mode="after")
    def _not_empty(self) -> When:
        if not any(v is not None for v in self.__dict__.values()):
            raise ValueError("give at least one condition")
        return self


class ExpectedChange(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    description: Annotated[str, Field(min_length=1)]
    when: When
    reason: Annotated[str, Field(min_length=1)]
    expires: date
    # expected: an intended change; accepted: an unintended difference signed off as it is.
    status: Literal["expected", "accepted"] = "expected"
    owner: str | None = None


class ValidationConfig(_Strict):
    match: MatchRules = MatchRules()
    segments: Segments = Segments()
    anomalies: Anomalies = Anomalies()
    replay: Replay = Replay()
    expected_changes: list[ExpectedChange] = Field(default_factory=list)
    examples_per_class: Annotated[int, Field(ge=0, le=50)] = 3

    @field_validator("expected_changes")
    @classmethod
    def _unique_ids(cls, entries: list[ExpectedChange]) -> list[ExpectedChange]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"expected change id {entry.id!r} is used twice")
            seen.add(entry.id)
        return entries


def parse_config(data: Any, source: str = "config") -> ValidationConfig:
    try:
        return ValidationConfig.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = [
            f"{source}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
        raise ValidationConfigError(problems) from exc


def load_config(path: Path | None) -> ValidationConfig:
    """The config from a YAML or JSON file (a plan file's ``validation`` section also works)."""
    if path is None:
        return ValidationConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationConfigError([f"{path}: not valid YAML/JSON: {exc}"]) from exc
    if isinstance(data, dict) and "validation" in data and "match" not in data:
        data = data["validation"]
    return parse_config(data, str(path))
