"""Debian's Chromium, headless, as the page tests run it: no GPU, no first-run work, none of the
browser's own background traffic it can be told to skip. Each test adds its profile directory,
its network limits and what to do with the page."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
