"""``ScrapeSource``: read every instance's ``/metrics`` directly (the embedded default).

No Prometheus needed: ``open_window`` scrapes every instance and keeps the counters as the
baseline; ``measure`` scrapes again and subtracts. A counter that went *down* means the process
restarted, so for that instance everything counted now is new (as PromQL's ``increase`` treats
a reset). An instance that answers with an error or not at all fails the whole measurement --
a window that silently lost an instance's errors would read as healthier than it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from golive.analysis import WindowMetrics
from golive.errors import MetricSourceError
from golive.metrics import Samples, SeriesKey, ServiceMetricNames, Window, build_window


@dataclass(frozen=True, slots=True)
class Exposition:
    """One instance's parsed ``/metrics``: the tracked samples and every family name seen."""

    samples: Samples
    present: frozenset[str]


def parse_exposition(text: str, names: ServiceMetricNames) -> Exposition:
    """Parse the text exposition, keeping only the families the gates read."""
    wanted = tuple(names.logical().values())
    prefixes = tuple(n.removesuffix("_total") for n in wanted)
    samples: Samples = {}
    present: set[str] = set()
    try:
        for family in text_string_to_metric_families(text):
            present.add(family.name)
            for sample in family.samples:
                present.add(sample.name)
                if not sample.name.startswith(prefixes):
                    continue
                key: SeriesKey = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + float(sample.value)
    except ValueError as exc:
        raise MetricSourceError(f"malformed metrics exposition: {exc}") from exc
    return Exposition(samples, frozenset(present))


def counter_delta(before: Mapping[SeriesKey, float], now: Mapping[SeriesKey, float]) -> Samples:
    """Counts since ``before``; if any series fell, the process restarted: all of ``now`` is new."""
    if any(value < before.get(key, 0.0) for key, value in now.items()) or any(
        key not in now for key in before
    ):
        return dict(now)
    return {key: value - before.get(key, 0.0) for key, value in now.items()}


class ScrapeSource:
    """Scrapes ``{instance}/metrics`` of every serving instance."""

    name = "scrape"

    def __init__(
        self,
        instances: Sequence[str] | Callable[[], Sequence[str]],
        *,
        names: ServiceMetricNames | None = None,
        path: str = "/metrics",
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._instances = instances
        self.names = names or ServiceMetricNames()
        self._path = path
        self._clock = clock
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def instances(self) -> list[str]:
        found = self._instances() if callable(self._instances) else self._instances
        return [url.rstrip("/") for url in found]

    def scrape(self, instance: str) -> Exposition:
        url = f"{instance}{self._path}"
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise MetricSourceError(f"cannot scrape {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise MetricSourceError(f"cannot scrape {url}: HTTP {response.status_code}")
        return parse_exposition(response.text, self.names)

    def scrape_all(self) -> dict[str, Exposition]:
        instances = self.instances()
        if not instances:
            raise MetricSourceError("no serving instances to scrape")
        return {instance: self.scrape(instance) for instance in instances}

    def open_window(self, label: str = "", since: float | None = None) -> Window:
        started = self._clock()  # counters read now: a scrape has no history to look back on
        baseline = {name: found.samples for name, found in self.scrape_all().items()}
        return Window(started_at=started, label=label, baseline=baseline)

    def measure(self, window: Window) -> WindowMetrics:
        now = self.scrape_all()
        total: Samples = {}
        present: set[str] = set()
        for instance, found in now.items():
            present |= found.present
            # An instance that joined after the window opened: everything it counted is new.
            for key, value in counter_delta(
                window.baseline.get(instance, {}), found.samples
            ).items():
                total[key] = total.get(key, 0.0) + value
        return build_window(
            total,
            self.names,
            duration_s=max(0.0, self._clock() - window.started_at),
            present=present,
            source=f"scrape of {len(now)} instance(s)",
        )

    def close(self) -> None:
        self._http.close()
