"""The decision engine: from an application and what we know of the client to a decision.

Nothing here does I/O or reads a clock, so every decision can be replayed for audit and for the
legacy comparison. The single entry point is :func:`assess`; the policy and the scorecard it
takes are built from versioned files by ``credit_assessment.model`` (``default_policy()``,
``default_model()``).
"""

from credit_assessment.domain.affordability import (
    AffordabilityResult,
    assess_affordability,
    instalment,
    max_affordable_amount,
)
from credit_assessment.domain.engine import assess
from credit_assessment.domain.policy import (
    Affordability,
    AffordabilityRules,
    KnockOut,
    Policy,
    ProductTerms,
)
from credit_assessment.domain.scorecard import (
    CategoricalCharacteristic,
    GradeBand,
    NumericCharacteristic,
    Scorecard,
)
from credit_assessment.domain.types import (
    Application,
    BureauReport,
    ClientProfile,
    Decision,
    Outcome,
    Reason,
)

__all__ = [
    "Affordability",
    "AffordabilityResult",
    "AffordabilityRules",
    "Application",
    "BureauReport",
    "CategoricalCharacteristic",
    "ClientProfile",
    "Decision",
    "GradeBand",
    "KnockOut",
    "NumericCharacteristic",
    "Outcome",
    "Policy",
    "ProductTerms",
    "Reason",
    "Scorecard",
    "assess",
    "assess_affordability",
    "instalment",
    "max_affordable_amount",
]
