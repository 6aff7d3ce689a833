"""Which Kafka offset is safe to commit when records finish out of order.

An agent runs several dispatches at once; the one at offset 12 may finish before the one
at offset 10. Committing 13 then would tell Kafka that 10 is done, and a crash would lose
it. So the committable position is the first offset that is *not* finished yet: records
before it are all done, and everything from it on is delivered again after a restart
(at-least-once; the attempt fencing makes the repeat harmless).
"""

from __future__ import annotations

import threading


class OffsetTracker:
    """Offsets of one partition: started, finished, and the position safe to commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[int] = set()
        self._highest_done = -1

    def started(self, offset: int) -> None:
        with self._lock:
            self._open.add(offset)

    def finished(self, offset: int) -> None:
        with self._lock:
            self._open.discard(offset)
            self._highest_done = max(self._highest_done, offset)

    def committable(self) -> int | None:
        """The next offset to read after a restart, or None if nothing finished yet."""
        with self._lock:
            if self._open:
                return min(self._open)
            return self._highest_done + 1 if self._highest_done >= 0 else None
