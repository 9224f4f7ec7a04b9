"""Credit assessment service."""

__version__ = "2.0.0"
