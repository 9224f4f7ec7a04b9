"""The service as a user runs it: a real process on a real port."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from credit_assessment.seed import SMOKE_CLIENT_ID, client_id, client_rows
from credit_assessment.store.schema import sync_url
from tests.conftest import (
    REPO,
    TEST_JWT_SECRET,
    VENV_BIN,
    LiveServer,
    free_port,
    start_server,
)

pytestmark = pytest.mark.slow
BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}


def _smoke_script(url: str, token: str) -> subprocess.CompletedProcess[str]:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"the story's smoke script needs {', '.join(missing)} (make test installs them as root)"
        )
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "smoke-tests.sh"), url],
        env={**os.environ, "API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_story_smoke_script_passes_against_a_live_server(
    live_server: LiveServer, token: str
) -> None:
    result = _smoke_script(live_server.url, token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All smoke tests passed!" in result.stdout
    assert "Assessment API passed (ID: " in result.stdout
    assert "(ID: null)" not in result.stdout


@pytest.mark.parametrize(
    ("case", "make_token", "says"),
    [
        ("wrong token", lambda good: good[:-4] + "AAAA", "HTTP 401"),
        ("no token", lambda good: "", "API_TOKEN is empty"),
    ],
)
def test_story_smoke_script_fails_on_a_refused_assessment(
    live_server: LiveServer, token: str, case: str, make_token: Any, says: str
) -> None:
    bad = make_token(token)
    result = _smoke_script(live_server.url, bad)
    assert result.returncode != 0, case
    assert "Assessment API failed" in result.stdout or "Assessment API not tried" in result.stdout
    assert says in result.stdout
    assert "All smoke tests passed!" not in result.stdout
    assert "Assessment API passed" not in result.stdout
    assert token not in result.stdout + result.stderr
    if bad:
        assert bad not in result.stdout + result.stderr


def test_story_smoke_script_fails_when_nothing_answers(token: str) -> None:
    result = _smoke_script(f"http://127.0.0.1:{free_port()}", token)
    assert result.returncode != 0
    assert "Health check failed: HTTP 000" in result.stdout


def test_logs_carry_no_token_and_no_client_name(live_server: LiveServer, token: str) -> None:
    client = httpx.Client(base_url=live_server.url, timeout=10)
    assert (
        client.post(
            "/api/v1/assessment", json=BODY, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/assessment", json=BODY, headers={"Authorization": f"Bearer {token}x"}
        ).status_code
        == 401
    )
    live_server.stop()
    log = live_server.log()
    assert '"event":"request_completed"' in log
    assert token not in log
    assert TEST_JWT_SECRET not in log
    smoke_client_name = client_rows(1)[0]["full_name"]
    assert smoke_client_name not in log


async def _hammer(url: str, token: str, until: float, results: list[int | str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        i = 0
        while time.monotonic() < until:
            i += 1
            body = {"clientId": str(client_id(i % 100)), "loanAmount": 10000 + i, "loanTerm": 12}
            try:
                r = await client.post("/api/v1/assessment", json=body, headers=headers)
                results.append(r.status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)


def test_sigterm_drains_then_exits_without_failing_a_request(
    tmp_path: Path, database_url: str, token: str
) -> None:
    drain_s = 3.0
    server = start_server(
        tmp_path, {"DATABASE_URL": database_url, "SHUTDOWN_DRAIN_S": str(drain_s)}, workers=2
    )
    results: list[int | str] = []
    ready_during_drain: list[int] = []

    async def scenario() -> None:
        load_until = (
            time.monotonic() + 1.0 + drain_s / 2
        )  # a balancer notices within half the drain
        load = [
            asyncio.create_task(_hammer(server.url, token, load_until, results)) for _ in range(6)
        ]
        await asyncio.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=5) as probe:
            ready_during_drain.append((await probe.get(f"{server.url}/ready")).status_code)
        await asyncio.gather(*load)

    asyncio.run(scenario())
    exit_code = server.process.wait(timeout=30)
    assert exit_code == 0, server.log()[-2000:]
    assert ready_during_drain == [503]
    assert results, "no load was sent"
    assert set(results) == {201}, {r for r in results if r != 201}
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT count(*) FROM assessments"))
    engine.dispose()
    assert stored == len(results)


def _seed_embedded(cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`credit-assessment seed` of 3 clients on the embedded PostgreSQL under ``data_dir``."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "JWT_SECRET": TEST_JWT_SECRET,
        "APP_ENV": "test",
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [str(VENV_BIN / "credit-assessment"), "seed", "--clients", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_embedded_database_serves_and_keeps_data_across_restarts(
    tmp_path: Path, token: str
) -> None:
    seeded = _seed_embedded(tmp_path, tmp_path / "data")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 3 clients" in seeded.stdout
    overrides = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""}
    first = start_server(tmp_path, overrides)
    try:
        created = httpx.post(
            f"{first.url}/api/v1/assessment",
            json=BODY,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
    finally:
        assert first.stop() == 0
    # No drain this time: uvicorn then re-raises SIGTERM after its shutdown; still a clean exit.
    second = start_server(tmp_path, {**overrides, "SHUTDOWN_DRAIN_S": "0"})
    try:
        again = httpx.get(
            f"{second.url}/api/v1/assessment/{created.json()['id']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert again.status_code == 200
        assert again.json() == created.json()
    finally:
        assert second.stop() == 0
    pg_dir = str((tmp_path / "data" / "pg").resolve())
    deadline = time.monotonic() + 15
    while _postgres_serving(pg_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postgres_serving(pg_dir), "the embedded PostgreSQL outlived the service"


@pytest.mark.parametrize(
    ("how", "workers", "stop_signal"),
    [
        ("SIGTERM, one worker", 1, signal.SIGTERM),
        ("SIGINT, two workers", 2, signal.SIGINT),
        ("the supervisor killed (SIGKILL), two workers", 2, signal.SIGKILL),
        ("a single worker killed (SIGKILL)", 1, signal.SIGKILL),
    ],
)
def test_embedded_database_stops_however_the_service_ends(
    tmp_path: Path, how: str, workers: int, stop_signal: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    pg_dir = (data_dir / "pg").resolve()
    _seed_embedded(tmp_path, data_dir).check_returncode()
    # A process that used this server earlier and died without its exit hooks (a crash) is
    # still listed as a user: it must not keep the server alive for ever.
    (pg_dir / ".handle_pids.json").write_text(json.dumps([_ended_pid()]))
    server = start_server(
        tmp_path,
        {"DATA_DIR": str(data_dir), "DATABASE_URL": "", "SHUTDOWN_DRAIN_S": "0"},
        workers=workers,
    )
    postmaster = int((pg_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    assert _postgres_serving(str(pg_dir))
    server.process.send_signal(stop_signal)
    server.process.wait(30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        (pg_dir / "postmaster.pid").exists() or _process_exists(postmaster)
    ):
        time.sleep(0.2)
    assert not (pg_dir / "postmaster.pid").exists(), f"{how}: postmaster.pid left behind"
    assert not _process_exists(postmaster), f"{how}: PostgreSQL pid {postmaster} still running"
    assert not _postgres_serving(str(pg_dir)), how


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _process_exists(pid: int) -> bool:
    """Running, not merely waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _postgres_serving(pg_dir: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and pg_dir.encode() in args:
            return True
    return False


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["token", "--ttl", "0"], {}, "--ttl"),
        (["seed", "--clients", "0"], {}, "--clients"),
        (["token"], {"PORT": "not-a-port"}, "port"),
        (["token"], {"APP_ENV": "production"}, "DATABASE_URL"),
        (["token"], {"JWT_SECRET_FILE": "/nonexistent/secret"}, "JWT_SECRET_FILE"),
        (["token"], {"SLOT": "blue green"}, "slot"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "credit-assessment"), *args],
        env={**os.environ, "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert says.lower() in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path, {"DATABASE_URL": database_url}, workers=2)
    children = [
        stat.parent.name
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _field(stat, 3) == str(server.process.pid)
    ]
    assert len(children) == 2
    server.process.kill()  # SIGKILL: no chance to forward anything
    server.process.wait(10)
    deadline = time.monotonic() + 20
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)]
        time.sleep(0.2)
    assert alive == [], "workers kept running after their supervisor was killed"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/health", timeout=2)


def _field(stat: Path, index: int) -> str:
    """A field of /proc/PID/stat (after the command name, which may contain spaces)."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[index - 2]
    except (OSError, IndexError):
        return ""


def _state(pid: str) -> str:
    return _field(Path(f"/proc/{pid}/stat"), 2) or "Z"


def test_fault_switches_reach_every_worker(tmp_path: Path, database_url: str, token: str) -> None:
    server = start_server(
        tmp_path, {"DATABASE_URL": database_url, "REHEARSAL_FAULTS": "true"}, workers=2
    )
    try:
        switched = httpx.post(f"{server.url}/rehearsal/faults", json={"errorRate": 1.0}, timeout=5)
        assert switched.status_code == 200
        time.sleep(1.0)  # workers follow the shared switches within a poll interval
        limits = httpx.Limits(max_keepalive_connections=0)  # new connections: both workers answer
        with httpx.Client(base_url=server.url, timeout=5, limits=limits) as client:
            statuses = {
                client.post(
                    "/api/v1/assessment", json=BODY, headers={"Authorization": f"Bearer {token}"}
                ).status_code
                for _ in range(30)
            }
            views = {client.get("/rehearsal/faults").json()["errorRate"] for _ in range(20)}
        assert statuses == {500}
        assert views == {1.0}
    finally:
        server.stop()
