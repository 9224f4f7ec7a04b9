"""The release's security scan: dependency vulnerabilities, static analysis, SBOM, summary.

    summary   PURE: pip-audit's and bandit's JSON outputs, with the reviewed ignore file, folded
              into one summary (counts by severity, each finding, the version scanned)
    scan      runs the tools (``golive audit``, ``make audit``) and writes
              ``<out>/<version>/``: pip-audit.json, bandit.json, sbom.cdx.json, summary.json

The preflight's checklist reads ``summary.json`` back (``golive.checklist``).
"""
