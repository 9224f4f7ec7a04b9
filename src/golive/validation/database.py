"""Reading the two database sources, over SQL in a read-only session.

- ``shadow_pairs``: assessments the legacy system decided while the new engine ran in shadow
  (``engine = 'legacy'`` with ``input_snapshot->'shadow'``): both decisions are already there.
- ``stored_applications``: any stored assessment, as the baseline of a replay through the new
  engine's evaluate endpoint (legacy rows score on the legacy scale, rows of an earlier
  new-engine run on the new one).

``existing_client``: the client has an assessment from before the window (``since``; without
one, before this assessment). Client names are never selected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from golive.database.postgres import libpq_url
from golive.errors import ValidationSourceError
from golive.validation.records import (
    SCALE_LEGACY,
    SCALE_NEW,
    Application,
    Pair,
    Side,
    Stored,
    map_reasons,
    normal_decision,
    normal_grade,
)

_EXISTING = """EXISTS (
    SELECT 1 FROM assessments p
    WHERE p.client_id = a.client_id
      AND p.created_at < coalesce(%(since)s::timestamptz, a.created_at)
)"""
_WINDOW = """(%(since)s::timestamptz IS NULL OR a.created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.created_at < %(until)s::timestamptz)"""
_ORDER = """ORDER BY CASE WHEN %(sample)s::int IS NULL THEN NULL ELSE md5(a.id::text) END,
         a.created_at, a.id
LIMIT %(sample)s::int"""

# Composed from the constant fragments above; every value is a bound parameter.
SHADOW_SQL = f"""
SELECT a.id::text, a.client_id::text, a.loan_amount::float8, a.loan_term, a.created_at,
       {_EXISTING} AS existing, a.input_snapshot->'shadow' AS shadow
FROM assessments a
WHERE a.engine = 'legacy' AND jsonb_typeof(a.input_snapshot->'shadow') = 'object'
  AND {_WINDOW}
{_ORDER}
"""  # noqa: S608

STORED_SQL = f"""
SELECT a.id::text, a.client_id::text, a.loan_amount::float8, a.loan_term, a.created_at,
       {_EXISTING} AS existing, a.decision, a.score, a.risk_grade,
       ARRAY(SELECT r->>'code' FROM jsonb_array_elements(a.reasons) r) AS codes,
       a.engine, a.model_version
FROM assessments a
WHERE {_WINDOW}
{_ORDER}
"""  # noqa: S608


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            libpq_url(url),
            application_name="golive-validate",
            connect_timeout=10,
            options="-c default_transaction_read_only=on -c statement_timeout=600000",
        )
    except psycopg.Error as exc:
        raise ValidationSourceError(
            f"cannot connect to the database: {type(exc).__name__}",
            hint="check the variable named by --database-url-env and that PostgreSQL is up",
        ) from exc


def _query(url: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with _connect(url) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise ValidationSourceError(
                f"reading assessments failed: {type(exc).__name__}: {exc.diag.message_primary}",
                hint="is the database migrated to the service's schema?",
            ) from exc


def _side(doc: Any, scale: str, reason_map: dict[str, str], where: str) -> Side:
    if not isinstance(doc, dict):
        raise ValidationSourceError(f"{where}: the shadow snapshot has no {scale} side")
    decision = normal_decision(str(doc.get("decision") or ""))
    if decision is None:
        raise ValidationSourceError(
            f"{where}: unknown {scale} decision {str(doc.get('decision'))[:30]!r}",
            hint="the shadow snapshot is not in the format docs/validation.md describes",
        )
    codes = [str(c) for c in doc.get("reasons") or []]
    score = doc.get("score")
    return Side(
        decision,
        int(score) if isinstance(score, int | float) else None,
        normal_grade(doc.get("grade")),
        map_reasons(codes, reason_map) if scale == SCALE_LEGACY else frozenset(codes),
        scale,
        doc.get("modelVersion") if scale == SCALE_NEW else None,
    )


def shadow_pairs(
    url: str,
    since: datetime | None,
    until: datetime | None,
    sample: int | None,
    reason_map: dict[str, str],
) -> list[Pair]:
    rows = _query(url, SHADOW_SQL, {"since": since, "until": until, "sample": sample})
    pairs = []
    for ident, client, amount, term, created, existing, shadow in rows:
        where = f"assessment {ident}"
        if not isinstance(shadow, dict):
            raise ValidationSourceError(f"{where}: the shadow snapshot is not an object")
        pairs.append(
            Pair(
                Application(ident, client, amount, term, created, bool(existing)),
                _side(shadow.get("legacy"), SCALE_LEGACY, reason_map, where),
                _side(shadow.get("new"), SCALE_NEW, reason_map, where),
            )
        )
    return pairs


def stored_applications(
    url: str,
    since: datetime | None,
    until: datetime | None,
    sample: int | None,
    reason_map: dict[str, str],
) -> list[Stored]:
    rows = _query(url, STORED_SQL, {"since": since, "until": until, "sample": sample})
    out = []
    for row in rows:
        ident, client, amount, term, created, existing, decision, score, grade = row[:9]
        codes, engine, model_version = row[9:]
        scale = SCALE_LEGACY if engine == "legacy" else SCALE_NEW
        doc = {
            "decision": decision,
            "score": score,
            "grade": grade,
            "reasons": codes,
            "modelVersion": model_version,
        }
        out.append(
            Stored(
                Application(ident, client, amount, term, created, bool(existing)),
                _side(doc, scale, reason_map, f"assessment {ident}"),
            )
        )
    return out
