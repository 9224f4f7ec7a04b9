"""Writing a run's report and review pack into its run directory, and finding past runs.

The edge of the report package: everything else in it is pure. ``write_all`` is called at the end
of every run (and by ``golive report`` / ``golive review`` for a past one): ``report.md`` and
``report.html`` from one model of the sections, then the review pack (``review.md``,
``review.html``, ``review.ics``). Each file is written to a temporary name and renamed, so a
reader never sees half a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from golive import journal as j
from golive.errors import UsageError
from golive.journal import Journal
from golive.plan import Plan
from golive.report import html, model, review
from golive.report.golive_report import build_model

REPORT_FILES = ("report.md", "report.html")


@dataclass(frozen=True)
class Written:
    report: list[Path]
    review: list[Path]
    attendees: int


def _write(path: Path, text: str | bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _model(journal: Journal, plan: Plan) -> model.ReportModel:
    return build_model(journal.events(), plan, source=str(journal.path), torn=journal.torn_tail())


def write_report_files(
    journal: Journal, plan: Plan, built: model.ReportModel | None = None
) -> list[Path]:
    """``report.md`` (first: the page's charts cannot hold it back) and ``report.html``."""
    built = built or _model(journal, plan)
    markdown = _write(journal.run_dir / "report.md", model.markdown(built))
    return [markdown, _write(journal.run_dir / "report.html", html.render_report(built))]


def write_review(
    journal: Journal, plan: Plan, built: model.ReportModel | None = None
) -> tuple[list[Path], int]:
    """The review pack; returns the files and how many attendees the invitation names."""
    built = built or _model(journal, plan)
    pack = review.build(built, journal.events(), plan, journal.run_dir / "report.html")
    paths = [
        _write(journal.run_dir / "review.md", review.markdown(pack)),
        _write(journal.run_dir / "review.html", review.html_page(pack)),
        _write(journal.run_dir / "review.ics", review.calendar(pack)),
    ]
    return paths, len(pack.attendees)


def write_all(journal: Journal, plan: Plan) -> Written:
    built = _model(journal, plan)
    report = write_report_files(journal, plan, built)
    paths, attendees = write_review(journal, plan, built)
    return Written(report, paths, attendees)


def known_runs(state_dir: Path) -> list[str]:
    runs = j.runs_dir(state_dir)
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if (p / "journal.jsonl").is_file())


def find_run(state_dir: Path, run: str) -> Journal:
    """A run by its id (under the plan's state directory) or by its directory."""
    given = Path(run)
    for candidate in (given, j.runs_dir(state_dir) / run):
        if (candidate / "journal.jsonl").is_file():
            return Journal(candidate.resolve() / "journal.jsonl")
    if run == "latest":
        latest = j.latest_run(state_dir)
        if latest is not None:
            return latest
    known = known_runs(state_dir)
    listed = ", ".join(known[-10:]) if known else "none"
    raise UsageError(
        f"no run {run!r} in {j.runs_dir(state_dir)} (known runs: {listed})",
        hint="give a run id from `golive history`, `latest`, or a run directory",
    )
