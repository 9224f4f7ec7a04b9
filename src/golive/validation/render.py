"""The validation result as Markdown (a section of the go-live report) and as JSON.

Neither output carries a raw identifier, a name or an exact amount: the register's examples
are masked when collected (``register.masked_example``).
"""

from __future__ import annotations

from typing import Any

from golive.validation.compare import Rate
from golive.validation.config import DECISIONS
from golive.validation.result import ValidationResult


def _rate(r: Rate) -> str:
    return f"{r.value:.1%} [{r.lower:.1%}, {r.upper:.1%}]"


def _rate_json(r: Rate) -> dict[str, Any]:
    return {
        "events": r.events,
        "total": r.total,
        "rate": r.value,
        "lower": r.lower,
        "upper": r.upper,
    }


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _matrix(title: str, matrix: dict[str, dict[str, int]]) -> list[str]:
    cols = [c for c in next(iter(matrix.values()))] if matrix else []
    used_cols = [c for c in cols if any(matrix[r][c] for r in matrix)] or cols
    used_rows = [r for r in matrix if any(matrix[r].values())] or list(matrix)
    rows = [[f"**{r}**", *(str(matrix[r][c]) for c in used_cols)] for r in used_rows]
    return _table([title, *used_cols], rows)


def _f(value: float | None, fmt: str = ".4f") -> str:
    return "—" if value is None else format(value, fmt)


def _summary(r: ValidationResult) -> list[str]:
    src = r.source
    out = [
        "## Legacy-vs-new validation",
        "",
        f"**{'PASSED' if r.passed else 'FAILED'}** — {r.pairs} pairs from {src.kind} "
        f"({src.description}); {r.matched} match, {r.expected} expected difference(s), "
        f"{r.unexplained.events} unexplained ({_rate(r.unexplained)} at "
        f"{r.config.segments.confidence:.0%}).",
        "",
    ]
    if src.kind.startswith("replay"):
        line = (
            f"Replay: {src.requested} applications sent, {r.unanswered} unanswered "
            f"(limit {r.config.replay.max_unanswered_ratio:.2%}), {src.retries} retries"
        )
        if src.elapsed_s:
            line += f", {src.elapsed_s:.1f} s ({src.requested / src.elapsed_s:,.0f} rows/s)"
        out += [line + ".", ""]
    failures = r.failures()
    if failures:
        out += ["### Why it failed", "", *[f"- {f}" for f in failures], ""]
    if r.warnings:
        out += ["### Warnings", "", *[f"- {w}" for w in r.warnings], ""]
    return out


def _outcomes(r: ValidationResult) -> list[str]:
    ap = r.approvals
    return [
        "### Decisions (legacy rows × new columns)",
        "",
        *_matrix("legacy \\ new", r.agreement),
        f"Approval rate: legacy {_rate(ap.legacy)}, new {_rate(ap.new)}; shift "
        f"{ap.shift.value:+.1%} [{ap.shift.lower:+.1%}, {ap.shift.upper:+.1%}].",
        "",
        "### Risk grades (legacy rows × new columns)",
        "",
        *_matrix("legacy \\ new", r.grades),
    ]


def _scores_and_reasons(r: ValidationResult) -> list[str]:
    sc, rs = r.scores, r.reasons
    out = [
        "### Scores and reasons",
        "",
        f"- Spearman rank correlation {_f(sc.spearman)} over {sc.scored} pairs with two scores.",
    ]
    if sc.same_scale:
        out.append(
            f"- Score shift (same scale, {sc.same_scale} pairs): mean "
            f"{_f(sc.mean_shift, '+.2f')}, median {_f(sc.median_shift, '+.1f')}; within "
            f"±{r.config.match.score_abs_tolerance}: {sc.within_tolerance}."
        )
    else:
        out.append("- Score shift: not reported (the two sides score on different scales).")
    out.append(
        f"- Reasons as sets: mean Jaccard {_f(rs.mean_jaccard, '.3f')} over {rs.compared} pairs."
    )
    fields = ", ".join(f"{k} {v}" for k, v in r.field_mismatches.items())
    out += [f"- Differing fields: {fields}.", ""]
    if rs.declined_transitions:
        out += _table(
            ["legacy declined with", "new declined with", "pairs"],
            [[a, b, str(n)] for a, b, n in rs.declined_transitions],
        )
    return out


def _segments_and_anomalies(r: ValidationResult) -> list[str]:
    segments = [
        [
            f"{s.dimension}={s.label}",
            str(s.total),
            _rate(s.unexplained),
            _rate(s.legacy_approval),
            _rate(s.new_approval),
            "**FLAGGED**" if s.flagged else s.note,
        ]
        for s in r.segments
    ]
    anomalies = [
        [
            a.check,
            a.status.upper() if a.flagged else a.status,
            _f(a.value),
            _f(a.threshold),
            a.detail,
        ]
        for a in r.anomalies
    ]
    head = ["segment", "pairs", "unexplained mismatch", "legacy approval", "new approval", ""]
    return [
        "### Segments",
        "",
        *_table(head, segments),
        "### Anomalies",
        "",
        *_table(["check", "status", "value", "threshold", "detail"], anomalies),
    ]


def _example(ex: dict[str, Any]) -> str:
    legacy, new = ex["legacy"], ex["new"]
    return (
        f"  - {ex['application']} client {ex['client']} ({ex['client_type']}), "
        f"{ex['amount_band']}, {ex['term_months']} m, {ex['decided_on']}: "
        f"legacy {legacy['decision']}/{legacy['grade']}/{legacy['score']} "
        f"[{', '.join(legacy['reasons'])}] → new {new['decision']}/{new['grade']}/"
        f"{new['score']} [{', '.join(new['reasons'])}]"
    )


def _register(r: ValidationResult) -> list[str]:
    out = ["### Discrepancy register", ""]
    if not r.register:
        out += ["No differences.", ""]
    for entry in r.register:
        status = entry.status + (f" ({entry.change.id})" if entry.change else "")
        out.append(
            f"- **{entry.diff_class.title}** — {entry.count} pair(s), {status}, "
            f"class `{entry.diff_class.id}`"
        )
        if entry.change:
            out.append(f"  - reason: {entry.change.reason}")
        out += [_example(ex) for ex in entry.examples]
    out.append("")
    if r.allowlist:
        rows = [
            [
                u.entry.id,
                "EXPIRED" if u.expired else u.entry.status,
                u.entry.expires.isoformat(),
                str(u.matched_while_expired if u.expired else u.matched),
                u.entry.description,
            ]
            for u in r.allowlist
        ]
        head = ["id", "status", "expires", "differences", "description"]
        out += ["### Expected changes", "", *_table(head, rows)]
    if r.unanswered:
        rows = [[u.application, u.cause, str(u.attempts)] for u in r.source.unanswered[:50]]
        out += ["### Unanswered applications", ""]
        out += _table(["application", "cause", "attempts"], rows)
    return out


def render_markdown(result: ValidationResult) -> str:
    """The validation section of the go-live report."""
    sections = (_summary, _outcomes, _scores_and_reasons, _segments_and_anomalies, _register)
    lines = [line for section in sections for line in section(result)]
    return "\n".join(lines).rstrip() + "\n"


def to_json(result: ValidationResult) -> dict[str, Any]:
    r = result
    src = r.source
    return {
        "passed": r.passed,
        "failures": r.failures(),
        "warnings": r.warnings,
        "date": r.today.isoformat(),
        "source": {
            "kind": src.kind,
            "description": src.description,
            "requested": src.requested,
            "retries": src.retries,
            "elapsed_s": src.elapsed_s,
            "unanswered": [
                {"application": u.application, "cause": u.cause, "attempts": u.attempts}
                for u in src.unanswered
            ],
        },
        "pairs": r.pairs,
        "matched": r.matched,
        "expected": r.expected,
        "unexplained": _rate_json(r.unexplained),
        "field_mismatches": r.field_mismatches,
        "decisions": {"order": list(DECISIONS), "matrix": r.agreement},
        "grades": r.grades,
        "approval": {
            "legacy": _rate_json(r.approvals.legacy),
            "new": _rate_json(r.approvals.new),
            "shift": {
                "value": r.approvals.shift.value,
                "lower": r.approvals.shift.lower,
                "upper": r.approvals.shift.upper,
            },
        },
        "scores": {
            "scored": r.scores.scored,
            "spearman": r.scores.spearman,
            "same_scale": r.scores.same_scale,
            "mean_shift": r.scores.mean_shift,
            "median_shift": r.scores.median_shift,
            "within_tolerance": r.scores.within_tolerance,
        },
        "reasons": {
            "mean_jaccard": r.reasons.mean_jaccard,
            "compared": r.reasons.compared,
            "legacy_only": r.reasons.legacy_only,
            "new_only": r.reasons.new_only,
            "both": r.reasons.both,
            "declined_transitions": [
                {"legacy": a, "new": b, "pairs": n} for a, b, n in r.reasons.declined_transitions
            ],
        },
        "segments": [
            {
                "dimension": s.dimension,
                "label": s.label,
                "pairs": s.total,
                "mismatched": s.mismatched,
                "unexplained": _rate_json(s.unexplained),
                "legacy_approval": _rate_json(s.legacy_approval),
                "new_approval": _rate_json(s.new_approval),
                "flagged": s.flagged,
                "note": s.note,
            }
            for s in r.segments
        ],
        "anomalies": [
            {
                "check": a.check,
                "status": a.status,
                "value": a.value,
                "threshold": a.threshold,
                "detail": a.detail,
                "figures": a.figures,
            }
            for a in r.anomalies
        ],
        "register": [e.document() for e in r.register],
        "expected_changes": [
            {
                "id": u.entry.id,
                "status": "expired" if u.expired else u.entry.status,
                "expires": u.entry.expires.isoformat(),
                "matched": u.matched,
                "matched_while_expired": u.matched_while_expired,
            }
            for u in r.allowlist
        ],
    }
