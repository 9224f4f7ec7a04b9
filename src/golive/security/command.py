"""``golive audit``'s parser; the work is ``golive.security.scan``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _audit(args: argparse.Namespace) -> None:
    from golive.security import scan

    scan.command(
        scan.AuditRequest(
            out=args.out,
            version=args.version or scan.default_version(),
            ignore_file=args.ignore,
            source=args.source,
            pip_audit_json=args.pip_audit_json,
            bandit_json=args.bandit_json,
        )
    )


def add_audit_command(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="security scan of the release: pip-audit, bandit, CycloneDX SBOM, JSON summary",
    )
    audit.add_argument("--out", type=Path, default=Path(".data/audit"), help="folder of scans")
    audit.add_argument("--version", help="the version scanned (default: the one installed)")
    audit.add_argument(
        "--ignore",
        type=Path,
        default=Path("deploy/security/audit-ignore.yaml"),
        help="the reviewed ignore file",
    )
    audit.add_argument("--source", type=Path, default=Path("src"), help="what bandit scans")
    audit.add_argument("--pip-audit-json", type=Path, help="a saved pip-audit JSON: no scan")
    audit.add_argument("--bandit-json", type=Path, help="a saved bandit JSON: no scan")
    audit.set_defaults(handler=_audit)
