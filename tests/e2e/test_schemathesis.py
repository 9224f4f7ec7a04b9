"""Property-based API testing with schemathesis against a live server: thousands of generated
requests, valid and invalid, and not one server error or response outside the schema."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, LiveServer

pytestmark = pytest.mark.slow
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "unsupported_method",
        "use_after_free",
    ]
)
MIN_CASES = 1000


def _run(url: str, token: str, seed: int, report_dir: Path) -> tuple[int, int, str]:
    result = subprocess.run(
        [
            str(VENV_BIN / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "150",
            "--checks",
            CHECKS,
            # Not the stateful phase: on 10 of 12 seeds it stopped the tool with hypothesis'
            # InvalidDefinition ("No progress can be made from state ...") before it had sent a
            # request, and a crashed run counts nothing. Our own API tests cover the links it
            # walks (an assessment read back after its POST, a client's list, idempotent retries).
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",  # one: CPython 3.11 can fail compile() run in two threads at once
            "1",  # ("AST constructor recursion depth mismatch", python/cpython#106905)
            "--seed",
            str(seed),
            "--request-timeout",
            "10",
            "--report",
            "junit",
            "--report-dir",
            str(report_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 and "= FAILURES =" not in output and "Runtime Error" in output:
        # The tool itself crashed (seen: CPython's "AST constructor recursion depth mismatch"
        # inside its generator) without finding anything in our API: this seed counts nothing.
        print(f"schemathesis crashed internally with seed {seed}; trying the next seed")
        return 0, 0, output
    assert result.returncode == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts, output[-3000:]
    return int(counts.group(1)), int(counts.group(2)), output


def test_generated_requests_cause_no_server_error_and_match_the_schema(
    live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    # One pass saturates the small schema at several hundred cases; passes with other seeds
    # explore other values until at least MIN_CASES requests were generated and checked.
    generated = passed = 0
    for seed in range(20261129, 20261129 + 12):  # a seed the tool crashes on counts nothing
        g, p, _ = _run(live_server.url, token, seed, tmp_path)
        generated, passed = generated + g, passed + p
        if generated >= MIN_CASES:
            break
    assert generated >= MIN_CASES
    assert passed == generated
    print(f"schemathesis: {generated} generated, {passed} passed")
