"""What a scheduler reports about the whole system, read when Prometheus scrapes.

Every scheduler, leader or not, reports the live agents and the pending backlog (so the
numbers survive a failover; a dashboard takes the ``max`` across schedulers). Only the
leader counts the overdue tasks, which costs a read of every task in flight.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory
from shared.core import metrics
from shared.core.keys import PENDING_QUEUE
from shared.scheduling.handover import Handover
from shared.scheduling.watchdog import overdue

log = logging.getLogger(__name__)

# Past its timeout, a task still needs its kill grace and a report's trip through Kafka
# before it leaves its agent: only later than this is it stuck.
OVERDUE_MARGIN = 30.0


def overdue_tasks(handover: Handover, kill_grace: float) -> int:
    """Tasks held by an agent for longer than their timeout, the kill and a report allow."""
    return len(overdue(handover, kill_grace + OVERDUE_MARGIN))


def report_system(
    handover: Handover, directory: AgentDirectory, leadership: Leadership, kill_grace: float
) -> None:
    """Export the scheduler's metrics; its gauges read the system at each scrape."""
    metrics.register_scheduler_metrics()
    metrics.AGENTS_LIVE.set_function(lambda: len(directory.live()))
    metrics.PENDING.set_function(unless_failing(lambda: handover.redis.llen(PENDING_QUEUE)))
    metrics.OVERDUE.set_function(
        unless_failing(lambda: overdue_tasks(handover, kill_grace) if leadership.leading else 0)
    )


def unless_failing(read: Callable[[], float]) -> Callable[[], float]:
    """``read``, or NaN when it raises: one failed read (Redis away) must not fail the
    whole scrape, which would hide every other metric of the process."""

    def safe() -> float:
        try:
            return read()
        except Exception as exc:  # any failure: the scrape goes on without this one
            log.warning("a gauge could not be read: %s", exc)
            return math.nan

    return safe
