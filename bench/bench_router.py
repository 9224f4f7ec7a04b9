"""The local target's router (HAProxy) in front of a slot, measured in the same run.

1. Throughput and p99 through HAProxy vs straight to the slot (wrk -t2 -c64, saturation, the
   real assessment endpoint on PostgreSQL). Goal: >= 0.8x direct.
2. Added p50 at a fixed 500 req/s (the open-loop generator, no coordinated omission).
   Goal: <= 1 ms.
3. Time from the runtime-API switch command to new requests landing on the other slot (every
   one after it), over repeated switches under a 250 req/s background load — which must not
   lose a request.

Run from the repository root: ``python -m bench.bench_router``. Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx
import yaml

from bench.harness import OUT, free_port, machine, median, record, wrk
from golive.load import BackgroundLoad, LoadPlan, run_load
from golive.plan import load
from golive.rehearsal import environment
from golive.rehearsal.rehearse import background_plan, client_ids
from golive.service import service_cli, service_token
from golive.targets.local import LocalTarget

ROUNDS = 5
WRK_SECONDS = 6
FIXED_RATE = 500
FIXED_SECONDS = 5
FIXED_ROUNDS = 3
SWITCHES = 10
REPO = Path(__file__).resolve().parents[1]


def bench_plan() -> Path:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    state = OUT / "golive-router"
    data["target"]["state_dir"] = str(state)
    data["target"]["router"]["port"] = free_port()
    data["database"]["embedded_dir"] = str(state / "pg")
    data["database"]["backup_dir"] = str(state / "backups")
    data["slots"]["blue"]["port"] = free_port()
    data["slots"]["green"]["port"] = free_port()
    data["rehearsal"]["clients"] = 500
    path = OUT / "golive-router-plan.yaml"
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def fixed_rate_p50(url: str, token: str, client: str) -> tuple[float, float, int]:
    body = json.dumps({"clientId": client, "loanAmount": 20000, "loanTerm": 12}).encode()
    plan = LoadPlan(
        url=url,
        path="/api/v1/assessment",
        rate_per_s=FIXED_RATE,
        duration_s=FIXED_SECONDS,
        method="POST",
        body=lambda _: body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    result = asyncio.run(run_load(plan))
    return result.percentile_ms(50), result.percentile_ms(99), result.failed


def time_to_land(target: LocalTarget, slot: str) -> float:
    """Seconds from the switch command to the first answer of ``slot``; then 50 more in a row."""
    with httpx.Client(base_url=target.service_url(), timeout=5) as client:
        started = time.perf_counter()
        target.switch(slot)  # type: ignore[arg-type]
        while client.get("/health").headers.get("x-slot") != slot:
            pass
        landed = time.perf_counter() - started
        for _ in range(50):
            answered = client.get("/health").headers.get("x-slot")
            if answered != slot:
                raise RuntimeError(f"a request landed on {answered} after the switch to {slot}")
    return landed


def main() -> None:
    plan = load(bench_plan())
    target = environment.up(plan)
    try:
        target.deploy("green")
        target.wait_ready("green", 60)
        token = service_token(target.service_env(), service_cli(), "bench", 3600)
        client = "123e4567-e89b-12d3-a456-426614174000"
        body = json.dumps({"clientId": client, "loanAmount": 20000, "loanTerm": 12})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        direct_url, router_url = target.slot_url("blue"), target.service_url()

        runs: dict[str, list] = {"direct": [], "router": []}
        for url in (direct_url, router_url):  # warm-up: connections, caches, the JIT-less path
            wrk(url, "/api/v1/assessment", body, headers, seconds=2)
        for _ in range(ROUNDS):
            for name, url in (("direct", direct_url), ("router", router_url)):
                runs[name].append(
                    wrk(url, "/api/v1/assessment", body, headers, seconds=WRK_SECONDS)
                )
        rps = {n: median([r.rps for r in rs]) for n, rs in runs.items()}
        p99 = {n: median([r.p99_ms for r in rs]) for n, rs in runs.items()}
        errors = {n: sum(r.errors for r in rs) for n, rs in runs.items()}

        time.sleep(3)  # let the service settle after saturation
        samples: dict[str, list[tuple[float, float, int]]] = {"direct": [], "router": []}
        for _ in range(FIXED_ROUNDS):
            for name, url in (("router", router_url), ("direct", direct_url)):
                samples[name].append(fixed_rate_p50(url, token, client))
        fixed = {
            name: (
                median([x[0] for x in xs]),
                median([x[1] for x in xs]),
                sum(x[2] for x in xs),
            )
            for name, xs in samples.items()
        }

        clients = client_ids(target.database_url(), 500)
        background = BackgroundLoad(background_plan(router_url, token, clients, 250)).start()
        landings = []
        try:
            for index in range(SWITCHES):
                landings.append(time_to_land(target, "green" if index % 2 == 0 else "blue"))
                time.sleep(0.5)
        finally:
            result = background.stop()
        target.switch("blue")
    finally:
        environment.stop_everything(target)

    ratio = rps["router"] / rps["direct"]
    added_p50 = fixed["router"][0] - fixed["direct"][0]
    text = f"""
Machine: {machine()}; one slot of 2 workers on the embedded PostgreSQL;
HAProxy 1 thread; wrk -t2 -c64 after a warm-up, {ROUNDS} rounds of {WRK_SECONDS} s each
alternating direct and router, medians; all on the same 2 shared cores.
Command: `python -m bench.bench_router`.

| path | req/s | p99 ms | errors |
|---|---|---|---|
| direct to the slot | {rps["direct"]:.0f} | {p99["direct"]:.2f} | {errors["direct"]} |
| through HAProxy | {rps["router"]:.0f} | {p99["router"]:.2f} | {errors["router"]} |

- router / direct throughput at saturation: **{ratio:.2f}×** (goal ≥ 0.8×)
- at a fixed {FIXED_RATE} req/s (open loop, {FIXED_ROUNDS} alternating rounds of {FIXED_SECONDS} s,
  medians): p50 direct
  {fixed["direct"][0]:.2f} ms, through HAProxy {fixed["router"][0]:.2f} ms — added p50
  **{added_p50:.2f} ms** (goal ≤ 1 ms); p99 {fixed["direct"][1]:.2f} / {fixed["router"][1]:.2f} ms;
  failed {fixed["direct"][2]} / {fixed["router"][2]}
- switch to 100% of new requests on the other slot (runtime-API command line, then 50 requests
  in a row all on the new slot), {SWITCHES} switches under a 250 req/s background load:
  median **{statistics.median(landings) * 1000:.2f} ms**, max {max(landings) * 1000:.2f} ms;
  background load {result.count} requests, **{result.failed} failed**
"""
    print(text)
    record("Router: HAProxy vs direct, and switch time (issue 4)", text)


if __name__ == "__main__":
    main()
