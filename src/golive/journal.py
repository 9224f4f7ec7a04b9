"""The go-live journal: an append-only JSON-lines event log, and the state rebuilt from it.

Journal, then act: a step is written as ``step_started`` before it runs and ``step_finished``
(with its figures) or ``step_failed`` after; undo, pause and switch events likewise. Every
append is flushed and fsynced, so a ``kill -9`` loses at most the line being written — and a
torn last line is ignored on reading. ``RunState`` is a pure fold over the events: where a
go-live stands, what completed, what was undone, how many times the router switched.

The run directory is ``<state_dir>/runs/<run-id>/`` (``journal.jsonl``, ``report.md``); the
file ``<state_dir>/runs/latest`` names the newest run. ``RunLock`` (``fcntl.flock`` on
``<state_dir>/golive.lock``) keeps one go-live at a time; the kernel releases it when the
holder dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from golive.errors import GoLiveBusyError, StateWriteError

FINAL_OUTCOMES = ("succeeded", "rolled_back", "rollback_failed", "abandoned")

# Event names (one per thing that happened).
RUN_STARTED = "run_started"
RUN_RESUMED = "run_resumed"
RUN_FINISHED = "run_finished"
RUN_INTERRUPTED = "run_interrupted"
STEP_STARTED = "step_started"
STEP_FINISHED = "step_finished"
STEP_FAILED = "step_failed"
UNDO_STARTED = "undo_started"
UNDO_FINISHED = "undo_finished"
UNDO_FAILED = "undo_failed"
ROUTER_SWITCHED = "router_switched"
PAUSED = "paused"
RESUMED = "resumed"
GATE_EVALUATED = "gate_evaluated"
BACKGROUND_LOAD = "background_load"
NOTE = "note"
# A stage with approval: manual passed its gates and waits for a person (`golive approve`).
APPROVAL_REQUESTED = "approval_requested"
APPROVED = "approved"
# A database step ran outside the plan's maintenance window: `--outside-window --reason TEXT`.
OUTSIDE_WINDOW = "outside_window"
# A database step refused to start: the window was closed and no override was given.
WINDOW_REFUSED = "window_refused"
# The preflight checked the plan's pre-deployment checklist: each item with its evidence.
CHECKLIST_CHECKED = "checklist_checked"
# A resumed run read the target before acting: the live Service, the flag, the slots' versions,
# beside what the journal says (a switch or weight made before a crash, its record lost).
RECONCILED = "reconciled"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


Listener = Callable[[dict[str, Any]], None]


class Journal:
    """One run's event log. ``append`` returns only after the line is on disk, then hands the
    record to every listener (``subscribe``; golive's metrics exporter is one). A listener
    runs in the appending thread and must not raise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every record appended from now on; returns the unsubscribe."""
        self.listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self.listeners.remove(listener)

        return unsubscribe

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record, flushed and fsynced; a volume that is full or read-only raises
        ``StateWriteError`` (and the caller has not acted yet: journal, then act)."""
        record = {"ts": now_iso(), "event": event, **fields}
        line = (json.dumps(record, default=str, sort_keys=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(28, f"only {written} of {len(line)} bytes written")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StateWriteError(
                f"could not write {event!r} to the journal {self.path}: {exc.strerror or exc}"
            ) from exc
        for listener in list(self.listeners):
            listener(record)
        return record

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        events = []
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write
            if isinstance(record, dict) and "event" in record:
                events.append(record)
        return events

    def state(self) -> RunState:
        return RunState.fold(self.events())

    def torn_tail(self) -> bool:
        """Whether the last line is incomplete: the process died while writing it."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return False
        if not data:
            return False
        if not data.endswith(b"\n"):
            return True
        try:
            json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        except ValueError:
            return True
        return False


@dataclass
class StepRecord:
    name: str
    started: str
    finished: str | None = None
    outcome: str = "running"  # running | succeeded | failed | interrupted
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1


@dataclass
class RunState:
    """Where a go-live stands, rebuilt from its events alone."""

    run_id: str | None = None
    plan: str | None = None
    release: str | None = None
    started: str | None = None
    finished: str | None = None
    outcome: str = "not_started"  # not_started | running | interrupted | FINAL_OUTCOMES
    steps: dict[str, StepRecord] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    undo_failures: list[str] = field(default_factory=list)
    switches: list[dict[str, Any]] = field(default_factory=list)
    paused: bool = False
    failure: str | None = None
    # The stage waiting for a person (its approval_requested event), and the approvals given.
    awaiting_approval: dict[str, Any] | None = None
    approvals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fold(cls, events: Iterable[dict[str, Any]]) -> RunState:
        state = cls()
        for event in events:
            state._apply(event)
        return state

    def _apply(self, e: dict[str, Any]) -> None:
        kind = e["event"]
        if kind == RUN_STARTED:
            self.run_id, self.plan, self.release = e.get("run_id"), e.get("plan"), e.get("release")
            self.started, self.outcome = e["ts"], "running"
        elif kind == RUN_RESUMED:
            self.outcome = "running"
        elif kind == STEP_STARTED:
            self._step_started(e)
        elif kind in (STEP_FINISHED, STEP_FAILED):
            self._step_ended(e)
        elif kind == UNDO_FINISHED:
            self.undone.append(e["step"])
        elif kind == UNDO_FAILED:
            self.undo_failures.append(f"{e['step']}: {e.get('error')}")
        elif kind == ROUTER_SWITCHED:
            self.switches.append(e)
        elif kind in (PAUSED, RESUMED):
            self.paused = kind == PAUSED
        elif kind == RUN_INTERRUPTED:
            self.outcome = "interrupted"
        elif kind == RUN_FINISHED:
            self.outcome, self.finished = e["outcome"], e["ts"]
            self.awaiting_approval = None
        elif kind in (APPROVAL_REQUESTED, APPROVED):
            self._approval(e)
        if kind in (STEP_FINISHED, UNDO_STARTED) and self._awaited_by(e.get("step")):
            self.awaiting_approval = None  # the stage moved on, or its traffic was undone

    def _approval(self, e: dict[str, Any]) -> None:
        if e["event"] == APPROVAL_REQUESTED:
            self.awaiting_approval = e
            return
        self.approvals.append(e)
        if self._awaited_by(e.get("step")):
            self.awaiting_approval = None

    def _awaited_by(self, step: Any) -> bool:
        return self.awaiting_approval is not None and self.awaiting_approval.get("step") == step

    def _step_started(self, e: dict[str, Any]) -> None:
        name = e["step"]
        previous = self.steps.get(name)
        record = StepRecord(name, e["ts"], attempts=previous.attempts + 1 if previous else 1)
        if previous is not None:
            record.started = previous.started  # a dwell is measured from the first start
        self.steps[name] = record
        if name not in self.order:
            self.order.append(name)

    def _step_ended(self, e: dict[str, Any]) -> None:
        record = self.steps.setdefault(e["step"], StepRecord(e["step"], e["ts"]))
        record.finished = e["ts"]
        failed = e["event"] == STEP_FAILED
        record.outcome = e.get("outcome", "failed") if failed else "succeeded"
        record.figures = e.get("figures", {})
        record.error = e.get("error")
        if failed and record.outcome == "failed":
            self.failure = f"{e['step']}: {e.get('error')}"

    @property
    def completed(self) -> list[str]:
        """Steps that succeeded and were not undone since, in the order they ran."""
        return [
            n for n in self.order if self.steps[n].outcome == "succeeded" and n not in self.undone
        ]

    @property
    def current(self) -> str | None:
        for name in reversed(self.order):
            if self.steps[name].outcome in ("running", "interrupted"):
                return name
        return None

    @property
    def final(self) -> bool:
        return self.outcome in FINAL_OUTCOMES

    def figures(self, step: str) -> dict[str, Any]:
        record = self.steps.get(step)
        return record.figures if record else {}


# --- runs on disk -----------------------------------------------------------------------------


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def new_run_id(release: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{release}-{secrets.token_hex(2)}"


def open_run(state_dir: Path, run_id: str) -> Journal:
    journal = Journal(runs_dir(state_dir) / run_id / "journal.jsonl")
    latest = runs_dir(state_dir) / "latest"
    try:
        journal.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = latest.with_suffix(".tmp")
        tmp.write_text(run_id + "\n", encoding="utf-8")
        tmp.replace(latest)
    except OSError as exc:
        raise StateWriteError(
            f"could not create the run directory {journal.run_dir}: {exc.strerror or exc}"
        ) from exc
    return journal


def latest_run(state_dir: Path) -> Journal | None:
    latest = runs_dir(state_dir) / "latest"
    if not latest.exists():
        return None
    run_id = latest.read_text(encoding="utf-8").strip()
    journal = Journal(runs_dir(state_dir) / run_id / "journal.jsonl")
    return journal if journal.path.exists() else None


class RunLock:
    """One go-live at a time: an exclusive ``flock`` the kernel drops when the holder dies."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "golive.lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            holder = self.holder()
            raise GoLiveBusyError(
                f"another golive command holds {self.path} (pid {holder or 'unknown'})",
                hint="wait for it, or steer it with `golive pause|resume|rollback`",
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def held_elsewhere(self) -> bool:
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def holder(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.path.read_text(encoding="utf-8").strip())
        return None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[RunLock]:
    with RunLock(state_dir) as lock:
        yield lock


# --- operator control (pause, resume, rollback, approve) -------------------------------------


class ControlChannel(Protocol):
    """How operators' requests reach a running go-live: ``read()`` gives ``by``, ``pause``,
    ``rollback`` and ``approval``; ``write(**changes)`` records a request (read-modify-write, no
    request lost) and returns what reads back. ``Control`` is the state directory's file; on
    Kubernetes the channel is a ConfigMap (``golive.targets.kubecontrol``), so an operator needs
    only access to the namespace."""

    @property
    def where(self) -> str: ...

    def read(self) -> dict[str, Any]: ...

    def write(self, **changes: Any) -> dict[str, Any]: ...

    def reset(self) -> None: ...


def control_request(data: Any) -> dict[str, Any]:
    """A stored request, normalised: the four fields every channel reads back."""
    if not isinstance(data, dict):
        data = {}
    approval = data.get("approval")
    return {
        "by": str(data.get("by") or "an operator"),
        "pause": bool(data.get("pause")),
        "rollback": bool(data.get("rollback")),
        "approval": approval if isinstance(approval, dict) else None,
    }


class Control:
    """Requests from the operator to a running go-live: a small JSON file the runner polls.

    ``pause`` and ``rollback`` are flags; ``approval`` is the approval of the stage waiting for
    a person (``run_id``, ``step``, ``weight``, ``by``, ``note``, ``at``), until the run takes it.
    Writes are read-modify-write under an ``flock``, so two commands never lose each other's
    request.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "control.json"

    @property
    def where(self) -> str:
        return str(self.path)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            data = {}
        return control_request(data)

    def write(self, **changes: Any) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = {**self.read(), **changes, "updated": now_iso()}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            tmp.replace(self.path)
        finally:
            os.close(fd)  # drops the lock
        return self.read()

    def reset(self) -> None:
        self.write(pause=False, rollback=False, approval=None, by=None)
