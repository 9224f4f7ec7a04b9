"""Switch the service to green (blue kept running), verify it, and rehearse the way back.

The target applies the switch and reads the router's state back; then new requests are
observed landing: each answer names its slot (``X-Slot`` from the router), and the step waits
for a run of consecutive answers from the new slot. ``router_switched`` is journaled only when
the router actually changed, so a resumed run that finds the switch done does not repeat it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from golive import journal as j
from golive.errors import TargetError
from golive.plan import Plan, SlotName
from golive.steps.base import StepContext, StepResult
from golive.steps.smoke import smoke_or_fail
from golive.targets import procedures


@dataclass(frozen=True)
class Landing:
    slot: str
    consecutive: int
    others_seen: int
    seconds: float


def observe_landing(url: str, slot: str, consecutive: int = 20, timeout_s: float = 10) -> Landing:
    """Send requests until ``consecutive`` answers in a row come from ``slot``."""
    started = time.monotonic()
    run = others = 0
    with httpx.Client(base_url=url, timeout=5) as client:
        while run < consecutive:
            if time.monotonic() - started > timeout_s:
                raise TargetError(
                    f"new requests do not land on {slot}: {run} in a row after {timeout_s:g}s"
                )
            answered = client.get("/health").headers.get("x-slot")
            if answered == slot:
                run += 1
            else:
                run, others = 0, others + 1
    return Landing(slot, consecutive, others, time.monotonic() - started)


def switch_to(ctx: StepContext, slot: SlotName, step: str) -> dict[str, object]:
    """Switch, journal it (only when the router changed), and observe landing.

    A router found already on ``slot`` while the journal says otherwise was switched by a
    runner that died before journaling it: the switch is journaled then, once, as recovered,
    and not made again."""
    ctx.journal.append("switch_requested", step=step, to=slot)
    switches = ctx.state.switches
    believed = switches[-1].get("to") if switches else "blue"  # a go-live starts on blue
    result = ctx.target.switch(slot)
    if result.changed:
        ctx.journal.append(
            j.ROUTER_SWITCHED,
            step=step,
            to=slot,
            before=result.before,
            command=result.command,
            elapsed_ms=round(result.elapsed_ms, 3),
        )
    elif believed != slot:
        ctx.journal.append(
            j.ROUTER_SWITCHED,
            step=step,
            to=slot,
            before=believed,
            command="",
            elapsed_ms=0.0,
            recovered=True,
            note="found done: switched before a restart, its record lost; not switched again",
        )
    landing = observe_landing(ctx.target.service_url(), slot)
    ctx.observer.message(
        f"  router -> {slot} ({'switched' if result.changed else 'already there'}); "
        f"{landing.consecutive} new requests in a row on {slot} "
        f"after {landing.seconds * 1000:.0f} ms"
    )
    return {
        "to": slot,
        "changed": result.changed,
        "command": result.command,
        "command_ms": round(result.elapsed_ms, 3),
        "landing_ms": round(landing.seconds * 1000, 1),
        "landing_others_seen": landing.others_seen,
    }


class SwitchToGreen:
    name = "switch-to-green"
    title = "Switch the service to green (blue kept running for rollback)"

    def run(self, ctx: StepContext) -> StepResult:
        figures = switch_to(ctx, "green", self.name)
        figures["router"] = ctx.target.router_state().servers
        return StepResult(f"service on green; blue kept ({figures['router']})", figures)

    def undo(self, ctx: StepContext) -> str | None:
        if ctx.target.router_state().active == "blue":
            return None
        if not ctx.target.slot_status("blue").running:
            raise TargetError("cannot route back to blue: blue is not running")
        switch_to(ctx, "blue", f"undo:{self.name}")
        return "router back to blue"

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("switch")

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).switch("green")


class VerifySwitch:
    name = "verify-switch"
    title = "Post-switch verification through the service"

    def run(self, ctx: StepContext) -> StepResult:
        state = ctx.target.router_state()
        if state.active != "green":
            raise TargetError(f"the router sends new requests to {state.active}, not green")
        endpoints = ctx.target.check_endpoints("green")
        ctx.observer.message(f"  {endpoints}")
        if not endpoints.passed:
            raise TargetError(f"service endpoints: {endpoints.detail}")
        landing = observe_landing(ctx.target.service_url(), "green", consecutive=50)
        report = smoke_or_fail(
            ctx, ctx.target.service_url(), "the service (through the router)", "green"
        )
        return StepResult(
            f"50/50 new requests on green; {endpoints.detail}; smoke through the service passed",
            {
                "router": state.servers,
                "endpoints": {"passed": endpoints.passed, "detail": endpoints.detail},
                "smoke": report.to_json(),
                "landing_others_seen": landing.others_seen,
            },
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("verify-switch")

    def manual(self, plan: Plan) -> list[str]:
        url = plan.target.public_url or f"http://127.0.0.1:{plan.target.router.port}"
        return [
            f"curl -f {url}/health && curl -f {url}/ready",
            f"curl -s {url}/metrics | grep credit_assessment_build_info",
            f"./scripts/smoke-tests.sh {url}",
        ]


class RollbackDrill:
    """The story's "keep blue as rollback", proven: switch back to blue and forward again."""

    name = "rollback-drill"
    title = "Rehearsed rollback: switch back to blue, then forward to green"
    dwell_s = 3.0

    def run(self, ctx: StepContext) -> StepResult:
        back = switch_to(ctx, "blue", self.name)
        ctx.clock.sleep(self.dwell_s)
        ctx.checkpoint()
        forward = switch_to(ctx, "green", self.name)
        return StepResult(
            f"back to blue in {back['landing_ms']} ms, "
            f"forward to green in {forward['landing_ms']} ms",
            {"back": back, "forward": forward},
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # the switch step's undo routes the service to blue

    def expected_s(self, plan: Plan) -> float:
        return self.dwell_s + 2

    def manual(self, plan: Plan) -> list[str]:
        by_hand = procedures(plan)
        return by_hand.switch("blue") + by_hand.switch("green")[:1]
