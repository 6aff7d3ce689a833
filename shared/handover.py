"""Handing tasks over through Redis: pending queue -> leader -> an agent's queue, and back.

Each step that must not be split is one Lua script, built on the store's ``move``:

* ``take``: ``BLMOVE queue:pending -> queue:scheduling`` takes the next entry without
  removing it from Redis. A leader that crashes while it holds an entry leaves it in
  ``queue:scheduling``, where the next leader finds it and puts it back.
* ``dispatch``: PENDING -> SCHEDULED (recording ``agentId``) -> DISPATCHED, the entry
  leaves ``queue:scheduling`` and ``{taskId, attempt}`` joins the agent's queue, all in
  one step, and only if the caller's leader *epoch* is still the current one. A deposed
  leader's dispatch is refused and its entry goes back to pending.
* ``requeue``: failover. An in-flight task of a dead agent goes back to PENDING with a
  new attempt, back on ``queue:pending``, and its undelivered entry leaves the agent's
  queue.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from redis import Redis

from shared.keys import (
    ASSIGNED_PREFIX,
    LEADER_EPOCH,
    PENDING_QUEUE,
    SCHEDULING,
    agent_queue,
    assigned_key,
    task_key,
)
from shared.logs import task_log
from shared.model import InvalidTask, Task, now_ms
from shared.registry import AgentInfo
from shared.states import IN_FLIGHT, Status
from shared.store import MOVE_LUA, Outcome, TaskStore, move_args

log = logging.getLogger(__name__)

# A leader's write is refused when its term is over; the entry it took goes back to
# pending (unless the new leader already put it back).
LEADER_LUA = """
local function deposed(epoch_key, epoch, scheduling, pending, entry)
  if redis.call('GET', epoch_key) == epoch then return false end
  if redis.call('LREM', scheduling, 1, entry) == 1 then redis.call('RPUSH', pending, entry) end
  return true
end
"""

# --8<-- [start:dispatch]
DISPATCH_LUA = (
    MOVE_LUA
    + LEADER_LUA
    + """
local task, scheduling, pending, agent_queue, epoch_key = unpack(KEYS)
local epoch, entry, delivery = ARGV[1], ARGV[2], ARGV[3]
if deposed(epoch_key, epoch, scheduling, pending, entry) then return {'deposed', '', '0'} end
redis.call('LREM', scheduling, 1, entry)
local scheduled = move(task, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if scheduled[1] ~= 'ok' then return scheduled end
local dispatched = move(task, ARGV[8], ARGV[9], ARGV[10], ARGV[11])
redis.call('LPUSH', agent_queue, delivery)
return dispatched
"""
)
# --8<-- [end:dispatch]

# Phase 3 splits the dispatch in two around the Kafka publish: ``schedule`` records the
# choice (the entry stays parked), ``mark_dispatched`` runs once the broker has the message.
# --8<-- [start:schedule]
SCHEDULE_LUA = (
    MOVE_LUA
    + LEADER_LUA
    + """
local task, scheduling, pending, epoch_key = unpack(KEYS)
local epoch, entry = ARGV[1], ARGV[2]
if deposed(epoch_key, epoch, scheduling, pending, entry) then return {'deposed', '', '0'} end
local scheduled = move(task, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if scheduled[1] ~= 'ok' then redis.call('LREM', scheduling, 1, entry) end
return scheduled
"""
)

MARK_DISPATCHED_LUA = (
    MOVE_LUA
    + """
-- the parked entry is this attempt's only while the attempt is still the task's
if redis.call('HGET', KEYS[1], 'attempt') == ARGV[3] then
  redis.call('LREM', KEYS[2], 1, ARGV[1])
end
return move(KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)
# --8<-- [end:schedule]

# --8<-- [start:requeue]
REQUEUE_LUA = (
    MOVE_LUA
    + """
local task, pending, agent_queue, epoch_key = unpack(KEYS)
local epoch, entry, delivery = ARGV[1], ARGV[2], ARGV[3]
if epoch ~= '' and redis.call('GET', epoch_key) ~= epoch then return {'deposed', '', '0'} end
local requeued = move(task, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if requeued[1] == 'ok' then
  redis.call('LREM', agent_queue, 0, delivery)
  redis.call('LPUSH', pending, entry)
end
return requeued
"""
)
# --8<-- [end:requeue]


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


def pending_entry(task: Task) -> str:
    """The queue entry of a stored task: the spec it was submitted with."""
    spec = {
        "taskId": task.taskId,
        "name": task.name,
        "type": task.type,
        "content": task.content,
        "timeout": task.timeout,
        "maxRetries": task.maxRetries,
    }
    return json.dumps(spec)


class Handover:
    """The Redis side of scheduling: take, dispatch, requeue."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self.redis: Redis = store.redis
        self._dispatch = self.redis.register_script(DISPATCH_LUA)
        self._requeue = self.redis.register_script(REQUEUE_LUA)
        self._schedule = self.redis.register_script(SCHEDULE_LUA)
        self._mark_dispatched = self.redis.register_script(MARK_DISPATCHED_LUA)

    def begin_term(self) -> int:
        """A new leader's epoch: every dispatch of an earlier leader is refused from now on."""
        return int(self.redis.incr(LEADER_EPOCH))

    def take(self, timeout: float) -> str | None:
        """The next pending entry, parked in ``queue:scheduling`` while it is placed."""
        return self.redis.blmove(PENDING_QUEUE, SCHEDULING, timeout, "RIGHT", "LEFT")

    def drop(self, entry: str) -> None:
        """Forget a taken entry whose task needs no dispatch (already placed, or cancelled)."""
        self.redis.lrem(SCHEDULING, 1, entry)

    def postpone(self, entry: str) -> None:
        """Send a taken entry to the back of the pending queue (no agent can run it now)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(SCHEDULING, 1, entry)
        pipe.lpush(PENDING_QUEUE, entry)
        pipe.execute()

    def dispatch(self, epoch: int, entry: str, task: Task, agent: AgentInfo) -> Outcome:
        now = now_ms()
        keys = [
            task_key(task.taskId),
            SCHEDULING,
            PENDING_QUEUE,
            agent_queue(agent.id),
            LEADER_EPOCH,
        ]
        args = [
            str(epoch),
            entry,
            Delivery(task.taskId, task.attempt).to_json(),
            *move_args(Status.SCHEDULED, task.attempt, Status.PENDING, holder(agent, now)),
            *move_args(Status.DISPATCHED, task.attempt, Status.SCHEDULED, {"dispatchedAt": now}),
        ]
        return Outcome.parse(self._dispatch(keys=keys, args=args))

    def schedule(self, epoch: int, entry: str, task: Task, agent: AgentInfo) -> Outcome:
        """PENDING -> SCHEDULED on ``agent``; the entry stays parked until marked dispatched."""
        keys = [task_key(task.taskId), SCHEDULING, PENDING_QUEUE, LEADER_EPOCH]
        args = [
            str(epoch),
            entry,
            *move_args(Status.SCHEDULED, task.attempt, Status.PENDING, holder(agent, now_ms())),
        ]
        return Outcome.parse(self._schedule(keys=keys, args=args))

    def mark_dispatched(self, entry: str, task: Task) -> Outcome:
        """SCHEDULED -> DISPATCHED once the agent's message is stored; the entry is done.

        Refused, harmlessly, when the agent's first report got there first.
        """
        keys = [task_key(task.taskId), SCHEDULING]
        fields = {"dispatchedAt": now_ms()}
        args = [entry, *move_args(Status.DISPATCHED, task.attempt, Status.SCHEDULED, fields)]
        return Outcome.parse(self._mark_dispatched(keys=keys, args=args))

    def requeue(self, task: Task, epoch: int | None = None) -> Outcome:
        """Give an in-flight task back to the pending queue as a new attempt."""
        keys = [task_key(task.taskId), PENDING_QUEUE, agent_queue(task.agentId), LEADER_EPOCH]
        args = [
            "" if epoch is None else str(epoch),
            pending_entry(task),
            Delivery(task.taskId, task.attempt).to_json(),
            *move_args(Status.PENDING, task.attempt, task.state),
        ]
        return Outcome.parse(self._requeue(keys=keys, args=args))

    # --8<-- [start:fail_over]
    def fail_over(self, agent_id: str, epoch: int | None = None, keep_session: str = "") -> int:
        """Requeue the tasks ``agent_id`` holds; returns how many went back to pending.

        With ``keep_session``, the agent is alive under that ZooKeeper session, and only
        the tasks given to an earlier run of it (another session) are requeued.
        """
        requeued = 0
        for task_id in self.redis.smembers(assigned_key(agent_id)):
            task = self.store.get(task_id)
            if task is None or task.state not in IN_FLIGHT:
                continue
            if keep_session and task.agentSession == keep_session:
                continue
            outcome = self.requeue(task, epoch)
            if outcome.result == "deposed":
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
        """Every agent id with an ``assigned:{id}`` set (tasks in flight)."""
        return {
            key.removeprefix(ASSIGNED_PREFIX) for key in self.redis.scan_iter(f"{ASSIGNED_PREFIX}*")
        }

    def return_parked_entries(self) -> int:
        """Put entries a crashed leader left in ``queue:scheduling`` back on pending."""
        returned = 0
        while self.redis.lmove(SCHEDULING, PENDING_QUEUE, "RIGHT", "RIGHT") is not None:
            returned += 1
        return returned
