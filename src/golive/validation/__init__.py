"""Legacy-vs-new validation: compare credit outcomes, by segment, with an allowlist of
intended changes, and write a discrepancy register (docs/validation.md).

Pure core: ``compare``, ``stats``, ``segments``, ``anomalies``, ``allowlist``, ``register``,
``result`` and ``render`` do no I/O. Sources at the edge: ``database`` (SQL), ``export``
(files), ``replay`` + ``transport`` (HTTP to the evaluate endpoint). ``command`` is the CLI.
"""

from golive.validation.command import (
    ValidateRequest,
    add_validate_command,
    run_validation,
    write_outputs,
)
from golive.validation.config import ValidationConfig, load_config, parse_config
from golive.validation.render import render_markdown, to_json
from golive.validation.result import ValidationResult, gate, validate

__all__ = [
    "ValidateRequest",
    "ValidationConfig",
    "ValidationResult",
    "add_validate_command",
    "gate",
    "load_config",
    "parse_config",
    "render_markdown",
    "run_validation",
    "to_json",
    "validate",
    "write_outputs",
]
