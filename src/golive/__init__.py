"""golive."""
