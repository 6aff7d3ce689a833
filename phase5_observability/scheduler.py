"""Phase 5 scheduler: the phase 3 scheduler, observed.

Run it: ``SCHEDULER_ID=scheduler-1 python -m phase5_observability.scheduler``. Besides
what every process reports, a scheduler reports whether it leads, the live agents, the
pending backlog and (the leader) the overdue tasks (``shared/scheduling/gauges.py``);
each dispatch is a span in the trace of the task's submit. The leader places up to
``DISPATCH_BATCH`` tasks a turn and waits for the broker once for them all
(``shared/scheduling/batches.py``).
"""

from __future__ import annotations

from phase3_kafka import scheduler
from shared.coordination.serversets import Role
from shared.core.config import get_settings
from shared.core.logs import setup_logging
from shared.observability.process import observed
from shared.scheduling.batches import BatchScheduler


# --8<-- [start:main]
def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    with observed(settings, Role.SCHEDULER, settings.scheduler_id):
        scheduler.serve(settings, BatchScheduler)


# --8<-- [end:main]


if __name__ == "__main__":
    main()
