"""``Check``: one thing golive checked and what it found, passed or not: the evidence of a step.

The target's preflight and the monitoring verification report in the same shape, so that a
check reads the same in the terminal, the journal and the report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, whether it passed, and what was seen."""

    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.passed else 'FAIL'}] {self.name}: {self.detail}"
