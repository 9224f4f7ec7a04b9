"""Every benchmark in bench/, one after another: ``make bench`` (``python -m bench.run_all``).

Each runs as its own process with its own defaults, its output shown as it comes. At the end a
summary names each benchmark's headline figures (the lines it marks in bold), how long it took,
and the section of bench/RESULTS.md it recorded. One benchmark failing does not stop the others;
the exit code is non-zero if any failed. ``--only api,engine`` runs a subset.

The benchmarks share the 2 cores of this machine with nothing else they start, so they run in
turn, never together: their ratios are measured within each one's own run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# In the order they run: the quick, self-contained ones first.
BENCHMARKS = ("engine", "api", "router", "routing", "validation", "migration", "notify")
_RECORDED = re.compile(r'^recorded in (?P<file>\S+), section "(?P<section>[^"]+)"$')


@dataclass
class BenchRun:
    name: str
    returncode: int = 0
    seconds: float = 0.0
    headline: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def run_one(name: str) -> BenchRun:
    run = BenchRun(name)
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-u", "-m", f"bench.bench_{name}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  {line}", end="", flush=True)
            text = line.rstrip("\n")
            run.tail = [*run.tail[-19:], text]
            if match := _RECORDED.match(text):
                run.recorded.append(f"{match['file']} § {match['section']}")
            elif "**" in text:
                run.headline.append(text.strip().lstrip("-").strip())
        run.returncode = process.wait()
    run.seconds = time.monotonic() - started
    return run


def summary(runs: list[BenchRun]) -> str:
    lines = ["", "== benchmarks =="]
    for run in runs:
        verdict = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        lines.append(f"{run.name}: {verdict} in {run.seconds:.0f} s")
        lines += [f"    {h}" for h in run.headline or ["(no headline figure printed)"]]
        where = ", ".join(run.recorded) or "nothing recorded"
        lines.append(f"    recorded: {where}")
        if run.returncode != 0:
            lines += [f"    | {t}" for t in run.tail[-5:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    runs = []
    for index, name in enumerate(chosen, 1):
        print(f"[{index}/{len(chosen)}] python -m bench.bench_{name}", flush=True)
        runs.append(run_one(name))
    print(summary(runs))
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
