"""Outside sources the assessor consults, each behind a small port: the credit bureau.

Sits beside ``store`` in the layers: used by the assessor, never importing api or store.
"""

from credit_assessment.sources.bureau import (
    BureauConfig,
    BureauLookup,
    BureauMetrics,
    BureauSource,
    HttpBureau,
    LookupOutcome,
    NoBureau,
    bureau_from_settings,
)
from credit_assessment.sources.report_cache import (
    InProcessReportCache,
    NoReportCache,
    RedisReportCache,
    ReportCache,
)

__all__ = [
    "BureauConfig",
    "BureauLookup",
    "BureauMetrics",
    "BureauSource",
    "HttpBureau",
    "InProcessReportCache",
    "LookupOutcome",
    "NoBureau",
    "NoReportCache",
    "RedisReportCache",
    "ReportCache",
    "bureau_from_settings",
]
