"""The suite's clock-sensitive tests pass when they run 20 minutes after they were collected.

A slow machine collects the suite and reaches a test many minutes later. ``--clock-skew-s``
(tests/conftest.py) moves the wall clock of the pytest process forward once collection is done,
so any token, timestamp or deadline made at collection looks that old. The service runs in the
same process (over ASGI), so it judges token expiry by the moved clock too.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SKEW_S = 20 * 60
# The tests that run wholly in this process (no server of their own whose clock would not move)
# and make or judge a time: tokens (minted, verified, cached, expired), signing keys, rate-limit
# windows, the maintenance window, approvals and dwells, the checklist's ages, the audit's ignore
# expiries, the review's date, golive's deadlines and backup age, the notifications' backoff;
# and the service's API, routing, writer and readiness tests, tokens included. The rest of the
# unit suite makes no time of its own; tests/unit/test_clock_at_import.py checks every test
# module (these and the rest) for a clock read at import.
CLOCK_SENSITIVE = [
    "tests/unit/service",
    "tests/unit/routing",
    "tests/unit/sources",
    *(
        f"tests/unit/golive/test_{name}.py"
        for name in (
            "approval",
            "checklist",
            "credentials",
            "exporter",
            "hold",
            "live_page",
            "maintenance_window",
            "notify",
            "review_pack",
            "security_audit",
            "signing_keys",
            "window_enforcement",
        )
    ),
    "tests/integration/service",
    f"--ignore={Path(__file__).relative_to(REPO)}",
    # The service in processes of its own, whose clock the skew does not move: tokens minted by
    # the moved clock would look 20 minutes early to them, and Retry-After would be judged
    # against another window.
    "--ignore=tests/integration/service/test_jwks_rotation_http.py",
    "--ignore=tests/integration/service/test_rate_limit_processes.py",
]

pytestmark = pytest.mark.slow


def _pytest(basetemp: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """A nested pytest session with a base directory of its own: without one it would reset the
    shared ``pytest-of-<user>`` folder to mode 0700, and an embedded PostgreSQL of this session,
    which runs as another user, could no longer reach its data directory."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={basetemp}",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_token_tests_pass_twenty_minutes_after_collection() -> None:
    # A short base directory: the nested tests put unix sockets in theirs (108 bytes at most).
    with tempfile.TemporaryDirectory(prefix="skew-") as nested:
        run = _pytest(Path(nested), f"--clock-skew-s={SKEW_S}", *CLOCK_SENSITIVE)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_a_token_minted_at_collection_fails_under_the_skew(tmp_path: Path) -> None:
    """The guard can fail: the shape of the bug it exists for is caught."""
    (tmp_path / "conftest.py").write_text(
        (REPO / "tests" / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "test_stale.py").write_text(
        """
import time
import jwt
import pytest

def _token():
    return jwt.encode({"exp": int(time.time()) + 600}, "k" * 32, algorithm="HS256")

CASES = [_token()]  # minted at collection: the bug

@pytest.mark.parametrize("token", CASES)
def test_token_is_still_valid(token):
    jwt.decode(token, "k" * 32, algorithms=["HS256"])
""",
        encoding="utf-8",
    )
    fresh = _pytest(tmp_path / "fresh", str(tmp_path), cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stdout[-2000:]
    skewed = _pytest(tmp_path / "skewed", f"--clock-skew-s={SKEW_S}", str(tmp_path), cwd=tmp_path)
    assert skewed.returncode == 1
    assert "ExpiredSignatureError" in skewed.stdout
