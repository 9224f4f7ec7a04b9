"""The decision engine: pure functions from an application and what we know of the client to a decision.

Nothing here does I/O or reads a clock, so every decision can be replayed for audit and for the
legacy comparison. The single entry point is :func:`assess`.
"""

from credit_assessment.domain.engine import assess
from credit_assessment.domain.types import (
    Application,
    BureauReport,
    ClientProfile,
    Decision,
    Outcome,
    Reason,
)

__all__ = [
    "Application",
    "BureauReport",
    "ClientProfile",
    "Decision",
    "Outcome",
    "Reason",
    "assess",
]
