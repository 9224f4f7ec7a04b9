"""Report sections of the go-live's checks, from the journal's figures alone: the database steps
(backup, verification, clone test, migration, verification) with their timings, the
legacy-vs-new validation (its ``validation.md`` embedded), and the monitoring findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from golive.journal import RunState

DATABASE_STEPS = ("backup", "verify-backup", "clone-test", "migrate", "verify-database")


def _seconds(value: Any) -> str:
    return f"{float(value):.2f} s" if value is not None else "—"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _step_elapsed(state: RunState, name: str) -> str:
    from datetime import datetime

    record = state.steps.get(name)
    if record is None or not record.started or not record.finished:
        return "—"
    took = datetime.fromisoformat(record.finished) - datetime.fromisoformat(record.started)
    return f"{took.total_seconds():.2f} s"


def _migrations(run: dict[str, Any]) -> str:
    applied = run.get("applied") or []
    if not applied:
        return f"none pending (at {run.get('revision_before')})"
    each = ", ".join(f"{m['revision']} ({m['phase']}) {m['duration_ms']} ms" for m in applied)
    return f"{run.get('revision_before')} → {run.get('revision_after')}: {each}"


def _checks(report: dict[str, Any]) -> str:
    return "; ".join(
        f"{c['name']} {'ok' if c['ok'] else 'FAILED'} ({c['duration_s']:.2f} s)"
        for c in report.get("checks", [])
    )


def database(state: RunState) -> list[str]:
    lines = ["## Database", ""]
    if not any(name in state.steps for name in DATABASE_STEPS):
        return [*lines, "The database steps were not reached in this run.", ""]
    lines += ["| step | took | figures |", "|---|---|---|"]
    backup = state.figures("backup")
    if backup:
        source = backup.get("source", {}).get("tables", {})
        rows = sum(int(t.get("rows", 0)) for t in source.values())
        lines.append(
            f"| `backup` | {_step_elapsed(state, 'backup')} | "
            f"`{Path(str(backup.get('path'))).name}`, "
            f"{backup.get('size_bytes', backup.get('bytes'))} bytes, "
            f"sha256 `{str(backup.get('sha256'))[:16]}…`, {len(source)} "
            f"tables / {rows} rows fingerprinted, pg_dump {_seconds(backup.get('duration_s'))} |"
        )
    verified = state.figures("verify-backup")
    if verified:
        lines.append(
            f"| `verify-backup` | {_step_elapsed(state, 'verify-backup')} | restored into a "
            f"scratch database in {_seconds(verified.get('restore_s'))}: {verified['tables']} "
            f"tables, {verified['rows']} rows, counts and checksums equal |"
        )
    clone = state.figures("clone-test")
    if clone:
        lines.append(
            f"| `clone-test` | {_step_elapsed(state, 'clone-test')} | `{clone['clone']}` "
            f"restored in {_seconds(clone['restore_s'])}; migrations "
            f"{_cell(_migrations(clone['migration']))}; "
            f"checks {_cell(_checks(clone['verification']))} |"
        )
    migrate = state.figures("migrate")
    if migrate:
        lines.append(
            f"| `migrate` | {_step_elapsed(state, 'migrate')} | expand phase "
            f"{_cell(_migrations(migrate))} in {_seconds(migrate.get('duration_s'))} |"
        )
    verify = state.figures("verify-database")
    if verify:
        lines.append(
            f"| `verify-database` | {_step_elapsed(state, 'verify-database')} | "
            f"{_cell(_checks(verify))} |"
        )
    failed = [n for n in DATABASE_STEPS if state.steps.get(n) and state.steps[n].error]
    lines.append("")
    lines += [f"- `{n}` **failed**: {state.steps[n].error}" for n in failed]
    lines += [
        "- Undo: the expand phase needs no schema undo (the previous release serves on the "
        "expanded schema). Restoring the data is a human decision: "
        "`golive db restore <backup>.dump` (docs/database.md §5, data-loss window).",
        "- Contract migrations are not part of the go-live: after blue is retired run "
        "`credit-assessment db upgrade --phase contract`.",
        "",
    ]
    return lines


def validation(state: RunState) -> list[str]:
    lines = ["## Validation: legacy vs new", ""]
    figures = state.figures("validate")
    record = state.steps.get("validate")
    if not figures:
        detail = record.error if record is not None and record.error else "Not reached."
        return [*lines, detail or "Not reached.", ""]
    if not figures.get("pairs"):
        return [*lines, "No shadow pairs recorded during this run: nothing to compare.", ""]
    mode = "a gate" if figures.get("gate") else "report only"
    verdict = "passed" if figures.get("gate_passed") else "would fail"
    lines += [f"Step `validate` ({mode}): {verdict} — {figures.get('gate_reason')}", ""]
    try:
        embedded = Path(figures["markdown"]).read_text(encoding="utf-8")
    except (KeyError, OSError):
        return [*lines, f"(validation.md not found at {figures.get('markdown')})", ""]
    # One level down: the validation's own headings sit under this section.
    lines += [("#" + line) if line.startswith("#") else line for line in embedded.splitlines()]
    lines += ["", f"JSON: `{figures.get('json')}`", ""]
    return lines


def monitoring(state: RunState) -> list[str]:
    lines = ["## Monitoring", ""]
    figures = state.figures("verify-monitoring")
    record = state.steps.get("verify-monitoring")
    if not figures:
        detail = record.error if record is not None and record.error else "Not reached."
        return [*lines, detail or "Not reached.", ""]
    if figures.get("skipped"):
        return [*lines, f"`verify-monitoring` {figures.get('reason') or 'skipped'}.", ""]
    lines += [
        f"Prometheus `{figures['prometheus_url']}`, Alertmanager "
        f"`{figures.get('alertmanager_url') or 'not configured'}`:",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    lines += [
        f"| {f['check']} | {'ok' if f['passed'] else 'FAILED'} | {_cell(f['detail'])} |"
        for f in figures.get("findings", [])
    ]
    return [*lines, ""]
