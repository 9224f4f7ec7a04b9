"""Notifications under a failing receiver: do the go-live's steps notice? Does every message
arrive in the end?

The same short go-live runs three times: the real runner on the fake target, with real Apprise
sending to a real webhook receiver on 127.0.0.1 (tests/integration/golive/webhook.py). Its
steps: backup, migrate (the maintenance notice), the switch, a 10% stage, and a 50% stage
whose gate fails, so the run rolls back (the step_failed and rollback notices). The steps that
take time journal a look every 50 ms for about a second, as a traffic stage's dwell does: every
record goes through the notifications' journal listener. Each run has a receiver of its own:

- healthy (the peer the others are measured against);
- answering 500 to everything for its first 60 s;
- taking 10 s to answer each request.

Printed: each step's duration (journal: from its start to its end) and its ratio against the
healthy run's, and when each message was finally accepted, in seconds from the run's start. A
second healthy run gives the noise the other ratios are read against.
Every message must arrive: the plan's ``notify`` gives 20 attempts (1 s doubling to 5 s), a
30 s timeout per request and up to 150 s at the end of the run, and the script waits (at most
200 s) for the receiver to have them all; it exits non-zero if one is missing.

Command: ``python -m bench.bench_notify``. Figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from tests.integration.golive.notify_run import FailingStage, Switch
from tests.integration.golive.webhook import Receiver

from bench.harness import REPO, machine, record
from golive import journal as j
from golive.errors import GateRolledBack
from golive.plan import Plan, load
from golive.runner import Runner
from golive.steps.base import StepContext, StepResult
from golive.targets.fake import FakeTarget

NOTIFY = {"attempts": 20, "backoff_s": 1, "max_backoff_s": 5, "timeout_s": 30, "drain_s": 150}
WAIT_S = 200.0
INSTANT_S = 0.05  # steps shorter than this get no ratio


class Dwelling:
    """A step that journals a look every ``tick_s`` for ``ticks`` ticks (about a second)."""

    def __init__(self, name: str, ticks: int = 20, tick_s: float = 0.05) -> None:
        self.name, self.title = name, f"Step {name}"
        self.ticks, self.tick_s = ticks, tick_s

    def run(self, ctx: StepContext) -> StepResult:
        for look in range(1, self.ticks + 1):
            ctx.journal.append(
                "stage_measured",
                step=self.name,
                weight=10,
                look=look,
                verdict="PASS",
                reasons=[],
                gates={"error_rate": {"verdict": "PASS", "figures": {"new_ratio": 0.001}}},
                counts={"new_requests": 40 * look},
            )
            time.sleep(self.tick_s)
        return StepResult(f"{self.ticks} looks")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return self.ticks * self.tick_s

    def manual(self, plan: Plan) -> list[str]:
        return []


def steps() -> list[Any]:
    return [
        Dwelling("backup"),
        Dwelling("migrate"),
        Switch(hang_on_undo=False),
        Dwelling("traffic-10"),
        FailingStage(),
    ]


@dataclass
class Outcome:
    name: str
    steps: dict[str, float]  # step (or "rollback", "run") -> seconds
    arrived: list[tuple[str, float]]  # (message title, seconds after the run started)
    refused: int  # requests the receiver answered 500
    returned_s: float  # runner.run() returned this long after the run started (end-of-run wait)


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["ts"])).timestamp()


def step_seconds(events: list[dict[str, Any]]) -> dict[str, float]:
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    failed_at = None
    for e in events:
        if e["event"] == j.STEP_STARTED:
            started[e["step"]] = _ts(e)
        elif e["event"] in (j.STEP_FINISHED, j.STEP_FAILED) and e["step"] in started:
            seconds[e["step"]] = _ts(e) - started[e["step"]]
            if e["event"] == j.STEP_FAILED:
                failed_at = _ts(e)
        elif e["event"] == j.RUN_FINISHED and failed_at is not None:
            seconds["rollback"] = _ts(e) - failed_at
    begun = next(_ts(e) for e in events if e["event"] == j.RUN_STARTED)
    ended = next(_ts(e) for e in events if e["event"] == j.RUN_FINISHED)
    seconds["run"] = ended - begun
    return seconds


def go_live(name: str, work: Path, hook: Receiver, expected: int | None) -> Outcome:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(work / name / "state")
    data["database"]["backup_dir"] = str(work / name / "backups")
    data["notify"] = {"targets": [{"name": "oncall", "url": hook.url()}], **NOTIFY}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    runner = Runner(load(path), FakeTarget(), steps=steps())
    with contextlib.suppress(GateRolledBack):  # the run's rollback, as planned
        runner.run(report=False)
    returned = time.time()
    assert runner.journal is not None
    events = runner.journal.events()
    begun = next(_ts(e) for e in events if e["event"] == j.RUN_STARTED)
    if expected is not None:  # everything the healthy run's receiver got, within WAIT_S
        deadline = time.monotonic() + WAIT_S
        while len(hook.accepted()) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
    arrived = [(str(d.body.get("title")), d.received - begun) for d in hook.accepted()]
    refused = sum(d.status == 500 for d in hook.deliveries)
    return Outcome(name, step_seconds(events), arrived, refused, returned - begun)


def render(runs: list[Outcome]) -> tuple[str, bool]:
    healthy = runs[0]
    complete = all(len(r.arrived) == len(healthy.arrived) for r in runs)
    names = " | ".join(r.name for r in runs[1:])
    lines = [
        f"Machine: {machine()}. Command: `python -m bench.bench_notify`. The real runner on the "
        "fake target, real Apprise (json://) to a webhook receiver on 127.0.0.1; notify: "
        + ", ".join(f"{k} {v}" for k, v in NOTIFY.items())
        + ". Durations from the journal; ratios against the healthy run of the same invocation.",
        "",
        f"| step | {healthy.name} s | {names} |",
        "|---|---|" + "---|" * (len(runs) - 1),
    ]
    worst = {r.name: 0.0 for r in runs[1:]}
    for step, base in healthy.steps.items():
        cells = []
        for run in runs[1:]:
            took = run.steps.get(step)
            if took is None:
                cells.append("–")
                continue
            if base < INSTANT_S:  # milliseconds: a ratio of those is scheduling noise
                cells.append(f"{took:.3f}")
                continue
            ratio = took / base
            if step != "run":
                worst[run.name] = max(worst[run.name], abs(ratio - 1))
            cells.append(f"{took:.3f} ({ratio:.2f}×)")
        lines.append(f"| {step} | {base:.3f} | {' | '.join(cells)} |")
    lines += [
        "",
        "When each message finally arrived (the request the receiver answered 200), seconds "
        "after the run started:",
        "",
        f"| message | {healthy.name} | {names} |",
        "|---|---|" + "---|" * (len(runs) - 1),
    ]
    for index, (title, at) in enumerate(healthy.arrived):
        cells = [
            f"{r.arrived[index][1]:.1f}" if index < len(r.arrived) else "**never**"
            for r in runs[1:]
        ]
        lines.append(f"| {title.split(' (run')[0][:60]} | {at:.1f} | {' | '.join(cells)} |")
    lines.append("")
    noise = worst[runs[1].name]
    for run in runs[1:]:
        last = max((at for _, at in run.arrived), default=float("nan"))
        lines.append(
            f"- {run.name}: the 1 s steps within **{worst[run.name] * 100:.1f}%** of the "
            f"healthy run's (healthy against healthy: {noise * 100:.1f}%); "
            f"**{len(run.arrived)}/{len(healthy.arrived)}** messages arrived, the last "
            f"{last:.1f} s after the start; {run.refused} requests answered 500; the steps "
            f"were over at {run.steps['run']:.1f} s, `runner.run` returned at "
            f"{run.returned_s:.1f} s (the end-of-run wait for messages still being sent, "
            "at most `drain_s`)"
        )
    return "\n".join(lines), complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down-s", type=float, default=60.0, help="the 500s last this long")
    parser.add_argument("--slow-s", type=float, default=10.0, help="each answer takes this long")
    args = parser.parse_args(argv)
    cases = [
        ("healthy", {}),
        ("healthy again", {}),  # the noise: the same run against the same receiver
        (f"500 for {args.down_s:g} s", {"fail_for_s": args.down_s}),
        (f"{args.slow_s:g} s per request", {"delay_s": args.slow_s}),
    ]
    import apprise  # noqa: F401 - imported once before the runs, so no run pays for it alone

    runs: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        for name, behaviour in cases:
            hook = Receiver(**behaviour).start()
            try:
                expected = len(runs[0].arrived) if runs else None
                runs.append(go_live(name.replace(" ", "-"), Path(tmp), hook, expected))
                runs[-1].name = name
            finally:
                hook.stop()
            print(f"{name}: {len(runs[-1].arrived)} messages, run {runs[-1].steps['run']:.2f} s")
    text, complete = render(runs)
    print(text)
    record("Notifications under a failing receiver (issue 18)", text)
    if not complete:
        print("some messages never arrived", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
