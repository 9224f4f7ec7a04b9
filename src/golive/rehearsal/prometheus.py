"""Prometheus and Alertmanager for the rehearsal, when the Debian binaries are installed.

``start`` writes a config scraping both slots (``job="credit-assessment"``, ``slot`` label —
the contract of the rules and dashboards) and golive's own metrics (``job="golive"``) every
second, with the committed rules from ``deploy/monitoring/prometheus/rules``, and starts
Prometheus (and Alertmanager, when present) on free loopback ports. Prometheus starts before
the go-live does, so it finds golive's exporter — on whatever port the run bound — through the
file-based discovery file the runner writes (``golive.exporter.discovery_file``); the file
starts empty. The processes are recorded in the local target's state under
``monitoring`` (pid + start time), so ``LocalTarget.down`` stops them by pid like the slots.
When ``prometheus`` is missing, the record says so and ``verify-monitoring`` reports the skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from golive.errors import TargetError
from golive.exporter import discovery_file, write_discovery
from golive.plan import Plan
from golive.targets.processes import spawn

NOT_INSTALLED = "prometheus not installed (apt-get install prometheus)"
START_TIMEOUT_S = 20.0
INTERVAL = "1s"


def repository_rules() -> Path:
    """The committed rules: beside the working directory's deploy/, else the source tree's."""
    here = Path("deploy/monitoring/prometheus/rules")
    if here.is_dir():
        return here.resolve()
    return Path(__file__).resolve().parents[3] / "deploy" / "monitoring" / "prometheus" / "rules"


def find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_config(plan: Plan, rules: Path, alertmanager_port: int | None) -> dict[str, Any]:
    slots = [
        {"targets": [f"127.0.0.1:{plan.slots.of(name).port}"], "labels": {"slot": name}}
        for name in ("blue", "green")
    ]
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": INTERVAL,
            "scrape_timeout": INTERVAL,
            "evaluation_interval": INTERVAL,
            "external_labels": {"environment": "rehearsal"},
        },
        "rule_files": [str(path) for path in sorted(rules.glob("*.rules.yml"))],
        "scrape_configs": [
            {"job_name": "credit-assessment", "metrics_path": "/metrics", "static_configs": slots},
            {
                "job_name": "golive",
                "metrics_path": "/metrics",
                "file_sd_configs": [
                    {
                        "files": [str(discovery_file(plan.state_dir.resolve()))],
                        "refresh_interval": INTERVAL,
                    }
                ],
            },
        ],
    }
    if alertmanager_port is not None:
        targets = [f"127.0.0.1:{alertmanager_port}"]
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
    return config


# Every alert goes to a receiver that delivers nowhere: the rehearsal proves Alertmanager is
# reachable and receives; the committed routing tree is tested with amtool and the e2e suite.
ALERTMANAGER_CONFIG = {
    "route": {"receiver": "rehearsal", "group_wait": "1s", "group_interval": "1s"},
    "receivers": [{"name": "rehearsal"}],
}


def _wait_healthy(url: str, record: Any, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=1.0) as http:  # one client: each new one builds a TLS context
        while time.monotonic() < deadline:
            if not record.alive():
                log = Path(record.log).read_text(encoding="utf-8", errors="replace")[-1500:]
                raise TargetError(f"{name} exited at start:\n{log}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{url}/-/ready").status_code == 200:
                    return
            time.sleep(0.2)
    raise TargetError(f"{name} was not ready within {START_TIMEOUT_S:g}s at {url}")


def start(plan: Plan, home: Path, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Start the stack; ``save`` records each process as soon as it runs (URLs, processes, or
    the skip), so a failure half way still leaves everything started stoppable by pid."""
    prometheus = find("prometheus")
    if prometheus is None:
        save({"skipped": NOT_INSTALLED})
        return {"skipped": NOT_INSTALLED}
    directory = home / "monitoring"
    directory.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {}
    alertmanager = find("prometheus-alertmanager", "alertmanager")
    am_port = None
    if alertmanager is not None:
        am_port = free_port()
        am_config = directory / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(ALERTMANAGER_CONFIG), encoding="utf-8")
        am_url = f"http://127.0.0.1:{am_port}"
        process = spawn(
            [
                alertmanager,
                f"--config.file={am_config}",
                f"--storage.path={directory / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            os.environ,
            home / "logs" / "alertmanager.log",
            directory,
        )
        record["alertmanager"] = {"process": process.to_json(), "url": am_url}
        save(record)
        _wait_healthy(am_url, process, "Alertmanager")
    else:
        record["alertmanager_skipped"] = (
            "alertmanager not installed (apt-get install prometheus-alertmanager)"
        )
    port = free_port()
    # Watched from the start, empty (no run holds the lock now): the go-live's run fills it in.
    write_discovery(discovery_file(plan.state_dir.resolve()), None)
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(prometheus_config(plan, repository_rules(), am_port), sort_keys=False),
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{port}"
    process = spawn(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
            "--rules.alert.resend-delay=1s",
        ],
        os.environ,
        home / "logs" / "prometheus.log",
        directory,
    )
    record["prometheus"] = {"process": process.to_json(), "url": url}
    save(record)
    _wait_healthy(url, process, "Prometheus")
    _wait_targets(url)
    return record


def _wait_targets(url: str) -> None:
    """Until both slots are scrape targets (discovery hands them over within ~5 s)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=1.0) as http:  # one client: each new one builds a TLS context
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = http.get(f"{url}/api/v1/targets").json()
                slots = {t["labels"].get("slot") for t in body["data"]["activeTargets"]}
                if {"blue", "green"} <= slots:
                    return
            time.sleep(0.2)
    raise TargetError(f"Prometheus at {url} has no slot targets after {START_TIMEOUT_S:g}s")
