"""Preflight measures the database ``DATABASE_URL`` names (the one backed up and migrated),
against real PostgreSQL, whatever the plan calls it."""

from __future__ import annotations

import pytest

from golive.database.postgres import database_name
from golive.steps.preflight import database_size
from tests.conftest import PostgresServer


def test_the_database_the_url_names_is_measured(postgres: PostgresServer) -> None:
    url = postgres.fresh("preflight")
    name, size = database_size(url)
    assert name == database_name(url) and name.startswith("preflight_")
    assert size > 1_000_000  # a migrated, seeded database: megabytes, not zero


def test_an_unknown_database_raises_for_the_preflight_to_report(postgres: PostgresServer) -> None:
    gone = postgres.url("no_such_database_here")
    with pytest.raises(Exception, match="no_such_database_here"):
        database_size(gone)
