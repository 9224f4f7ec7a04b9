"""Choosing the historical applications to replay: the window, new vs existing clients, and a
reproducible sample."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

from golive.validation.records import Stored


def mark_existing(stored: list[Stored], since: datetime | None) -> list[Stored]:
    """Each row with ``existing_client`` set: the client had a decision before the window (the
    ``since`` time; without one, before this row's own decision)."""
    first: dict[str, datetime] = {}
    for row in stored:
        app = row.application
        if app.client_id not in first or app.decided_at < first[app.client_id]:
            first[app.client_id] = app.decided_at
    out = []
    for row in stored:
        app = row.application
        start = since if since is not None else app.decided_at
        existing = first[app.client_id] < start
        out.append(replace(row, application=replace(app, existing_client=existing)))
    return out


def select(
    stored: list[Stored],
    since: datetime | None = None,
    until: datetime | None = None,
    sample: int | None = None,
    seed: str = "golive-validate",
) -> list[Stored]:
    """The rows decided in [since, until), then ``sample`` of them (the same ones every run
    with the same seed), oldest first."""
    rows = [
        r
        for r in mark_existing(stored, since)
        if (since is None or r.application.decided_at >= since)
        and (until is None or r.application.decided_at < until)
    ]
    if sample is not None and sample < len(rows):

        def rank(row: Stored) -> bytes:
            return hashlib.sha256(f"{seed}:{row.application.ref}".encode()).digest()

        rows = sorted(rows, key=rank)[:sample]
    return sorted(rows, key=lambda r: r.application.decided_at)
