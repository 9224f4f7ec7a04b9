"""Throughput and latency of ``POST /api/v1/assessment`` against a conventional peer and a floor.

All three run in the same session, on the same server stack (uvicorn, uvloop, httptools, same
worker count) and the same PostgreSQL, loaded by wrk from the same machine:

1. ours: auth, validation, profile lookup, the decision engine, durable storage (group commit);
2. peer: FastAPI + pydantic + one commit per request (same durability: a 201 means committed);
3. floor: a bare ASGI app returning a constant JSON document.

Then the open-loop generator holds 1,000 requests/s against ours to read p50/p99 at that rate.

    python -m bench.bench_api [--seconds 8] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import sqlalchemy as sa

from bench.harness import (
    BIN,
    OUT,
    bench_token,
    embedded_database,
    free_port,
    machine,
    median,
    record,
    service_env,
    start,
    wrk,
)
from credit_assessment.seed import SMOKE_CLIENT_ID
from golive.load import LoadPlan, run_load

BODY = json.dumps({"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12})


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with embedded_database() as url:
        from bench.peers import create_peer_table
        from credit_assessment.store import schema

        schema.upgrade(url)
        create_peer_table(url)
        _seed(url)
        env = service_env(url)
        token = bench_token()
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        uvicorn = [
            str(BIN / "uvicorn"),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
        ]
        ports = {name: free_port() for name in ("ours", "peer", "floor")}
        commands = {
            "ours": (
                [
                    str(BIN / "credit-assessment"),
                    "serve",
                    "--port",
                    str(ports["ours"]),
                    "--workers",
                    str(args.workers),
                ],
                "/ready",
            ),
            "peer": (
                [*uvicorn, "--port", str(ports["peer"]), "--factory", "bench.peers:peer"],
                "/docs",
            ),
            "floor": ([*uvicorn, "--port", str(ports["floor"]), "bench.peers:floor"], "/"),
        }
        servers = []
        try:
            for name, (argv, ready_path) in commands.items():
                servers.append(start(name, argv, env, ports[name], ready_path))
            by_name = {s.name: s for s in servers}
            results: dict[str, list] = {name: [] for name in by_name}
            for server in servers:  # warm up
                wrk(server.url, "/api/v1/assessment", BODY, auth, seconds=2)
            for _ in range(args.rounds):
                for name, server in by_name.items():
                    results[name].append(
                        wrk(server.url, "/api/v1/assessment", BODY, auth, seconds=args.seconds)
                    )
            paced = asyncio.run(_paced(by_name["ours"].url, auth, args.rate))
        finally:
            for server in servers:
                server.stop()
        stored = _count(url)
    _report(results, paced, args, stored)
    return 0


def _seed(url: str) -> None:
    """100 clients, and no assessments left from earlier runs: every run starts alike."""
    from bench.peers import peer_assessments
    from credit_assessment.seed import client_rows
    from credit_assessment.store.clients import upsert_clients
    from credit_assessment.store.schema import sync_url

    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE assessments, idempotency_keys, {peer_assessments.name}"))
        upsert_clients(conn, client_rows(100))
    engine.dispose()


def _count(url: str) -> int:
    from credit_assessment.store.schema import sync_url

    engine = sa.create_engine(sync_url(url))
    with engine.connect() as conn:
        n = int(conn.scalar(sa.text("SELECT count(*) FROM assessments")) or 0)
    engine.dispose()
    return n


async def _paced(url: str, headers: dict[str, str], rate: int):  # type: ignore[no-untyped-def]
    plan = LoadPlan(
        url=url,
        path="/api/v1/assessment",
        method="POST",
        rate_per_s=rate,
        duration_s=10,
        body=lambda _: BODY.encode(),
        headers=headers,
        connections=64,
    )
    return await run_load(plan)


def _report(results, paced, args, stored) -> None:  # type: ignore[no-untyped-def]
    med = {name: median([r.rps for r in rs]) for name, rs in results.items()}
    p50 = {name: median([r.p50_ms for r in rs]) for name, rs in results.items()}
    p99 = {name: median([r.p99_ms for r in rs]) for name, rs in results.items()}
    errors = {name: sum(r.errors for r in rs) for name, rs in results.items()}
    vs_peer = med["ours"] / med["peer"]
    vs_floor = med["ours"] / med["floor"]
    paced_summary = paced.summary()
    lines = [
        f"Machine: {machine()}; {args.workers} workers per server; wrk -t2 -c64, "
        f"{args.rounds} rounds of {args.seconds} s, medians; per-request logging off on all three "
        "(LOG_REQUESTS=false, uvicorn --no-access-log). Command: `python -m bench.bench_api`.",
        "",
        "| server | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name in ("ours", "peer", "floor"):
        lines.append(
            f"| {name} | {med[name]:.0f} | {p50[name]:.2f} | {p99[name]:.2f} | {errors[name]} |"
        )
    lines += [
        "",
        f"- ours / peer throughput: **{vs_peer:.2f}×** "
        "(goal ≥ 2×, same durability: a 201 is committed)",
        f"- ours / floor throughput: **{vs_floor:.2f}×** (goal ≥ 0.15×)",
        f"- ours at {args.rate} req/s open loop for 10 s: p50 {paced_summary['p50_ms']} ms, "
        f"p99 **{paced_summary['p99_ms']} ms** (goal ≤ 50 ms), {paced_summary['failed']} failed "
        f"of {paced_summary['requests']}",
        f"- assessments stored by ours during the run: {stored}",
    ]
    text = "\n".join(lines)
    print(text)
    record("API throughput: ours vs conventional peer vs floor (issue 2)", text)


if __name__ == "__main__":
    raise SystemExit(main())
