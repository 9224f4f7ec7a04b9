"""What a running app holds: the pool, the writer, the directory, and its lifecycle state."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from credit_assessment.assessor import Assessor
from credit_assessment.routing.flags import TrafficFlag
from credit_assessment.store.assessments import AssessmentWriter
from credit_assessment.store.clients import ClientDirectory
from credit_assessment.store.database import Database
from credit_assessment.store.schema import Migration


@dataclass
class Lifecycle:
    """Shared by the server and the app: draining turns /ready to 503 before the server stops."""

    draining: bool = False


@dataclass
class Runtime:
    database: Database
    directory: ClientDirectory
    writer: AssessmentWriter
    assessor: Assessor
    expected_revision: str
    model_error: str | None = None
    flag: TrafficFlag | None = None
    migration_chain: Sequence[Migration] = ()
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    ready_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
