"""``golive rehearse``: the whole go-live on this machine, under load, from a fresh clone.

Brings up the environment (embedded PostgreSQL, seeded clients, blue behind HAProxy), starts a
background load through the router for the whole run (assessments for the seeded clients, each
answer tagged with the slot and engine that served it), runs the plan to green — with the
rehearsed switch back to blue and forward again when the plan asks for it — then stops the
load, journals its figures (overall and around every switch), writes the report and stops
everything it started. The rehearsal fails if a single background request failed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.errors import GoLiveError
from golive.plan import Plan, check_runnable
from golive.rehearsal import environment
from golive.rehearsal.load import (
    MAX_DURATION_S,
    BackgroundLoad,
    LoadPlan,
    LoadResult,
    slot_engine_tag,
)
from golive.runner import Runner
from golive.smoke import service_token
from golive.targets.local import LocalTarget, service_cli

SWITCH_WINDOW_S = (1.0, 5.0)  # before, after each switch


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


def background_plan(url: str, token: str, clients: list[str], rate: float) -> LoadPlan:
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
    )


def load_figures(result: LoadResult, switches: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    from datetime import datetime

    windows = []
    for switch in switches:
        at = datetime.fromisoformat(switch["ts"]).timestamp()
        outcomes = result.between(at - SWITCH_WINDOW_S[0], at + SWITCH_WINDOW_S[1])
        by_slot = Counter(o.tag.split("/")[0] for o in outcomes)
        windows.append(
            {
                "ts": switch["ts"],
                "to": switch.get("to"),
                "requests": len(outcomes),
                "failed": sum(1 for o in outcomes if not o.ok),
                "by_slot": dict(sorted(by_slot.items())),
            }
        )
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
        "switch_windows": windows,
    }


def rehearse(plan: Plan, *, observer: Any, keep: bool = False) -> RehearsalOutcome:
    check_runnable(plan)
    started = time.monotonic()
    target: LocalTarget = environment.local_target(plan)
    target.down()  # leftovers of an earlier rehearsal in this state directory, by recorded pid
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
        background = BackgroundLoad(
            background_plan(target.service_url(), token, clients, rate)
        ).start()
        observer.message(f"background load: {rate:g} req/s through {target.service_url()}")
        if hasattr(observer, "load"):
            observer.load = background.live
        runner = Runner(
            plan, target, observer=observer, load=background.live, token_source=lambda: token
        )
        try:
            runner.run(report=False)
        except GoLiveError as exc:
            error = exc
    finally:
        if background is not None:
            result = background.stop()
            switches = runner.journal.state().switches if runner and runner.journal else []
            figures = load_figures(result, switches, plan.rehearsal.background_rate_per_s)
            if runner is not None and runner.journal is not None:
                runner.journal.append(j.BACKGROUND_LOAD, figures=figures)
        if runner is not None:
            runner.write_report()
        if not keep:
            stopped = target.down()
            observer.message(f"stopped: {', '.join(stopped) or 'nothing left running'}")
    report = runner.journal.run_dir / "report.md" if runner and runner.journal else None
    if error is None and figures.get("failed"):
        error = GoLiveError(
            f"{figures['failed']} of {figures['requests']} background requests failed "
            f"({figures['failures']})",
            hint=f"see the report: {report}",
        )
    return RehearsalOutcome(report, figures, error, time.monotonic() - started)


def main(path: Path, *, keep: bool, plain: bool) -> None:
    """``golive rehearse``: run it, print where the report is, fail loudly on any failure."""
    from golive.plan import load
    from golive.report.progress import make_observer

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
            f"{load_figures_['failed']} failed, p99 {load_figures_['p99_ms']} ms, "
            f"{len(load_figures_['switch_windows'])} switches under load"
        )
    print(f"rehearsal took {outcome.seconds:.0f}s")
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    if outcome.error is not None:
        raise outcome.error
