"""What a newcomer types works: `make help` lists every target, `make bench` every benchmark."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from bench import run_all

from tests.conftest import REPO


def _phony_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^\.PHONY:(.*)$", makefile, re.M)
    assert match, "the Makefile declares its targets .PHONY"
    return set(match.group(1).split())


def test_make_help_lists_every_target() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(
        ["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"^make (\S+)", shown, re.M))
    assert listed == _phony_targets()


def test_make_bench_runs_every_benchmark_in_bench() -> None:
    files = {p.stem.removeprefix("bench_") for p in (REPO / "bench").glob("bench_*.py")}
    assert set(run_all.BENCHMARKS) == files
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "-m bench.run_all" in makefile


def test_run_all_refuses_an_unknown_benchmark() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--only", "engine,nosuch"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "unknown benchmark nosuch" in run.stderr


def test_run_all_summary_names_figures_failures_and_where_they_went() -> None:
    ok = run_all.BenchRun(
        "engine",
        seconds=12.4,
        headline=["scorer: **31.0 µs** per application"],
        recorded=["bench/RESULTS.md § Decision engine"],
    )
    failed = run_all.BenchRun("api", returncode=3, seconds=1.0, tail=["boom"])
    text = run_all.summary([ok, failed])
    assert "engine: ok in 12 s" in text
    assert "scorer: **31.0 µs** per application" in text
    assert "recorded: bench/RESULTS.md § Decision engine" in text
    assert "api: FAILED (exit 3) in 1 s" in text
    assert "(no headline figure printed)" in text
    assert "| boom" in text
