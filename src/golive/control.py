"""The operator's commands: run a plan, and status, switch, rollback, pause, resume or approve it.

The CLI delegates here. Each command loads and checks the plan, then acts on its target and state
directory; a command that changes the router takes the run lock, and one that reaches a running
go-live (rollback, pause, approve) asks it through its control file and waits for the
acknowledgement.
"""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.errors import (
    ApprovalRefused,
    ControlRequestError,
    GoLiveBusyError,
    GoLiveError,
    RollbackFailed,
)
from golive.journal import Control, Journal, RunLock
from golive.plan import SLOT_NAMES, Plan
from golive.runner import Runner


def _load_plan(path: Path) -> Plan:
    from golive.plan import load
    from golive.providers import check_runnable

    plan = load(path)
    check_runnable(plan)
    return plan


def run_plan(
    path: Path, *, resume: bool, plain: bool, outside_window_reason: str | None = None
) -> None:
    from golive import targets
    from golive.report.progress import make_observer

    plan = _load_plan(path)
    observer = make_observer(plain=plain)
    runner = Runner(
        plan,
        targets.create(plan),
        observer=observer,
        outside_window_reason=outside_window_reason,
    )
    try:
        runner.run(resume=resume)
    finally:
        if hasattr(observer, "close"):
            observer.close()
        if runner.journal is not None:
            run_dir = runner.journal.run_dir
            print(f"report: {run_dir / 'report.md'} and {run_dir / 'report.html'}")
            print(f"review pack: {run_dir / 'review.md'} (invitation {run_dir / 'review.ics'})")


def dry_run(path: Path) -> str:
    """The writes of a go-live of the plan, read from the real target; nothing is changed."""
    from golive import targets
    from golive.dryrun import preview

    plan = _load_plan(path)
    target = targets.create(plan, dry_run=True)
    try:
        return preview(plan, target).render(plan)
    finally:
        close = getattr(target, "close", None)
        if close is not None:
            close()


def status(path: Path) -> str:
    from golive import targets

    plan = _load_plan(path)
    state_dir = plan.state_dir.resolve()
    lock = RunLock(state_dir)
    lines = [f"plan: {path} (release {plan.release.version}, {plan.target.kind} target)"]
    if lock.held_elsewhere():
        lines.append(f"lock: held by pid {lock.holder()} — a golive command is running")
    journal = j.latest_run(state_dir)
    if journal is None:
        lines.append("no go-live has run from this state directory")
    else:
        state = journal.state()
        lines.append(
            f"run {state.run_id}: {state.outcome}"
            + (" (paused)" if state.paused else "")
            + (f", at step {state.current}" if state.current else "")
        )
        for name in state.order:
            record = state.steps[name]
            mark = "undone" if name in state.undone else record.outcome
            lines.append(f"  {name:<20} {mark}")
        lines += _approval_lines(state, path)
        lines.append(f"router switches: {len(state.switches)}")
        if state.failure:
            lines.append(f"failure: {state.failure}")
        lines.append(f"journal: {journal.path}")
        lines.append(f"report:  {journal.run_dir / 'report.md'} (and report.html)")
        lines += _live_lines(journal, state, lock.held_elsewhere())
    try:
        target = targets.create(plan)
        router = target.router_state()
        lines.append(f"router: new requests -> {router.active}; servers {router.servers}")
        for slot in SLOT_NAMES:
            s = target.slot_status(slot)
            lines.append(
                f"  {slot}: {'running' if s.running else 'stopped'}"
                + (
                    f", {'ready' if s.ready else 'NOT ready'}, {s.version}, {s.detail}"
                    if s.running
                    else ""
                )
            )
    except GoLiveError as exc:
        lines.append(f"router: not reachable ({exc.message})")
    return "\n".join(lines)


def _live_lines(journal: Journal, state: j.RunState, running: bool) -> list[str]:
    """Where the live page is while the run goes on, and what the notifications did."""
    events = journal.events()
    lines = []
    served = [e for e in events if e["event"] == "exporter_started"]
    if served and running and not state.final:
        lines.append(f"live page: {str(served[-1]['url']).rsplit('/', 1)[0]}/live")
    sent = sum(e["event"] == "notification_sent" for e in events)
    failed = sum(e["event"] == "notification_failed" for e in events)
    if sent or failed:
        lines.append(f"notifications: {sent} sent, {failed} failed (report: Notifications)")
    return lines


def _approval_lines(state: j.RunState, path: Path) -> list[str]:
    lines = [
        f"approved: {e.get('step')} ({e.get('weight')}%) by {e.get('by')} at {e.get('at')}"
        + (f" — {e['note']}" if e.get("note") else "")
        for e in state.approvals
    ]
    waiting = state.awaiting_approval
    if waiting is not None and not state.final:
        lines.append(
            f"waiting for approval: {waiting.get('step')} ({waiting.get('weight')}%) since "
            f"{waiting.get('ts')}: golive approve --plan {path} --by NAME [--note TEXT]"
        )
    return lines


def switch(path: Path, slot: str) -> str:
    from golive import targets
    from golive.steps.switch import observe_landing

    plan = _load_plan(path)
    target = targets.create(plan)
    with RunLock(plan.state_dir.resolve()):
        result = target.switch(slot)  # type: ignore[arg-type]
        landing = observe_landing(target.service_url(), slot)
        Journal(plan.state_dir.resolve() / "manual.jsonl").append(
            j.ROUTER_SWITCHED,
            by="operator",
            to=slot,
            before=result.before,
            changed=result.changed,
            command=result.command,
        )
    state = target.router_state()
    done = "switched" if result.changed else "already there, nothing changed"
    return (
        f"service -> {slot} ({done}); router reads {state.servers}; "
        f"{landing.consecutive} new requests in a row on {slot}"
    )


def _request(control: Control, **changes: Any) -> dict[str, Any]:
    """Write an operator's request to the control file; what it reads back afterwards."""
    try:
        return control.write(**changes)
    except OSError as exc:
        raise ControlRequestError(
            f"could not record the request in {control.path}: {exc.strerror or exc}"
        ) from exc


def rollback(path: Path, wait_s: float) -> str:
    from golive import targets

    plan = _load_plan(path)
    state_dir = plan.state_dir.resolve()
    target = targets.create(plan)
    if RunLock(state_dir).held_elsewhere():
        control = Control(state_dir)
        if not _request(control, rollback=True, by=_operator())["rollback"]:
            raise ControlRequestError(f"could not record the rollback request in {control.path}")
        deadline = time.monotonic() + wait_s
        while RunLock(state_dir).held_elsewhere():
            if time.monotonic() > deadline:
                raise GoLiveBusyError(
                    f"rollback requested; the running go-live has not finished it in {wait_s:g}s",
                    hint="`golive status` shows where it stands",
                )
            time.sleep(0.5)
        journal = j.latest_run(state_dir)
        outcome = journal.state().outcome if journal else "unknown"
        return (
            f"the running go-live rolled back ({outcome}); router: {target.router_state().servers}"
        )
    runner = Runner(plan, target)
    journal, undone = runner.rollback_latest()
    active = target.router_state().active
    if active != "blue":
        raise RollbackFailed(f"after the rollback the router sends new requests to {active}")
    what = "; ".join(undone) if undone else "nothing left to undo"
    return f"rolled back: {what}; the service is on blue" + (
        f"; report {journal.run_dir / 'report.md'}" if journal else ""
    )


def _operator() -> str:
    """Who asked (the login name), for the journal and the notifications."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def pause(path: Path, paused: bool) -> str:
    from golive.plan import load

    plan = load(path)
    state_dir = plan.state_dir.resolve()
    control = Control(state_dir)
    if _request(control, pause=paused, by=_operator())["pause"] != paused:
        raise ControlRequestError(f"the request did not stick in {control.path}")
    verb = "pause" if paused else "resume"
    if not RunLock(state_dir).held_elsewhere():
        return f"{verb} recorded; no go-live is running (a --resume will honour it)"
    wanted = j.PAUSED if paused else j.RESUMED
    journal = j.latest_run(state_dir)
    deadline = time.monotonic() + 10
    while journal is not None and time.monotonic() < deadline:
        if journal.state().paused == paused:
            return f"{verb}d: the running go-live acknowledged ({wanted})"
        time.sleep(0.25)
    return f"{verb} recorded; the running go-live applies it at its next checkpoint"


def approve(path: Path, by: str, note: str, wait_s: float = 10) -> str:
    """Approve the stage waiting for a person: recorded in the control file, where the running
    go-live takes it (or a resumed one, after a crash); journaled there as ``approved``."""
    from golive.plan import load

    plan = load(path)
    state_dir = plan.state_dir.resolve()
    journal = j.latest_run(state_dir)
    state = journal.state() if journal is not None else None
    waiting = state.awaiting_approval if state is not None and not state.final else None
    if state is None or waiting is None:
        where = f"run {state.run_id} is {state.outcome}" if state else "no go-live has run here"
        raise ApprovalRefused(f"no stage is waiting for approval ({where})")
    step = waiting.get("step")
    control = Control(state_dir)
    given = control.read()["approval"]
    if given and given.get("run_id") == state.run_id and given.get("step") == step:
        raise ApprovalRefused(
            f"{step} is already approved by {given.get('by')} at {given.get('at')}; nothing "
            "was recorded",
            hint="the go-live takes the approval at its next judgement with the gates passing; "
            "`golive status` shows it",
        )
    record = {
        "run_id": state.run_id,
        "step": step,
        "weight": waiting.get("weight"),
        "by": by,
        "note": note,
        "at": j.now_iso(),
    }
    if _request(control, approval=record)["approval"] != record:
        raise ControlRequestError(f"the approval did not stick in {control.path}")
    if not RunLock(state_dir).held_elsewhere():
        return (
            f"approval of {step} recorded; no go-live is running: "
            f"`golive run {path} --resume` continues past it once its gates pass"
        )
    assert journal is not None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if any(e.get("at") == record["at"] for e in journal.state().approvals):
            return f"approved {step}: the running go-live continues to the next stage"
        time.sleep(0.25)
    return (
        f"approval of {step} recorded; the running go-live continues once its gates pass "
        "at a judgement"
    )
