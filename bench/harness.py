"""What the benchmarks share: a database, servers started as real processes, wrk, RESULTS.md."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "RESULTS.md"
OUT = REPO / "bench" / "out"
SECRET = "bench-signing-secret-" + "0" * 48  # the services' JWT key in every benchmark


def bench_token() -> str:
    """A bearer token the benchmarked services accept (signed with SECRET, one hour)."""
    from credit_assessment.api.auth import mint_token
    from credit_assessment.settings import load_settings

    return mint_token(load_settings(jwt_secret=SECRET, data_dir=OUT), "bench", 3600)


def service_env(url: str, data_dir: Path = OUT) -> dict[str, str]:
    """The environment every benchmarked service runs with: quiet logs, a test JWT key."""
    return {
        "DATABASE_URL": url,
        "JWT_SECRET": SECRET,
        "APP_ENV": "test",
        "LOG_REQUESTS": "false",
        "LOG_LEVEL": "warning",
        "DATA_DIR": str(data_dir),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        """Stop the server and every worker it started (its whole process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start(
    name: str, argv: list[str], env: dict[str, str], port: int, ready_path: str = "/health"
) -> Server:
    log = (OUT / f"{name}.log").open("wb")
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,  # its own process group, so stop() reaches its workers too
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            Server(name, process, url).stop()
            raise RuntimeError(f"{name} exited: see {OUT / (name + '.log')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + ready_path, timeout=1).status_code < 500:
                return Server(name, process, url)
        time.sleep(0.2)
    Server(name, process, url).stop()
    raise RuntimeError(f"{name} did not start")


@contextlib.contextmanager
def embedded_database() -> Iterator[str]:
    """A PostgreSQL URL: DATABASE_URL when set, else the embedded server in bench/out/pg."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    from credit_assessment.store import embedded

    OUT.mkdir(parents=True, exist_ok=True)
    yield embedded.start(OUT, database="bench")


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    path: str,
    body: str | None,
    headers: dict[str, str],
    seconds: int = 8,
    connections: int = 64,
    threads: int = 2,
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise RuntimeError(
            "wrk is not installed (Debian package wrk; `make bench` installs it as root)"
        )
    script = ["wrk.method = 'POST'" if body is not None else "wrk.method = 'GET'"]
    if body is not None:
        script.append(f"wrk.body = [[{body}]]")
    script += [f"wrk.headers['{k}'] = [[{v}]]" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write("\n".join(script) + "\n")
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            fh.name,
            url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    os.unlink(fh.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return WrkResult(rps, p50, p99, errors)


def median(values: list[float]) -> float:
    return statistics.median(values)


def record(section: str, text: str) -> None:
    """Replace (or add) ``## section`` in bench/RESULTS.md."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    block = f"## {section}\n\n{text.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    updated = (
        pattern.sub(block + "\n", current)
        if pattern.search(current)
        else current.rstrip() + "\n\n" + block
    )
    RESULTS.write_text(updated, encoding="utf-8")
    print(f'recorded in {RESULTS.relative_to(REPO)}, section "{section}"', flush=True)
