"""Progress of a go-live as it runs: a Rich live panel on a terminal, plain lines otherwise (CI).

The panel shows the current step, the stage, the dwell countdown, the live gate figures and —
in a rehearsal — the background load's request and error counts by slot.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from golive.load import LiveCounts
from golive.steps.base import StepResult


class PlainObserver:
    """One line per event, flushed: readable in CI logs and `tee`."""

    def __init__(self, load: LiveCounts | None = None, stream: Any = None) -> None:
        self.load = load
        self.stream = stream or sys.stdout
        self._last_dwell = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _load_text(self) -> str:
        if self.load is None:
            return ""
        return f" | load: {self.load.sent} sent, {self.load.failed} failed"

    def step_started(self, name: str, title: str, index: int, total: int) -> None:
        self._print(f"[{index}/{total}] {name}: {title}")

    def step_finished(self, name: str, result: StepResult, elapsed_s: float) -> None:
        self._print(f"  ok {name} ({elapsed_s:.1f}s): {result.summary}{self._load_text()}")

    def step_skipped(self, name: str, reason: str) -> None:
        self._print(f"  skip {name}: {reason}")

    def step_failed(self, name: str, error: str) -> None:
        self._print(f"  FAILED {name}: {error}")

    def message(self, text: str) -> None:
        self._print(text)

    def dwell(self, name: str, remaining_s: float, figures: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_dwell < 5 and remaining_s > 0:
            return
        self._last_dwell = now
        shown = ", ".join(f"{k} {v}" for k, v in figures.items()) or "first judgement pending"
        self._print(f"  {name}: {remaining_s:.0f}s left; {shown}{self._load_text()}")


class RichObserver:
    """A live panel (Rich) above which finished steps scroll by."""

    def __init__(self, load: LiveCounts | None = None, title: str = "golive") -> None:
        from rich.console import Console
        from rich.live import Live

        self.load = load
        self.title = title
        self.console = Console()
        self.step = "starting"
        self.index = (0, 0)
        self.started = time.monotonic()
        self.step_started_at = time.monotonic()
        self.remaining: float | None = None
        self.figures: dict[str, Any] = {}
        self.live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=4, transient=True
        )
        self.live.start()

    def close(self) -> None:
        self.live.stop()

    def _render(self) -> Any:
        from rich.panel import Panel
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        index, total = self.index
        step_elapsed = time.monotonic() - self.step_started_at
        table.add_row("step", f"{index}/{total} {self.step} ({step_elapsed:.0f}s)")
        if self.remaining is not None:
            table.add_row("dwell", f"{self.remaining:.0f}s left")
        if self.figures:
            table.add_row("gates", ", ".join(f"{k} {v}" for k, v in self.figures.items()))
        if self.load is not None:
            failed_style = "green" if self.load.failed == 0 else "bold red"
            by_tag = ", ".join(f"{tag} {n}" for tag, n in sorted(self.load.by_tag.items()))
            table.add_row(
                "load",
                f"{self.load.sent} sent, [{failed_style}]{self.load.failed} failed[/] ({by_tag})",
            )
        elapsed = time.monotonic() - self.started
        return Panel(table, title=f"{self.title} — {elapsed:.0f}s", border_style="cyan")

    def step_started(self, name: str, title: str, index: int, total: int) -> None:
        self.step, self.index = name, (index, total)
        self.step_started_at = time.monotonic()
        self.remaining, self.figures = None, {}
        self.console.print(f"[bold cyan]▶ {index}/{total}[/] {title}")

    def step_finished(self, name: str, result: StepResult, elapsed_s: float) -> None:
        self.console.print(f"  [green]✓[/] {name} [dim]({elapsed_s:.1f}s)[/] {result.summary}")

    def step_skipped(self, name: str, reason: str) -> None:
        self.console.print(f"  [dim]↷ {name}: {reason}[/]")

    def step_failed(self, name: str, error: str) -> None:
        self.console.print(f"  [bold red]✗ {name}[/]: {error}")

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def dwell(self, name: str, remaining_s: float, figures: dict[str, Any]) -> None:
        self.remaining, self.figures = remaining_s, figures


def make_observer(load: LiveCounts | None = None, plain: bool | None = None) -> Any:
    """Rich on a terminal, plain lines otherwise (or when asked)."""
    if plain is None:
        plain = not sys.stdout.isatty()
    return PlainObserver(load) if plain else RichObserver(load)
