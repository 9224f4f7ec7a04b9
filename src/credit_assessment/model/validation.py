"""Validation figures for the model card: discrimination, stability, bad rate per grade.

Training-only (numpy, scikit-learn, imported lazily). Scores are "higher is better", the
target is 1 for a bad loan, so AUC is computed on the negated score.
"""

from __future__ import annotations

import math
from typing import Any


def holdout_metrics(
    scores: Any, bad: Any, train_idx: Any, test_idx: Any, grade_bands: list[dict[str, Any]]
) -> dict[str, Any]:
    """AUC, Gini and KS on the holdout; PSI training vs holdout; bad rate per grade."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    holdout, train = scores[test_idx], scores[train_idx]
    auc = float(roc_auc_score(bad[test_idx], -holdout))
    fpr, tpr, _ = roc_curve(bad[test_idx], -holdout)
    edges = np.unique(np.quantile(train, np.linspace(0, 1, 11))[1:-1])
    grades = [(g["grade"], g["min_score"]) for g in grade_bands]
    return {
        "holdout_auc": auc,
        "holdout_gini": 2 * auc - 1,
        "holdout_ks": float(np.max(tpr - fpr)),
        "train_auc": float(roc_auc_score(bad[train_idx], -train)),
        "psi_deciles": psi(train, holdout, list(edges)),
        "psi_grades": psi(train, holdout, [m for _, m in reversed(grades[:-1])]),
        "grade_table": band_table(scores, bad, train_idx, test_idx, grades),
        "n_rows": len(bad),
        "n_bad": int(bad.sum()),
    }


def psi(expected: Any, actual: Any, edges: list[float]) -> float:
    """Population stability index over the bins ``(-inf, e0), [e0, e1), ..., [en, inf)``."""
    import numpy as np

    e = np.bincount(np.digitize(expected, edges), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.digitize(actual, edges), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def band_table(
    scores: Any, bad: Any, train_idx: Any, test_idx: Any, grades: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Count, share and bad rate per grade band, on the training and the holdout rows."""
    table = []
    for i, (grade, low) in enumerate(grades):
        high = grades[i - 1][1] if i else None
        last = i == len(grades) - 1
        row: dict[str, Any] = {"grade": grade, "low": None if last else low, "high": high}
        for part, idx in (("train", train_idx), ("holdout", test_idx)):
            s, b = scores[idx], bad[idx]
            mask = (s >= (-math.inf if last else low)) & (s < (math.inf if high is None else high))
            row[f"{part}_n"] = int(mask.sum())
            row[f"{part}_share"] = float(mask.mean())
            row[f"{part}_bad_rate"] = float(b[mask].mean()) if mask.any() else None
        table.append(row)
    return table
