"""The bureau emulator as a real process on a free port, fed by the service's export."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from credit_assessment.sources.bureau_export import write_reports
from tests.conftest import free_port

EMULATOR_KEY = "emulated-bureau-key-" + "ab" * 16
EMULATOR_CLIENTS = 50


class EmulatorProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def control(self, **switches: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/control", json=switches, timeout=5)
        answer.raise_for_status()
        return dict(answer.json())

    def requests_served(self) -> int:
        counts = httpx.get(f"{self.url}/control", timeout=5).json()["counts"]
        return int(counts.get("requests", 0))

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_emulator(workdir: Path, reports: Path, api_key: str | None) -> EmulatorProcess:
    port = free_port()
    env = {**os.environ}
    args = [sys.executable, "-m", "golive.rehearsal.bureau", "--port", str(port)]
    args += ["--reports", str(reports), "--seed", "1"]
    if api_key is not None:
        env["REHEARSAL_BUREAU_KEY"] = api_key
        args += ["--api-key-env", "REHEARSAL_BUREAU_KEY"]
    log_path = workdir / f"bureau-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    emulator = EmulatorProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with {process.returncode}:\n{emulator.log()}")
        try:
            if httpx.get(f"{emulator.url}/health", timeout=1).status_code == 200:
                return emulator
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    emulator.stop()
    raise RuntimeError(f"emulator not ready:\n{emulator.log()}")


@pytest.fixture(scope="module")
def reports_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bureau") / "reports.jsonl"
    write_reports(path, EMULATOR_CLIENTS)
    return path


@pytest.fixture(scope="module")
def emulator_process(
    reports_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    emulator = start_emulator(tmp_path_factory.mktemp("bureau-log"), reports_file, EMULATOR_KEY)
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator with every switch off and the counters at zero."""
    emulator_process.control(reset=True)
    return emulator_process
