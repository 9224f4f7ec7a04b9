"""How golive reaches the service's own command line: it never imports the service.

``service_cli`` finds the ``credit-assessment`` command (beside this interpreter, else on PATH);
``service_token`` mints a bearer token with it: the token of golive's own checks when the plan
has no ``auth`` section (the local target only, ``golive.credentials``) and of the rehearsal's
background load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from golive.errors import TargetError


def service_cli() -> str:
    """The service's CLI: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "credit-assessment"
    if beside.exists():
        return str(beside)
    found = shutil.which("credit-assessment")
    if found is None:
        raise TargetError(
            "the credit-assessment command is not installed",
            hint="install the project: pip install -e . (make run does it)",
        )
    return found


def service_token(
    env: Mapping[str, str], cli: str, subject: str = "golive", ttl_s: int = 900
) -> str:
    """A bearer token from the service's own CLI (golive never imports the service)."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        [cli, "token", "--subject", subject, "--ttl", str(ttl_s)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    token = result.stdout.strip()
    if result.returncode != 0 or not token:
        raise TargetError(
            f"could not mint a token with `{cli} token`: {result.stderr.strip()[-500:]}",
            hint="check JWT_SECRET (or JWT_SECRET_FILE) for the service",
        )
    return token
