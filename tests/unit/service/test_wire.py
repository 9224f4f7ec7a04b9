"""Small pure pieces of the HTTP layer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from credit_assessment.api.app import route_template
from credit_assessment.api.problems import Problem
from credit_assessment.api.routes import decode_cursor, encode_cursor
from credit_assessment.assessor import AssessmentInput


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v1/assessment", "/api/v1/assessment"),
        (f"/api/v1/assessment/{uuid.uuid4()}", "/api/v1/assessment/{id}"),
        (f"/api/v1/clients/{uuid.uuid4()}/assessments", "/api/v1/clients/{clientId}/assessments"),
        ("/ready", "/ready"),
        ("/wp-admin/../../etc/passwd", "other"),
    ],
)
def test_metric_routes_stay_few(path: str, route: str) -> None:
    assert route_template(path) == route


def test_cursor_round_trips_and_rejects_forgeries() -> None:
    when, ident = datetime(2026, 11, 29, 3, 0, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(when, ident)) == (when, ident)
    for bad in ("", "!!!", "MjAyNnxub3QtYS11dWlk", encode_cursor(when, ident)[:-4]):
        with pytest.raises(Problem) as caught:
            decode_cursor(bad)
        assert caught.value.status == 400


def test_fingerprint_ignores_number_formatting_but_not_values() -> None:
    client = uuid.uuid4()
    a = AssessmentInput(client, Decimal("50000"), 12)
    b = AssessmentInput(client, Decimal("50000.00"), 12)
    c = AssessmentInput(client, Decimal("50000.01"), 12)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
