"""``golive audit`` (``make audit``): scan the release, write its evidence.

Into ``<out>/<version>/``:

    runtime-requirements.txt  the runtime dependency closure of the distribution, pinned to the
                              versions installed (the locked set: constraints.txt)
    pip-audit.json            ``pip-audit --no-deps --disable-pip -r runtime-requirements.txt``
                              (the package index's vulnerability data)
    bandit.json               ``bandit -r src``
    sbom.cdx.json             CycloneDX SBOM of the runtime dependencies (``cyclonedx-py``)
    summary.json              ``golive.security.summary.summarise`` of the two, with the ignores

``--pip-audit-json`` and ``--bandit-json`` summarise saved outputs instead of running the tools
(CI runs them against fixtures, so its results cannot change under the suite). The command
fails (``AuditFailed``) when a tool cannot run, or when a finding blocks -- after writing the
files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from golive.errors import AuditFailed
from golive.security import summary as s

DISTRIBUTION = "credit-assessment"
TOOL_TIMEOUT_S = 900.0


def runtime_closure(distribution: str = DISTRIBUTION) -> dict[str, str]:
    """Every installed dependency the distribution needs at run time (no extras): name ->
    version."""
    found: dict[str, str] = {}
    todo = [Requirement(distribution)]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist.version
        for text in dist.requires or []:
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in extras
            ):
                todo.append(needed)
    found.pop(canonicalize_name(distribution), None)
    return dict(sorted(found.items()))


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        raise AuditFailed(f"{name} is not installed", hint="`make venv` installs the dev tools")
    return path


def _run(argv: list[str], ok: tuple[int, ...] = (0, 1)) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - argv of the venv's own tools, no shell
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuditFailed(f"{Path(argv[0]).name} could not run: {exc}") from exc
    if done.returncode not in ok:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise AuditFailed(f"{Path(argv[0]).name} exited {done.returncode}: {tail}")


def _version(tool: str) -> str:
    try:
        return metadata.version(tool)
    except metadata.PackageNotFoundError:
        return "?"


@dataclass
class AuditRequest:
    out: Path
    version: str
    ignore_file: Path
    source: Path = Path("src")
    pip_audit_json: Path | None = None  # saved outputs: summarise these, run nothing
    bandit_json: Path | None = None
    today: datetime | None = None


def run_tools(folder: Path, source: Path) -> None:
    pins = runtime_closure()
    requirements = folder / "runtime-requirements.txt"
    requirements.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
    _run(
        [
            _tool("pip-audit"),
            *("-r", str(requirements), "--no-deps", "--disable-pip"),
            *("-f", "json", "-o", str(folder / "pip-audit.json"), "--progress-spinner", "off"),
        ]
    )
    _run(
        [_tool("bandit"), "-r", str(source), "-q", "-f", "json", "-o", str(folder / "bandit.json")]
    )
    _run(
        [
            _tool("cyclonedx-py"),
            *("requirements", str(requirements)),
            *("--output-format", "JSON", "-o", str(folder / "sbom.cdx.json")),
        ],
        ok=(0,),
    )


def audit(request: AuditRequest) -> tuple[Path, dict[str, Any]]:
    """Scan (or summarise saved outputs) and write the folder; (summary path, summary)."""
    now = request.today or datetime.now(UTC)
    folder = request.out / request.version
    folder.mkdir(parents=True, exist_ok=True)
    if request.pip_audit_json is None and request.bandit_json is None:
        run_tools(folder, request.source)
        pip_audit_path, bandit_path = folder / "pip-audit.json", folder / "bandit.json"
    elif request.pip_audit_json is None or request.bandit_json is None:
        raise AuditFailed("--pip-audit-json and --bandit-json go together")
    else:
        pip_audit_path, bandit_path = request.pip_audit_json, request.bandit_json
    try:
        pip_audit, bandit = s.read(pip_audit_path), s.read(bandit_path)
    except (OSError, ValueError) as exc:
        raise AuditFailed(f"a scan output cannot be read: {exc}") from exc
    result = s.summarise(
        version=request.version,
        scanned_at=now.isoformat(timespec="seconds"),
        pip_audit=pip_audit,
        bandit=bandit,
        ignores=s.load_ignores(request.ignore_file),
        today=now.date(),
        tools={t: _version(t) for t in ("pip-audit", "bandit", "cyclonedx-bom")},
        root=str(Path.cwd()),
    )
    path = folder / "summary.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path, result


def default_version() -> str:
    """The version of the distribution installed here (the release being scanned)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def command(request: AuditRequest) -> None:
    """``golive audit``: write the folder, print where and what; fail on a blocking finding or
    an incomplete scan."""
    path, result = audit(request)
    folder = path.parent
    print(f"audit of {request.version} in {folder}")
    for name in ("summary.json", "pip-audit.json", "bandit.json", "sbom.cdx.json"):
        if (folder / name).exists():
            print(f"  {folder / name}")
    print(s.verdict(result))
    for entry in result["expired_ignores"]:
        print(f"  expired ignore (no longer ignores): {entry['id']} since {entry['expires']}")
    if result["blocking"]:
        blocking = [
            f for f in result["findings"] if f["severity"] in s.BLOCKING and not f["ignored"]
        ]
        listed = "; ".join(
            f"{f['id']} ({f['severity']}) {f['package'] or f['location']}" for f in blocking[:10]
        )
        raise AuditFailed(f"{result['blocking']} blocking finding(s): {listed}")
    if not result["complete"]:
        raise AuditFailed(
            f"the scan is incomplete: {len(result['dependencies_not_audited'])} dependencies "
            "could not be audited (first: " + result["dependencies_not_audited"][0] + ")",
            hint="the package index's vulnerability data did not answer for them; "
            "run `make audit` again where it does (summary.json lists each)",
        )
