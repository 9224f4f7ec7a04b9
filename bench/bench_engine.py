"""Decision engine cost per assessment: the scorecard alone, and the whole ``assess()``.

Run from the repository root: ``python -m bench.bench_engine``. Every one of the 4,454 shipped
applicants is assessed for the amount and term they asked for, ``--repeats`` times; figures are
medians over the repeats, in microseconds per assessment. A call to a do-nothing function with
the same arguments is timed in the same run as the floor, so the ratios survive a noisy machine.
The last line is a markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.harness import record
from credit_assessment.domain import assess
from credit_assessment.domain.scorecard import scoring_values
from credit_assessment.model import default_model, default_policy, load_applicants

TARGET_SCORER_US = 50.0


def _per_call_us(fn: Callable[..., Any], cases: list[tuple[Any, ...]], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for args in cases:
            fn(*args)
        samples.append((time.perf_counter_ns() - started) / len(cases) / 1_000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    model, policy = default_model(), default_policy()
    applicants = load_applicants()
    cases = [(a.application, a.profile, a.bureau, policy, model) for a in applicants]

    def floor(*_: Any) -> None:
        return None

    def scorer(application: Any, profile: Any, bureau: Any, _p: Any, card: Any) -> int:
        return int(card.score(scoring_values(application, profile, bureau, card.money_unit_zmw)))

    for fn in (floor, scorer, assess):  # warm caches and the allocator once
        _per_call_us(fn, cases[:500], 1)
    floor_us = _per_call_us(floor, cases, args.repeats)
    scorer_us = _per_call_us(scorer, cases, args.repeats)
    assess_us = _per_call_us(assess, cases, args.repeats)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"engine: {len(cases)} applicants x {args.repeats} repeats, medians ({machine})")
    print(f"  call floor  {floor_us:8.2f} us")
    print(f"  scorer      {scorer_us:8.2f} us  ({scorer_us / floor_us:5.1f}x floor)")
    print(f"  assess()    {assess_us:8.2f} us  ({assess_us / floor_us:5.1f}x floor)")
    verdict = "within" if scorer_us <= TARGET_SCORER_US else "OVER"
    print(f"  scorer target {TARGET_SCORER_US:.0f} us: {verdict}")
    table = "\n".join(
        [
            f"Machine: {machine}. Command: `python -m bench.bench_engine` (every packaged "
            f"applicant, {args.repeats} repeats, medians).",
            "",
            "| engine (per assessment) | scorer µs | assess() µs | floor µs |",
            "|---|---:|---:|---:|",
            f"| {len(cases)} applicants × {args.repeats}, median | {scorer_us:.1f} | "
            f"{assess_us:.1f} | {floor_us:.2f} |",
            "",
            f"- scorer: **{scorer_us:.1f} µs** per application (goal ≤ {TARGET_SCORER_US:.0f} µs); "
            f"the whole decision (policy, affordability, scorecard, reasons): {assess_us:.1f} µs",
        ]
    )
    print()
    print(table)
    record("Decision engine: time per assessment (issue 3)", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
