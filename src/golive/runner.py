"""The runner: executes a plan's steps, journals every one, resumes, and rolls back.

Journal, then act: ``step_started`` is on disk before a step runs, ``step_finished`` (with its
figures) after. The state is rebuilt from the journal alone, so ``--resume`` after a crash or
``kill -9`` skips every completed step and runs the interrupted one again (a run that died
while rolling back finishes its rollback instead) — steps are idempotent (a switch that finds
the router already on green does nothing and journals no switch).
One go-live at a time (``RunLock``); on a target with a ``Coordination`` (Kubernetes) also
one runner at a time across machines (the Lease, claimed before the journal is touched), the
operators' requests read from the cluster, and the run's status published there for ``golive
status`` anywhere. ``run(resume=None)`` is ``--resume-or-start``, the in-cluster Job's command. A
resumed run first reads the target (``reconciled``): the steps act only on what differs, so a
switch or weight made just before a crash is not made twice. A lost Lease or a journal that
cannot be written stops the run at once, undoing nothing (``LeaseLost``, ``StateWriteError``).

On failure the rollback procedure runs by itself: the failing step's ``undo``, then the
completed steps' in reverse order (router back to blue, flag back, green stopped); every undo
is journaled, and the error names the failed step and lists what was undone; its class, and so
the exit code, says what caused it (``golive.errors.run_outcome``). On SIGINT or
SIGTERM the step in progress is undone and the run left resumable; signals are masked while
undoing, so the router is never left half-switched. The report is written at the end of every
run, whatever the outcome.

While a run (or ``golive rollback``) holds the lock, golive serves its own metrics
(``golive.exporter``), folded from this journal: bound before anything is journaled, so a port
in use stops ``golive run`` with nothing done; stopped, and the port freed, however the run
ends. Notifications (``golive.notify``) are delivered by threads of their own from the same
journal, never blocking a step; at the end golive waits at most ``notify.drain_s`` for them.
``golive rollback`` never refuses to roll back for the sake of its metrics port: it
journals why it runs without them.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from golive import credentials, errors
from golive import journal as j
from golive.credentials import TokenSource
from golive.errors import (
    ExporterAddressError,
    GoLiveBusyError,
    GoLiveError,
    Interrupted,
    LeaseLost,
    OutsideMaintenanceWindow,
    RollbackFailed,
    StateWriteError,
    StepFailed,
    TargetUnreachableError,
    UsageError,
    run_outcome,
)
from golive.exporter import EXPORTER_STARTED, RunExporter, exporting
from golive.journal import Control, ControlChannel, Journal, RunLock
from golive.load import LiveCounts
from golive.notify.delivery import live_link, notifying
from golive.plan import SLOT_NAMES, Plan
from golive.report.golive_report import write_report
from golive.report.live import live_state
from golive.report.publish import write_all
from golive.steps import build_steps
from golive.steps.base import Clock, Observer, QuietObserver, Step, StepContext
from golive.targets.base import Claim, Coordination, Target
from golive.traffic import create as traffic_flag


class _SignalGuard:
    """SIGINT/SIGTERM become ``Interrupted`` in the main thread, except while masked."""

    def __init__(self) -> None:
        self.masked = False
        self.pending: int | None = None

    def handler(self, signum: int, _: FrameType | None) -> None:
        if self.masked:
            self.pending = signum
            return
        raise Interrupted(f"{signal.Signals(signum).name} received")

    @contextlib.contextmanager
    def installed(self) -> Iterator[_SignalGuard]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self.handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def masking(self) -> Iterator[None]:
        self.masked = True
        try:
            yield
        finally:
            self.masked = False


def runner_identity() -> str:
    """This runner among all runners of a go-live: host (a pod's name), pid, a random tag."""
    return f"{socket.gethostname()}/pid-{os.getpid()}/{secrets.token_hex(2)}"


class _ClaimedControl:
    """The control channel, read only while the claim holds: every checkpoint reads it, so a
    lost Lease stops the run at the next one (``LeaseLost``)."""

    def __init__(self, channel: ControlChannel, claim: Claim) -> None:
        self.channel, self.claim = channel, claim

    @property
    def where(self) -> str:
        return self.channel.where

    def read(self) -> dict[str, Any]:
        self.claim.check()
        return self.channel.read()

    def write(self, **changes: Any) -> dict[str, Any]:
        return self.channel.write(**changes)

    def reset(self) -> None:
        self.channel.reset()


class _StatusBoard:
    """Publishes the run's status where operators read it (``Coordination.publish``): the live
    page's state plus who runs it, at most every ``every_s`` while the journal grows, and once
    at the end. A failed publication is counted and retried, never stopping the go-live."""

    def __init__(
        self,
        coordination: Coordination,
        journal: Journal,
        plan: Plan,
        runner: str,
        every_s: float = 1.0,
    ) -> None:
        self.coordination, self.journal, self.plan = coordination, journal, plan
        self.runner, self.every_s = runner, every_s
        self.failures = 0
        self.last_error = ""
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="golive-status", daemon=True)

    def start(self) -> _StatusBoard:
        self._unsubscribe = self.journal.subscribe(lambda _: self._changed.set())
        self._changed.set()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._unsubscribe()
        self._stop.set()
        self._thread.join(timeout=10)
        self.publish()  # the outcome, whatever happened

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._changed.wait(self.every_s) and not self._stop.is_set():
                self._changed.clear()
                self.publish()
                self._stop.wait(self.every_s)

    def status(self) -> dict[str, Any]:
        events = self.journal.events()
        state = j.RunState.fold(events)
        status = live_state(events, self.plan, with_charts=False)
        status.update(
            runner=self.runner,
            plan=str(self.plan.source),
            paused=state.paused,
            final=state.final,
            awaiting_approval=state.awaiting_approval if not state.final else None,
            steps=[[name, state.steps[name].outcome] for name in state.order],
            failure=state.failure,
            switches=len(state.switches),
        )
        return status

    def publish(self) -> None:
        try:
            self.coordination.publish(self.status())
        except GoLiveError as exc:
            self.failures += 1
            self.last_error = exc.message


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def plan_digest(plan: Plan) -> str:
    try:
        if len(plan.sources) == 1:
            return hashlib.sha256(plan.source.read_bytes()).hexdigest()
        return hashlib.sha256(b"".join(p.read_bytes() for p in plan.sources)).hexdigest()
    except OSError:
        return hashlib.sha256(plan.model_dump_json().encode()).hexdigest()


class Runner:
    def __init__(
        self,
        plan: Plan,
        target: Target,
        *,
        steps: Sequence[Step] | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        load: LiveCounts | None = None,
        token_source: TokenSource | None = None,
        outside_window_reason: str | None = None,
    ) -> None:
        self.plan = plan
        self.target = target
        self.steps = list(steps) if steps is not None else build_steps(plan)
        self.observer = observer or QuietObserver()
        self.clock = clock or Clock()
        self.load = load
        # Built once: every step's requests share it (and its reuse and refresh).
        self.token_source = token_source or credentials.from_plan(plan, target)
        # `--outside-window --reason TEXT`: the database steps may run outside the window.
        self.outside_window_reason = outside_window_reason
        self.state_dir = plan.state_dir.resolve()
        # Where runners and operators meet beyond the state directory (Kubernetes: a Lease and
        # a ConfigMap); None: the state directory's lock and control.json alone.
        self.coordination = target.coordination()
        self.control: ControlChannel = Control(self.state_dir)
        if self.coordination is not None:
            self.control = self.coordination.control()
        self.identity = runner_identity()
        self.guard = _SignalGuard()
        self.journal: Journal | None = None

    # --- entry points -------------------------------------------------------------------------

    def run(self, *, resume: bool | None = False, report: bool = True) -> Journal:
        """Run (or resume) the go-live; raises a StepFailed (chosen by the cause), RollbackFailed
        or Interrupted on failure. ``resume=None`` is ``--resume-or-start``, the in-cluster
        Job's command: resume the unfinished run, start one when there is none, and do nothing
        when the latest run of this very plan succeeded (a Job run again)."""
        with (
            RunLock(self.state_dir),
            self._claimed() as claim,
            self.guard.installed(),
            exporting(self.plan) as exporter,
        ):
            if claim is not None:
                self.control = _ClaimedControl(self.control, claim)
            if resume is None:
                resume, done = self._resume_or_start()
                if done is not None:
                    self.journal = done
                    return done
            journal = self._open(resume, claim)
            self.journal = journal
            if resume:
                self._reconcile(journal)
            self._export(journal, exporter)
            live = live_link(self.plan, exporter.url if exporter else None)
            try:
                with notifying(self.plan, journal, live=live), self._publishing(journal):
                    failed = self._failed_before(journal) if resume else None
                    if failed is not None:
                        self._finish_rollback(self._context(journal), failed)
                    self._execute(self._context(journal))
            finally:
                if report:
                    self.write_report()
        return journal

    @contextlib.contextmanager
    def _claimed(self) -> Iterator[Claim | None]:
        """The go-live held beyond the state directory (the Lease on Kubernetes)."""
        if self.coordination is None:
            yield None
            return
        with self.coordination.claim(self.identity) as claim:
            yield claim

    @contextlib.contextmanager
    def _publishing(self, journal: Journal) -> Iterator[None]:
        if self.coordination is None:
            yield
            return
        board = _StatusBoard(self.coordination, journal, self.plan, self.identity).start()
        try:
            yield
        finally:
            board.stop()
            if board.failures:
                self.observer.message(
                    f"the status for operators could not be published {board.failures} "
                    f"time(s): {board.last_error}"
                )

    def _resume_or_start(self) -> tuple[bool, Journal | None]:
        """(resume?, the finished run there is nothing left to do for)."""
        latest = j.latest_run(self.state_dir)
        if latest is None:
            return False, None
        state = latest.state()
        if not state.final and state.outcome != "not_started":
            return True, None
        started = next((e for e in latest.events() if e["event"] == j.RUN_STARTED), {})
        if state.outcome == "succeeded" and started.get("plan_sha256") == plan_digest(self.plan):
            self.observer.message(
                f"run {state.run_id} of this plan succeeded: nothing to do (a new release is a "
                "new plan)"
            )
            return False, latest
        return False, None

    def _reconcile(self, journal: Journal) -> None:
        """Before a resumed run acts, read the target: the live Service, the flag's weight and
        the slots' versions, beside what the journal says. Steps act only on a difference (a
        switch or weight made before the crash, its record lost, is not made twice); the
        reading is journaled for the report."""
        events = journal.events()
        state = j.RunState.fold(events)
        journaled = {
            "service": state.switches[-1].get("to") if state.switches else "blue",
            "weight": live_state(events, self.plan, with_charts=False)["weight"] or 0,
        }
        found: dict[str, Any] = {}
        with contextlib.suppress(GoLiveError):
            found["service"] = self.target.router_state().active
        for slot in SLOT_NAMES:
            with contextlib.suppress(GoLiveError):
                status = self.target.slot_status(slot)
                found[slot] = status.version if status.running else "stopped"
        if self.plan.traffic.stages:
            with contextlib.suppress(GoLiveError):
                flag = traffic_flag(self.plan, self.target)
                try:
                    found["weight"] = flag.stored_weights().get(flag.key, 0)
                finally:
                    close = getattr(flag, "close", None)
                    if close is not None:
                        close()
        differences = [
            f"{what}: the journal says {journaled[what]}, the target has {found[what]}"
            for what in journaled
            if what in found and found[what] != journaled[what]
        ]
        journal.append(j.RECONCILED, found=found, journaled=journaled, differences=differences)
        for difference in differences:
            self.observer.message(f"reconciled: {difference} (acted on, its record lost)")

    def rollback_latest(self) -> tuple[Journal | None, list[str]]:
        """``golive rollback`` with no run in progress: undo what the latest run left in place
        (holding the Lease too where there is one: no runner starts meanwhile)."""
        with RunLock(self.state_dir), self._claimed(), self.guard.installed():
            journal = j.latest_run(self.state_dir)
            if journal is None:
                result = self.target.switch("blue")
                return None, ["router back to blue"] if result.changed else []
            self.journal = journal
            state = journal.state()
            if state.outcome == "rolled_back":
                return journal, []
            with contextlib.ExitStack() as stack:
                try:
                    exporter = stack.enter_context(exporting(self.plan))
                except ExporterAddressError as exc:
                    exporter = None
                    journal.append(j.NOTE, text=f"rolling back without golive's metrics: {exc}")
                    self.observer.message(f"golive's metrics are off for this rollback: {exc}")
                self._export(journal, exporter)
                current = next((s for s in self.steps if s.name == state.current), None)
                live = live_link(self.plan, exporter.url if exporter else None)
                try:
                    with notifying(self.plan, journal, live=live):
                        journal.append(
                            j.NOTE,
                            text="rollback requested by an operator "
                            f"(golive rollback by {_login()}, pid {os.getpid()})",
                        )
                        undone = self._rollback(
                            self._context(journal), current, "operator rollback"
                        )
                finally:
                    self.write_report()
            return journal, undone

    def write_report(self) -> None:
        """report.md, report.html and the review pack; a page that cannot be drawn never hides
        the run's outcome (report.md is then written on its own)."""
        if self.journal is None:
            return
        try:
            write_all(self.journal, self.plan)
        except OSError:
            return
        except Exception as exc:  # noqa: BLE001 - the outcome matters more than the page
            self.observer.message(f"report.html or the review pack not written: {exc!r}")
            with contextlib.suppress(OSError):
                write_report(self.journal, self.plan)

    # --- internals ----------------------------------------------------------------------------

    def _export(self, journal: Journal, exporter: RunExporter | None) -> None:
        """Serve the figures of this journal (rebuilt from its events first: a resume)."""
        if exporter is None:
            return
        exporter.follow(journal)
        journal.append(
            EXPORTER_STARTED,
            url=exporter.url,
            listen=f"{exporter.settings.host}:{exporter.port}",
            discovery=str(exporter.discovery),
        )
        self.observer.message(f"golive's metrics on {exporter.url}, live page {exporter.live_url}")

    def _context(self, journal: Journal) -> StepContext:
        return StepContext(
            plan=self.plan,
            target=self.target,
            journal=journal,
            control=self.control,
            observer=self.observer,
            clock=self.clock,
            load=self.load,
            token_source=self.token_source,
            outside_window_reason=self.outside_window_reason,
        )

    def _open(self, resume: bool, claim: Claim | None = None) -> Journal:
        latest = j.latest_run(self.state_dir)
        state = latest.state() if latest is not None else None
        if resume:
            if latest is None or state is None or state.final or state.outcome == "not_started":
                raise UsageError(
                    "nothing to resume: no unfinished go-live in " + str(self.state_dir),
                    hint="start one with `golive run PLAN`",
                )
            started = next((e for e in latest.events() if e["event"] == j.RUN_STARTED), {})
            if started.get("plan_sha256") not in (None, plan_digest(self.plan)):
                raise GoLiveBusyError(
                    f"the plan changed since run {state.run_id} started",
                    hint="resume with the plan the run started with, or `golive rollback`",
                )
            latest.append(
                j.RUN_RESUMED,
                pid=os.getpid(),
                after_step=state.current,
                runner=self.identity,
                **({"took_over_from": claim.taken_from()} if claim and claim.taken_from() else {}),
            )
            self.observer.message(
                f"resuming {state.run_id} after {state.completed[-1:] or 'start'}"
            )
            return latest
        if state is not None and state.outcome in ("running", "interrupted"):
            raise GoLiveBusyError(
                f"go-live {state.run_id} is unfinished (at {state.current or 'start'})",
                hint="continue it with `golive run PLAN --resume`, "
                "or undo it with `golive rollback`",
            )
        self.control.reset()
        journal = j.open_run(self.state_dir, j.new_run_id(self.plan.release.version))
        journal.append(
            j.RUN_STARTED,
            run_id=journal.run_dir.name,
            plan=str(self.plan.source),
            plan_sha256=plan_digest(self.plan),
            release=self.plan.release.version,
            target=self.plan.target.kind,
            steps=[s.name for s in self.steps],
            pid=os.getpid(),
            runner=self.identity,
            **(
                {"outside_window_reason": self.outside_window_reason, "by": _login()}
                if self.outside_window_reason is not None
                else {}
            ),
        )
        return journal

    def _execute(self, ctx: StepContext) -> None:
        journal = ctx.journal
        total = len(self.steps)
        for index, step in enumerate(self.steps, 1):
            if step.name in journal.state().completed:
                self.observer.step_skipped(step.name, "completed before the resume")
                continue
            started = False
            try:
                ctx.checkpoint()
                journal.append(j.STEP_STARTED, step=step.name, title=step.title, index=index)
                started = True
                self.observer.step_started(step.name, step.title, index, total)
                began = time.monotonic()
                result = step.run(ctx)
            except (Interrupted, KeyboardInterrupt) as exc:
                self._interrupted(ctx, step if started else None, exc)
            except (LeaseLost, StateWriteError) as exc:
                self._stopped(ctx, step, exc)
            except Exception as exc:  # noqa: BLE001 - any failure of a step triggers the rollback
                self._fail(ctx, step, exc)
            elapsed = time.monotonic() - began
            journal.append(
                j.STEP_FINISHED,
                step=step.name,
                summary=result.summary,
                figures=result.figures,
                elapsed_s=round(elapsed, 3),
            )
            self.observer.step_finished(step.name, result, elapsed)
        journal.append(j.RUN_FINISHED, outcome="succeeded")
        self.observer.message("go-live complete")

    def _failed_before(self, journal: Journal) -> dict[str, Any] | None:
        """The step whose failure started a rollback that a crash cut short (None: none)."""
        failed = None
        for event in journal.events():
            if event["event"] == j.STEP_FAILED and event.get("outcome", "failed") == "failed":
                failed = event
            elif event["event"] == j.RUN_FINISHED:
                failed = None
        return failed

    def _finish_rollback(self, ctx: StepContext, failed: dict[str, Any]) -> None:
        """Resumed after a crash during a rollback: finish the rollback, never run the failed
        step again (a traffic stage whose gate failed would otherwise raise the weight)."""
        name, reason = str(failed["step"]), str(failed.get("error", ""))
        step = next((s for s in self.steps if s.name == name), None)
        ctx.journal.append(j.NOTE, step=name, text=f"resuming the rollback after {name} failed")
        with self.guard.masking():
            undone = self._rollback(ctx, step, reason)
        outcome = getattr(errors, str(failed.get("rolls_back_as")), StepFailed)
        if not (isinstance(outcome, type) and issubclass(outcome, StepFailed)):
            outcome = StepFailed
        raise outcome(name, reason, undone, hint=self._hint(ctx))

    def _stopped(self, ctx: StepContext, step: Step, exc: LeaseLost | StateWriteError) -> None:
        """Stop acting at once, undoing nothing: the Lease is another runner's now (it resumes
        from this journal), or the journal cannot be written (an undo could not be recorded)."""
        self.observer.step_failed(step.name, exc.message)
        with contextlib.suppress(StateWriteError):
            ctx.journal.append(j.NOTE, step=step.name, text=f"stopped, nothing undone: {exc}")
        raise exc

    def _interrupted(self, ctx: StepContext, step: Step | None, exc: BaseException) -> None:
        with self.guard.masking():
            undone = []
            if step is not None:
                ctx.journal.append(
                    j.STEP_FAILED,
                    step=step.name,
                    outcome="interrupted",
                    error=str(exc) or "interrupted",
                )
                undone = self._undo(ctx, [step])
            ctx.journal.append(j.RUN_INTERRUPTED, reason=str(exc) or "interrupted", undone=undone)
        state = ctx.journal.state()
        raise Interrupted(
            f"interrupted during {step.name if step else 'a checkpoint'}; "
            + (f"undone: {'; '.join(undone)}" if undone else "nothing needed undoing"),
            hint=f"completed steps stay in place ({', '.join(state.completed) or 'none'}); "
            "continue with `golive run PLAN --resume`, or undo with `golive rollback`",
        ) from (exc if isinstance(exc, Exception) else None)

    def _fail(self, ctx: StepContext, step: Step, exc: Exception) -> None:
        reason = exc.message if isinstance(exc, GoLiveError) else f"{type(exc).__name__}: {exc}"
        self.observer.step_failed(step.name, reason)
        outcome = run_outcome(exc)  # its exit code tells the cause: docs/golive.md#exit-codes
        ctx.journal.append(
            j.STEP_FAILED,
            step=step.name,
            outcome="failed",
            error=reason,
            rolls_back_as=outcome.__name__,
        )
        with self.guard.masking():
            undone = self._rollback(ctx, step, reason)
        if isinstance(exc, (TargetUnreachableError, OutsideMaintenanceWindow)) and not undone:
            raise exc  # its own exit code and message: nothing was changed
        raise outcome(step.name, reason, undone, hint=self._hint(ctx)) from exc

    def _rollback(self, ctx: StepContext, failing: Step | None, reason: str) -> list[str]:
        state = ctx.journal.state()
        to_undo = [s for s in self.steps if s.name in state.completed]
        if failing is not None and failing not in to_undo:
            to_undo.append(failing)
        self.observer.message(f"rolling back: {reason}")
        undone = self._undo(ctx, list(reversed(to_undo)))
        state = ctx.journal.state()
        outcome = "rollback_failed" if state.undo_failures else "rolled_back"
        ctx.journal.append(
            j.RUN_FINISHED,
            outcome=outcome,
            failed_step=failing.name if failing else None,
            reason=reason,
            undone=undone,
        )
        if state.undo_failures:
            raise RollbackFailed(
                "the rollback could not undo everything: " + "; ".join(state.undo_failures),
                hint="act by hand now (docs/runbook.md#rollback); `golive status` shows the router",
            )
        return undone

    def _undo(self, ctx: StepContext, steps: Sequence[Step]) -> list[str]:
        undone = []
        for step in steps:
            ctx.journal.append(j.UNDO_STARTED, step=step.name)
            try:
                what = step.undo(ctx)
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest, then report
                message = exc.message if isinstance(exc, GoLiveError) else repr(exc)
                ctx.journal.append(j.UNDO_FAILED, step=step.name, error=message)
                self.observer.message(f"  undo {step.name} FAILED: {message}")
                continue
            ctx.journal.append(j.UNDO_FINISHED, step=step.name, what=what)
            if what:
                undone.append(f"{step.name}: {what}")
                self.observer.message(f"  undone {step.name}: {what}")
        return undone

    def _hint(self, ctx: StepContext) -> str:
        backup = ctx.figures("backup")
        parts = []
        with contextlib.suppress(GoLiveError):
            parts.append(
                f"the service is on {ctx.target.router_state().active or 'no single slot'}"
            )
        if backup.get("path"):
            parts.append(
                f"backup kept at {backup['path']} (sha256 {str(backup.get('sha256'))[:16]}…); "
                "restore only if the data must go back: "
                f'pg_restore --clean --if-exists -d "$DATABASE_URL" {backup["path"]}'
            )
        parts.append(f"report: {ctx.journal.run_dir / 'report.md'}")
        return "; ".join(parts)
