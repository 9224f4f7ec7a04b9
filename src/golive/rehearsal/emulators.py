"""The outside systems of a local "production": the legacy system and the credit bureau.

``start`` runs both emulators (``python -m golive.rehearsal.legacy`` and ``.bureau``) on free
loopback ports, on the data files the service's ``seed`` wrote, the bureau behind an API key
generated into a 0600 file; it writes the traffic flag file with the flag DISABLED (every
client on legacy: all flags start disabled) and records everything in
``<state_dir>/local/emulators.json`` — pids with their start times, like the slots and the
router. ``slot_env`` is what every slot is started with (``LEGACY_URL``, ``BUREAU_URL``,
``BUREAU_API_KEY_FILE``, ``FLAGD_OFFLINE_FLAG_SOURCE_PATH``); ``stop`` stops them by pid.

When the plan's traffic flag is ``launchdarkly``, ``start_launchdarkly`` also runs the LaunchDarkly
stand-in (``python -m golive.rehearsal.launchdarkly``) on the loopback port of the plan's
``traffic.launchdarkly.api_url``, with an API token (for golive) and an SDK key (for the slots)
generated into 0600 files; the slots then get ``FLAG_PROVIDER=launchdarkly``,
``LAUNCHDARKLY_SDK_KEY_FILE`` and the stand-in as their SDK's base and stream URIs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from golive.errors import TargetError, UsageError
from golive.plan import Plan
from golive.smoke import Dependency
from golive.targets.processes import ProcessRecord, spawn
from golive.traffic.document import write_disabled
from golive.traffic.launchdarkly import rehearsal_token_file

RECORD = "emulators.json"
BUREAU_KEY_FILE = "bureau-api-key"
SDK_KEY_FILE = "launchdarkly-sdk-key"


def data_files(home: Path) -> tuple[Path, Path]:
    """Where ``credit-assessment seed`` writes the legacy clients and the bureau reports."""
    directory = home / "emulators"
    return directory / "legacy-clients.csv", directory / "bureau-reports.jsonl"


def flag_path(home: Path) -> Path:
    return home / "flags" / "flags.json"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load(home: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((home / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def _save(home: Path, data: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    temporary = home / (RECORD + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(home / RECORD)


def _bureau_key(home: Path) -> Path:
    return _secret_file(home / "secrets" / BUREAU_KEY_FILE)


def _secret_file(path: Path) -> Path:
    """A generated secret in a 0600 file (kept when it exists)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path


def _wait_healthy(name: str, record: ProcessRecord, url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as http:  # one client: each new one builds a TLS context
        while time.monotonic() < deadline:
            if not record.alive():
                tail = Path(record.log).read_text(encoding="utf-8", errors="replace")[-1500:]
                raise TargetError(f"the {name} emulator exited:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(url).status_code == 200:
                    return
            time.sleep(0.1)
    raise TargetError(f"the {name} emulator did not answer {url} within {timeout_s:g}s")


def start(home: Path) -> dict[str, str]:
    """Start both emulators (idempotent: running ones are kept); their URLs by name."""
    data = _load(home)
    legacy_file, bureau_file = data_files(home)
    for path in (legacy_file, bureau_file):
        if not path.exists():
            raise TargetError(f"{path} is missing: seed the clients first")
    key_file = _bureau_key(home)
    python = sys.executable
    legacy_args = ["-m", "golive.rehearsal.legacy", "--clients", str(legacy_file)]
    bureau_args = ["-m", "golive.rehearsal.bureau", "--reports", str(bureau_file)]
    bureau_env = {"BUREAU_API_KEY": key_file.read_text(encoding="utf-8").strip()}
    specs: dict[str, tuple[list[str], dict[str, str], str]] = {
        "legacy": (legacy_args, {}, HEALTH["legacy"][1]),
        "bureau": (
            [*bureau_args, "--api-key-env", "BUREAU_API_KEY"],
            bureau_env,
            HEALTH["bureau"][1],
        ),
    }
    urls = {}
    for name, (args, extra_env, health) in specs.items():
        entry = data.get(name) or {}
        record = ProcessRecord.from_json(entry["process"]) if "process" in entry else None
        if record is None or not record.alive():
            port = _free_port()
            argv = [python, *args, "--port", str(port), "--seed", "1"]
            env = {**os.environ, **extra_env}
            record = spawn(argv, env, home / "logs" / f"{name}.log", home)
            entry = {"process": record.to_json(), "url": f"http://127.0.0.1:{port}"}
            data[name] = entry
            _save(home, data)
        _wait_healthy(name, record, entry["url"] + health)
        urls[name] = str(entry["url"])
    data["bureau_key_file"] = str(key_file)
    data["flag_file"] = str(flag_path(home))
    if not flag_path(home).exists():
        write_disabled(flag_path(home))
    _save(home, data)
    return urls


def start_launchdarkly(home: Path, plan: Plan) -> str:
    """Start the LaunchDarkly stand-in on the plan's loopback API URL (idempotent); its URL."""
    settings = plan.traffic.launchdarkly
    url = httpx.URL(settings.api_url if settings else "")
    if settings is None or url.host != "127.0.0.1" or url.scheme != "http" or not url.port:
        raise UsageError(
            "a rehearsal's LaunchDarkly is the stand-in on loopback: traffic.launchdarkly.api_url "
            "must be http://127.0.0.1:PORT",
            hint="deploy/golive/rehearsal-launchdarkly.yaml is an example",
        )
    data = _load(home)
    token_file = _secret_file(rehearsal_token_file(plan))
    sdk_key_file = _secret_file(home / "secrets" / SDK_KEY_FILE)
    entry = data.get("launchdarkly") or {}
    record = ProcessRecord.from_json(entry["process"]) if "process" in entry else None
    base = f"http://127.0.0.1:{url.port}"
    if record is None or not record.alive():
        argv = [
            *(sys.executable, "-m", "golive.rehearsal.launchdarkly", "--port", str(url.port)),
            *("--project", settings.project, "--environment", settings.environment),
            *("--flag-key", plan.traffic.flag_key),
            *("--api-token-env", "STANDIN_API_TOKEN", "--sdk-key-env", "STANDIN_SDK_KEY"),
        ]
        env = {
            **os.environ,
            "STANDIN_API_TOKEN": token_file.read_text(encoding="utf-8").strip(),
            "STANDIN_SDK_KEY": sdk_key_file.read_text(encoding="utf-8").strip(),
        }
        record = spawn(argv, env, home / "logs" / "launchdarkly.log", home)
        entry = {"process": record.to_json(), "url": base}
    data["launchdarkly"] = entry
    data["launchdarkly_sdk_key_file"] = str(sdk_key_file)
    _save(home, data)
    _wait_healthy("LaunchDarkly", record, base + HEALTH["launchdarkly"][1])
    return base


def slot_env(home: Path) -> dict[str, str]:
    """The variables a slot needs to reach the emulators and the flag file (empty: none)."""
    data = _load(home)
    env = {}
    if data.get("legacy"):
        env["LEGACY_URL"] = str(data["legacy"]["url"])
    if data.get("bureau"):
        env["BUREAU_URL"] = str(data["bureau"]["url"])
        env["BUREAU_API_KEY_FILE"] = str(data["bureau_key_file"])
    if data.get("flag_file"):
        env["FLAGD_OFFLINE_FLAG_SOURCE_PATH"] = str(data["flag_file"])
    if data.get("launchdarkly"):
        url = str(data["launchdarkly"]["url"])
        env["FLAG_PROVIDER"] = "launchdarkly"
        env["LAUNCHDARKLY_SDK_KEY_FILE"] = str(data["launchdarkly_sdk_key_file"])
        env["LAUNCHDARKLY_BASE_URI"] = url
        env["LAUNCHDARKLY_STREAM_URI"] = url
    return env


# Each emulator's health path and the answer that proves it is that emulator.
HEALTH = {
    "legacy": ("legacy system", "/legacy/health", {"status": "UP"}),
    "bureau": ("credit bureau", "/health", {"status": "ok"}),
    "launchdarkly": ("LaunchDarkly", "/health", {"status": "ok"}),
}


def dependencies(home: Path) -> list[Dependency]:
    """The emulators this state directory started, as the smoke test checks them."""
    data = _load(home)
    found = []
    for key, (name, path, expect) in HEALTH.items():
        if (data.get(key) or {}).get("url"):
            found.append(Dependency(name, str(data[key]["url"]) + path, expect))
    return found


def stop(home: Path) -> list[str]:
    """Stop the emulators this state directory recorded, by pid; the flag file is removed."""
    data = _load(home)
    stopped = []
    for name in ("legacy", "bureau", "launchdarkly"):
        entry = data.get(name) or {}
        if "process" in entry:
            record = ProcessRecord.from_json(entry["process"])
            if record.stop(timeout_s=5):
                stopped.append(f"{name} emulator (pid {record.pid})")
    (home / RECORD).unlink(missing_ok=True)
    flag_path(home).unlink(missing_ok=True)
    return stopped
