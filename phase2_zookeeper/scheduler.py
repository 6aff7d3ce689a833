"""Phase 2 scheduler: one elected leader moves pending tasks to live agents' queues.

Run any number of them: ``python -m phase2_zookeeper.scheduler``. One wins the election
in ZooKeeper and leads; the others stand by and take over when it dies. The leader:

1. starts a new *term* (epoch) in Redis, so an earlier leader's late writes are refused;
2. reconciles: entries a crashed leader left half-placed go back to pending, and tasks
   held by agents that are no longer alive go back to pending as a new attempt;
3. takes pending tasks one by one, picks an agent with the configured strategy among
   the live agents that run the task's type, and dispatches the task to it;
4. reconciles again whenever ``/live-agents`` changes (failover), and every
   ``RECONCILE_SECONDS`` in case a change slipped between two looks.
"""

from __future__ import annotations

import logging
import time

from redis import Redis

from shared.config import Settings, get_settings
from shared.election import Leadership
from shared.handover import Handover
from shared.keys import PENDING_QUEUE, assigned_key
from shared.lifecycle import GracefulStop
from shared.logs import setup_logging, task_log
from shared.queues import parse_or_set_aside
from shared.registry import AgentDirectory, AgentInfo
from shared.states import Status
from shared.store import TaskStore
from shared.strategies import Strategy, candidates_for, make_strategy
from shared.zk import connect_zk

log = logging.getLogger("phase2.scheduler")


class Scheduler:
    def __init__(
        self,
        redis: Redis,
        directory: AgentDirectory,
        strategy: Strategy,
        settings: Settings,
        leadership: Leadership,
    ) -> None:
        self.store = TaskStore(redis)
        self.handover = Handover(self.store)
        self.directory = directory
        self.strategy = strategy
        self.settings = settings
        self.leadership = leadership

    # --8<-- [start:lead]
    def lead(self) -> None:
        """The leader's loop; returns as soon as leadership is in doubt."""
        epoch = self.handover.begin_term()
        log.info(
            "%s leads (epoch %d, strategy %s)",
            self.settings.scheduler_id,
            epoch,
            self.settings.scheduler_strategy,
        )
        parked = self.handover.return_parked_entries()
        if parked:
            log.info("returned %d half-placed entries to pending", parked)
        next_reconcile = 0.0
        while self.leadership.still_leading():
            if self.directory.changed.is_set() or time.monotonic() >= next_reconcile:
                self.directory.changed.clear()
                self.reconcile(epoch)
                next_reconcile = time.monotonic() + self.settings.reconcile_seconds
            agents = self.directory.live()
            if not agents:
                self.directory.changed.wait(self.settings.queue_poll_seconds)
                continue
            entry = self.handover.take(timeout=self.settings.queue_poll_seconds)
            if entry is not None:
                self.place(epoch, entry, agents)

    # --8<-- [end:lead]

    def reconcile(self, epoch: int) -> None:
        """Every task held by an agent that is not alive goes back to pending."""
        live = self.directory.live()
        for agent_id in sorted(self.handover.agents_holding_tasks() - live.keys()):
            requeued = self.handover.fail_over(agent_id, epoch)
            if requeued:
                log.warning(
                    "agent %s is gone: %d of its tasks went back to pending", agent_id, requeued
                )

    # --8<-- [start:place]
    def place(self, epoch: int, entry: str, agents: dict[str, AgentInfo]) -> None:
        """Dispatch one taken entry to an agent, or set it aside, or put it back."""
        spec = parse_or_set_aside(self.store.redis, entry, source=PENDING_QUEUE)
        if spec is None:
            self.handover.drop(entry)
            return
        task, _ = self.store.create(spec)  # a raw LPUSH has no hash yet
        tlog = task_log(log, task.taskId, task.attempt)
        if task.state is not Status.PENDING:
            tlog.info("is %s already; entry dropped", task.status)
            self.handover.drop(entry)
            return
        candidates = candidates_for(task.type, agents)
        if not candidates:
            tlog.warning("no live agent runs %s tasks; back to the end of the queue", task.type)
            self.handover.postpone(entry)
            self.directory.changed.wait(self.settings.queue_poll_seconds)
            return
        agent = self.strategy.choose(candidates, self.loads(candidates))
        outcome = self.handover.dispatch(epoch, entry, task, agent.id)
        if outcome.ok:
            tlog.info("dispatched to %s", agent.id)
        else:
            tlog.warning("not dispatched to %s: %s", agent.id, outcome.result)

    # --8<-- [end:place]

    def loads(self, agents: list[AgentInfo]) -> dict[str, int]:
        """Tasks each agent holds and has not finished (its ``assigned`` set)."""
        pipe = self.store.redis.pipeline(transaction=False)
        for agent in agents:
            pipe.scard(assigned_key(agent.id))
        return dict(zip((agent.id for agent in agents), pipe.execute(), strict=True))


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    strategy = make_strategy(settings.scheduler_strategy)
    stop = GracefulStop().install()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    zk = connect_zk(settings)
    leadership = Leadership(zk, settings.scheduler_id, stop)
    stop.on_stop(leadership.cancel)
    scheduler = Scheduler(redis, AgentDirectory(zk), strategy, settings, leadership)
    log.info("scheduler %s joining the election", settings.scheduler_id)
    leadership.run(scheduler.lead)
    zk.stop()
    log.info("scheduler %s stopped", settings.scheduler_id)


if __name__ == "__main__":
    main()
