"""Running the service: uvicorn (uvloop + httptools) in one or several worker processes.

Shutdown drains: on SIGTERM a worker turns ``/ready`` to 503 and keeps serving for
``SHUTDOWN_DRAIN_S`` (so a load balancer or Kubernetes stops sending it traffic), then stops
accepting, lets in-flight requests finish, commits what it queued, and exits. A second signal
skips the wait.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.connection import wait as wait_for_sentinels
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
import uvicorn

from credit_assessment.api.runtime import Lifecycle
from credit_assessment.http_protocol import CoalescingHttpToolsProtocol
from credit_assessment.settings import Settings
from credit_assessment.telemetry import MULTIPROCESS_ENV
from credit_assessment.telemetry.logs import configure_logging

log = structlog.get_logger()
GRACEFUL_TIMEOUT_S = 30
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (the default is 700)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_s: float) -> None:
        super().__init__(config)
        self._lifecycle = lifecycle
        self._drain_s = drain_s
        self._deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._deadline is None and self._drain_s > 0 and not self.should_exit:
            self._lifecycle.draining = True
            self._deadline = time.monotonic() + self._drain_s
            log.info("shutdown_draining", drain_s=self._drain_s, signal=signal.Signals(sig).name)
            return
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_heap()

    async def on_tick(self, counter: int) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return await super().on_tick(counter)


def settle_heap() -> None:
    """Move everything built at startup out of the garbage collector's sight.

    The app, its framework and its libraries are hundreds of thousands of long-lived objects
    that every full collection would walk again; frozen, only what requests allocate is
    scanned, and young collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def _uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        backlog=4096,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
        timeout_keep_alive=30,
    )


def run_worker(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    from credit_assessment.api.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set

    configure_logging(settings.log_level, slot=settings.slot, version=settings.version)
    lifecycle = Lifecycle()
    app = create_app(settings, lifecycle)
    server = DrainingServer(_uvicorn_config(app, settings), lifecycle, settings.shutdown_drain_s)
    server.run(sockets=sockets)


def _worker_main(settings: Settings, sockets: list[socket.socket]) -> None:
    _die_with_parent()
    run_worker(settings, sockets)


def _die_with_parent() -> None:
    """Ask Linux to send this worker SIGTERM if the supervisor dies (even by SIGKILL), so no
    orphaned worker keeps holding the port."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


def serve(settings: Settings) -> int:
    """Serve until told to stop; returns the process exit code."""
    if settings.workers == 1:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop_cleanly)
        run_worker(settings)
        return 0
    return _supervise(settings)


def _stop_cleanly(sig: int, _: FrameType | None) -> None:
    """After a graceful shutdown uvicorn raises the stop signal again, under the handler that was
    in place before it ran; with this one the process exits through the interpreter, so exit
    hooks run (the embedded PostgreSQL stops with the last process using it) and the exit code
    is 0, as when the supervisor of several workers stops."""
    raise SystemExit(0)


def _supervise(settings: Settings) -> int:
    if "prometheus_client" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before the workers' metrics directory was set"
        )
    metrics_dir = Path(tempfile.mkdtemp(prefix="credit-assessment-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(metrics_dir)
    sock = _uvicorn_config(None, settings).bind_socket()
    context = multiprocessing.get_context("fork")
    stopping = False
    workers: list[Any] = []

    def start_worker() -> Any:
        process = context.Process(target=_worker_main, args=(settings, [sock]), daemon=False)
        process.start()
        if stopping and process.pid is not None:  # a stop signal arrived while starting workers
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        return process

    def forward(sig: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(settings.workers):
            workers.append(start_worker())
        log.info("workers_started", workers=settings.workers, port=settings.port)
        while any(p.is_alive() for p in workers):
            wait_for_sentinels([p.sentinel for p in workers], timeout=1.0)
            for index, process in enumerate(workers):
                if process.is_alive() or process.exitcode is None:
                    continue
                _mark_dead(process.pid)
                if not stopping:
                    log.warning("worker_died", pid=process.pid, exitcode=process.exitcode)
                    workers[index] = start_worker()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)
