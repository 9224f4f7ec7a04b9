"""Strangler routing: what routing a request through the service costs, and fault-to-rollback time.

1. Cost of routing. The legacy emulator (``golive.rehearsal.legacy``) and the service
   (``credit-assessment serve --workers 2``, ``LEGACY_URL`` = the emulator, the traffic flag file
   at weight 0, so every request is decided by legacy) on the embedded PostgreSQL, 2,000 seeded
   clients. The open-loop generator sends a fixed 500 requests/s (many distinct clients, the same
   amounts and terms on every path) to: the emulator directly, the service with the shadow
   evaluation on, the service with it off (``SHADOW_ENABLED=false``). Alternating rounds, same
   run; p50 and p99 from each request's scheduled start. Goal: <= 2 ms added at p50.
2. Fault to rollback. The golive traffic stages, run by the real runner against a real slot
   behind HAProxy under a 250 requests/s load, as the fault tests do
   (tests/integration/golive/traffic_rig.py): 10% then 50%; the moment 50% is verified the new
   path starts failing 5% of its requests (``POST /rehearsal/faults {"errorRate": 0.05}``). The
   time from that moment to the flag verified back at 0% on the serving instance, repeated.

Run from the repository root: ``python -m bench.bench_routing``. Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.harness import (
    BIN,
    OUT,
    Server,
    bench_token,
    free_port,
    machine,
    record,
    service_env,
    start,
)
from credit_assessment.seed import client_id
from golive.load import LoadPlan, LoadResult, Outcome, run_load

SECTION = "Routing through the service vs the legacy system directly (issue 6)"
CLIENTS = 2000
RATE = 500
FAULT_RATE = 250
FAULT = {"errorRate": 0.05}
INTERVAL_S = 2.0  # the judging interval of the fault runs (as in the fault tests)
FLAGS_AT_ZERO = {
    "flags": {
        "new-credit-assessment-enabled": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 0], ["off", 100]]},
        }
    }
}
PATHS = ("direct", "shadow on", "shadow off")
_ENGINE = re.compile(rb'"engine"\s*:\s*"([a-z_-]+)"')


# --- CPU accounting (Linux /proc) ---------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the processes of one process group (a server and its workers)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


# --- part 1: cost of routing --------------------------------------------------------------------


@dataclass
class PathRuns:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_s: float = 0.0  # the service's process group (both workers)
    legacy_cpu_s: float = 0.0  # the emulator
    generator_cpu_s: float = 0.0  # this process
    engines: Counter[str] = field(default_factory=Counter)

    def add(self, result: LoadResult) -> None:
        self.outcomes += result.outcomes
        self.seconds += result.elapsed_s

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    def percentile_ms(self, q: float) -> float:
        return LoadResult(self.outcomes, self.seconds).percentile_ms(q)

    def cpu_ms_per_request(self, seconds: float) -> float:
        return 1000 * seconds / self.requests if self.requests else float("nan")


@contextlib.contextmanager
def database() -> Iterator[str]:
    """DATABASE_URL when set, else a database of its own on the embedded server in bench/out/pg."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    from credit_assessment.store import embedded

    yield embedded.start(OUT, database="bench_routing")


def _bodies(service: bool) -> list[bytes]:
    """One body per request index modulo len: distinct clients, varied amounts and terms."""
    ids = [str(client_id(i)) for i in range(CLIENTS)]
    bodies = []
    for index in range(CLIENTS):
        client = ids[(index * 7) % CLIENTS]
        amount = 5000 + (index * 7919) % 95000
        term = (6, 12, 24, 36)[index % 4]
        if service:
            doc = {"clientId": client, "loanAmount": amount, "loanTerm": term}
        else:
            doc = {"client_id": client, "amount": amount, "term_months": term}
        bodies.append(json.dumps(doc).encode())
    return bodies


def _engine(status: int, headers: dict[str, str], body: bytes) -> str:
    match = _ENGINE.search(body)
    return match.group(1).decode() if match else f"HTTP {status}"


def _plan(url: str, path: str, bodies: list[bytes], headers: dict[str, str], seconds: float):  # type: ignore[no-untyped-def]
    return LoadPlan(
        url=url,
        path=path,
        method="POST",
        rate_per_s=RATE,
        duration_s=seconds,
        body=lambda i: bodies[i % len(bodies)],
        headers=headers,
        connections=32,
        classify=_engine,
    )


def routing_cost(rounds: int, seconds: float, workers: int) -> dict[str, PathRuns]:
    OUT.mkdir(parents=True, exist_ok=True)
    legacy_file = OUT / "routing-legacy-clients.csv"
    flag_file = OUT / "routing-flags.json"
    flag_file.write_text(json.dumps(FLAGS_AT_ZERO, indent=2) + "\n", encoding="utf-8")
    servers: dict[str, Server] = {}
    with database() as url:
        base_env = service_env(url)
        subprocess.run(
            [
                str(BIN / "credit-assessment"),
                "seed",
                "--clients",
                str(CLIENTS),
                "--legacy-file",
                str(legacy_file),
            ],
            env={**os.environ, **base_env, "MIGRATE_ON_START": "true"},
            check=True,
            capture_output=True,
            timeout=300,
        )
        token = bench_token()
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            port = free_port()
            servers["legacy"] = start(
                "routing-legacy",
                [
                    sys.executable,
                    "-m",
                    "golive.rehearsal.legacy",
                    "--port",
                    str(port),
                    "--clients",
                    str(legacy_file),
                    "--seed",
                    "1",
                ],
                {},
                port,
                "/legacy/health",
            )
            for name, shadow in (("shadow on", "true"), ("shadow off", "false")):
                port = free_port()
                env = {
                    **base_env,
                    "LEGACY_URL": servers["legacy"].url,
                    "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(flag_file),
                    "SHADOW_ENABLED": shadow,
                }
                argv = [str(BIN / "credit-assessment"), "serve", "--port", str(port)]
                argv += ["--workers", str(workers)]
                servers[name] = start(
                    "routing-service-" + name.replace(" ", "-"), argv, env, port, "/ready"
                )
            targets = {
                "direct": (servers["legacy"].url, "/legacy/credit/evaluate", _bodies(False), {}),
                "shadow on": (servers["shadow on"].url, "/api/v1/assessment", _bodies(True), auth),
                "shadow off": (
                    servers["shadow off"].url,
                    "/api/v1/assessment",
                    _bodies(True),
                    auth,
                ),
            }
            for url_, path, bodies, headers in targets.values():  # warm up, not counted
                asyncio.run(run_load(_plan(url_, path, bodies, headers, 2)))
            runs = {name: PathRuns() for name in PATHS}
            for _ in range(rounds):
                for name in PATHS:
                    url_, path, bodies, headers = targets[name]
                    runs[name].add(
                        _measured(runs[name], servers, name, url_, path, bodies, headers, seconds)
                    )
        finally:
            for server in servers.values():
                server.stop()
    return runs


def _measured(  # type: ignore[no-untyped-def]
    into: PathRuns, servers: dict[str, Server], name: str, url, path, bodies, headers, seconds
) -> LoadResult:
    service = servers.get(name)
    legacy = servers["legacy"]
    cpu_before = group_cpu_s(service.process.pid) if service and name != "direct" else 0.0
    legacy_before = group_cpu_s(legacy.process.pid)
    own_before = time.process_time()
    result = asyncio.run(run_load(_plan(url, path, bodies, headers, seconds)))
    into.generator_cpu_s += time.process_time() - own_before
    into.legacy_cpu_s += group_cpu_s(legacy.process.pid) - legacy_before
    if service and name != "direct":
        into.server_cpu_s += group_cpu_s(service.process.pid) - cpu_before
    into.engines.update(o.tag for o in result.outcomes)
    return result


# --- part 2: fault to rollback ------------------------------------------------------------------


@dataclass
class Rollback:
    seconds: float  # fault switched on -> flag verified back at 0%
    to_verdict_s: float  # fault switched on -> the FAIL verdict
    after_fail_s: float  # FAIL verdict -> flag verified at 0% on every instance
    look: int  # which look of the 50% stage failed
    gate: str
    lost: int  # assessments answered 201 but not in the database
    requests: int
    failed_requests: int


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fault_to_rollback(repetitions: int) -> list[Rollback]:
    # The fault tests' rig: an environment of its own under bench/out/golive-routing.
    from tests.integration.golive.traffic_rig import start_rig

    from golive.traffic import create

    directory = OUT / "golive-routing"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rig_lifetime = start_rig(directory)
    rig = next(rig_lifetime)
    results = []
    try:
        for n in range(repetitions):
            plan = rig.plan_with(f"errors-{n}.yaml", interval_s=INTERVAL_S)
            rig.reset()
            try:
                with rig.load_through_router(FAULT_RATE) as load:
                    run = rig.run_stages(plan, load, weights=[10, 50], fault=("traffic-50", FAULT))
            finally:
                rig.faults()  # off again, whatever happened
            rolled = run.rolled_back()
            if rolled is None or run.fault_at is None or not rolled["verified"]:
                raise RuntimeError(f"repetition {n}: no verified rollback: {run.events[-5:]}")
            failed = next(
                e
                for e in run.events
                if e["event"] == "stage_measured"
                and e["step"] == "traffic-50"
                and e["verdict"] == "FAIL"
            )
            weights = set(create(rig.plan, rig.target).read_weights().values())
            if weights != {0}:
                raise RuntimeError(f"repetition {n}: the flag reads {weights} after the rollback")
            gate = ",".join(g for g, v in failed["gates"].items() if v["verdict"] == "FAIL")
            results.append(
                Rollback(
                    seconds=run.seconds_to_rollback(),
                    to_verdict_s=_ts(failed["ts"]) - run.fault_at,
                    after_fail_s=float(rolled["after_fail_s"]),
                    look=int(failed["look"]),
                    gate=gate,
                    lost=len(load.ids) - load.stored(),
                    requests=load.result.count,
                    failed_requests=load.result.failed,
                )
            )
            print(
                f"  rollback {n + 1}: {results[-1].seconds:.2f} s ({gate}, look {failed['look']})"
            )
    finally:
        rig_lifetime.close()  # the rig's finally: target.down() stops everything it started
    return results


# --- report -------------------------------------------------------------------------------------


def _report(runs: dict[str, PathRuns], rollbacks: list[Rollback], args: argparse.Namespace) -> str:
    p50 = {n: r.percentile_ms(50) for n, r in runs.items()}
    p99 = {n: r.percentile_ms(99) for n, r in runs.items()}
    added = {n: p50[n] - p50["direct"] for n in PATHS[1:]}
    lines = [
        f"Machine: {machine()}; the generator, the service ({args.workers} workers), the legacy "
        "emulator and PostgreSQL all share these cores. Command: `python -m bench.bench_routing`.",
        "",
        f"**Cost of routing** at a fixed {RATE} requests/s (open loop, latency from each "
        f"request's scheduled start), {args.rounds} alternating rounds of {args.seconds:g} s per "
        f"path after a 2 s warm-up, percentiles over all requests of a path; {CLIENTS} seeded "
        "clients cycled, varied amounts and terms; flag file at weight 0, so the service forwards "
        "every request to the legacy emulator and stores the legacy-decided assessment.",
        "",
        "| path | requests | failed | p50 ms | p99 ms | added p50 ms | engine | "
        "CPU ms/request: service / emulator |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name in PATHS:
        r = runs[name]
        engines = ", ".join(f"{k} {v}" for k, v in sorted(r.engines.items()))
        label = {
            "direct": "legacy emulator directly",
            "shadow on": "through the service, shadow on",
            "shadow off": "through the service, shadow off",
        }[name]
        service_cpu = "-" if name == "direct" else f"{r.cpu_ms_per_request(r.server_cpu_s):.2f}"
        lines.append(
            f"| {label} | {r.requests} | {r.failed} | {p50[name]:.2f} | {p99[name]:.2f} | "
            f"{'-' if name == 'direct' else f'{added[name]:+.2f}'} | "
            f"{engines if name != 'direct' else 'legacy'} | "
            f"{service_cpu} / {r.cpu_ms_per_request(r.legacy_cpu_s):.2f} |"
        )
    on, off = runs["shadow on"], runs["shadow off"]
    shadow_cpu = on.cpu_ms_per_request(on.server_cpu_s) - off.cpu_ms_per_request(off.server_cpu_s)
    generator = runs["direct"].cpu_ms_per_request(runs["direct"].generator_cpu_s)
    service_cores = on.cpu_ms_per_request(on.server_cpu_s) * RATE / 1000
    verdict = "met" if added["shadow on"] <= 2.0 else "missed"
    lines += [
        "",
        f"- added p50 through the service, shadow on: **{added['shadow on']:+.2f} ms** "
        f"(goal ≤ 2 ms: {verdict}); shadow off: {added['shadow off']:+.2f} ms. The shadow "
        f"evaluation costs {p50['shadow on'] - p50['shadow off']:+.2f} ms at p50 and "
        f"{shadow_cpu:+.2f} ms of service CPU per request.",
        "- what bounds these figures: CPU. A routed request is a full assessment request on the "
        "service side (token check, validation, the client profile read, the HTTP call to "
        "legacy, the legacy-decided assessment stored with group commit, the shadow evaluation) "
        f"and costs {on.cpu_ms_per_request(on.server_cpu_s):.2f} ms of service CPU "
        f"({off.cpu_ms_per_request(off.server_cpu_s):.2f} ms without the shadow; PostgreSQL not "
        f"counted): at {RATE} requests/s that is {service_cores:.2f} of the 2 cores, besides "
        "PostgreSQL, the emulator and the generator (about "
        f"{generator:.2f} ms of CPU per request itself). The added p50 is of the order of that "
        "own CPU time plus the commit wait and the extra loopback hop; the p99 tail through the "
        "service is requests waiting for a core, not routing work.",
    ]
    if rollbacks:
        seconds = [r.seconds for r in rollbacks]
        lines += [
            "",
            "**Fault to rollback**: the golive traffic stages (the fault tests' rig: one slot of "
            f"1 worker behind HAProxy, embedded PostgreSQL, legacy and bureau emulators, "
            f"{FAULT_RATE} requests/s through the router), stages 10% then 50%, judged every "
            f"**{INTERVAL_S:g} s** (minimum samples 50); the new path starts failing 5% of its "
            "requests the moment 50% is verified. Measured from the fault switched on to the flag "
            "verified back at 0% on the serving instance (journal timestamps).",
            "",
            "| run | fault → FAIL verdict s | verdict → 0% verified s | **fault → 0% verified s** "
            "| failing look | gate | requests (failed) | lost assessments |",
            "|---:|---:|---:|---:|---:|---|---|---:|",
        ]
        for i, r in enumerate(rollbacks, 1):
            lines.append(
                f"| {i} | {r.to_verdict_s:.2f} | {r.after_fail_s:.2f} | {r.seconds:.2f} | "
                f"{r.look} | {r.gate} | {r.requests} ({r.failed_requests}) | {r.lost} |"
            )
        lines += [
            "",
            f"- 5% errors on the new path → flag verified at 0%: median "
            f"**{statistics.median(seconds):.2f} s**, max {max(seconds):.2f} s over "
            f"{len(seconds)} runs (budget: two judging intervals, {2 * INTERVAL_S:g} s); "
            f"{sum(r.lost for r in rollbacks)} assessments lost. Failed requests are the "
            "injected 5% of the new path's answers before the rollback.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per path")
    parser.add_argument("--seconds", type=float, default=2.5, help="seconds per round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=3, help="fault-to-rollback runs")
    args = parser.parse_args()
    started = time.monotonic()
    print(f"routing cost: {RATE} requests/s, {args.rounds} x {args.seconds:g} s per path")
    runs = routing_cost(args.rounds, args.seconds, args.workers)
    print(f"fault to rollback: {args.repetitions} runs")
    rollbacks = fault_to_rollback(args.repetitions) if args.repetitions > 0 else []
    text = _report(runs, rollbacks, args)
    print(text)
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")
    record(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
