"""Client profiles: the lender's record of each client, read on every assessment.

Profiles change rarely and are read on every request, so they are cached in-process for a short
time (``PROFILE_CACHE_TTL_S``); an unknown client is never cached, so a newly onboarded client is
found at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from credit_assessment.domain import ClientProfile
from credit_assessment.store.database import Database
from credit_assessment.store.tables import clients

_PROFILE_COLUMNS = (
    "monthly_income",
    "monthly_expenses",
    "monthly_debt_payments",
    "outstanding_debt",
    "assets",
    "employment",
    "seniority_years",
    "home",
    "purchase_price",
)


def profile_from_row(row: Any) -> ClientProfile:
    values = {name: row[name] for name in _PROFILE_COLUMNS}
    if values["monthly_debt_payments"] is None:
        values["monthly_debt_payments"] = Decimal(0)
    return ClientProfile(client_id=row["id"], **values)


class ClientDirectory:
    """Looks up client profiles, with a small time-bounded cache."""

    def __init__(
        self,
        database: Database,
        ttl_s: float = 30.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[UUID, tuple[float, ClientProfile]] = OrderedDict()

    async def profile(self, client_id: UUID) -> ClientProfile | None:
        now = self._clock()
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        query = sa.select(clients.c.id, *(clients.c[n] for n in _PROFILE_COLUMNS)).where(
            clients.c.id == client_id
        )
        async with self.database.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            self._cache.pop(client_id, None)
            return None
        profile = profile_from_row(row)
        if self._ttl_s > 0 and self._max > 0:
            self._cache[client_id] = (now + self._ttl_s, profile)
            self._cache.move_to_end(client_id)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return profile


def upsert_clients(connection: sa.Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or refresh client rows (synchronous: used by the seed command)."""
    batch = list(rows)
    if not batch:
        return 0
    stmt = pg_insert(clients)
    updates: dict[str, Any] = {c: stmt.excluded[c] for c in ("full_name", *_PROFILE_COLUMNS)}
    updates["updated_at"] = sa.func.now()
    connection.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=updates), batch)
    return len(batch)
