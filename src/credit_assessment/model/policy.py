"""The credit policy file (``policy.json``): product, knock-outs, affordability, decision matrix.

The policy is configuration the credit committee changes; every change bumps ``version``, which
each decision records. Amounts and ratios are decimal strings (``"0.28"``), never binary floats.
Like the scorecard, a policy file that cannot be used raises
:class:`~credit_assessment.model.artifact.ModelArtifactError` naming the file and the problem.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from credit_assessment.domain.knockouts import KNOCK_OUT_CHECKS
from credit_assessment.domain.policy import (
    Affordability,
    AffordabilityRules,
    KnockOut,
    Policy,
    ProductTerms,
)
from credit_assessment.domain.types import Outcome, Reason
from credit_assessment.model.artifact import ModelArtifactError, read_document

FORMAT = "credit-assessment/policy"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).with_name("policy.json")


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate the policy at ``path`` (the packaged ``policy.json`` by default)."""
    source = Path(path) if path is not None else DEFAULT_PATH
    return parse_policy(read_document(source, "policy", parse_float=Decimal), source)


@functools.cache
def default_policy() -> Policy:
    """The packaged policy, loaded once per process."""
    return load_policy()


def parse_policy(document: object, source: str | Path = "<memory>") -> Policy:
    if not isinstance(document, dict):
        raise ModelArtifactError(source, "the policy is not a JSON object")
    if document.get("format") != FORMAT:
        raise ModelArtifactError(
            source, f"format is {document.get('format')!r}, expected {FORMAT!r}"
        )
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelArtifactError(
            source, f"format_version {document.get('format_version')!r} is not supported"
        )
    try:
        return _build(document)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelArtifactError(source, f"invalid policy: {problem}") from exc


def _known_checks(knock_outs: Sequence[KnockOut]) -> tuple[KnockOut, ...]:
    unknown = [k.check for k in knock_outs if k.check not in KNOCK_OUT_CHECKS]
    if unknown:
        raise ValueError(f"unknown knock-out checks {unknown}; known: {sorted(KNOCK_OUT_CHECKS)}")
    return tuple(knock_outs)


def _build(doc: Mapping[str, Any]) -> Policy:
    product = doc["product"]
    rules = doc["affordability"]
    bureau = doc["bureau"]
    matrix = {
        str(grade): {Affordability(k): Outcome(v) for k, v in row.items()}
        for grade, row in doc["decision_matrix"].items()
    }
    return Policy(
        version=_text(doc["version"], "version"),
        product=ProductTerms(
            min_amount=_decimal(product["min_amount"], "product.min_amount"),
            max_amount=_decimal(product["max_amount"], "product.max_amount"),
            min_term_months=_integer(product["min_term_months"], "product.min_term_months"),
            max_term_months=_integer(product["max_term_months"], "product.max_term_months"),
            annual_rate=_decimal(product["annual_rate"], "product.annual_rate"),
            offer_unit=_decimal(product["offer_unit"], "product.offer_unit"),
        ),
        affordability=AffordabilityRules(
            dsr_limit=_decimal(rules["dsr_limit"], "affordability.dsr_limit"),
            take_home_min_share=_decimal(
                rules["take_home_min_share"], "affordability.take_home_min_share"
            ),
            min_residual_income=_decimal(
                rules["min_residual_income"], "affordability.min_residual_income"
            ),
        ),
        knock_outs=_known_checks(
            [
                KnockOut(
                    check=_text(k["check"], "knock_outs[].check"),
                    outcome=Outcome(k["outcome"]),
                    reason=_reason(k),
                )
                for k in doc["knock_outs"]
            ]
        ),
        decision_matrix=matrix,
        affordability_reasons={
            str(rule): _reason(r) for rule, r in doc["affordability_reasons"].items()
        },
        fallback_reason=_reason(doc["fallback_reason"]),
        max_recent_inquiries=_integer(
            bureau["max_recent_inquiries"], "bureau.max_recent_inquiries"
        ),
        skip_bureau_when_unavailable=_boolean(
            bureau["skip_when_unavailable"], "bureau.skip_when_unavailable"
        ),
        max_reasons=_integer(doc.get("max_reasons", 4), "max_reasons"),
    )


def _reason(doc: Mapping[str, Any]) -> Reason:
    return Reason(_text(doc["code"], "reason code"), _text(doc["description"], "description"))


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{where} must be a non-empty string")
    return value


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f'{where} must be a decimal string such as "0.28"')
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"{where} must be finite")
    return number


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where} must be an integer")
    return value


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where} must be true or false")
    return value
