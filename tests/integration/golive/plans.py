"""Plans for tests of the local target: the rehearsal plan on free ports, under a temporary
state directory, with the timings a test can afford."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[3]
REHEARSAL = REPO / "deploy" / "golive" / "rehearsal.yaml"

needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(),
    reason="haproxy is not installed: apt-get install haproxy (make test installs it as root)",
)

FAST = {
    "performance": {"rate_per_s": 100, "duration_s": 4},  # the shipped plan's rate
    "hold": {"post_switch_s": 10, "keep_blue_s": 2},
    "gates": {"interval_s": 2},
    "deploy": {"drain_s": 1},
    "rehearsal": {"clients": 500, "background_ramp_s": 5},
}


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def write_plan(directory: Path, name: str = "plan.yaml", **changes: Any) -> Path:
    """The rehearsal plan on free ports under ``directory/state``, fast timings, ``changes``."""
    data = yaml.safe_load(REHEARSAL.read_text(encoding="utf-8"))
    state = directory / "state"
    _merge(data, FAST)
    _merge(
        data,
        {
            "target": {"state_dir": str(state), "router": {"port": free_port()}},
            "database": {"embedded_dir": str(state / "pg"), "backup_dir": str(state / "backups")},
            "slots": {"blue": {"port": free_port()}, "green": {"port": free_port()}},
        },
    )
    _merge(data, changes)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def same_environment(existing: Path, directory: Path, name: str, **changes: Any) -> Path:
    """Another plan for the environment of ``existing`` (same state dir and ports)."""
    data = yaml.safe_load(existing.read_text(encoding="utf-8"))
    _merge(data, changes)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def leftover_processes(state_dir: Path) -> list[str]:
    """Processes whose command line or environment names ``state_dir`` (slots, workers, HAProxy)."""
    marker = str(state_dir).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found
