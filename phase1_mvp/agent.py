"""Phase 1 agent: BRPOP a task from ``queue:tasks``, run it, write the result to Redis.

The whole system is this loop and one Redis server. The agent creates the task's hash
if the submitter did not (so a bare ``redis-cli LPUSH`` works), then records RUNNING and
the final status through the fenced transitions of :mod:`shared.core.store`.

Run it: ``python -m phase1_mvp.agent`` (settings from the environment, see
``shared/core/config.py``). SIGTERM lets the task at hand finish, then the agent exits.
"""

from __future__ import annotations

import logging
from functools import partial

from redis import Redis

from shared.core.config import Settings, get_settings
from shared.core.keys import TASK_QUEUE
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.queues import parse_or_set_aside
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.execution.runner import run_recorded

log = logging.getLogger("phase1.agent")


# --8<-- [start:serve]
def serve(redis: Redis, settings: Settings, stop: GracefulStop) -> None:
    """Take one task at a time until asked to stop."""
    store = TaskStore(redis)
    parse = partial(TaskSpec.from_json, limits=settings)  # checked against the settings' limits
    log.info("agent %s waiting for tasks on %s", settings.agent_id, TASK_QUEUE)
    while not stop.stopping:
        popped = redis.brpop([TASK_QUEUE], timeout=settings.queue_poll_seconds)
        if popped is None:
            continue  # nothing queued; look at the stop flag again
        spec = parse_or_set_aside(redis, popped[1], TASK_QUEUE, parse)
        if spec is None:
            continue
        task, _ = store.create(spec)  # a no-op when the submitter created it already
        run_recorded(store, task, settings.agent_id, settings=settings)
    log.info("agent %s stopped", settings.agent_id)


# --8<-- [end:serve]


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    serve(redis, settings, GracefulStop().install())


if __name__ == "__main__":
    main()
