"""Client profiles for seeding, smoke tests and load: the 4,454 applicants of the training data.

``applicants.csv.gz`` is written by training from ``modeldata/credit_data`` and read here with
the standard library only. Money in the file is ZMW: the data set's money (units of 100 ZMW)
times 100, so a data-set income of 125 is 12,500 ZMW a month. The file leaves out the protected
attributes (age, marital status) and the outcome.

Columns the data set does not have are derived deterministically, so every run sees the same
clients:

* ``monthly_debt_payments`` -- 3% of the outstanding debt a month, to the kwacha;
* ``recent_inquiries``, ``open_accounts`` -- from a hash of the row number (clients with past
  delinquency get two more inquiries; clients with debt at least one open account).

The file's first record is the go-live smoke-test client ``123e4567-e89b-12d3-a456-426614174000``,
a reasonable applicant who is approved (or offered less) for 50,000 ZMW over 12 months. The
others' ids are ``uuid5(APPLICANT_NAMESPACE, "credit_data/<row>")``.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from uuid import UUID, uuid5

from credit_assessment.domain.types import Application, BureauReport, ClientProfile

DEFAULT_PATH = Path(__file__).with_name("applicants.csv.gz")
APPLICANT_NAMESPACE = UUID("5b0c4f3e-9d2a-5e61-8f47-2c1d0a9b7e35")
SMOKE_CLIENT_ID = UUID("123e4567-e89b-12d3-a456-426614174000")
DEBT_PAYMENT_SHARE = Decimal("0.03")

COLUMNS = (
    "row",
    "monthly_income",
    "monthly_expenses",
    "monthly_debt_payments",
    "outstanding_debt",
    "assets",
    "employment",
    "seniority_years",
    "home",
    "purchase_price",
    "has_delinquency",
    "recent_inquiries",
    "open_accounts",
    "loan_amount",
    "loan_term_months",
)


@dataclass(frozen=True, slots=True)
class Applicant:
    row: int  # row number in modeldata/credit_data (1-based, the data set's rownames)
    client_id: UUID
    profile: ClientProfile
    bureau: BureauReport
    loan_amount: Decimal  # what this client asked for in the data set, ZMW
    loan_term_months: int

    @property
    def application(self) -> Application:
        return Application(self.client_id, self.loan_amount, self.loan_term_months)


def client_id_for(row: int) -> UUID:
    return uuid5(APPLICANT_NAMESPACE, f"credit_data/{row}")


def monthly_debt_payments(outstanding_debt: Decimal | None) -> Decimal:
    if outstanding_debt is None:
        return Decimal(0)
    return (outstanding_debt * DEBT_PAYMENT_SHARE).quantize(Decimal(1), ROUND_HALF_UP)


def bureau_counts(row: int, has_delinquency: bool, has_debt: bool) -> tuple[int, int]:
    """Deterministic (recent_inquiries, open_accounts) for a data-set row."""
    digest = int.from_bytes(hashlib.sha256(f"credit_data/{row}".encode()).digest()[:4], "big")
    inquiries = digest % 4 + (2 if has_delinquency else 0)
    accounts = (digest >> 8) % 4 + (1 if has_debt else 0)
    return inquiries, accounts


def load_applicants(count: int | None = None, path: str | Path | None = None) -> list[Applicant]:
    """The first ``count`` applicants (all when None), always in the same order."""
    if count is not None and count < 0:
        raise ValueError("count must not be negative")
    everyone = _read(str(path) if path is not None else str(DEFAULT_PATH))
    return list(everyone if count is None else everyone[:count])


@functools.cache
def _read(path: str) -> tuple[Applicant, ...]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: unexpected columns {reader.fieldnames}")
        return tuple(
            parse_record(record, SMOKE_CLIENT_ID if i == 0 else None)
            for i, record in enumerate(reader)
        )


def parse_record(record: dict[str, str], client_id: UUID | None = None) -> Applicant:
    """One CSV record (all text, empty for unknown) as an :class:`Applicant`.

    The id is ``client_id_for(row)`` unless given (the file's first record is the smoke client).
    """
    row = int(record["row"])
    client_id = client_id or client_id_for(row)
    profile = ClientProfile(
        client_id=client_id,
        monthly_income=_money(record["monthly_income"]),
        monthly_expenses=_money(record["monthly_expenses"]),
        monthly_debt_payments=_money(record["monthly_debt_payments"]) or Decimal(0),
        outstanding_debt=_money(record["outstanding_debt"]),
        assets=_money(record["assets"]),
        employment=record["employment"] or None,
        seniority_years=int(record["seniority_years"]),
        home=record["home"] or None,
        purchase_price=_money(record["purchase_price"]),
    )
    bureau = BureauReport(
        client_id=client_id,
        has_delinquency=record["has_delinquency"] == "yes",
        recent_inquiries=int(record["recent_inquiries"]),
        open_accounts=int(record["open_accounts"]),
    )
    return Applicant(
        row=row,
        client_id=client_id,
        profile=profile,
        bureau=bureau,
        loan_amount=Decimal(record["loan_amount"]),
        loan_term_months=int(record["loan_term_months"]),
    )


def _money(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def write_applicants(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the file reproducibly (no timestamp in the gzip header)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as handle,
    ):
        handle.write(buffer.getvalue().encode("utf-8"))
