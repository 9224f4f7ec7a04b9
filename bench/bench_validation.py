"""Replay and compare 100,000 stored applications through the service's evaluate endpoint.

The service runs as a real process (2 workers) on PostgreSQL with 2,000 seeded clients;
100,000 historical legacy decisions are generated in SQL (``generate_series``) into
``assessments``, dated in a window of their own (January 2020) so that other rows in the
database are left out. Then, timed phase by phase, the same run as ``golive validate
--database-url-env DATABASE_URL --service URL``: read the rows, replay them (bounded
concurrency, retries), compare, render Markdown and JSON. Goal: all of it in ≤ 60 s on 2 cores.

    python -m bench.bench_validation [--rows 100000] [--concurrency 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime

import psycopg
import sqlalchemy as sa

from bench.harness import (
    BIN,
    OUT,
    bench_token,
    embedded_database,
    free_port,
    machine,
    record,
    service_env,
    start,
)
from credit_assessment.seed import client_rows
from credit_assessment.store import schema
from credit_assessment.store.clients import upsert_clients
from credit_assessment.store.schema import sync_url
from golive.database.postgres import libpq_url
from golive.validation import parse_config, render_markdown, to_json, validate
from golive.validation.database import stored_applications
from golive.validation.register import Masker
from golive.validation.replay import replay
from golive.validation.result import SourceInfo, Unanswered
from golive.validation.transport import make_transport

SINCE = datetime(2020, 1, 1, tzinfo=UTC)
UNTIL = datetime(2020, 1, 8, tzinfo=UTC)
MARK = "legacy-bench"

GENERATE = """
WITH c AS (SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS n FROM clients),
g AS (
    SELECT i, 300 + ((i::bigint * 2654435761) %% 551)::int AS s FROM generate_series(1, %(rows)s) i
)
INSERT INTO assessments (id, client_id, loan_amount, loan_term, decision, score, risk_grade,
                         reasons, engine, model_version, policy_version, input_snapshot,
                         created_at)
SELECT gen_random_uuid(), c.id, (1000 + (g.i * 7919) %% 199000)::numeric(14, 2),
       3 + (g.i * 31) %% 70,
       CASE WHEN g.s >= 640 THEN 'APPROVED' WHEN g.s >= 560 THEN 'REFER' ELSE 'DECLINED' END,
       g.s,
       CASE WHEN g.s >= 740 THEN 'A' WHEN g.s >= 640 THEN 'B' WHEN g.s >= 560 THEN 'C'
            WHEN g.s >= 460 THEN 'D' ELSE 'E' END,
       CASE WHEN g.s < 560 THEN '[{"code": "LEGACY_R07", "description": "Legacy reason R07"}]'
            ELSE '[]' END::jsonb,
       'legacy', %(mark)s, %(mark)s, '{}'::jsonb,
       %(since)s::timestamptz + (g.i * interval '6 seconds')
FROM g JOIN c ON c.n = g.i %% %(clients)s
"""

CONFIG = {
    "match": {
        "decision": "same_class",
        "grade": "within_one",
        "reasons": "ignore",
        "reason_map": {"R07": "INCOME_INSUFFICIENT"},
    },
    "anomalies": {
        # the model card's training score bands (docs/model-card.md, grades A-E)
        "training": {
            "model_version": "scorecard-2.0-3ba791cd00",
            "edges": [507, 527, 547, 567],
            "shares": [0.337, 0.163, 0.169, 0.136, 0.195],
        }
    },
    "expected_changes": [
        {
            "id": "term-over-60",
            "description": "new policy declines terms over 60 months",
            "when": {"loan_term_gt": 60, "new_decision": "DECLINED"},
            "reason": "credit policy consumer-loan-2.0 caps the term at 60 months",
            "expires": "2027-03-31",
        }
    ],
}


def prepare(url: str, rows: int, clients: int) -> None:
    schema.upgrade(url)
    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        upsert_clients(conn, client_rows(clients))
    engine.dispose()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DELETE FROM assessments WHERE model_version = %s", (MARK,))
        params = {"rows": rows, "mark": MARK, "since": SINCE, "clients": clients}
        conn.execute(GENERATE, params)
        conn.execute("ANALYZE assessments")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with embedded_database() as url:
        started = time.perf_counter()
        prepare(url, args.rows, args.clients)
        print(f"generated {args.rows} stored applications in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = service_env(url, OUT / "validation-data")
        argv = [str(BIN / "credit-assessment"), "serve", "--port", str(port)]
        server = start(
            "validation-service", [*argv, "--workers", str(args.workers)], env, port, "/ready"
        )
        try:
            token = bench_token()
            figures = run(url, server.url, token, args.concurrency)
        finally:
            server.stop()
    report(figures, args)
    return 0 if figures["unanswered"] == 0 else 1


def run(url: str, service: str, token: str, concurrency: int) -> dict[str, float | int]:
    config = parse_config({**CONFIG, "replay": {"concurrency": concurrency}})
    masker = Masker.per_run()
    t0 = time.perf_counter()
    rows = stored_applications(url, SINCE, UNTIL, None, config.match.reason_map)
    t1 = time.perf_counter()
    transport = make_transport(
        service, config.replay.path, token, config.replay.timeout_s, concurrency
    )
    import uvloop

    outcome = uvloop.run(replay(rows, transport, config.replay))
    t2 = time.perf_counter()
    unanswered = tuple(
        Unanswered(masker.token("application", r.application.ref), cause, n)
        for r, cause, n in outcome.unanswered
    )
    source = SourceInfo(
        "replay-database", "bench rows", len(rows), outcome.retries, outcome.elapsed_s, unanswered
    )
    result = validate(outcome.pairs, config, source, date.today(), masker)
    t3 = time.perf_counter()
    markdown = render_markdown(result)
    document = json.dumps(to_json(result), default=str)
    t4 = time.perf_counter()
    (OUT / "validation.md").write_text(markdown, encoding="utf-8")
    (OUT / "validation.json").write_text(document, encoding="utf-8")
    return {
        "rows": len(rows),
        "pairs": result.pairs,
        "unanswered": result.unanswered,
        "retries": outcome.retries,
        "read_s": t1 - t0,
        "replay_s": t2 - t1,
        "compare_s": t3 - t2,
        "render_s": t4 - t3,
        "total_s": t4 - t0,
        "expected": result.expected,
        "unexplained": result.unexplained.events,
        "classes": len(result.register),
        "passed": int(result.passed),
    }


def report(f: dict[str, float | int], args: argparse.Namespace) -> None:
    rate = f["rows"] / f["total_s"]
    lines = [
        f"Machine: {machine()}; service: {args.workers} workers on the same 2 cores as "
        f"PostgreSQL and the replay client; concurrency {args.concurrency}. "
        "Command: `python -m bench.bench_validation`.",
        "",
        "| phase | seconds |",
        "|---|---:|",
        f"| read {f['rows']:,} stored applications (SQL) | {f['read_s']:.2f} |",
        f"| replay through POST /api/v1/assessment/evaluate | {f['replay_s']:.2f} |",
        f"| compare (matrices, segments, anomalies, register) | {f['compare_s']:.2f} |",
        f"| render Markdown + JSON | {f['render_s']:.2f} |",
        f"| **total** | **{f['total_s']:.2f}** |",
        "",
        f"- **{rate:,.0f} rows/s** end to end; replay alone {f['rows'] / f['replay_s']:,.0f} "
        f"requests/s (goal: {f['rows']:,} rows in ≤ 60 s)",
        f"- unanswered **{f['unanswered']}**, retries {f['retries']}; {f['pairs']:,} pairs: "
        f"{f['expected']:,} expected differences, {f['unexplained']:,} unexplained in "
        f"{f['classes']} register classes (synthetic legacy decisions: the differences are "
        "the point, not a finding)",
        "- the replay client is plain HTTP/1.1 keep-alive over asyncio streams: with httpx the "
        "same replay ran at ~420 requests/s (client-bound), 4 minutes for 100k",
    ]
    text = "\n".join(lines)
    print(text)
    record("Legacy-vs-new validation: replay and compare (issue 7)", text)


if __name__ == "__main__":
    raise SystemExit(main())
