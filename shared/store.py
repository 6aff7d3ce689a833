"""The Redis task store: one hash per task, every status change atomic and fenced.

Lua scripts do all the writing that matters, so each runs as one step on the
server and no interleaving of clients can corrupt a task:

* ``create`` makes ``task:{taskId}`` once. A second create with the same ``taskId`` or
  the same ``requestId`` returns the existing task instead (idempotent submit).
* ``transition`` moves a task from its current status to a target only when the table in
  :mod:`shared.states` allows it **and** the caller names the task's current attempt.
  The attempt number is the fencing token: a move back to PENDING (failover, retry)
  increments it, and from then on a writer still holding the old number is refused.

The same step keeps the index ``assigned:{agentId}`` (the tasks an agent holds and has
not finished) true by construction: a task is in its agent's set exactly while it is
SCHEDULED, DISPATCHED or RUNNING. Failover reads that set to find a dead agent's tasks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis

from shared.keys import ASSIGNED_PREFIX, TASK_INDEX, index_member, request_key, task_key
from shared.model import Task, TaskSpec
from shared.states import IN_FLIGHT, TERMINAL, Status, sources_of
from shared.waiting import wait_until

# Result fields of one attempt, cleared when a new attempt starts.
RESULT_FIELDS = (
    "agentId",
    "agentSession",
    "exitCode",
    "stdout",
    "stderr",
    "error",
    "startedAt",
    "finishedAt",
)

LIST_BATCH = 100  # index entries read per round trip while listing

# --8<-- [start:create]
CREATE_LUA = """
local task_key, request_key, queue_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local task_id, entry, index_member = ARGV[1], ARGV[2], ARGV[3]
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return {existing, 0} end
end
if redis.call('EXISTS', task_key) == 1 then return {task_id, 0} end
redis.call('HSET', task_key, unpack(ARGV, 4))
redis.call('ZADD', index_key, 0, index_member)
if request_key ~= '' then redis.call('SET', request_key, task_id) end
if queue_key ~= '' then redis.call('LPUSH', queue_key, entry) end
return {task_id, 1}
"""
# --8<-- [end:create]

# --8<-- [start:transition]
# ``move`` is the one Lua function that changes a task's status. Scripts that do more in
# the same atomic step (dispatch, failover) start with it too.
MOVE_LUA = f"""
local RESULT_FIELDS = cjson.decode('{json.dumps(RESULT_FIELDS)}')
local IN_FLIGHT = {{{", ".join(f"{s}=true" for s in IN_FLIGHT)}}}
local function move(key, target, expected_attempt, sources, fields_json)
  local current = redis.call('HGET', key, 'status')
  if not current then return {{'missing', '', '0'}} end
  local attempt = tonumber(redis.call('HGET', key, 'attempt'))
  if attempt ~= tonumber(expected_attempt) then return {{'stale', current, tostring(attempt)}} end
  if not string.find(',' .. sources .. ',', ',' .. current .. ',', 1, true) then
    return {{'forbidden', current, tostring(attempt)}}
  end
  local task_id = redis.call('HGET', key, 'taskId')
  local old_agent = redis.call('HGET', key, 'agentId')
  if old_agent then redis.call('SREM', '{ASSIGNED_PREFIX}' .. old_agent, task_id) end
  if target == '{Status.PENDING}' then  -- back to the queue: a new attempt, a clean result
    attempt = attempt + 1
    redis.call('HDEL', key, unpack(RESULT_FIELDS))
  end
  redis.call('HSET', key, 'status', target, 'attempt', attempt)
  for field, value in pairs(cjson.decode(fields_json)) do redis.call('HSET', key, field, value) end
  local agent = redis.call('HGET', key, 'agentId')
  if IN_FLIGHT[target] and agent and agent ~= '' then
    redis.call('SADD', '{ASSIGNED_PREFIX}' .. agent, task_id)
  end
  return {{'ok', target, tostring(attempt)}}
end
"""

TRANSITION_LUA = MOVE_LUA + "return move(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
# --8<-- [end:transition]


@dataclass(frozen=True)
class Outcome:
    """What a transition did: ``ok``, or why not (``missing``, ``stale``, ``forbidden``)."""

    result: str
    status: Status | None
    attempt: int

    @classmethod
    def parse(cls, reply: list[str]) -> Outcome:
        """From the ``{result, status, attempt}`` that ``move`` returns."""
        result, status, attempt = reply
        return cls(result, Status(status) if status else None, int(attempt))

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
        keys = [task_key(task.taskId), request, queue, TASK_INDEX]
        member = index_member(task.createdAt, task.taskId)
        args = [task.taskId, spec.to_json() if queue else "", member, *pairs]
        task_id, created = self._create(keys=keys, args=args)
        if created:
            return task, True
        existing = self.get(task_id)
        assert existing is not None, f"task {task_id} vanished while being created"
        return existing, False

    def get(self, task_id: str) -> Task | None:
        data = self.redis.hgetall(task_key(task_id))
        return Task.from_hash(data) if data else None

    # --8<-- [start:list]
    def list(
        self, status: str = "", task_type: str = "", limit: int = 50, cursor: str = ""
    ) -> tuple[list[Task], str]:
        """Tasks newest first, filtered; returns the page and the cursor of the next one.

        The cursor is the index member of the last task returned, so a page never repeats
        or skips a task, whatever was created in between.
        """
        found: list[Task] = []
        upper = f"({cursor}" if cursor else "+"
        while len(found) < limit:
            members = self.redis.zrevrangebylex(TASK_INDEX, upper, "-", 0, LIST_BATCH)
            if not members:
                return found, ""
            pipe = self.redis.pipeline(transaction=False)  # one round trip per batch
            for member in members:
                pipe.hgetall(task_key(member.split(":", 1)[1]))
            for member, data in zip(members, pipe.execute(), strict=True):
                upper = f"({member}"
                task = Task.from_hash(data) if data else None
                if (
                    task
                    and (not status or task.status == status)
                    and (not task_type or task.type == task_type)
                ):
                    found.append(task)
                    if len(found) == limit:
                        return found, member
        return found, ""

    # --8<-- [end:list]

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
        args = move_args(target, attempt, expected, fields)
        return Outcome.parse(self._transition(keys=[task_key(task_id)], args=args))


def move_args(
    target: Status,
    attempt: int,
    expected: Status | None = None,
    fields: Mapping[str, object] | None = None,
) -> list[str]:
    """The arguments of the Lua ``move``: target, attempt, allowed sources, fields as JSON."""
    allowed = sources_of(target)
    if expected is not None:
        if expected not in allowed:
            raise ValueError(f"{expected} -> {target} is not in the transition table")
        allowed = [expected]
    values = {key: str(value) for key, value in (fields or {}).items()}
    return [target.value, str(attempt), ",".join(allowed), json.dumps(values)]
