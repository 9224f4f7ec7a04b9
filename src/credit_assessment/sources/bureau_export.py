"""The bureau emulator's data: each seeded client's bureau facts, written to a file.

The emulator (``golive.rehearsal.bureau``) must not import the service, so it reads this file.
Format by suffix: ``.csv`` is CSV with a header; anything else is JSON lines. Fields:
``client_id``, ``has_delinquency`` (true/false), ``recent_inquiries``, ``open_accounts``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from credit_assessment.model.applicants import load_applicants

FIELDS = ("client_id", "has_delinquency", "recent_inquiries", "open_accounts")


def write_reports(path: str | Path, count: int | None = None) -> int:
    """Write the first ``count`` applicants' bureau facts (all when None); returns rows written.

    The file is replaced atomically, so an emulator never reads half of it.
    """
    target = Path(path)
    rows = [
        {
            "client_id": str(a.bureau.client_id),
            "has_delinquency": a.bureau.has_delinquency,
            "recent_inquiries": a.bureau.recent_inquiries,
            "open_accounts": a.bureau.open_accounts,
        }
        for a in load_applicants(count)
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        if target.suffix.lower() == ".csv":
            writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(
                {**row, "has_delinquency": str(row["has_delinquency"]).lower()} for row in rows
            )
        else:
            handle.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    os.replace(partial, target)
    return len(rows)
