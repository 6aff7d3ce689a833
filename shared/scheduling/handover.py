"""Handing tasks over through Redis: pending queue -> leader -> an agent's queue, and back.

Each step that must not be split is one Lua script (in ``lua/`` beside this file), built on
the store's ``move``:

* ``take``: ``BLMOVE queue:pending -> queue:scheduling`` takes the next entry without
  removing it from Redis. A leader that crashes while it holds an entry leaves it in
  ``queue:scheduling``, where the next leader finds it and puts it back. ``take_more``
  parks more entries the same way, without waiting (a batch, phase 5); ``put_back``
  returns entries no agent has room for to the head of pending, in their order.
* ``dispatch_all`` (phase 2): PENDING -> SCHEDULED (recording ``agentId``) ->
  DISPATCHED, the entry leaves ``queue:scheduling`` and ``{taskId, attempt}`` joins the
  agent's queue, all in one step per task, and only if the caller's leader *epoch* is
  still the current one. A deposed leader's dispatch is refused and its entry goes back
  to pending.
* ``schedule_all`` then ``mark_all_dispatched`` (phase 3 on): the same hand-over in two
  steps, with the message to the agent's partition published in between
  (``kafka_dispatch.py``).
* ``release_due`` (phase 5, ``retries.py``): retries whose backoff is over move from
  ``queue:retry`` to pending.
* ``requeue``: failover. An in-flight task of a dead agent goes back to PENDING with a
  new attempt, back on ``queue:pending``, and its undelivered entry leaves the agent's
  queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from redis import Redis

from shared.coordination.registry import AgentInfo
from shared.core.keys import (
    ASSIGNED_PREFIX,
    LEADER_EPOCH,
    PENDING_QUEUE,
    RETRY_QUEUE,
    SCHEDULING,
    agent_queue,
    assigned_key,
    task_key,
)
from shared.core.logs import task_log
from shared.core.scripts import MOVE, script
from shared.core.states import IN_FLIGHT, Status
from shared.core.store import Moved, Result, TaskStore, move_spec
from shared.core.task import InvalidTask, Task, now_ms

log = logging.getLogger(__name__)

LUA = Path(__file__).parent / "lua"
LEADER = LUA / "leader.lua"
RELEASE_BATCH = 100  # due retries moved to pending per call
SCAN_COUNT = 1000  # keys SCAN looks at per call while it finds the agents holding tasks


@dataclass(frozen=True)
class Delivery:
    """What an agent's queue holds: which task, and which attempt of it to run."""

    task_id: str
    attempt: int

    def to_json(self) -> str:
        return json.dumps({"taskId": self.task_id, "attempt": self.attempt})

    @classmethod
    def from_json(cls, raw: str) -> Delivery:
        try:
            data = json.loads(raw)
            return cls(str(data["taskId"]), int(data["attempt"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidTask(f"not a delivery {{taskId, attempt}}: {exc}") from None


def holder(agent: AgentInfo, now: int) -> dict[str, object]:
    """The fields that record which agent, and which run of it, holds a task."""
    return {"agentId": agent.id, "agentSession": agent.session, "scheduledAt": now}


class Choice(NamedTuple):
    """A taken entry, its stored task, and the agent chosen to run it."""

    entry: str
    task: Task
    agent: AgentInfo


def dispatch_call(epoch: int, choice: Choice) -> tuple[list[str], list[str]]:
    """The keys and args of ``dispatch.lua`` for one choice."""
    entry, task, agent = choice
    now = now_ms()
    keys = [
        task_key(task.taskId),
        SCHEDULING,
        PENDING_QUEUE,
        agent_queue(agent.id),
        LEADER_EPOCH,
        assigned_key(agent.id),
    ]
    to_scheduled = move_spec(Status.SCHEDULED, task.attempt, Status.PENDING, holder(agent, now))
    fields = {"dispatchedAt": now}
    to_dispatched = move_spec(Status.DISPATCHED, task.attempt, Status.SCHEDULED, fields, agent.id)
    args = [
        str(epoch),
        entry,
        Delivery(task.taskId, task.attempt).to_json(),
        to_scheduled.to_json(),
        to_dispatched.to_json(),
    ]
    return keys, args


def schedule_call(epoch: int, choice: Choice) -> tuple[list[str], list[str]]:
    """The keys and args of ``schedule.lua`` for one choice."""
    entry, task, agent = choice
    keys = [task_key(task.taskId), SCHEDULING, PENDING_QUEUE, LEADER_EPOCH, assigned_key(agent.id)]
    to_scheduled = move_spec(
        Status.SCHEDULED, task.attempt, Status.PENDING, holder(agent, now_ms())
    )
    return keys, [str(epoch), entry, to_scheduled.to_json()]


def mark_call(choice: Choice) -> tuple[list[str], list[str]]:
    """The keys and args of ``mark_dispatched.lua`` for one choice."""
    entry, task, agent = choice
    keys = [task_key(task.taskId), SCHEDULING, assigned_key(agent.id)]
    fields = {"dispatchedAt": now_ms()}
    spec = move_spec(Status.DISPATCHED, task.attempt, Status.SCHEDULED, fields, agent.id)
    return keys, [entry, str(task.attempt), spec.to_json()]


class Handover:
    """The Redis side of scheduling: take, dispatch, requeue."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self.redis: Redis = store.redis
        self._dispatch = store.script(LUA / "dispatch.lua", MOVE, LEADER)
        self._schedule = store.script(LUA / "schedule.lua", MOVE, LEADER)
        self._mark_dispatched = store.script(LUA / "mark_dispatched.lua", MOVE)
        self._requeue = store.script(LUA / "requeue.lua", MOVE)
        self._release_due = script(self.redis, LUA / "release_due.lua")

    def begin_term(self) -> int:
        """A new leader's epoch: every dispatch of an earlier leader is refused from now on."""
        return int(self.redis.incr(LEADER_EPOCH))

    def take(self, timeout: float) -> str | None:
        """The next pending entry, parked in ``queue:scheduling`` while it is placed."""
        return self.redis.blmove(PENDING_QUEUE, SCHEDULING, timeout, "RIGHT", "LEFT")

    def take_more(self, count: int) -> list[str]:
        """Up to ``count`` more pending entries, without waiting, parked like ``take``'s.

        Two round trips at most: how many wait, then that many LMOVEs in one pipeline.
        Each LMOVE moves one entry whole, so a crash leaves every entry either pending or
        parked, never only in the leader's memory.
        """
        if count <= 0:
            return []
        waiting = min(count, self.redis.llen(PENDING_QUEUE))
        if waiting <= 0:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(waiting):
            pipe.lmove(PENDING_QUEUE, SCHEDULING, "RIGHT", "LEFT")
        return [entry for entry in pipe.execute() if entry is not None]

    def release_due(self) -> int:
        """Move retries whose backoff is over (by Redis' clock) to pending; how many moved."""
        return int(self._release_due(keys=[RETRY_QUEUE, PENDING_QUEUE], args=[RELEASE_BATCH]))

    def drop(self, entry: str) -> None:
        """Forget a taken entry whose task needs no dispatch (already placed, or cancelled)."""
        self.redis.lrem(SCHEDULING, 1, entry)

    def postpone(self, entry: str) -> None:
        """Send a taken entry to the back of the pending queue (no agent can run it now)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(SCHEDULING, 1, entry)
        pipe.lpush(PENDING_QUEUE, entry)
        pipe.execute()

    def put_back(self, entries: Sequence[str]) -> None:
        """Return taken entries to the head of the pending queue, the end ``take`` reads
        next, in their order: ``entries[0]`` is the next taken (no agent has room now).

        One MULTI/EXEC: a crash leaves each entry parked or pending, never in neither.
        """
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=True)
        for entry in entries:
            pipe.lrem(SCHEDULING, 1, entry)
        pipe.rpush(PENDING_QUEUE, *reversed(entries))
        pipe.execute()

    def dispatch_all(self, epoch: int, choices: Sequence[Choice]) -> list[Moved]:
        """Phase 2's hand-over, in one round trip: each task PENDING -> SCHEDULED ->
        DISPATCHED and its delivery onto its agent's list, one script each, fenced by
        ``epoch`` on its own. A refused one's entry goes back to pending."""
        pipe = self.redis.pipeline(transaction=False)
        for choice in choices:
            self._dispatch(*dispatch_call(epoch, choice), client=pipe)
        return [Moved.parse(reply) for reply in pipe.execute()]

    def schedule_all(self, epoch: int, choices: Sequence[Choice]) -> list[Moved]:
        """Each choice PENDING -> SCHEDULED on its agent, its entry parked until marked
        dispatched; one round trip. Each script is still one atomic step, fenced by
        ``epoch`` on its own: a deposed leader's every one is refused."""
        pipe = self.redis.pipeline(transaction=False)
        for choice in choices:
            self._schedule(*schedule_call(epoch, choice), client=pipe)
        return [Moved.parse(reply) for reply in pipe.execute()]

    def mark_all_dispatched(self, choices: Sequence[Choice]) -> list[Moved]:
        """Each choice SCHEDULED -> DISPATCHED once its agent's message is stored, its
        entry done; one round trip. Refused, harmlessly, where the agent's first report
        got there first, and so also when run again after a lost connection."""
        pipe = self.redis.pipeline(transaction=False)
        for choice in choices:
            self._mark_dispatched(*mark_call(choice), client=pipe)
        return [Moved.parse(reply) for reply in pipe.execute()]

    def requeue(self, task: Task, epoch: int | None = None) -> Moved:
        """Give an in-flight task back to the pending queue as a new attempt."""
        keys = [
            task_key(task.taskId),
            PENDING_QUEUE,
            agent_queue(task.agentId),
            LEADER_EPOCH,
            assigned_key(task.agentId),
        ]
        to_pending = move_spec(Status.PENDING, task.attempt, task.status, agent=task.agentId)
        args = [
            "" if epoch is None else str(epoch),
            task.spec().to_json(),
            Delivery(task.taskId, task.attempt).to_json(),
            to_pending.to_json(),
        ]
        return Moved.parse(self._requeue(keys=keys, args=args))

    # --8<-- [start:fail_over]
    def fail_over(self, agent_id: str, epoch: int | None = None, keep_session: str = "") -> int:
        """Requeue the tasks ``agent_id`` holds; returns how many went back to pending.

        With ``keep_session``, the agent is alive under that ZooKeeper session, and only
        the tasks given to an earlier run of it (another session) are requeued.
        """
        requeued = 0
        for task_id in self.redis.smembers(assigned_key(agent_id)):
            task = self.store.get(task_id)
            if task is None or task.status not in IN_FLIGHT:
                continue
            if keep_session and task.agentSession == keep_session:
                continue
            outcome = self.requeue(task, epoch)
            if outcome.result is Result.DEPOSED:
                break
            if outcome.ok:
                requeued += 1
                task_log(log, task_id, task.attempt).info(
                    "%s on agent %s went back to pending as attempt %d",
                    task.status,
                    agent_id,
                    outcome.attempt,
                )
        return requeued

    # --8<-- [end:fail_over]

    def agents_holding_tasks(self) -> set[str]:
        """Every agent id with an ``assigned:{id}`` set (tasks in flight).

        SCAN walks the whole keyspace, two keys or more per task; ``SCAN_COUNT`` keys a
        call make that a few round trips for a backlog of 10,000 tasks, not thousands
        (Redis' default is 10).
        """
        keys = self.redis.scan_iter(f"{ASSIGNED_PREFIX}*", count=SCAN_COUNT)
        return {key.removeprefix(ASSIGNED_PREFIX) for key in keys}

    def return_parked_entries(self) -> int:
        """Put entries a crashed leader left in ``queue:scheduling`` back on pending."""
        returned = 0
        while self.redis.lmove(SCHEDULING, PENDING_QUEUE, "RIGHT", "RIGHT") is not None:
            returned += 1
        return returned
