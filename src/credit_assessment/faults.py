"""Faults a rehearsal injects into the new engine's path, to prove the go-live gates catch them.

Only available outside staging and production (the settings refuse it there), and only switched
on through ``POST /rehearsal/faults`` from the loopback interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from credit_assessment.domain import Application, Decision, Outcome, Reason

_FLIPPED = {
    Outcome.APPROVED: Outcome.DECLINED,
    Outcome.DECLINED: Outcome.APPROVED,
    Outcome.REFER: Outcome.APPROVED,
    Outcome.COUNTER_OFFER: Outcome.DECLINED,
}
FLIP_REASON = Reason("REHEARSAL_FAULT", "Rehearsal fault: decision deliberately flipped")


class InjectedFault(RuntimeError):
    """A failure the rehearsal asked for."""


@dataclass
class Faults:
    error_rate: float = 0.0  # share of new-engine decisions that fail
    delay_ms: float = 0.0  # added to every new-engine decision
    flip_term_over: int | None = None  # flip decisions for terms longer than this
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(7))

    def set(self, error_rate: float, delay_ms: float, flip_term_over: int | None) -> None:
        self.error_rate, self.delay_ms, self.flip_term_over = error_rate, delay_ms, flip_term_over

    def share(self, path: Path) -> None:
        """Write the switches where every worker of this instance picks them up."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.document()), encoding="utf-8")
        os.replace(tmp, path)

    def follow(self, path: Path) -> None:
        """Take the switches another worker shared (missing or unreadable file: no change)."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self.set(
                float(document["errorRate"]),
                float(document["delayMs"]),
                None if document["flipTermOver"] is None else int(document["flipTermOver"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return

    def document(self) -> dict[str, object]:
        return {
            "errorRate": self.error_rate,
            "delayMs": self.delay_ms,
            "flipTermOver": self.flip_term_over,
        }

    async def before_decision(self) -> None:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            raise InjectedFault("rehearsal fault: the new engine failed on purpose")

    def after_decision(self, application: Application, decision: Decision) -> Decision:
        if self.flip_term_over is None or application.loan_term_months <= self.flip_term_over:
            return decision
        outcome = _FLIPPED[decision.outcome]
        reasons = decision.reasons if outcome is not Outcome.DECLINED else (FLIP_REASON,)
        return dataclasses.replace(
            decision, outcome=outcome, reasons=() if outcome is Outcome.APPROVED else reasons
        )
