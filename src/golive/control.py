"""The operator's commands: run a plan, and status, switch, rollback, pause, resume or approve it.

The CLI delegates here. Each command loads and checks the plan, then acts on its target and state
directory; a command that changes the router takes the run lock, and one that reaches a running
go-live (rollback, pause, approve) asks it through its control channel and waits for the
acknowledgement. On a target with a ``Coordination`` (Kubernetes) the channel, the runner's
status and who runs it are in the cluster (a ConfigMap and a Lease), so these commands reach a
go-live running in its Job from any shell with access to the namespace; elsewhere they are the
state directory's ``control.json``, journal and lock.
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
from golive.journal import Control, ControlChannel, Journal, RunLock
from golive.plan import SLOT_NAMES, Plan
from golive.runner import Runner
from golive.targets.base import Coordination, Target


def _load_plan(path: Path) -> Plan:
    from golive.plan import load
    from golive.providers import check_runnable

    plan = load(path)
    check_runnable(plan)
    return plan


def run_plan(
    path: Path, *, resume: bool | None, plain: bool, outside_window_reason: str | None = None
) -> None:
    """``resume``: True continues the unfinished run, False starts one, None (``--resume-or-
    start``) decides from the journal."""
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


# A runner publishes its status for operators within a second of journaling it.
PUBLISHED_WITHIN_S = 3.0


def _meeting_point(plan: Plan) -> tuple[Target, Coordination | None]:
    """The plan's target and where its runners and operators meet beyond the state directory."""
    from golive import targets

    target = targets.create(plan)
    return target, target.coordination()


def _channel(plan: Plan, coordination: Coordination | None) -> ControlChannel:
    return coordination.control() if coordination is not None else Control(plan.state_dir.resolve())


def _runner_running(plan: Plan, coordination: Coordination | None) -> bool:
    if coordination is not None:
        return coordination.holder() is not None
    return RunLock(plan.state_dir.resolve()).held_elsewhere()


def _published(coordination: Coordination) -> dict[str, Any] | None:
    try:
        return coordination.status()
    except GoLiveError:
        return None


def status(path: Path) -> str:
    plan = _load_plan(path)
    state_dir = plan.state_dir.resolve()
    lock = RunLock(state_dir)
    target, coordination = _meeting_point(plan)
    lines = [f"plan: {path} (release {plan.release.version}, {plan.target.kind} target)"]
    if coordination is not None:
        lines += _cluster_lines(coordination, path)
    if lock.held_elsewhere():
        lines.append(f"lock: held by pid {lock.holder()} — a golive command is running")
    journal = j.latest_run(state_dir)
    if journal is None:
        if coordination is None:
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


def _cluster_lines(coordination: Coordination, path: Path) -> list[str]:
    """The go-live as its runner publishes it in the cluster (it may run in its Job)."""
    try:
        holder = coordination.holder()
        published = coordination.status()
    except GoLiveError as exc:
        return [f"runner: could not be read ({exc.message})"]
    lines = [f"runner: {holder}" if holder else "runner: none holds the Lease"]
    if not published:
        return [*lines, "no go-live has published its status in the cluster"]
    where = f", at step {published.get('step')}" if published.get("step") else ""
    title = f" ({published['step_title']})" if published.get("step_title") else ""
    lines.append(
        f"run {published.get('run_id')}: {published.get('outcome')}"
        + (" (paused)" if published.get("paused") else "")
        + where
        + title
    )
    if published.get("weight") is not None:
        lines.append(f"traffic: {published['weight']:g}% of legacy traffic to the new engine")
    ends = published.get("dwell_ends")
    if isinstance(ends, (int, float)) and not published.get("final"):
        lines.append(f"dwell: {max(0.0, ends - time.time()):.0f}s left")
    gates = published.get("gates") or {}
    if gates:
        figures = ", ".join(f"{k}={v}" for k, v in sorted((gates.get("figures") or {}).items()))
        lines.append(
            f"gates ({gates.get('step')}, {gates.get('at')}): {gates.get('verdict')}"
            + (f" — {'; '.join(gates['reasons'])}" if gates.get("reasons") else "")
            + (f"; {figures}" if figures else "")
        )
    waiting = published.get("awaiting_approval")
    if waiting:
        lines.append(
            f"waiting for approval: {waiting.get('step')} ({waiting.get('weight')}%): "
            f"golive approve --plan {path} --by NAME [--note TEXT]"
        )
    elif published.get("banner"):
        lines.append(f"needs a person: {published['banner']}")
    if published.get("failure"):
        lines.append(f"failure: {published['failure']}")
    lines.append(f"status published {published.get('published')} by {published.get('runner')}")
    return lines


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


def _request(control: ControlChannel, **changes: Any) -> dict[str, Any]:
    """Write an operator's request to the control channel; what it reads back afterwards."""
    try:
        return control.write(**changes)
    except OSError as exc:
        raise ControlRequestError(
            f"could not record the request in {control.where}: {exc.strerror or exc}"
        ) from exc
    except ControlRequestError:
        raise
    except GoLiveError as exc:
        raise ControlRequestError(
            f"could not record the request in {control.where}: {exc.message}", hint=exc.hint
        ) from exc


def rollback(path: Path, wait_s: float) -> str:
    plan = _load_plan(path)
    state_dir = plan.state_dir.resolve()
    target, coordination = _meeting_point(plan)
    if coordination is not None and (
        coordination.holder() is not None or _unfinished_elsewhere(coordination, state_dir)
    ):
        return _rollback_in_cluster(target, coordination, wait_s)
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


def _unfinished_elsewhere(coordination: Coordination, state_dir: Path) -> bool:
    """A run published in the cluster, not finished, whose journal is not in this state
    directory: its runner (a Job's, between restarts) keeps it elsewhere."""
    published = _published(coordination)
    if published is None or not published.get("run_id") or published.get("final"):
        return False
    local = j.latest_run(state_dir)
    return local is None or local.run_dir.name != published["run_id"]


def _rollback_in_cluster(target: Target, coordination: Coordination, wait_s: float) -> str:
    """Ask the runner that holds the go-live (in its Job, perhaps) to roll it back; a runner
    resumed later honours the request at its first checkpoint."""
    channel = coordination.control()
    if not _request(channel, rollback=True, by=_operator())["rollback"]:
        raise ControlRequestError(f"could not record the rollback request in {channel.where}")
    if coordination.holder() is None:
        return (
            f"rollback recorded in {channel.where}; no runner holds the go-live now: the one "
            "its Job resumes rolls it back first"
        )
    deadline = time.monotonic() + wait_s
    while True:
        published = _published(coordination) or {}
        if published.get("final") or coordination.holder() is None:
            break
        if time.monotonic() > deadline:
            raise GoLiveBusyError(
                f"rollback requested; the running go-live has not finished it in {wait_s:g}s",
                hint="`golive status` shows where it stands",
            )
        time.sleep(0.5)
    return (
        f"the running go-live rolled back ({published.get('outcome', 'unknown')}); "
        f"router: {target.router_state().servers}"
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
    _, coordination = _meeting_point(plan)
    control = _channel(plan, coordination)
    if _request(control, pause=paused, by=_operator())["pause"] != paused:
        raise ControlRequestError(f"the request did not stick in {control.where}")
    verb = "pause" if paused else "resume"
    if not _runner_running(plan, coordination):
        return f"{verb} recorded; no go-live is running (a --resume will honour it)"
    wanted = j.PAUSED if paused else j.RESUMED
    journal = j.latest_run(state_dir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if coordination is not None:
            published = _published(coordination) or {}
            if published.get("paused") == paused:
                return f"{verb}d: the running go-live acknowledged ({wanted})"
        elif journal is not None and journal.state().paused == paused:
            return f"{verb}d: the running go-live acknowledged ({wanted})"
        time.sleep(0.25)
    return f"{verb} recorded; the running go-live applies it at its next checkpoint"


def _waiting(
    plan: Plan, coordination: Coordination | None
) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """(run id, the approval it waits for, its outcome): as the runner published it in the
    cluster, else from the state directory's journal."""
    journal = j.latest_run(plan.state_dir.resolve())
    state = journal.state() if journal is not None else None
    published = _published(coordination) if coordination is not None else None
    if (
        published
        and published.get("run_id")
        and (state is None or state.run_id != published["run_id"])
    ):
        waiting = published.get("awaiting_approval") if not published.get("final") else None
        return str(published["run_id"]), waiting, str(published.get("outcome"))
    if state is None:
        return None, None, None
    waiting = state.awaiting_approval if not state.final else None
    return state.run_id, waiting, state.outcome


def approve(path: Path, by: str, note: str, wait_s: float = 10) -> str:
    """Approve the stage waiting for a person: recorded in the control file, where the running
    go-live takes it (or a resumed one, after a crash); journaled there as ``approved``."""
    from golive.plan import load

    plan = load(path)
    state_dir = plan.state_dir.resolve()
    _, coordination = _meeting_point(plan)
    run_id, waiting, outcome = _waiting(plan, coordination)
    deadline = time.monotonic() + (PUBLISHED_WITHIN_S if coordination is not None else 0)
    while waiting is None and time.monotonic() < deadline:  # its status may be a second old
        time.sleep(0.25)
        run_id, waiting, outcome = _waiting(plan, coordination)
    if run_id is None or waiting is None:
        where = f"run {run_id} is {outcome}" if run_id else "no go-live has run here"
        raise ApprovalRefused(f"no stage is waiting for approval ({where})")
    step = waiting.get("step")
    control = _channel(plan, coordination)
    given = control.read()["approval"]
    if given and given.get("run_id") == run_id and given.get("step") == step:
        raise ApprovalRefused(
            f"{step} is already approved by {given.get('by')} at {given.get('at')}; nothing "
            "was recorded",
            hint="the go-live takes the approval at its next judgement with the gates passing; "
            "`golive status` shows it",
        )
    record = {
        "run_id": run_id,
        "step": step,
        "weight": waiting.get("weight"),
        "by": by,
        "note": note,
        "at": j.now_iso(),
    }
    if _request(control, approval=record)["approval"] != record:
        raise ControlRequestError(f"the approval did not stick in {control.where}")
    if not _runner_running(plan, coordination):
        return (
            f"approval of {step} recorded; no go-live is running: "
            f"`golive run {path} --resume` continues past it once its gates pass"
        )
    journal = j.latest_run(state_dir)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if coordination is not None:
            published = _published(coordination) or {}
            if published.get("awaiting_approval") is None and published.get("run_id") == run_id:
                return f"approved {step}: the running go-live continues to the next stage"
        elif journal is not None and any(
            e.get("at") == record["at"] for e in journal.state().approvals
        ):
            return f"approved {step}: the running go-live continues to the next stage"
        time.sleep(0.25)
    return (
        f"approval of {step} recorded; the running go-live continues once its gates pass "
        "at a judgement"
    )


def fetch_run(path: Path, run: str | None, destination: Path) -> str:
    """``golive fetch-run``: the run's directory from where its runner keeps it. A runner on
    Kubernetes keeps it on its Job's volume (copied with the operator's kubectl); elsewhere the
    state directory is this machine's and nothing needs copying."""
    from golive.manifests import find_kubectl
    from golive.plan import load
    from golive.targets.kubefetch import RunFetcher, kubectl_runner

    plan = load(path)
    if plan.target.kind != "kubernetes":
        journal = j.latest_run(plan.state_dir.resolve()) if run is None else None
        where = journal.run_dir if journal is not None else plan.state_dir / "runs" / (run or "")
        return f"the run is on this machine already: {where}"
    kubernetes = plan.target.kubernetes
    kubectl = find_kubectl() or kubernetes.kubectl
    fetcher = RunFetcher(plan.target.namespace, kubectl_runner(kubectl), context=kubernetes.context)
    copied = fetcher.fetch(run, destination)
    return f"fetched {copied} (journal.jsonl, report.md, report.html, review pack)"
