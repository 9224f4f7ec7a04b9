"""Processes golive starts (slots, monitoring, emulators) are stopped and reaped, not left as
zombies that a later look at /proc would still count as running."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from golive.targets.processes import ProcessRecord, spawn

# On SIGTERM the main thread exits at once (pthread_exit) while another thread drains for a
# second before the process ends: /proc then shows the process as a zombie ("Z") that is still
# running, as an exiting Alertmanager or uvicorn can be.
THREADED = """
import ctypes, os, signal, threading, time

def drain():
    time.sleep(1.0)
    os._exit(0)

def on_term(*_):
    threading.Thread(target=drain).start()
    ctypes.CDLL(None).pthread_exit(None)

signal.signal(signal.SIGTERM, on_term)
time.sleep(30)
"""


def test_a_stopped_child_is_reaped_and_reads_as_ended(tmp_path: Path) -> None:
    script = tmp_path / "threaded.py"
    script.write_text(THREADED, encoding="utf-8")
    record = spawn([sys.executable, str(script)], dict(os.environ), tmp_path / "log", tmp_path)
    time.sleep(0.5)
    assert record.alive()
    record.send(signal.SIGTERM)
    time.sleep(0.3)
    assert record.alive(), "still draining, yet read as ended (its main thread is a zombie)"
    assert record.stop(timeout_s=10) is True
    assert not record.alive()
    assert not Path(f"/proc/{record.pid}").exists(), "left as a zombie: never reaped"
    assert record.exit_code() == 0, "it was killed instead of being let finish its drain"
    assert record.stop() is False  # idempotent


def test_a_record_read_back_from_state_follows_the_process_by_its_start_time(
    tmp_path: Path,
) -> None:
    record = spawn(["sleep", "30"], dict(os.environ), tmp_path / "log", tmp_path)
    copy = ProcessRecord.from_json(record.to_json())
    assert copy.alive()
    stranger = ProcessRecord(record.pid, record.start_ticks + 1, record.argv, record.log)
    assert not stranger.alive(), "a reused pid is not our process"
    record.stop(timeout_s=5)
    assert not copy.alive()
