"""``PrometheusSource``: PromQL over Prometheus's HTTP API (when the plan names a Prometheus).

A window is only its start time: ``measure`` asks for ``sum by (...) (increase(name{sel}[Ns]))``
with N the seconds since the window opened, so a resumed run can rebuild a window from the
journal. Whether each family exists at all is asked separately (``count by (__name__)``): a
family no instance exposes is reported missing, not read as zero.

Any failure -- connection refused, timeout, a non-2xx answer, ``"status": "error"``, a body that
is not the API's JSON -- raises :class:`MetricSourceError` naming the query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from golive.analysis import WindowMetrics
from golive.errors import MetricSourceError
from golive.metrics import Samples, ServiceMetricNames, Window, build_window


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    value: float  # instant queries


@dataclass(frozen=True, slots=True)
class RangeSeries:
    labels: dict[str, str]
    values: tuple[tuple[float, float], ...]  # (unix time, value)


class PrometheusSource:
    """Queries one Prometheus; ``selector`` narrows to the serving instances (PromQL matchers)."""

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        selector: str = "",
        names: ServiceMetricNames | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.selector = selector.strip().strip("{}")
        self.names = names or ServiceMetricNames()
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout_s, transport=transport, headers=dict(headers or {})
        )

    # ------------------------------------------------------------------ raw PromQL

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """An instant query; vector or scalar results."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params, expr)
        kind, result = data.get("resultType"), data.get("result") or []
        try:
            if kind == "vector":
                return [Series(dict(r["metric"]), _number(r["value"][1])) for r in result]
            if kind == "scalar":
                return [Series({}, _number(result[1]))]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise MetricSourceError(
                f"Prometheus answered {expr!r} with a malformed result"
            ) from exc
        raise MetricSourceError(f"Prometheus answered {expr!r} with a {kind!r} result")

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[RangeSeries]:
        """A range query (matrix result)."""
        params = {
            "query": expr,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step_s:g}",
        }
        data = self._get("/api/v1/query_range", params, expr)
        try:
            return [
                RangeSeries(
                    dict(r["metric"]),
                    tuple((float(t), _number(v)) for t, v in r["values"]),
                )
                for r in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricSourceError(
                f"Prometheus answered {expr!r} with a malformed result"
            ) from exc

    def _get(self, path: str, params: dict[str, str], expr: str) -> dict[str, Any]:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise MetricSourceError(
                f"Prometheus at {self.url} unreachable for {expr!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MetricSourceError(
                f"Prometheus at {self.url} answered {expr!r} with HTTP {response.status_code} "
                "and no API response"
            )
        if body.get("status") != "success" or response.status_code >= 400:
            raise MetricSourceError(
                f"Prometheus rejected {expr!r}: {body.get('errorType', response.status_code)}: "
                f"{body.get('error', 'no detail')}"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise MetricSourceError(f"Prometheus answered {expr!r} without data")
        return data

    # ------------------------------------------------------------------ windows

    def open_window(self, label: str = "", since: float | None = None) -> Window:
        now = self._clock()
        return Window(started_at=min(now, since) if since is not None else now, label=label)

    def measure(self, window: Window) -> WindowMetrics:
        now = self._clock()
        duration = max(1, math.ceil(now - window.started_at))
        n = self.names
        by = {
            n.decisions: ("engine", "decision"),
            n.errors: ("engine",),
            n.decision_duration + "_bucket": ("engine", "le"),
            n.shadow: ("outcome", "field"),
            n.legacy_calls: ("outcome",),
            n.bureau_calls: ("outcome",),
            n.http_duration + "_bucket": ("route", "status", "le"),
            n.http_duration + "_count": ("route", "status"),
        }
        samples: Samples = {}
        for name, labels in by.items():
            expr = f"sum by ({', '.join(labels)}) (increase({name}{self._matchers()}[{duration}s]))"
            for series in self.query(expr, at=now):
                if math.isnan(series.value):
                    continue
                key = (name, tuple(sorted(series.labels.items())))
                samples[key] = samples.get(key, 0.0) + series.value
        return build_window(
            samples,
            n,
            duration_s=now - window.started_at,
            present=self._present(now),
            source=f"Prometheus {self.url}",
        )

    def _present(self, at: float) -> set[str]:
        pattern = "|".join(
            name + "_bucket" if name in self.names.histograms else name
            for name in self.names.logical().values()
        )
        matchers = f'__name__=~"{pattern}"' + (f",{self.selector}" if self.selector else "")
        return {
            s.labels.get("__name__", "")
            for s in self.query(f"count by (__name__) ({{{matchers}}})", at=at)
        }

    def _matchers(self) -> str:
        return f"{{{self.selector}}}" if self.selector else ""

    def close(self) -> None:
        self._http.close()


def _number(text: Any) -> float:
    return float(text)  # Prometheus sends "NaN", "+Inf" as strings; float() reads them
