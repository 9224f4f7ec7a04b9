"""Identifiers the service hands out: assessment ids and request ids, cheap and unique.

Both are made many thousand times a second on the hot path, so neither asks the kernel each
time. Every process, and every child forked from it, draws its own randomness (the fork hook
below): a forked worker never repeats its parent's ids.
"""

from __future__ import annotations

import itertools
import os
import uuid

_RANDOM_BLOCK = 16 * 256  # random bytes read per system call: 256 assessment ids


class _Source:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._random = b""
        self._offset = 0
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def assessment_id(self) -> uuid.UUID:
        """A random (version 4) UUID, as ``uuid.uuid4()`` makes, from buffered randomness."""
        if self._offset >= len(self._random):
            self._random = os.urandom(_RANDOM_BLOCK)
            self._offset = 0
        start = self._offset
        self._offset = start + 16
        return uuid.UUID(bytes=self._random[start : start + 16], version=4)

    def request_id(self) -> str:
        """Unique per process lifetime and across processes: a random prefix and a counter."""
        return f"{self._prefix}{next(self._counter):08x}"


_source = _Source()
os.register_at_fork(after_in_child=_source.reset)

new_assessment_id = _source.assessment_id
new_request_id = _source.request_id
