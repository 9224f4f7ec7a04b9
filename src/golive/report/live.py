"""The live page: the run as it goes, from the journal so far — served by golive's exporter.

``live_state(events, plan)`` is pure: the current step (run or undo), the traffic weight, the
dwell's end (a stage's: from its verified weight; the hold's: from its start), the latest gate
figures, the banner when a person is needed (an approval waits, the run is paused, a rollback
could not finish), the notifications' counts, and the report's charts as inline SVG.
``PAGE`` polls ``live.json`` and updates in place: no reload, inline script and styles only,
nothing fetched from anywhere else, nothing it can change (read-only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from golive import journal as j
from golive.journal import RunState
from golive.plan import Plan
from golive.report import charts, html, model, notifications

TRAFFIC_SHIFTED = "traffic_shifted"  # golive.steps.shift
TRAFFIC_ROLLED_BACK = "traffic_rolled_back"
STAGE_MEASURED = "stage_measured"
HOLD_STEP = "hold"


def _epoch(ts: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(ts)).timestamp()
    except ValueError:
        return None


def _weight(events: list[dict[str, Any]]) -> float | None:
    """The weight golive set and verified, or restored by undoing a stage."""
    weight, previous = None, {}
    for e in events:
        if e["event"] == TRAFFIC_SHIFTED:
            weight = float(e["weight"])
            previous[e.get("step")] = float(e.get("previous", 0))
        elif e["event"] == TRAFFIC_ROLLED_BACK and e.get("verified"):
            weight = float(e.get("to", 0))
        elif e["event"] == j.UNDO_FINISHED and e.get("step") in previous and weight is not None:
            weight = min(weight, previous[e.get("step")])
    return weight


def _dwell_ends(events: list[dict[str, Any]], plan: Plan, step: str | None) -> float | None:
    if step is None:
        return None
    if step == HOLD_STEP:
        starts = [e for e in events if e["event"] == j.STEP_STARTED and e.get("step") == step]
        begun = _epoch(starts[0]["ts"]) if starts else None
        return None if begun is None else begun + plan.hold.post_switch_s
    stage = next((s for s in plan.traffic.stages if f"traffic-{s.weight}" == step), None)
    shifted = [e for e in events if e["event"] == TRAFFIC_SHIFTED and e.get("step") == step]
    if stage is None or not shifted:
        return None
    begun = _epoch(shifted[-1]["ts"])
    return None if begun is None else begun + stage.dwell_s


def _gates(events: list[dict[str, Any]], step: str | None) -> dict[str, Any]:
    """The latest judgement of the step running (else of any step): verdict and figures."""
    judged = [e for e in events if e["event"] in (STAGE_MEASURED, j.GATE_EVALUATED)]
    mine = [e for e in judged if e.get("step") == step] or judged
    if not mine:
        return {}
    last = mine[-1]
    figures: dict[str, Any] = {}
    if last["event"] == STAGE_MEASURED:
        for name, gate in (last.get("gates") or {}).items():
            for key, value in (gate.get("figures") or {}).items():
                figures[f"{name}.{key}"] = value
        figures.update(last.get("counts") or {})
    else:
        figures.update(last.get("figures") or {})
    scalars = {k: v for k, v in figures.items() if isinstance(v, (int, float, str))}
    return {
        "step": last.get("step"),
        "at": last.get("ts"),
        "verdict": str(last.get("verdict", "")).upper(),
        "reasons": list(last.get("reasons") or []),
        "figures": scalars,
    }


def _banner(state: RunState, plan: Plan) -> str | None:
    source = str(plan.source)
    if state.outcome == "rollback_failed":
        return "The rollback could not undo everything: act by hand now (runbook: rollback)."
    if state.awaiting_approval is not None and not state.final:
        waiting = state.awaiting_approval
        return (
            f"Approval needed: {waiting.get('step')} ({waiting.get('weight')}%) passed its "
            f"gates. Run: golive approve --plan {source} --by NAME"
        )
    if state.paused and not state.final:
        return f"Paused: a person is needed. Run: golive resume --plan {source}"
    return None


def live_state(
    events: list[dict[str, Any]], plan: Plan, *, with_charts: bool = True
) -> dict[str, Any]:
    state = RunState.fold(events)
    current = state.current if not state.final else None
    undoing = None
    for e in events:
        if e["event"] == j.UNDO_STARTED:
            undoing = e.get("step")
        elif e["event"] in (j.UNDO_FINISHED, j.UNDO_FAILED, j.RUN_FINISHED):
            undoing = None
    step = undoing or current
    title = ""
    for e in events:
        if e["event"] == j.STEP_STARTED and e.get("step") == step:
            title = str(e.get("title", ""))
    result: dict[str, Any] = {
        "run_id": state.run_id,
        "release": plan.release.version,
        "outcome": state.outcome,
        "step": step,
        "step_title": title,
        "action": "undo" if undoing else "run" if step else None,
        "completed": state.completed,
        "weight": _weight(events),
        "dwell_ends": _dwell_ends(events, plan, current) if not undoing else None,
        "gates": _gates(events, step),
        "banner": _banner(state, plan),
        "notifications": [
            row.__dict__ for row in notifications.counts(events, plan) if plan.notify.targets
        ],
        "events": len(events),
    }
    if with_charts:
        result["charts"] = charts_html(events, state, plan)
    return result


def charts_html(events: list[dict[str, Any]], state: RunState, plan: Plan) -> str:
    """The report's weight and gate charts, as they stand (SVG, scoped per chart)."""
    drawn = model.charts(events, state, plan)
    report = model.ReportModel("", state.run_id, state.outcome, [], drawn.spans, drawn.end_s, "")
    parts = []
    for index, spec in enumerate([drawn.weight, *drawn.gates]):
        svg = html.draw(spec, report)
        if svg is None:
            continue
        scoped = charts.scoped(svg, f"live{index}")
        parts.append(f'<figure class="chart chart-{spec.kind}">{scoped}</figure>')
    return "\n".join(parts) or "<p>No chart yet: no traffic stage or gate judged so far.</p>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>golive — live</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
#banner{display:none;background:#fff3cd;border:2px solid #d39e00;padding:.8em;font-weight:bold}
#banner.on{display:block}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
.big{font-size:1.6em;font-weight:bold}#charts svg{max-width:100%;height:auto}
</style></head>
<body>
<h1>Go-live <span id="release"></span> — <span id="outcome">loading</span></h1>
<div id="banner" role="alert"></div>
<p>Run <code id="run"></code> · updated <span id="updated">never</span></p>
<table>
<tr><th>step</th><td id="step"></td></tr>
<tr><th>traffic weight</th><td class="big" id="weight">–</td></tr>
<tr><th>dwell left</th><td id="dwell">–</td></tr>
<tr><th>latest gates</th><td id="gates">–</td></tr>
<tr><th>notifications</th><td id="notify">–</td></tr>
</table>
<div id="charts"></div>
<script>
"use strict";
let state = null, offset = 0, drawn = -1;
function text(id, value) { document.getElementById(id).textContent = value; }
function tick() {
  if (!state) return;
  if (state.dwell_ends) {
    const left = Math.max(0, state.dwell_ends - (Date.now() / 1000 + offset));
    text("dwell", Math.floor(left / 60) + " min " + Math.round(left % 60) + " s");
  } else { text("dwell", "–"); }
}
function show(s) {
  state = s;
  offset = s.now - Date.now() / 1000;
  text("release", s.release); text("outcome", s.outcome); text("run", s.run_id || "");
  text("updated", new Date().toLocaleTimeString());
  text("step", s.step ? (s.action === "undo" ? "undoing " : "") + s.step + " — " + s.step_title
                      : "(between steps)");
  text("weight", s.weight === null ? "–" : s.weight + "%");
  const g = s.gates;
  text("gates", g.verdict ? g.step + ": " + g.verdict + " " +
    Object.entries(g.figures).map(([k, v]) => k + "=" + v).join(", ") +
    (g.reasons.length ? " (" + g.reasons.join("; ") + ")" : "") : "–");
  text("notify", s.notifications.map(n => n.target + ": " + n.sent + " sent, " + n.failed +
    " failed, " + n.retries + " retries, " + n.unconfirmed + " possibly not delivered")
    .join(" · ") || "none configured");
  const banner = document.getElementById("banner");
  banner.textContent = s.banner || ""; banner.className = s.banner ? "on" : "";
  if (s.charts !== undefined && s.events !== drawn) {
    document.getElementById("charts").innerHTML = s.charts; drawn = s.events;
  }
  tick();
}
function poll() {
  fetch("live.json", {cache: "no-store"}).then(r => r.json()).then(show)
    .catch(() => text("updated", "unreachable; retrying"))
    .finally(() => setTimeout(poll, 2000));
}
setInterval(tick, 1000);
poll();
</script>
</body></html>
"""
