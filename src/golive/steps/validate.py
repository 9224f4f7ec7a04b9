"""Validate: legacy-vs-new comparison of the shadow pairs recorded during this go-live.

Reads the pairs the service stored while this run went on (``engine = 'legacy'`` with the new
engine's shadow decision in ``input_snapshot->'shadow'``, since the run started), compares them
at the level of credit outcomes with the plan's ``validation`` config, and writes
``validation.md`` (embedded in the go-live report) and ``validation.json`` beside the report.

It fails the go-live only when the plan makes it a gate (``validation.gate: true``); otherwise
it reports, saying what the gate would have judged. No shadow pairs is said plainly, never a
failure: the legacy route may not have been taken during the run. Reads only; nothing to undo.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from golive.errors import ValidationGateFailed
from golive.plan import Plan
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures
from golive.validation import ValidateRequest, gate, run_validation, write_outputs

NO_PAIRS = "no shadow pairs recorded"


def _since(ctx: StepContext) -> datetime | None:
    started = ctx.state.started
    return datetime.fromisoformat(started) if started else None


class Validate:
    name = "validate"
    title = "Validate legacy vs new on the shadow pairs recorded during the go-live"

    def run(self, ctx: StepContext) -> StepResult:
        since = _since(ctx)
        request = ValidateRequest(
            database_url=ctx.target.database_url(),
            source="shadow",
            since=since,
            until=datetime.now(UTC),
        )
        config = ctx.plan.validation
        window = f"since {since.isoformat(timespec='seconds')}" if since else "whole table"
        result = run_validation(request, config)
        if result.pairs == 0:
            return StepResult(
                f"{NO_PAIRS} ({window}): nothing to compare",
                {"pairs": 0, "window_since": since.isoformat() if since else None},
            )
        markdown, document = write_outputs(result, ctx.journal.run_dir)
        passed, reason = gate(result, config.gate_tolerance)
        figures: dict[str, Any] = {
            "pairs": result.pairs,
            "matched": result.matched,
            "expected": result.expected,
            "unexplained": result.unexplained.events,
            "unexplained_ratio": round(result.unexplained.value, 4),
            "register_classes": len(result.register),
            "flagged_segments": len(result.flagged_segments),
            "flagged_anomalies": len(result.flagged_anomalies),
            "gate": config.gate,
            "gate_passed": passed,
            "gate_reason": reason,
            "markdown": str(markdown),
            "json": str(document),
            "window_since": since.isoformat() if since else None,
        }
        summary = (
            f"{result.pairs} pairs: {result.matched} match, {result.expected} expected "
            f"differences, {result.unexplained.events} unexplained "
            f"({result.unexplained.value:.1%}); {len(result.register)} register classes"
        )
        if not passed and config.gate:
            raise ValidationGateFailed(f"validation gate failed: {reason}")
        verdict = "gate passed" if passed else "the gate would fail"
        mode = "gate" if config.gate else "report only"
        return StepResult(f"{summary}; {verdict} ({mode})", figures)

    def undo(self, ctx: StepContext) -> str | None:
        return None  # reads only

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("validate")

    def manual(self, plan: Plan) -> list[str]:
        return [
            "golive validate --database-url-env DATABASE_URL --source shadow "
            "--config <plan file> --since <go-live start, ISO 8601> --out <report dir>",
        ]
