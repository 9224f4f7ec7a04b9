"""The go-live steps: one module each, every one with ``run`` and an idempotent ``undo``.

A step reads what it needs from the ``StepContext`` (the plan, the target, figures of the
steps before it as the journal recorded them) and returns a ``StepResult`` whose figures go
into the journal and the report. ``undo`` returns what it undid (``None``: nothing to undo)
and may run any number of times — after a failure, after a crash, by ``golive rollback``.

``golive.steps.build_steps(plan)`` is the order of a go-live; the runbook renders the same list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from golive import credentials, schedule
from golive import journal as j
from golive.errors import OutsideMaintenanceWindow, RollbackRequested

if TYPE_CHECKING:
    from golive.credentials import TokenSource
    from golive.journal import ControlChannel, Journal, RunState
    from golive.load import LiveCounts
    from golive.plan import Plan
    from golive.targets.base import Target


@dataclass
class StepResult:
    summary: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


class Clock:
    """Time as the steps see it (a fake in unit tests)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wall(self) -> datetime:
        """The current instant (UTC): what the maintenance window is judged against."""
        return datetime.now(UTC)


class Observer(Protocol):
    """Where progress goes: Rich live display, plain lines, or nothing."""

    def step_started(self, name: str, title: str, index: int, total: int) -> None: ...

    def step_finished(self, name: str, result: StepResult, elapsed_s: float) -> None: ...

    def step_skipped(self, name: str, reason: str) -> None: ...

    def step_failed(self, name: str, error: str) -> None: ...

    def message(self, text: str) -> None: ...

    def dwell(self, name: str, remaining_s: float, figures: dict[str, Any]) -> None: ...


class QuietObserver:
    def step_started(self, name: str, title: str, index: int, total: int) -> None:
        pass

    def step_finished(self, name: str, result: StepResult, elapsed_s: float) -> None:
        pass

    def step_skipped(self, name: str, reason: str) -> None:
        pass

    def step_failed(self, name: str, error: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def dwell(self, name: str, remaining_s: float, figures: dict[str, Any]) -> None:
        pass


Answer = TypeVar("Answer")


@dataclass
class StepContext:
    plan: Plan
    target: Target
    journal: Journal
    control: ControlChannel
    observer: Observer = field(default_factory=QuietObserver)
    clock: Clock = field(default_factory=Clock)
    load: LiveCounts | None = None  # the background load, when one runs (rehearsal)
    # The plan's auth (golive.credentials), built once by the runner; built here when not given.
    token_source: TokenSource | None = None
    # `golive run --outside-window --reason TEXT`: the database steps may run outside the window.
    outside_window_reason: str | None = None

    @property
    def state(self) -> RunState:
        return self.journal.state()

    def figures(self, step: str) -> dict[str, Any]:
        return self.state.figures(step)

    def _tokens(self) -> TokenSource:
        if self.token_source is None:
            self.token_source = credentials.from_plan(self.plan, self.target)
        return self.token_source

    def token(self) -> str:
        """The bearer token of golive's own requests (never journal, print or log it)."""
        return self._tokens().token()

    def authorized(
        self, call: Callable[[str], Answer], refused: Callable[[Answer], bool]
    ) -> Answer:
        """``call(token)``; when ``refused`` says the service answered 401, once more with a
        token fetched again (the one held may have expired or been revoked)."""
        answer = call(self.token())
        if refused(answer):
            self.observer.message("  the service refused the token (401): fetched a new one")
            answer = call(self._tokens().refresh())
        return answer

    def require_window(self, step: str) -> None:
        """Refuse a database step outside the plan's maintenance window, before it acts; with
        ``--outside-window --reason TEXT`` it runs and the reason is journaled."""
        window = self.plan.maintenance_window
        instant = self.clock.wall()
        if schedule.is_open(window, instant):
            return
        when = instant.astimezone(UTC).isoformat(timespec="seconds")
        described = schedule.describe(window)
        if self.outside_window_reason is None:
            self.journal.append(j.WINDOW_REFUSED, step=step, at=when, window=described)
            raise OutsideMaintenanceWindow(
                f"{step} is a database step and the maintenance window is closed at {when} "
                f"(window: {described}); golive refused to start it"
            )
        self.journal.append(
            j.OUTSIDE_WINDOW,
            step=step,
            at=when,
            window=described,
            reason=self.outside_window_reason,
        )
        self.observer.message(
            f"  {step} runs outside the maintenance window ({described}): "
            f"{self.outside_window_reason}"
        )

    def checkpoint(self) -> bool:
        """Honour pause and rollback requests; True when the run was paused meanwhile."""
        request = self.control.read()
        if request["rollback"]:
            raise RollbackRequested(
                f"rollback requested by an operator (golive rollback by {request['by']})"
            )
        if not request["pause"]:
            return False
        self.journal.append(j.PAUSED, by=request["by"])
        self.observer.message("paused by an operator: `golive resume` continues")
        while request["pause"] and not request["rollback"]:
            self.clock.sleep(0.5)
            request = self.control.read()
        self.journal.append(j.RESUMED, by=request["by"])
        if request["rollback"]:
            raise RollbackRequested(
                f"rollback requested by an operator (golive rollback by {request['by']})"
            )
        self.observer.message("resumed")
        return True


class Step(Protocol):
    name: str
    title: str

    def run(self, ctx: StepContext) -> StepResult: ...

    def undo(self, ctx: StepContext) -> str | None: ...

    def expected_s(self, plan: Plan) -> float: ...

    def manual(self, plan: Plan) -> list[str]:
        """The commands a human runs to do this step without golive."""
        ...
