"""The Redis task store: one hash per task, every status change atomic and fenced.

Two Lua scripts do all the writing that matters, so each runs as one step on the
server and no interleaving of clients can corrupt a task:

* ``create`` makes ``task:{taskId}`` once. A second create with the same ``taskId`` or
  the same ``requestId`` returns the existing task instead (idempotent submit).
* ``transition`` moves a task from its current status to a target only when the table in
  :mod:`shared.states` allows it **and** the caller names the task's current attempt.
  The attempt number is the fencing token: a move back to PENDING (failover, retry)
  increments it, and from then on a writer still holding the old number is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis

from shared.keys import request_key, task_key
from shared.model import Task, TaskSpec
from shared.states import TERMINAL, Status, sources_of, starts_new_attempt
from shared.waiting import wait_until

# Result fields of one attempt, cleared when a new attempt starts.
RESULT_FIELDS = ("agentId", "exitCode", "stdout", "stderr", "error", "startedAt", "finishedAt")

# --8<-- [start:create]
CREATE_LUA = """
local task_key, request_key, queue_key = KEYS[1], KEYS[2], KEYS[3]
local task_id, entry = ARGV[1], ARGV[2]
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return {existing, 0} end
end
if redis.call('EXISTS', task_key) == 1 then return {task_id, 0} end
redis.call('HSET', task_key, unpack(ARGV, 3))
if request_key ~= '' then redis.call('SET', request_key, task_id) end
if queue_key ~= '' then redis.call('LPUSH', queue_key, entry) end
return {task_id, 1}
"""
# --8<-- [end:create]

# --8<-- [start:transition]
TRANSITION_LUA = """
local target, expected, sources, new_attempt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'missing', '', '0'} end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
if attempt ~= expected then return {'stale', current, tostring(attempt)} end
if not string.find(',' .. sources .. ',', ',' .. current .. ',', 1, true) then
  return {'forbidden', current, tostring(attempt)}
end
if new_attempt == '1' then
  attempt = attempt + 1
  redis.call('HDEL', KEYS[1], unpack(cjson.decode(ARGV[5])))
end
redis.call('HSET', KEYS[1], 'status', target, 'attempt', attempt)
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
return {'ok', target, tostring(attempt)}
"""
# --8<-- [end:transition]


@dataclass(frozen=True)
class Outcome:
    """What a transition did: ``ok``, or why not (``missing``, ``stale``, ``forbidden``)."""

    result: str
    status: Status | None
    attempt: int

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def describe(self, target: Status) -> str:
        if self.ok:
            return f"now {target} (attempt {self.attempt})"
        if self.result == "missing":
            return "no such task"
        if self.result == "stale":
            return f"refused: attempt is now {self.attempt}"
        return f"refused: {self.status} -> {target} is not allowed"


class TaskStore:
    """Tasks in Redis. The client must be created with ``decode_responses=True``."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(CREATE_LUA)
        self._transition = redis.register_script(TRANSITION_LUA)

    def create(self, spec: TaskSpec, queue: str = "") -> tuple[Task, bool]:
        """Store a new PENDING task and, in the same step, LPUSH it onto ``queue``.

        Returns ``(task, created)``. ``created`` is False when the ``taskId`` or
        ``requestId`` was already known: the task returned is then the one stored before,
        untouched, and nothing is queued again.
        """
        task = Task.from_spec(spec)
        pairs = [item for pair in task.to_hash().items() for item in pair]
        request = request_key(spec.request_id) if spec.request_id else ""
        keys = [task_key(task.taskId), request, queue]
        args = [task.taskId, spec.to_json() if queue else "", *pairs]
        task_id, created = self._create(keys=keys, args=args)
        if created:
            return task, True
        existing = self.get(task_id)
        assert existing is not None, f"task {task_id} vanished while being created"
        return existing, False

    def get(self, task_id: str) -> Task | None:
        data = self.redis.hgetall(task_key(task_id))
        return Task.from_hash(data) if data else None

    def wait_for_terminal(self, task_id: str, timeout: float, poll: float = 0.1) -> Task | None:
        """The task once it is SUCCESS, FAILED or CANCELLED; None if ``timeout`` passes first."""

        def finished() -> Task | None:
            task = self.get(task_id)
            return task if task is not None and task.state in TERMINAL else None

        return wait_until(finished, timeout, poll)

    def transition(
        self,
        task_id: str,
        target: Status,
        *,
        attempt: int,
        expected: Status | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> Outcome:
        """Move ``task_id`` to ``target`` if allowed and ``attempt`` is still current.

        ``expected`` narrows the allowed current status to one (a writer that knows the
        task is RUNNING says so, and loses to any writer that moved it first). ``fields``
        are written in the same atomic step (result, agentId, timestamps).
        """
        allowed = sources_of(target)
        if expected is not None:
            if expected not in allowed:
                raise ValueError(f"{expected} -> {target} is not in the transition table")
            allowed = [expected]
        sources = ",".join(allowed)
        new_attempt = "1" if starts_new_attempt(target) else "0"
        cleared = json.dumps(RESULT_FIELDS)
        pairs = [str(item) for key, value in (fields or {}).items() for item in (key, value)]
        result, status, current = self._transition(
            keys=[task_key(task_id)],
            args=[target.value, attempt, sources, new_attempt, cleared, *pairs],
        )
        return Outcome(result, Status(status) if status else None, int(current))
