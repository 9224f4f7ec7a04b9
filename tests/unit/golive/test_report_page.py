"""The go-live report's one model of sections, shared by report.md and report.html: the issues
encountered, the lessons learned, the charts (or the sentence that replaces each), a torn journal,
and client ids masked."""

from __future__ import annotations

import re
from pathlib import Path

from tests.golive_runs import RUN_ID, write_run

from golive import journal as j
from golive.journal import Journal
from golive.plan import Plan, load
from golive.report import html, model
from golive.report.golive_report import build_model, render
from golive.report.issues import lessons
from golive.report.series import GateSeries

REPO = Path(__file__).resolve().parents[3]
SECTIONS = [
    "outcome",
    "checklist",
    "timeline",
    "switches",
    "issues",
    "performance",
    "smoke",
    "zero_downtime",
    "database",
    "gates",
    "traffic",
    "monitoring",
    "validation",
    "rollback",
    "notifications",
    "lessons",
    "signoff",
]


def rehearsal_plan() -> Plan:
    return load(REPO / "deploy/golive/rehearsal.yaml")


def built(journal: Journal) -> model.ReportModel:
    return build_model(
        journal.events(), rehearsal_plan(), source=str(journal.path), torn=journal.torn_tail()
    )


def figure(page: str, kind: str) -> list[str]:
    return re.findall(rf'<figure class="chart chart-{kind}">(.*?)</figure>', page, re.DOTALL)


def test_markdown_and_page_carry_the_same_sections(tmp_path: Path) -> None:
    report = built(write_run(tmp_path / RUN_ID))
    assert [s.key for s in report.sections] == SECTIONS
    text, page = model.markdown(report), html.render_report(report)
    for part in report.sections:
        assert f"\n## {part.title}\n" in text
        assert f'<section id="{part.key}">' in page
    assert "<svg" not in text


def test_a_rolled_back_run_lists_the_rollback_and_charts_the_threshold(tmp_path: Path) -> None:
    report = built(write_run(tmp_path / RUN_ID, rolled_back=True))
    issues = "\n".join(report.section("issues").lines)
    assert "| rollback | traffic-50: gate failed — error_rate" in issues
    assert "flag back from 50% to 0% in 0.4 s" in issues
    assert "| inconclusive | traffic-10: 1 inconclusive judgement(s)" in issues
    page = html.render_report(report)
    error_rate = next(svg for svg in figure(page, "gate") if "error rate, new − legacy" in svg)
    assert "threshold 1 pp" in error_rate  # the threshold line's label, drawn as text
    assert re.search(r"stroke-dasharray:[^\"]*stroke: #d62728", error_rate)  # the dashed red line


def test_every_chart_is_drawn_when_the_run_measured_it(tmp_path: Path) -> None:
    page = html.render_report(built(write_run(tmp_path / RUN_ID)))
    for kind in ("weight", "load_rate", "latency", "gate", "timings"):
        assert figure(page, kind), kind
    weight = figure(page, "weight")[0]
    for label in ("10%", "50%", "100%"):
        assert label in weight
    assert "time since the run started (s)" in weight
    assert "traffic-50" in weight  # the step boundaries are labelled


def test_without_load_or_stages_sentences_replace_the_charts(tmp_path: Path) -> None:
    report = built(write_run(tmp_path / RUN_ID, load=False, stages=False))
    page = html.render_report(report)
    assert not figure(page, "load_rate") and not figure(page, "weight")
    assert "No background load ran in this run" in page
    assert "No traffic stage ran in this run, so the weight never changed." in page
    assert "No background load ran in this run" in model.markdown(report)


def test_a_journal_torn_mid_line_still_renders_and_says_the_run_was_interrupted(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / RUN_ID / "journal.jsonl")
    journal.append(j.RUN_STARTED, run_id=RUN_ID, plan="p.yaml", release="2.0.0")
    journal.append(j.STEP_STARTED, step="backup")
    with journal.path.open("a", encoding="utf-8") as torn:
        torn.write('{"ts": "2026-12-04T20:00:03+00:00", "event": "step_fini')
    assert journal.torn_tail()
    text = render(journal, rehearsal_plan())
    assert "**The run was interrupted**" in text and "torn mid-write" in text
    assert "**Interrupted**" in text
    assert "interrupted" in html.render_report(built(journal))


def test_lessons_name_the_slowest_step_and_the_gates_near_their_threshold(tmp_path) -> None:
    state = j.RunState.fold(write_run(tmp_path / RUN_ID).events())
    near = GateSeries("latency", "median latency", "×", 1.25, [(1.0, 1.05, "PASS")])
    far = GateSeries("error_rate", "error rate", "pp", 1.0, [(1.0, 0.1, "PASS")])
    found = lessons(state, {"deploy-green": 10.0}, [near, far])
    assert any("`traffic-10` took 35.0 s" in line for line in found)
    assert any("median latency came within 16% of its threshold" in line for line in found)
    assert not any("error rate" in line for line in found)


def test_the_smoke_client_id_is_masked(tmp_path: Path) -> None:
    plan = rehearsal_plan()
    journal = write_run(tmp_path / RUN_ID)
    journal.append(j.STEP_STARTED, step="smoke-green")
    detail = f"assessed clientId {plan.smoke.client_id}: APPROVED"
    checks = [{"name": "assessment", "status": "passed", "detail": detail}]
    journal.append(
        j.STEP_FINISHED, step="smoke-green", figures={"url": "http://x", "checks": checks}
    )
    report = built(journal)
    text, page = model.markdown(report), html.render_report(report)
    assert plan.smoke.client_id not in text and plan.smoke.client_id not in page
    assert re.search(r"assessed clientId c-[0-9a-f]{16}: APPROVED", text)


def test_the_page_links_to_nothing_outside_itself(tmp_path: Path) -> None:
    journal = write_run(tmp_path / RUN_ID)
    journal.append(j.STEP_STARTED, step="verify-monitoring")
    error = "see [the dashboard](https://grafana.example/d/1) and <https://grafana.example/>"
    journal.append(j.STEP_FAILED, step="verify-monitoring", outcome="failed", error=error)
    page = html.render_report(built(journal))
    assert "the dashboard" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page


def test_the_hold_is_charted_against_the_thresholds_it_journaled(tmp_path: Path) -> None:
    journal = write_run(tmp_path / RUN_ID, load=False, stages=False)
    for p99 in (120.0, 410.0):
        journal.append(
            j.GATE_EVALUATED,
            step="hold",
            verdict="passed",
            figures={"green_requests": 500, "green_errors": 1, "green_p99_ms": p99},
            reasons=[],
            thresholds={"max_error_ratio": 0.01, "max_p99_ms": 450.0, "min_requests": 50},
        )
    report = built(journal)
    page = html.render_report(report)
    p99 = next(svg for svg in figure(page, "gate") if "hold: green p99 latency" in svg)
    assert "threshold 450 ms" in p99  # journaled, not the plan's 500 ms
    assert any(
        "green p99 latency came within 9%" in line for line in report.section("lessons").lines
    )
    assert "| green p99 | 410 ms |" in "\n".join(report.section("performance").lines)
