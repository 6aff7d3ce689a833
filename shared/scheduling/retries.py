"""The retry release (phase 5): retries whose backoff is over move from ``queue:retry`` to
pending, a duty of the leader's loop every ``RELEASE_SECONDS``."""

from __future__ import annotations

import time

from shared.scheduling.handover import Handover

RELEASE_SECONDS = 0.25  # how often due retries move to pending: a retry starts this late


class RetryRelease:
    """Moves due retries to pending (``Handover.release_due``) every ``RELEASE_SECONDS``."""

    interval = RELEASE_SECONDS

    def __init__(self, handover: Handover) -> None:
        self.handover = handover
        self.next_release = 0.0  # monotonic time of the next release

    def begin_term(self, epoch: int) -> None:
        self.next_release = 0.0

    def tick(self, epoch: int) -> None:
        if time.monotonic() < self.next_release:
            return
        self.handover.release_due()
        self.next_release = time.monotonic() + self.interval
