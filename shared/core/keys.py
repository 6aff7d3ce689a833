"""The Redis key layout of the whole system, in one place.

| key                     | type   | holds                                                |
|-------------------------|--------|------------------------------------------------------|
| ``task:{taskId}``       | hash   | one task: spec, status, attempt, result (camelCase)  |
| ``request:{requestId}`` | string | the taskId created for a client's requestId          |
| ``tasks:index``         | zset   | every task, ``<createdAt>:<taskId>``, for listing    |
| ``tasks:index:{st}``    | zset   | the same members, of the tasks in status st now      |
| ``tasks:index:version`` | string | 1 once tasks stored before the status indexes are in |
| ``tasks:clock``         | string | the createdAt (ms) of the task created last          |
| ``queue:tasks``         | list   | phase 1: tasks waiting for the agent (LPUSH / BRPOP) |
| ``queue:tasks:dead``    | list   | entries no agent could read, with the reason         |
| ``queue:pending``       | list   | phase 2: submitted tasks waiting for the leader      |
| ``queue:scheduling``    | list   | phase 2: entries the leader took and is placing      |
| ``queue:agent:{id}``    | list   | phase 2: tasks dispatched to one agent               |
| ``assigned:{id}``       | set    | phase 2: task ids given to one agent, not yet done   |
| ``scheduler:epoch``     | string | phase 2: the current leader's term; fences old ones  |
| ``agent:{id}``          | hash   | phase 3: an agent's last heartbeat (load, lastSeen)  |
| ``stats:tasks``         | hash   | phase 5: ``<type>:<status>`` -> tasks in it now      |
| ``stats:finished:{st}`` | zset   | phase 5: attempts ended in st, last 5 min, by time   |
| ``runs:{taskId}``       | list   | phase 5: a JSON entry per ended attempt              |
| ``queue:retry``         | zset   | phase 5: tasks waiting to retry, by ``nextAttemptAt`` |
| ``auth:tokens``         | hash   | phase 5: API token name -> role, SHA-256, createdAt  |
| ``audit``               | stream | phase 5: every authenticated mutating API call, capped |
| ``rate:{limit}:{who}:{w}`` | string | phase 5: requests of a token or address in window w |
| ``refused:{w}``         | hash   | phase 5: address -> requests without a valid token   |
| ``schedule:{id}``       | hash   | phase 5: a schedule: spec, owner, cursor, nextRunAt  |
| ``schedule:{id}:ticks`` | list   | phase 5: its last 1,000 ticks, newest first (JSON)   |
| ``schedule:{id}:tasks`` | zset   | phase 5: its tasks, members as in ``tasks:index``    |
| ``schedules``           | zset   | phase 5: every schedule, ``<createdAt>:<id>``        |
| ``schedules:due``       | zset   | phase 5: unpaused schedules by ``nextRunAt``         |
| ``workflow:{id}``       | hash   | phase 5: a workflow: name, owner, its graph (JSON)   |
| ``workflows``           | zset   | phase 5: every workflow, ``<createdAt>:<id>``        |
| ``workflows:ended``     | list   | phase 5: ended tasks of workflows, to settle children |
| ``workflows:settling``  | list   | phase 5: those the leader is settling now            |
| ``workflows:unsettled`` | list   | phase 5: notes whose children could not be settled   |

In phase 5 a requestId is its owner's (the token that submitted it):
``owned-request:{owner}:{requestId}`` holds the taskId instead of ``request:{requestId}``,
and ``workflow-request:{owner}:{requestId}`` the workflowId of a workflow's.

One pub/sub channel (phase 5): ``tasks:ended`` carries the id of every task that moves
into SUCCESS, FAILED or CANCELLED, published by the store's ``ENDED`` step
(``lua/steps/ended.lua``) in the same atomic step (``ends.py``).
"""

from __future__ import annotations

from shared.core.states import Status

TASK_QUEUE = "queue:tasks"
TASK_INDEX = "tasks:index"
# create.lua gives each task a createdAt later than this one's: the index is creation order
TASK_CLOCK = "tasks:clock"
# Set to STATUS_INDEXED once every task is in its status's index (TaskStore.index_statuses)
STATUS_INDEX_VERSION = "tasks:index:version"
STATUS_INDEXED = "1"
DEAD_LETTERS = "queue:tasks:dead"
PENDING_QUEUE = "queue:pending"
SCHEDULING = "queue:scheduling"
LEADER_EPOCH = "scheduler:epoch"
ASSIGNED_PREFIX = "assigned:"
TASK_COUNTS = "stats:tasks"
# zsets of the attempts that ended lately, one per final status (SUCCESS, FAILED, CANCELLED)
FINISHED = ("stats:finished:SUCCESS", "stats:finished:FAILED", "stats:finished:CANCELLED")
RETRY_QUEUE = "queue:retry"
API_TOKENS = "auth:tokens"
AUDIT_STREAM = "audit"
WORKFLOWS = "workflows"
WORKFLOWS_ENDED = "workflows:ended"  # lua/steps/workflows.lua names it too
WORKFLOWS_SETTLING = "workflows:settling"
WORKFLOWS_UNSETTLED = "workflows:unsettled"
SCHEDULES = "schedules"
SCHEDULES_DUE = "schedules:due"
ENDED_CHANNEL = "tasks:ended"  # a channel, not a key: lua/steps/ended.lua names it too


def task_key(task_id: str) -> str:
    return f"task:{task_id}"


def status_index(status: str) -> str:
    """The zset of the tasks now in ``status``: listing by status walks it alone."""
    return f"{TASK_INDEX}:{status}"


# every status's index, in the order of Status (move.lua lists the statuses in that order)
STATUS_INDEXES = tuple(status_index(status) for status in Status)


def runs_key(task_id: str) -> str:
    return f"runs:{task_id}"


def request_key(request_id: str, owner: str = "") -> str:
    """Where a requestId names its task: one for everyone (phases 1 to 4), or one per
    owner (phase 5: a token's requestIds are its own). The prefixes differ, so no
    requestId of the first kind can name a key of the second."""
    return f"owned-request:{owner}:{request_id}" if owner else f"request:{request_id}"


def schedule_key(schedule_id: str) -> str:
    return f"schedule:{schedule_id}"


def schedule_ticks_key(schedule_id: str) -> str:
    return f"schedule:{schedule_id}:ticks"


def schedule_tasks_key(schedule_id: str) -> str:
    """The tasks a schedule started, an index like ``tasks:index`` (``?scheduleId=``)."""
    return f"schedule:{schedule_id}:tasks"


def workflow_key(workflow_id: str) -> str:
    return f"workflow:{workflow_id}"


def workflow_request_key(request_id: str, owner: str) -> str:
    return f"workflow-request:{owner}:{request_id}"


def rate_key(limit: str, subject: str, window: int) -> str:
    """The count of ``subject``'s requests (a token's name, an address) in ``window``
    (seconds since the epoch // the window's length): phase 5's rate limits."""
    return f"rate:{limit}:{subject}:{window}"


def refused_key(window: int) -> str:
    """Requests refused before authentication in ``window``, a count per source address."""
    return f"refused:{window}"


def agent_queue(agent_id: str) -> str:
    return f"queue:agent:{agent_id}"


def assigned_key(agent_id: str) -> str:
    return f"{ASSIGNED_PREFIX}{agent_id}"


def heartbeat_key(agent_id: str) -> str:
    return f"agent:{agent_id}"


def task_id_of(member: str) -> str:
    """The taskId in an index member, ``<createdAt>:<taskId>`` (made by create.lua).

    All scores are 0, so the order is lexical: by createdAt, which create.lua makes
    unique and increasing, so by creation.
    """
    return member.split(":", 1)[1]
