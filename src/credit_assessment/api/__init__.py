"""The HTTP API: app factory, the assessment endpoint, reads, probes, auth and problem details."""

from credit_assessment.api.app import create_app

__all__ = ["create_app"]
