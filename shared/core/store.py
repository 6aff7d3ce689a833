"""The Redis task store: one hash per task, every status change atomic and fenced.

Lua scripts do all the writing that matters, so each runs as one step on the
server and no interleaving of clients can corrupt a task:

* ``create`` makes ``task:{taskId}`` once. A second create with the same ``taskId`` or
  the same ``requestId`` returns the existing task instead (idempotent submit).
* ``transition`` moves a task from its current status to a target only when the table in
  :mod:`shared.core.states` allows it **and** the caller names the task's current attempt.
  The attempt number is the fencing token: a move back to PENDING (failover, retry)
  increments it, and from then on a writer still holding the old number is refused.

The same step keeps the index ``assigned:{agentId}`` (the tasks an agent holds and has
not finished) true by construction: a task is in its agent's set exactly while it is
SCHEDULED, DISPATCHED or RUNNING. Failover reads that set to find a dead agent's tasks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from redis import Redis

from shared.core.keys import (
    FINISHED,
    PENDING_QUEUE,
    RETRY_QUEUE,
    STATUS_INDEX_VERSION,
    STATUS_INDEXED,
    TASK_CLOCK,
    TASK_COUNTS,
    TASK_INDEX,
    assigned_key,
    request_key,
    runs_key,
    schedule_tasks_key,
    status_index,
    task_id_of,
    task_key,
)
from shared.core.runs import Run
from shared.core.scripts import LUA_DIR, MOVE, STEPS, SteppedScript, StoreStep, script
from shared.core.states import IN_FLIGHT, TERMINAL, Ending, Status, can_move, sources_of
from shared.core.task import RESULT_FIELDS, Task, TaskSpec, now_ms
from shared.core.waiting import wait_until

LIST_BATCH = 100  # index entries read per round trip while listing

CREATE = LUA_DIR / "create.lua"
NEW_TASK = LUA_DIR / "new_task.lua"  # the library create.lua calls
TRANSITION = LUA_DIR / "transition.lua"
RETRY_LATER = LUA_DIR / "retry_later.lua"


class Result(StrEnum):
    """What a status change did; every script that changes a status answers one of these."""

    OK = "ok"
    MISSING = "missing"  # no such task
    STALE = "stale"  # another attempt is current
    NOT_HOLDER = "not-holder"  # the attempt is held by another agent than the caller named
    FORBIDDEN = "forbidden"  # the transition table does not allow it from the current status
    DEPOSED = "deposed"  # a newer leader's epoch refused this leader's write
    UNPUBLISHED = "unpublished"  # the broker did not take the dispatch; undone


@dataclass(frozen=True)
class Moved:
    """A status change's result, with the task's status and attempt as the script saw them."""

    result: Result
    status: Status | None
    attempt: int

    @classmethod
    def parse(cls, reply: list[str]) -> Moved:
        """From the ``{result, status, attempt}`` that the scripts return."""
        result, status, attempt = reply
        return cls(Result(result), Status(status) if status else None, int(attempt))

    @property
    def ok(self) -> bool:
        return self.result is Result.OK

    def describe(self, target: Status) -> str:
        if self.ok:
            return f"now {target} (attempt {self.attempt})"
        if self.result is Result.MISSING:
            return "no such task"
        if self.result is Result.STALE:
            return f"refused: attempt is now {self.attempt}"
        if self.result is Result.NOT_HOLDER:
            return "refused: another agent holds this attempt"
        if self.result is Result.DEPOSED:
            return "refused: this leader was deposed"
        if self.result is Result.UNPUBLISHED:
            return "not published: the broker did not take it; undone"
        return f"refused: {self.status} -> {target} is not allowed"


class Step(NamedTuple):
    """One status change of a task, for ``TaskStore.transitions``."""

    target: Status
    expected: Status | None  # the status the task must be in, None for any allowed one
    fields: Mapping[str, object]


class TaskStore:
    """Tasks in Redis. The client must be created with ``decode_responses=True``.

    ``steps`` run with every create and move, in the same atomic step: none in phases 1
    to 4; phase 5's (``shared/core/steps.py``) keep the run history, the counters and the
    ``tasks:ended`` channel. Every script that moves tasks is built with ``script``, so
    it runs the same steps.
    """

    def __init__(self, redis: Redis, steps: Sequence[StoreStep] = ()) -> None:
        self.redis = redis
        self.steps = tuple(steps)
        self._create = self.script(CREATE, STEPS, NEW_TASK)
        self._transition = self.script(TRANSITION, MOVE)
        self._retry_later = self.script(RETRY_LATER, MOVE)

    def script(self, path: Path, *libraries: Path) -> SteppedScript:
        """``path`` after ``libraries`` (``MOVE`` for a script that moves tasks), with this
        store's steps: registered on its Redis, called with keys and args."""
        registered = script(self.redis, path, *libraries, steps=self.steps)
        assert isinstance(registered, SteppedScript), f"{path.name} needs MOVE or STEPS"
        return registered

    def create(self, spec: TaskSpec, queue: str = "") -> tuple[Task, bool]:
        """Store a new PENDING task and, in the same step, LPUSH it onto ``queue``.

        Returns ``(task, created)``. ``created`` is False when the ``taskId`` or
        ``requestId`` was already known: the task returned is then the one stored before,
        untouched, and nothing is queued again. A spec with an owner has its requestId
        scoped to that owner.
        """
        task = Task.from_spec(spec)
        request = request_key(spec.request_id, spec.owner or "") if spec.request_id else ""
        pending = status_index(Status.PENDING)
        keys = [task_key(task.taskId), request, queue, TASK_INDEX, pending, TASK_CLOCK]
        fields = {k: v for k, v in task.to_hash().items() if k != "createdAt"}  # Redis's to set
        args = [task.taskId, spec.to_json() if queue else "", json.dumps(fields)]
        task_id, created, created_at = self._create(keys=keys, args=args)
        if created:
            task.createdAt = int(created_at)
            return task, True
        existing = self.get(task_id)
        assert existing is not None, f"task {task_id} vanished while being created"
        return existing, False

    def get(self, task_id: str) -> Task | None:
        data = self.redis.hgetall(task_key(task_id))
        return Task.from_hash(data) if data else None

    def cancel(self, task: Task) -> Moved:
        """Move ``task`` (as read) from its status to CANCELLED, fenced by its attempt."""
        return self.transition(
            task.taskId,
            Status.CANCELLED,
            attempt=task.attempt,
            expected=task.status,
            fields={"error": "cancelled", "finishedAt": now_ms()},
            agent=task.agentId,
        )

    def request_cancel(self, task_id: str) -> None:
        """Store that the task is to be cancelled: whoever holds it later obeys."""
        self.redis.hset(task_key(task_id), "cancelRequestedAt", now_ms())

    def runs(self, task_id: str) -> list[Run]:
        """The task's ended attempts, oldest first (its execution history): kept by the
        ``HISTORY`` step of phase 5's store, empty without it."""
        return [Run.from_json(raw) for raw in self.redis.lrange(runs_key(task_id), 0, -1)]

    # --8<-- [start:list]
    def list(
        self,
        status: str = "",
        task_type: str = "",
        limit: int = 50,
        cursor: str = "",
        schedule_id: str = "",
    ) -> tuple[list[Task], str]:
        """Tasks newest first, filtered; returns the page and the cursor of the next one.

        With a status, the walk is over that status's own index ``tasks:index:{status}``,
        so a page costs about ``limit`` reads however many tasks are in other statuses.
        A type is checked on the tasks read: there are two, fixed, so each is commonly a
        large share of a status, and an index per status and type would double what every
        move writes. The status is checked too: an entry can outlive a move made while
        ``index_statuses`` filled the indexes.

        The cursor is the index member of the last task returned, the same in every index,
        so a page never repeats or skips a task, whatever was created in between.

        With a ``schedule_id`` (phase 5) the walk is over the index of the tasks that
        schedule started, ``schedule:{id}:tasks``, which holds the same members.
        """
        if schedule_id:
            index = schedule_tasks_key(schedule_id)
        else:
            index = status_index(status) if status else TASK_INDEX
        found: list[Task] = []
        upper = f"({cursor}" if cursor else "+"
        while len(found) < limit:
            # without a type every entry matches: read only what the page still lacks
            wanted = LIST_BATCH if task_type else min(limit - len(found), LIST_BATCH)
            members = self.redis.zrevrangebylex(index, upper, "-", 0, wanted)
            if not members:
                return found, ""
            for member, task in zip(members, self._read(members), strict=True):
                upper = f"({member}"
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

    def _read(self, members: list[str]) -> list[Task | None]:
        """The tasks of these index members in one round trip; None for one that is gone."""
        pipe = self.redis.pipeline(transaction=False)
        for member in members:
            pipe.hgetall(task_key(task_id_of(member)))
        return [Task.from_hash(data) if data else None for data in pipe.execute()]

    def index_statuses(self) -> int:
        """Put every task in its status's index, once; returns how many tasks it read.

        Create and every move keep the status indexes, but a store that holds tasks from
        before them has those only in ``tasks:index``, and ``list`` by status would not
        find them. The task-manager calls this as it starts (once every process writing
        tasks keeps the indexes); ``tasks:index:version`` then says it is done, and later
        calls cost one GET. Running it twice, or on two task-managers at once, is harmless:
        a ZADD of a member already there changes nothing.
        """
        if self.redis.get(STATUS_INDEX_VERSION) == STATUS_INDEXED:
            return 0
        upper, read = "+", 0
        while members := self.redis.zrevrangebylex(TASK_INDEX, upper, "-", 0, LIST_BATCH):
            self._index_batch(members)
            read += len(members)
            upper = f"({members[-1]}"
        self.redis.set(STATUS_INDEX_VERSION, STATUS_INDEXED)
        return read

    def _index_batch(self, members: list[str]) -> None:
        """Add these ``tasks:index`` members to their task's status index: two round trips."""
        pipe = self.redis.pipeline(transaction=False)
        for member in members:
            pipe.hget(task_key(task_id_of(member)), "status")
        for member, status in zip(members, pipe.execute(), strict=True):
            if status:
                pipe.zadd(status_index(status), {member: 0})
        pipe.execute()

    def counts(self) -> dict[tuple[str, Status], int]:
        """Tasks now in each (type, status): ``stats:tasks``, kept by the ``COUNTERS``
        step of phase 5's store (empty without it)."""
        counts = {}
        for key, value in self.redis.hgetall(TASK_COUNTS).items():
            task_type, status = key.split(":", 1)
            if int(value):
                counts[task_type, Status(status)] = int(value)
        return counts

    def finished_since(self, since_ms: int) -> Counter[Status]:
        """Attempts that ended since ``since_ms`` (at most 5 minutes back), by final status:
        ``stats:finished:*``, kept by the ``COUNTERS`` step. One ZCOUNT per status."""
        pipe = self.redis.pipeline(transaction=False)
        for key in FINISHED:
            pipe.zcount(key, since_ms, "+inf")
        statuses = [Status(key.rsplit(":", 1)[1]) for key in FINISHED]
        counts = zip(statuses, pipe.execute(), strict=True)
        return Counter({status: count for status, count in counts if count})

    def wait_for_terminal(self, task_id: str, timeout: float, poll: float = 0.1) -> Task | None:
        """The task once it is SUCCESS, FAILED or CANCELLED; None if ``timeout`` passes first."""

        def finished() -> Task | None:
            task = self.get(task_id)
            return task if task is not None and task.status in TERMINAL else None

        return wait_until(finished, timeout, poll)

    def transition(
        self,
        task_id: str,
        target: Status,
        *,
        attempt: int,
        expected: Status | None = None,
        fields: Mapping[str, object] | None = None,
        agent: str = "",
    ) -> Moved:
        """Move ``task_id`` to ``target`` if allowed and ``attempt`` is still current.

        ``expected`` narrows the allowed current status to one (a writer that knows the
        task is RUNNING says so, and loses to any writer that moved it first). ``fields``
        are written in the same atomic step (result, agentId, timestamps). ``agent`` is
        the agent that holds this attempt (or takes it now): its ``assigned`` set is kept
        in the same step.
        """
        spec = move_spec(target, attempt, expected, fields, agent)
        keys = [task_key(task_id), assigned_key(spec.agent)]
        return Moved.parse(self._transition(keys=keys, args=[spec.to_json()]))

    def transitions(
        self, task_id: str, attempt: int, steps: Sequence[Step], agent: str = ""
    ) -> list[Moved]:
        """``transition`` for each step in order, in one round trip.

        Each step is still its own fenced move: one whose expected status is not the
        task's is refused, and so are the steps after it, unless another writer moved the
        task there meanwhile. Redis answers them all after one write to disk.
        """
        pipe = self.redis.pipeline(transaction=False)
        for target, expected, fields in steps:
            spec = move_spec(target, attempt, expected, fields, agent)
            keys = [task_key(task_id), assigned_key(spec.agent)]
            self._transition(keys=keys, args=[spec.to_json()], client=pipe)
        return [Moved.parse(reply) for reply in pipe.execute()]

    # --8<-- [start:retry_later]
    def retry_later(
        self,
        task: Task,
        agent: str,
        result: Mapping[str, object],
        backoff: float,
        ending: Ending = Ending.FAILED,
    ) -> Moved:
        """End the RUNNING attempt and queue a new one, due in ``backoff`` seconds.

        One step: the task is PENDING again as ``attempt + 1`` (the ended attempt goes
        into its runs when the store has the ``HISTORY`` step), and its entry waits in
        ``queue:retry`` (scored by ``nextAttemptAt``) until the leader moves it to pending;
        with no backoff it goes to ``queue:pending`` at once. A FAILED attempt spends one
        of the task's retries (phase 5's retries); a LOST one (its agent gave it up, see
        ``shared/agent/fencing.py``) spends none.
        """
        ended = {key: str(value) for key, value in result.items()}
        why = ended.get("error", "")
        if ending is Ending.FAILED:
            retries = task.retries + 1
            note = f"attempt {task.attempt} failed ({why}); retry {retries} of {task.maxRetries}"
        else:
            retries = task.retries
            note = f"attempt {task.attempt} lost ({why}); runs again"
        fields = {"retries": retries, "error": note}
        spec = move_spec(Status.PENDING, task.attempt, Status.RUNNING, fields, agent, ending)
        keys = [task_key(task.taskId), assigned_key(agent), RETRY_QUEUE, PENDING_QUEUE]
        args = [replace(spec, result=ended).to_json(), int(backoff * 1000), task.spec().to_json()]
        return Moved.parse(self._retry_later(keys=keys, args=args))

    # --8<-- [end:retry_later]


@dataclass(frozen=True)
class MoveSpec:
    """The arguments of the Lua ``move`` (``lua/move.lua`` names each one)."""

    target: Status
    attempt: int
    sources: list[Status]
    fields: dict[str, str]
    agent: str
    ending: Ending = Ending.LOST  # how an attempt taken back from its agent ended
    result: dict[str, str] = field(default_factory=dict)  # the ended attempt's, for its run

    def ends(self) -> dict[str, str]:
        """Current status -> the attempt's ending, for the sources this move ends one from."""
        if self.target in TERMINAL:  # a task that was WAITING never ran: no attempt ended
            ran = [source for source in self.sources if source is not Status.WAITING]
            return {source.value: self.target.value for source in ran}
        if self.target is Status.PENDING:
            taken_back = [source for source in self.sources if source in IN_FLIGHT]
            return {source.value: self.ending.value for source in taken_back}
        return {}

    def cleared(self) -> list[str]:
        """The fields a new attempt deletes: the old result, and a stored cancel when a
        person retries a finished task (its cancel is over; a failover keeps it)."""
        retried = all(source in TERMINAL for source in self.sources)
        return [*RESULT_FIELDS, *(["cancelRequestedAt"] if retried else [])]

    def starts_attempt(self) -> bool:
        """Back to the queue (or, a workflow's retry, to WAITING): a new attempt. Not the
        release of a WAITING task, whose first attempt it is."""
        if self.target is Status.PENDING:
            return self.sources != [Status.WAITING]
        return self.target is Status.WAITING

    def to_json(self) -> str:
        restart = self.starts_attempt()
        return json.dumps(
            {
                "target": self.target.value,
                "attempt": self.attempt,
                "sources": [source.value for source in self.sources],
                "fields": self.fields,
                "agent": self.agent,
                "holds": self.target in IN_FLIGHT,
                "restart": restart,
                "clear": self.cleared() if restart else [],
                "ends": self.ends(),
                "result": self.result,
            }
        )


def move_spec(
    target: Status,
    attempt: int,
    expected: Status | None = None,
    fields: Mapping[str, object] | None = None,
    agent: str = "",
    ending: Ending = Ending.LOST,
) -> MoveSpec:
    """Check a move against the transition table and describe it for the Lua ``move``.

    ``ending`` says how the attempt ended when the move takes it back from its agent to
    PENDING: LOST for a failover, FAILED for an automatic retry.
    """
    allowed = sources_of(target)  # WAITING only when named: below
    if expected is not None:
        if not can_move(expected, target):
            raise ValueError(f"{expected} -> {target} is not in the transition table")
        allowed = [expected]
    values = {key: str(value) for key, value in (fields or {}).items()}
    named = values.get("agentId", "")
    if named and agent and named != agent:
        raise ValueError(f"agentId {named!r} is not the move's agent {agent!r}")
    agent = agent or named
    if agent and target in IN_FLIGHT:
        values["agentId"] = agent  # the hash names the agent whose set holds the task
    return MoveSpec(target, int(attempt), allowed, values, agent, ending)
