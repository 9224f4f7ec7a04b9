"""Client profiles for local runs, tests and the rehearsal, derived from the real credit data set
the scorecard was trained on (see ``credit_assessment.model.applicants``), the same every time.

The first client is always the story's smoke-test client, so its assessment is real. Names are
made up deterministically; they exist so that tests can prove names never reach logs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from uuid import UUID

from credit_assessment.model.applicants import SMOKE_CLIENT_ID, Applicant, load_applicants

__all__ = ["SMOKE_CLIENT_ID", "client_id", "client_rows", "max_clients"]

_FIRST = ("Chanda", "Mwila", "Bwalya", "Mutale", "Natasha", "Kondwani", "Thandiwe", "Mulenga")
_LAST = ("Banda", "Phiri", "Mwale", "Tembo", "Zulu", "Lungu", "Mumba", "Sakala")


def max_clients() -> int:
    return len(load_applicants())


def client_id(index: int) -> UUID:
    """The id of the ``index``-th seeded client (0 is the smoke-test client)."""
    return load_applicants(index + 1)[index].client_id


def _name(applicant: Applicant) -> str:
    digest = hashlib.sha256(applicant.client_id.bytes).digest()
    return f"{_FIRST[digest[0] % len(_FIRST)]} {_LAST[digest[1] % len(_LAST)]}"


def client_rows(count: int) -> list[dict[str, Any]]:
    """Rows for the ``clients`` table: the first ``count`` applicants of the data set."""
    if not 1 <= count <= max_clients():
        raise ValueError(f"--clients must be between 1 and {max_clients()}")
    rows = []
    for applicant in load_applicants(count):
        profile = applicant.profile
        rows.append(
            {
                "id": applicant.client_id,
                "full_name": _name(applicant),
                "monthly_income": profile.monthly_income,
                "monthly_expenses": profile.monthly_expenses,
                "monthly_debt_payments": profile.monthly_debt_payments,
                "outstanding_debt": profile.outstanding_debt,
                "assets": profile.assets,
                "employment": profile.employment,
                "seniority_years": profile.seniority_years,
                "home": profile.home,
                "purchase_price": profile.purchase_price,
            }
        )
    return rows


LEGACY_COLUMNS = (
    "client_id",
    "monthly_income",
    "monthly_debt_payments",
    "has_delinquency",
    "employment",
    "seniority_years",
)


def write_legacy_clients(path: Path, count: int) -> int:
    """The legacy system's own copy of the clients, for its emulator in rehearsals.

    CSV with a header when ``path`` ends in ``.csv``, JSON lines otherwise; written atomically.
    """
    rows = []
    for applicant in load_applicants(count):
        profile = applicant.profile
        rows.append(
            {
                "client_id": str(applicant.client_id),
                "monthly_income": _text(profile.monthly_income),
                "monthly_debt_payments": _text(profile.monthly_debt_payments),
                "has_delinquency": "true" if applicant.bureau.has_delinquency else "false",
                "employment": profile.employment or "",
                "seniority_years": _text(profile.seniority_years),
            }
        )
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.DictWriter(handle, fieldnames=LEGACY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    os.replace(tmp, path)
    return len(rows)


def _text(value: object) -> str:
    return "" if value is None else str(value)
