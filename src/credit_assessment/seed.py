"""Deterministic client profiles for local runs, tests and the rehearsal.

The first client is always the story's smoke-test client, so its assessment is real.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

SMOKE_CLIENT_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
_NAMESPACE = uuid.UUID("6f1c4c52-8d51-4a8e-9a43-3d4c1f0b7a10")
_FIRST = ("Chanda", "Mwila", "Bwalya", "Mutale", "Natasha", "Kondwani", "Thandiwe", "Mulenga")
_LAST = ("Banda", "Phiri", "Mwale", "Tembo", "Zulu", "Lungu", "Mumba", "Sakala")


def client_id(index: int) -> uuid.UUID:
    return SMOKE_CLIENT_ID if index == 0 else uuid.uuid5(_NAMESPACE, f"client-{index}")


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


def synthetic_clients(count: int, seed: int = 20) -> Iterator[dict[str, Any]]:
    """``count`` client rows, the same every time for the same ``seed``."""
    rng = random.Random(seed)
    for index in range(count):
        income = 12_000 + rng.lognormvariate(0, 0.6) * 6_000 if index else 18_500.0
        expenses = income * rng.uniform(0.25, 0.55) if index else 6_000.0
        debt_payments = income * rng.choice((0, 0, 0.05, 0.1, 0.2, 0.35)) if index else 1_200.0
        yield {
            "id": client_id(index),
            "full_name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "monthly_income": _money(income),
            "monthly_expenses": _money(expenses),
            "monthly_debt_payments": _money(debt_payments),
            "outstanding_debt": _money(debt_payments * rng.uniform(6, 30)),
            "assets": _money(rng.choice((0, 0, 1, 3, 10)) * income),
            "employment": rng.choice(("fixed", "fixed", "fixed", "freelance", "partime", "others")),
            "seniority_years": rng.randint(0, 25),
            "home": rng.choice(("rent", "owner", "parents", "priv", "other")),
            "purchase_price": _money(rng.uniform(20_000, 300_000)),
        }
