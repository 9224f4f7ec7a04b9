"""``golive rehearse``: the whole go-live on this machine, under load, from a fresh clone.

Brings up the environment (embedded PostgreSQL, seeded clients, blue behind HAProxy), starts a
background load through the router for the whole run (assessments for the seeded clients, each
answer tagged with the slot and engine that served it), runs the plan to green — with the
rehearsed switch back to blue and forward again when the plan asks for it — then stops the
load, journals its figures (overall, around every switch, and per 10 s window with the steps that
ran in it; the per-second series goes to ``background-load.json`` beside the journal), writes the
report and stops everything it started. Zero downtime means no failed request and bounded
latency: the rehearsal fails if a single background request failed, or if the p99 of any 10 s
window is over ``rehearsal.max_window_p99_ms``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.errors import DowntimeObserved, GoLiveError
from golive.load import (
    MAX_DURATION_S,
    BackgroundLoad,
    LoadPlan,
    LoadResult,
    slot_engine_tag,
)
from golive.plan import Plan, load
from golive.providers import check_runnable
from golive.rehearsal import environment, webhook
from golive.report.progress import make_observer
from golive.runner import Runner
from golive.service import service_cli, service_token
from golive.targets.local import LocalTarget

SWITCH_WINDOW_S = (1.0, 5.0)  # before, after each switch
WINDOW_S = 10.0  # the background load is judged per window of this many seconds
WARM_UP_LIMIT_S = 120.0
SERIES_FILE = "background-load.json"


@dataclass
class RehearsalOutcome:
    report: Path | None
    load: dict[str, Any]
    error: GoLiveError | None
    seconds: float


def client_ids(url: str, limit: int) -> list[str]:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id::text FROM clients ORDER BY id LIMIT %s", (limit,)
        ).fetchall()
    return [r[0] for r in rows]


def background_plan(
    url: str, token: str, clients: list[str], rate: float, ramp_s: float = 0.0
) -> LoadPlan:
    def body(index: int) -> bytes:
        return json.dumps(
            {
                "clientId": clients[index % len(clients)],
                "loanAmount": 5000 + (index * 7919) % 95000,
                "loanTerm": (6, 12, 24, 36)[index % 4],
            }
        ).encode()

    return LoadPlan(
        url=url,
        path="/api/v1/assessment",
        rate_per_s=rate,
        duration_s=MAX_DURATION_S,  # bounded; stopped when the rehearsal ends
        method="POST",
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        connections=32,
        classify=slot_engine_tag,
        ramp_s=ramp_s,
    )


def warm_up(background: BackgroundLoad, clients: int, ramp_s: float, observer: Any) -> float:
    """Wait until the load has ramped up and every seeded client has been assessed once.

    Blue stands in for a release that has served for months: warm, its caches full. A brand-new
    blue that took the whole load at once, on empty caches (every first request of a client
    costs a credit bureau call and a legacy call), queued for seconds: that was a rehearsal
    artefact, not a property of the go-live. Seconds waited, at most ``WARM_UP_LIMIT_S``.
    """
    started = time.monotonic()
    observer.message(
        f"warming blue: the load ramps up over {ramp_s:g} s, then one pass over {clients} clients"
    )
    while time.monotonic() - started < WARM_UP_LIMIT_S:
        if not background.running:
            break
        if background.live.sent >= clients and time.monotonic() - started >= ramp_s:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def step_spans(events: list[dict[str, Any]]) -> list[tuple[str, float, float | None]]:
    """(name, start, end) of every step and undo in a journal, in wall-clock seconds.

    An undo is named ``undo <step>``; a span still open at the end of the journal has no end.
    """
    spans: list[tuple[str, float, float | None]] = []
    running: dict[str, float] = {}
    ends = {
        j.STEP_FINISHED: "",
        j.STEP_FAILED: "",
        j.UNDO_FINISHED: "undo ",
        j.UNDO_FAILED: "undo ",
    }
    for e in events:
        kind, at = e["event"], datetime.fromisoformat(e["ts"]).timestamp()
        if kind == j.STEP_STARTED:
            running[e["step"]] = at
        elif kind == j.UNDO_STARTED:
            running["undo " + e["step"]] = at
        elif kind in ends and (name := ends[kind] + e["step"]) in running:
            spans.append((name, running.pop(name), at))
    spans += [(name, start, None) for name, start in running.items()]
    return sorted(spans, key=lambda span: span[1])


def steps_during(
    spans: list[tuple[str, float, float | None]], start: float, end: float
) -> list[str]:
    return [
        name for name, began, ended in spans if began < end and (ended is None or ended > start)
    ]


def load_figures(
    result: LoadResult,
    events: list[dict[str, Any]],
    rate: float,
    max_window_p99_ms: float,
) -> dict[str, Any]:
    """The background load's figures for the journal: overall, by tag, around every switch, and
    per 10 s window with the steps that ran in it; windows over the p99 limit are named."""
    switches = [e for e in events if e["event"] == j.ROUTER_SWITCHED]
    around = []
    for switch in switches:
        at = datetime.fromisoformat(switch["ts"]).timestamp()
        outcomes = result.between(at - SWITCH_WINDOW_S[0], at + SWITCH_WINDOW_S[1])
        by_slot = Counter(o.tag.split("/")[0] for o in outcomes)
        around.append(
            {
                "ts": switch["ts"],
                "to": switch.get("to"),
                "requests": len(outcomes),
                "failed": sum(1 for o in outcomes if not o.ok),
                "by_slot": dict(sorted(by_slot.items())),
            }
        )
    spans = step_spans(events)
    windows = []
    for window in result.windows(WINDOW_S):
        row = window.as_dict()
        row["steps"] = steps_during(spans, window.started_at, window.started_at + WINDOW_S)
        windows.append(row)
    slow = [w for w in windows if (w["p99_ms"] or 0) > max_window_p99_ms]
    failures = Counter(o.error or str(o.status) for o in result.outcomes if not o.ok)
    return {
        "requests": result.count,
        "failed": result.failed,
        "rate_per_s": rate,
        "elapsed_s": round(result.elapsed_s, 1),
        "achieved_rps": round(result.throughput(), 1),
        "p50_ms": round(result.percentile_ms(50), 2),
        "p99_ms": round(result.percentile_ms(99), 2),
        "by_tag": result.by_tag(),
        "failures": dict(failures),
        "switch_windows": around,
        "window_s": WINDOW_S,
        "max_window_p99_ms": max_window_p99_ms,
        "windows": windows,
        "slow_windows": [
            {k: w[k] for k in ("start", "requests", "failed", "p99_ms", "max_ms", "steps")}
            for w in slow
        ],
    }


def write_series(run_dir: Path, result: LoadResult) -> Path:
    """The per-second series (overall and by slot/engine) beside the journal."""
    path = run_dir / SERIES_FILE
    series = {
        "width_s": 1.0,
        "started_at": result.started_at,
        "windows": [w.as_dict() for w in result.windows(1.0)],
    }
    path.write_text(json.dumps(series, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def zero_downtime_error(figures: dict[str, Any], report: Path | None) -> DowntimeObserved | None:
    """Zero downtime is no failed request *and* no 10 s window whose p99 is over the limit."""
    if figures.get("failed"):
        return DowntimeObserved(
            f"{figures['failed']} of {figures['requests']} background requests failed "
            f"({figures['failures']})",
            hint=f"see the report: {report}",
        )
    slow = figures.get("slow_windows") or []
    if not slow:
        return None
    worst = max(slow, key=lambda w: w["p99_ms"])
    at = datetime.fromtimestamp(worst["start"], UTC).strftime("%H:%M:%S")
    return DowntimeObserved(
        f"{len(slow)} of {len(figures['windows'])} {figures['window_s']:g} s windows of the "
        f"background load had a p99 over {figures['max_window_p99_ms']:g} ms; the worst, from "
        f"{at} UTC, {worst['p99_ms']} ms during {', '.join(worst['steps']) or 'no step'}",
        hint=f"the per-window table is in the report: {report}",
    )


def rehearse(plan: Plan, *, observer: Any, keep: bool = False) -> RehearsalOutcome:
    check_runnable(plan)
    started = time.monotonic()
    target: LocalTarget = environment.local_target(plan)
    # Leftovers of an earlier rehearsal in this state directory, stopped by recorded pid.
    environment.stop_everything(target)
    earlier = j.latest_run(plan.state_dir.resolve())
    if earlier is not None and not earlier.state().final:
        earlier.append(
            j.RUN_FINISHED, outcome="abandoned", reason="a new rehearsal replaced its environment"
        )
    error: GoLiveError | None = None
    figures: dict[str, Any] = {}
    runner: Runner | None = None
    background: BackgroundLoad | None = None
    try:
        environment.up(plan, observer)
        token = service_token(target.service_env(), service_cli(), "rehearsal-load", 4 * 3600)
        clients = client_ids(target.database_url(), plan.rehearsal.clients)
        rate = plan.rehearsal.background_rate_per_s
        ramp_s = plan.rehearsal.background_ramp_s
        background = BackgroundLoad(
            background_plan(target.service_url(), token, clients, rate, ramp_s)
        ).start()
        observer.message(f"background load: {rate:g} req/s through {target.service_url()}")
        waited = warm_up(background, len(clients), ramp_s, observer)
        observer.message(f"blue warm after {waited:.1f} s; the go-live starts")
        if hasattr(observer, "load"):
            observer.load = background.live
        runner = Runner(plan, target, observer=observer, load=background.live)
        with webhook.receiving(plan.state_dir.resolve()) as inbox:
            try:
                runner.run(report=False)
            except GoLiveError as exc:
                error = exc
        got = webhook.received(plan.state_dir.resolve())
        observer.message(f"notifications: {len(got)} received by the rehearsal's webhook ({inbox})")
    finally:
        if background is not None:
            result = background.stop()
            events = runner.journal.events() if runner and runner.journal else []
            figures = load_figures(
                result,
                events,
                plan.rehearsal.background_rate_per_s,
                plan.rehearsal.max_window_p99_ms,
            )
            if runner is not None and runner.journal is not None:
                series = write_series(runner.journal.run_dir, result)
                runner.journal.append(j.BACKGROUND_LOAD, figures=figures, series=series.name)
        if runner is not None:
            runner.write_report()
        if not keep:
            stopped = environment.stop_everything(target)
            observer.message(f"stopped: {', '.join(stopped) or 'nothing left running'}")
    report = runner.journal.run_dir / "report.md" if runner and runner.journal else None
    if error is None:
        error = zero_downtime_error(figures, report)
    return RehearsalOutcome(report, figures, error, time.monotonic() - started)


def main(path: Path, *, keep: bool, plain: bool) -> None:
    """``golive rehearse``: run it, print where the report is, fail loudly on any failure."""
    plan = load(path)
    observer = make_observer(plain=plain)
    try:
        outcome = rehearse(plan, observer=observer, keep=keep)
    finally:
        if hasattr(observer, "close"):
            observer.close()
    load_figures_ = outcome.load
    if load_figures_:
        print(
            f"background load: {load_figures_['requests']} requests, "
            f"{load_figures_['failed']} failed, p99 {load_figures_['p99_ms']} ms "
            f"(worst {load_figures_['window_s']:g} s window "
            f"{max((w['p99_ms'] or 0 for w in load_figures_['windows']), default=0)} ms), "
            f"{len(load_figures_['switch_windows'])} switches under load"
        )
    print(f"rehearsal took {outcome.seconds:.0f}s")
    if outcome.report is not None:
        print(f"report: {outcome.report} and {outcome.report.with_suffix('.html')}")
        print(f"review pack: {outcome.report.with_name('review.md')} (invitation review.ics)")
    if outcome.error is not None:
        raise outcome.error
