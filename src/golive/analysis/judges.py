"""The judges: pure functions from counts or samples to a :class:`Judgement`.

Each judge needs a minimum of data before it says anything but INCONCLUSIVE, and FAILs only
when a difference is both statistically significant *and* larger than the tolerance, so noise
never rolls a release back and a negligible but real difference does not either. An observed
difference beyond the tolerance that is not yet significant is INCONCLUSIVE: the stage holds
until more data settles it. docs/analysis.md has the maths and the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from golive.analysis.histogram import Histogram
from golive.analysis.stats import (
    Alternative,
    Grouped,
    group,
    grouped_size,
    hodges_lehmann,
    mann_whitney,
    newcombe_difference,
    proportion_test_greater,
    quantile,
    two_proportion_z,
    wilson_interval,
    z_for,
)
from golive.analysis.verdict import Judgement, Verdict

LatencySamples = Sequence[float] | Histogram


def error_rate(
    new_errors: int,
    new_total: int,
    base_errors: int,
    base_total: int,
    *,
    tolerance_pp: float = 1.0,
    alpha: float = 0.001,
    min_samples: int = 200,
    metric: str = "error_rate",
) -> Judgement:
    """New path's error ratio vs the baseline's: one-sided two-proportion z-test + tolerance."""
    _check_counts(new_errors, new_total, "new")
    _check_counts(base_errors, base_total, "baseline")
    figures: dict[str, float | int | str | bool | None] = {
        "new_errors": new_errors,
        "new_total": new_total,
        "base_errors": base_errors,
        "base_total": base_total,
        "tolerance_pp": tolerance_pp,
        "alpha": alpha,
        "min_samples": min_samples,
    }
    if new_total < min_samples or base_total < min_samples:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"only {new_total} new-path and {base_total} legacy requests so far; "
            f"{min_samples} of each are needed",
            figures,
        )
    new_ratio, base_ratio = new_errors / new_total, base_errors / base_total
    # H1: the new path's error ratio is the greater.
    test = two_proportion_z(new_errors, new_total, base_errors, base_total, alternative="greater")
    p_value, test_name = proportion_test_greater(new_errors, new_total, base_errors, base_total)
    lower, upper = newcombe_difference(
        new_errors, new_total, base_errors, base_total, z_for(1.0 - alpha)
    )
    difference_pp = (new_ratio - base_ratio) * 100.0
    figures |= {
        "new_ratio": new_ratio,
        "base_ratio": base_ratio,
        "difference_pp": difference_pp,
        "difference_upper_pp": upper * 100.0,
        "difference_lower_pp": lower * 100.0,
        "z": test.z,
        "p_value": p_value,
        "test": test_name,
    }
    head = f"new path error ratio {_pct(new_ratio)} vs legacy {_pct(base_ratio)}"
    significant = p_value < alpha
    beyond = difference_pp > tolerance_pp
    tolerance = f"tolerance {tolerance_pp:g} pp"
    where = f"{_p(p_value)} ({test_name})"
    if significant and beyond:
        return Judgement(
            Verdict.FAIL, metric, f"{head}: higher with {where}, beyond {tolerance}", figures
        )
    if beyond:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"{head}: {difference_pp:.1f} pp higher, beyond {tolerance}, but not significant "
            f"yet: {where}, alpha {alpha:g}",
            figures,
        )
    if significant:
        return Judgement(
            Verdict.PASS, metric, f"{head}: higher with {where} but within {tolerance}", figures
        )
    return Judgement(
        Verdict.PASS,
        metric,
        f"{head}: no significant increase, {where}, within {tolerance}",
        figures,
    )


def latency(
    new_samples: LatencySamples,
    base_samples: LatencySamples,
    *,
    confidence: float = 0.98,
    tolerance_ratio: float = 1.25,
    min_shift_s: float = 0.0,
    min_samples: int = 50,
    alternative: Alternative = "greater",
    metric: str = "latency",
) -> Judgement:
    """New path's latency vs the baseline's: Mann-Whitney U + an effect size on the medians.

    Samples are raw seconds or two :class:`Histogram` with the same buckets. FAIL needs the
    rank test significant at ``1 - confidence`` *and* the median ratio above
    ``tolerance_ratio`` *and* the median shift above ``min_shift_s``.
    """
    new, base = _grouped_pair(new_samples, base_samples)
    n_new, n_base = grouped_size(new), grouped_size(base)
    figures: dict[str, float | int | str | bool | None] = {
        "new_count": n_new,
        "base_count": n_base,
        "confidence": confidence,
        "tolerance_ratio": tolerance_ratio,
        "min_shift_s": min_shift_s,
        "min_samples": min_samples,
        "alternative": alternative,
    }
    if n_new < min_samples or n_base < min_samples:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"only {n_new} new-path and {n_base} legacy latency samples so far; "
            f"{min_samples} of each are needed",
            figures,
        )
    new_median, new_p99 = _quantile(new_samples, new, 0.5), _quantile(new_samples, new, 0.99)
    base_median, base_p99 = _quantile(base_samples, base, 0.5), _quantile(base_samples, base, 0.99)
    test = mann_whitney(new, base, alternative)
    ratio = _ratio(new_median, base_median)
    shift = new_median - base_median
    figures |= {
        "new_median_s": new_median,
        "base_median_s": base_median,
        "median_ratio": ratio,
        "median_shift_s": shift,
        "new_p99_s": new_p99,
        "base_p99_s": base_p99,
        "p99_ratio": _ratio(new_p99, base_p99),
        "hodges_lehmann_shift_s": hodges_lehmann(new, base),
        "u": test.u,
        "z": test.z,
        "p_value": test.p_value,
    }
    head = (
        f"new path median {_ms(new_median)} vs legacy {_ms(base_median)} "
        f"(x{ratio:.2f}), p99 {_ms(new_p99)} vs {_ms(base_p99)}"
    )
    significant = test.p_value < 1.0 - confidence and shift > 0
    beyond = ratio > tolerance_ratio and shift > min_shift_s
    where = f"{_p(test.p_value)} (Mann-Whitney U)"
    tolerance = f"tolerance x{tolerance_ratio:g}" + (
        f" and +{_ms(min_shift_s)}" if min_shift_s > 0 else ""
    )
    if significant and beyond:
        return Judgement(
            Verdict.FAIL, metric, f"{head}: slower with {where}, beyond {tolerance}", figures
        )
    if beyond:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"{head}: slower beyond {tolerance} but not significant yet: {where}, "
            f"confidence {confidence:g}",
            figures,
        )
    if significant:
        return Judgement(
            Verdict.PASS, metric, f"{head}: slower with {where} but within {tolerance}", figures
        )
    return Judgement(Verdict.PASS, metric, f"{head}: not significantly slower, {where}", figures)


def mismatch_rate(
    mismatches: int,
    total: int,
    *,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    min_samples: int = 100,
    metric: str = "decision_mismatch",
    subject: str | None = None,
) -> Judgement:
    """Shadow comparisons that disagree: Wilson bounds at 1 - alpha against ``tolerance``.

    FAIL when the lower bound is above the tolerance, PASS when the upper bound is below it,
    INCONCLUSIVE while the interval straddles it.
    """
    _check_counts(mismatches, total, "comparisons")
    figures: dict[str, float | int | str | bool | None] = {
        "mismatches": mismatches,
        "total": total,
        "tolerance": tolerance,
        "alpha": alpha,
        "min_samples": min_samples,
    }
    if total < min_samples:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"only {total} shadow comparisons so far; {min_samples} are needed",
            figures,
        )
    lower, upper = wilson_interval(mismatches, total, z=z_for(1.0 - alpha))
    ratio = mismatches / total
    figures |= {"ratio": ratio, "lower": lower, "upper": upper}
    head = (
        f"{subject or metric.replace('_', ' ')} {_pct(ratio)} of {total} shadow comparisons "
        f"(bounds {_pct(lower)}-{_pct(upper)} at {1 - alpha:.0%} each)"
    )
    if lower > tolerance:
        return Judgement(
            Verdict.FAIL, metric, f"{head}: above tolerance {_pct(tolerance)}", figures
        )
    if upper < tolerance:
        return Judgement(
            Verdict.PASS, metric, f"{head}: within tolerance {_pct(tolerance)}", figures
        )
    return Judgement(
        Verdict.INCONCLUSIVE,
        metric,
        f"{head}: cannot tell yet whether it is within tolerance {_pct(tolerance)}",
        figures,
    )


def threshold(
    value: float | None,
    max_value: float | None = None,
    *,
    min_value: float | None = None,
    metric: str = "threshold",
    unit: str = "",
    samples: int | None = None,
    min_samples: int = 0,
) -> Judgement:
    """A plain bound: FAIL outside [min_value, max_value]; INCONCLUSIVE without (enough) data."""
    figures: dict[str, float | int | str | bool | None] = {
        "value": value,
        "max_value": max_value,
        "min_value": min_value,
        "samples": samples,
        "min_samples": min_samples,
    }
    name = metric.replace("_", " ")
    if value is None or math.isnan(value):
        return Judgement(Verdict.INCONCLUSIVE, metric, f"{name}: no value measured", figures)
    if samples is not None and samples < min_samples:
        return Judgement(
            Verdict.INCONCLUSIVE,
            metric,
            f"{name}: only {samples} samples so far; {min_samples} are needed",
            figures,
        )
    shown = _value(value, unit) + (f" of {samples}" if samples is not None else "")
    if max_value is not None and value > max_value:
        return Judgement(
            Verdict.FAIL,
            metric,
            f"{name} {shown} above the maximum {_value(max_value, unit)}",
            figures,
        )
    if min_value is not None and value < min_value:
        return Judgement(
            Verdict.FAIL,
            metric,
            f"{name} {shown} below the minimum {_value(min_value, unit)}",
            figures,
        )
    bounds = " and ".join(
        part
        for part in (
            f">= {_value(min_value, unit)}" if min_value is not None else "",
            f"<= {_value(max_value, unit)}" if max_value is not None else "",
        )
        if part
    )
    return Judgement(
        Verdict.PASS, metric, f"{name} {shown} within bounds ({bounds or 'none'})", figures
    )


def ratio_threshold(
    failures: int,
    total: int,
    *,
    max_ratio: float,
    min_samples: int = 50,
    metric: str = "failure_ratio",
) -> Judgement:
    """A share of failures against a maximum (e.g. bureau calls that failed or timed out)."""
    _check_counts(failures, total, metric)
    ratio = failures / total if total else None
    judgement = threshold(
        ratio, max_ratio, metric=metric, unit="%", samples=total, min_samples=min_samples
    )
    judgement.figures.update(failures=failures, total=total)
    return judgement


# --------------------------------------------------------------------------- helpers


def _check_counts(events: int, total: int, side: str) -> None:
    if events < 0 or total < 0 or events > total:
        raise ValueError(f"{side}: {events} events out of {total} is not a valid count")


def _grouped_pair(new: LatencySamples, base: LatencySamples) -> tuple[Grouped, Grouped]:
    if isinstance(new, Histogram) and isinstance(base, Histogram):
        if new.buckets and base.buckets and new.bounds != base.bounds:
            raise ValueError("latency histograms must share their bucket bounds")
        return new.grouped(), base.grouped()
    if isinstance(new, Histogram) or isinstance(base, Histogram):
        raise ValueError("compare raw samples with raw samples, histograms with histograms")
    return group(new), group(base)


def _quantile(samples: LatencySamples, grouped: Grouped, q: float) -> float:
    if isinstance(samples, Histogram):
        return samples.quantile(q)
    expanded = [value for value, count in grouped for _ in range(count)]
    return quantile(expanded, q)


def _ratio(new: float, base: float) -> float:
    if base > 0:
        return new / base
    return 1.0 if new <= 0 else math.inf


def _pct(ratio: float) -> str:
    percent = ratio * 100.0
    return f"{percent:.2f}%" if 0 < percent < 1 else f"{percent:.1f}%"


def _p(p: float) -> str:
    return "p<0.0001" if p < 0.0001 else f"p={p:.2g}"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _value(value: float, unit: str) -> str:
    if unit == "%":
        return _pct(value)
    return f"{value:g}{unit and ' ' + unit}"
