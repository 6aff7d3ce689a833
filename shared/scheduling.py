"""The leader's loop, shared by every phase from 2 on.

A phase plugs in how a task reaches its agent (``dispatch``: a Redis list in phase 2, a
Kafka topic from phase 3) and how busy agents are (``loads``: tasks held in phase 2,
heartbeats from phase 3). The rest does not change:

1. a new term starts with a new epoch, so an earlier leader's late writes are refused;
2. entries a crashed leader left half-placed go back to pending;
3. reconcile: every task held by an agent that is gone (or by an earlier run of an
   agent that restarted) goes back to pending as a new attempt — at the start of the
   term, whenever ``/live-agents`` changes, and every ``RECONCILE_SECONDS``;
4. take the next pending entry, choose an agent that runs its type, dispatch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from redis import Redis

from shared.config import Settings
from shared.election import Leadership
from shared.handover import Handover
from shared.keys import PENDING_QUEUE, assigned_key
from shared.logs import task_log
from shared.model import Task
from shared.queues import parse_or_set_aside
from shared.registry import AgentDirectory, AgentInfo
from shared.states import Status
from shared.store import Outcome
from shared.strategies import Strategy, candidates_for

log = logging.getLogger("scheduler")

Dispatch = Callable[[int, str, Task, AgentInfo], Outcome]
Loads = Callable[[list[AgentInfo]], dict[str, int]]
Usable = Callable[[Mapping[str, AgentInfo]], dict[str, AgentInfo]]


def held_tasks(redis: Redis) -> Loads:
    """Load = the tasks an agent holds and has not finished (its ``assigned`` set)."""

    def loads(agents: list[AgentInfo]) -> dict[str, int]:
        pipe = redis.pipeline(transaction=False)
        for agent in agents:
            pipe.scard(assigned_key(agent.id))
        return dict(zip((agent.id for agent in agents), pipe.execute(), strict=True))

    return loads


class Scheduler:
    def __init__(
        self,
        handover: Handover,
        directory: AgentDirectory,
        strategy: Strategy,
        leadership: Leadership,
        settings: Settings,
        dispatch: Dispatch,
        loads: Loads,
        usable: Usable = dict,
    ) -> None:
        self.handover = handover
        self.store = handover.store
        self.directory = directory
        self.strategy = strategy
        self.leadership = leadership
        self.settings = settings
        self.dispatch = dispatch
        self.loads = loads
        self.usable = usable

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
            agents = self.usable(self.directory.live())
            if not agents:
                self.directory.changed.wait(self.settings.queue_poll_seconds)
                continue
            entry = self.handover.take(timeout=self.settings.queue_poll_seconds)
            if entry is not None and self.place(epoch, entry, agents) == "deposed":
                log.warning("a newer leader's epoch refused this one: stepping down")
                return

    # --8<-- [end:lead]

    # --8<-- [start:reconcile]
    def reconcile(self, epoch: int) -> None:
        """Tasks of agents that are gone, or of an earlier run of one, go back to pending."""
        live = self.directory.live()
        for agent_id in sorted(self.handover.agents_holding_tasks()):
            agent = live.get(agent_id)
            session = agent.session if agent else ""
            requeued = self.handover.fail_over(agent_id, epoch, keep_session=session)
            if requeued:
                why = "restarted" if agent else "is gone"
                log.warning("agent %s %s: %d tasks back to pending", agent_id, why, requeued)

    # --8<-- [end:reconcile]

    # --8<-- [start:place]
    def place(self, epoch: int, entry: str, agents: dict[str, AgentInfo]) -> str:
        """Dispatch one taken entry to an agent, or set it aside, or put it back.

        Returns the outcome's result (``ok``, ``deposed``, ...).
        """
        spec = parse_or_set_aside(self.store.redis, entry, source=PENDING_QUEUE)
        if spec is None:
            self.handover.drop(entry)
            return "invalid"
        task, _ = self.store.create(spec)  # a raw LPUSH has no hash yet
        tlog = task_log(log, task.taskId, task.attempt)
        if task.state is Status.SCHEDULED:
            # An earlier leader chose an agent but stopped before handing the task over.
            outcome = self.handover.requeue(task, epoch)
            if outcome.result == "deposed":
                self.handover.postpone(entry)  # the entry stays for the real leader
                return outcome.result
            tlog.warning("was left SCHEDULED; new attempt: %s", outcome.describe(Status.PENDING))
            self.handover.drop(entry)
            return outcome.result
        if task.state is not Status.PENDING:
            tlog.info("is %s already; entry dropped", task.status)
            self.handover.drop(entry)
            return "dropped"
        candidates = candidates_for(task.type, agents)
        if not candidates:
            tlog.warning("no live agent runs %s tasks; back to the end of the queue", task.type)
            self.handover.postpone(entry)
            self.directory.changed.wait(self.settings.queue_poll_seconds)
            return "postponed"
        agent = self.strategy.choose(candidates, self.loads(candidates))
        outcome = self.dispatch(epoch, entry, task, agent)
        if outcome.ok:
            tlog.info("dispatched to %s", agent.id)
        else:
            tlog.warning("not dispatched to %s: %s", agent.id, outcome.result)

    # --8<-- [end:place]
