"""A latency histogram as Prometheus exposes one: cumulative counts per upper bound."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from golive.analysis.stats import Grouped


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts ``((upper_bound, cumulative_count), ...)``, bounds ascending.

    The last bound is ``+Inf`` (its count is the total). Counts may be fractional (PromQL's
    ``increase`` extrapolates); :meth:`grouped` rounds them for the rank test.
    """

    buckets: tuple[tuple[float, float], ...]

    @classmethod
    def from_cumulative(
        cls, buckets: Mapping[float, float] | Iterable[tuple[float, float]]
    ) -> Histogram:
        pairs = buckets.items() if isinstance(buckets, Mapping) else buckets
        ordered = tuple(sorted((float(le), float(count)) for le, count in pairs))
        if not ordered or not math.isinf(ordered[-1][0]):
            raise ValueError("a histogram needs a +Inf bucket")
        # Cumulative counts never fall; float noise from extrapolation is evened out.
        fixed: list[tuple[float, float]] = []
        running = 0.0
        for le, count in ordered:
            running = max(running, count)
            fixed.append((le, running))
        return cls(tuple(fixed))

    @classmethod
    def from_samples(cls, samples: Iterable[float], bounds: Iterable[float]) -> Histogram:
        """Bucket raw samples (used by tests and the fake source)."""
        edges = sorted({*map(float, bounds), math.inf})
        values = sorted(samples)
        counts: list[tuple[float, float]] = []
        index = 0
        for le in edges:
            while index < len(values) and values[index] <= le:
                index += 1
            counts.append((le, float(index)))
        return cls(tuple(counts))

    @property
    def bounds(self) -> tuple[float, ...]:
        return tuple(le for le, _ in self.buckets)

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def grouped(self) -> Grouped:
        """One tie group per bucket, valued at its upper bound; empty buckets are left out."""
        groups: list[tuple[float, int]] = []
        previous = 0
        for le, cumulative in self.buckets:
            rounded = round(cumulative)
            if rounded > previous:
                groups.append((le, rounded - previous))
            previous = max(previous, rounded)
        return tuple(groups)

    def quantile(self, q: float) -> float:
        """Prometheus ``histogram_quantile``: linear within the bucket holding rank q x count.

        In the ``+Inf`` bucket the answer is the highest finite bound (a lower bound on the truth).
        """
        total = self.count
        if total <= 0:
            return math.nan
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank and cumulative > lower_count:
                if math.isinf(le):
                    return lower_bound
                if le <= 0:
                    return le
                share = (rank - lower_count) / (cumulative - lower_count)
                return lower_bound + (le - lower_bound) * share
            lower_bound, lower_count = le, cumulative
        return lower_bound

    def minus(self, earlier: Histogram) -> Histogram:
        """The observations made since ``earlier`` (a counter reset keeps the current counts)."""
        if earlier.bounds != self.bounds:
            if not earlier.buckets:
                return self
            raise ValueError("histograms with different buckets cannot be subtracted")
        if any(
            now < then for (_, now), (_, then) in zip(self.buckets, earlier.buckets, strict=True)
        ):
            return self  # the process restarted: everything counted is new
        return Histogram(
            tuple(
                (le, now - then)
                for (le, now), (_, then) in zip(self.buckets, earlier.buckets, strict=True)
            )
        )

    def plus(self, other: Histogram) -> Histogram:
        """Two instances' histograms summed (same buckets)."""
        if not other.buckets:
            return self
        if not self.buckets:
            return other
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets cannot be added")
        return Histogram(
            tuple((le, a + b) for (le, a), (_, b) in zip(self.buckets, other.buckets, strict=True))
        )


EMPTY = Histogram(())
