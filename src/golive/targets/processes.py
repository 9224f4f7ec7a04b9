"""Processes the local target starts, recorded so that another golive process can find them.

A process is identified by its pid *and* its start time (``/proc/<pid>/stat`` field 22), so a
recycled pid is never mistaken for ours and never signalled. Processes start in their own
session: a Ctrl+C in the operator's terminal reaches golive, which decides, not the slots.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_children: dict[int, subprocess.Popen[bytes]] = {}


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are space-separated.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_ticks: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        child = _children.get(self.pid)
        if child is not None:
            # Our own child: only reaping says it ended. /proc shows "Z" while the main thread of
            # an exiting multi-threaded process is gone and its other threads still run.
            return child.poll() is None and _start_ticks(self.pid) == self.start_ticks
        return _start_ticks(self.pid) == self.start_ticks and not _is_zombie(self.pid)

    def exit_code(self) -> int | None:
        child = _children.get(self.pid)
        return child.poll() if child is not None else None

    def send(self, sig: int) -> bool:
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
            return True
        return False

    def stop(self, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> bool:
        """Signal the process (it drains), wait up to ``timeout_s``, then SIGKILL; finally make
        sure nothing of its session is left (workers orphaned by a supervisor that died early).
        True when it was running."""
        was_running = self.send(sig)
        deadline = time.monotonic() + timeout_s
        while was_running and time.monotonic() < deadline:
            self._reap()
            if not self.alive():
                break
            time.sleep(0.05)
        if self.alive():
            self.send(signal.SIGKILL)
        for _ in range(100):
            self._reap()
            if not self.alive():
                break
            time.sleep(0.05)
        self._stop_group(grace_s=5.0)
        return was_running

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _stop_group(self, grace_s: float) -> None:
        """The process group (its own session: pgid == pid) must be empty once it stopped."""
        deadline = time.monotonic() + grace_s
        while self._group_alive() and time.monotonic() < deadline:
            self._reap()  # an unreaped child of ours keeps its group alive
            time.sleep(0.05)
        if self._group_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def _reap(self) -> None:
        child = _children.get(self.pid)
        if child is not None:
            child.poll()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(int(data["pid"]), int(data["start_ticks"]), list(data["argv"]), str(data["log"]))


def spawn(argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path) -> ProcessRecord:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv built by golive, no shell
            list(argv),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    _children[process.pid] = process
    ticks = None
    for _ in range(50):
        ticks = _start_ticks(process.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    return ProcessRecord(process.pid, ticks or 0, list(argv), str(log))
