"""The HTTP API: app factory (``api.app.create_app``), the assessment endpoint, reads, probes,
auth and problem details."""
