"""Phase 5 scheduler: the phase 3 scheduler, observed, with phase 5's leader.

Run it: ``SCHEDULER_ID=scheduler-1 python -m phase5_observability.scheduler``. Besides
what every process reports, a scheduler reports whether it leads, the live agents, the
pending backlog and (the leader) the overdue tasks (``shared/scheduling/gauges.py``);
each dispatch is a span in the trace of the task's submit. Its leader places up to
``DISPATCH_BATCH`` tasks a turn, no more than the agents have room for
(``AGENT_PREFETCH``), and has two duties more: retries whose backoff is over go back to
pending (``shared/scheduling/retries.py``), and the watchdog fails over the tasks of a
silent agent that are far past their timeout (``shared/scheduling/watchdog.py``), it
fires the schedules whose tick has come (``shared/schedules/firing.py``), and it releases
the workflows' tasks whose parents have ended (``shared/workflows/release.py``).
"""

from __future__ import annotations

import os

from phase3_kafka import scheduler
from shared.coordination.serversets import ProcessKind
from shared.core.config import PHASE5_TASK_TYPES, get_settings
from shared.core.logs import setup_logging
from shared.core.steps import phase5_store
from shared.observability.process import observed
from shared.schedules.firing import ScheduleFiring
from shared.schedules.store import ScheduleStore
from shared.scheduling.cancels import Canceller
from shared.scheduling.gauges import report_system
from shared.scheduling.leader import Scheduler
from shared.scheduling.retries import RetryRelease
from shared.scheduling.watchdog import Watchdog
from shared.workflows.release import WorkflowRelease
from shared.workflows.store import WorkflowStore


# --8<-- [start:main]
def main() -> None:
    os.environ.setdefault("TASK_TYPES", PHASE5_TASK_TYPES)  # its pending entries may be HTTP
    settings = get_settings()
    setup_logging(settings)
    with observed(settings, ProcessKind.SCHEDULER, settings.scheduler_id):
        scheduler.serve(settings, phase5_leader, phase5_store)


def phase5_leader(wiring: scheduler.Wiring) -> Scheduler:
    """Phase 3's leader, in batches with backpressure, reporting the system, with the
    retry release, the watchdog, the schedules and the workflows as its duties."""
    settings, handover, directory = wiring.settings, wiring.handover, wiring.directory
    report_system(handover, directory, wiring.leadership, settings.task_kill_grace)
    duties = [
        RetryRelease(handover),
        Watchdog(handover, directory, settings),
        schedule_firing(wiring),
        WorkflowRelease(wiring.redis, WorkflowStore(wiring.redis, handover.store)),
    ]
    return scheduler.kafka_leader(
        wiring, batch=settings.dispatch_batch, prefetch=settings.agent_prefetch, duties=duties
    )


def schedule_firing(wiring: scheduler.Wiring) -> ScheduleFiring:
    """The schedules' duty; it cancels a previous task (``CANCEL_PREVIOUS``) as a user's
    cancel does."""
    tasks = wiring.handover.store
    canceller = Canceller(tasks, wiring.directory, wiring.producer, wiring.settings)
    return ScheduleFiring(
        ScheduleStore(wiring.redis, tasks),
        tasks,
        canceller.cancel_id,
        wiring.settings.schedule_misfire_seconds,
    )


# --8<-- [end:main]


if __name__ == "__main__":
    main()
