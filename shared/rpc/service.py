"""The task-manager's gRPC service (phase 4): submit, get, list, cancel, retry, agents.

Phase 5 adds Wait, Runs and Stats by composition (``shared/rpc/observing.py``):
``compose(service, *parts)`` serves each method from the first part that implements it,
and answers UNIMPLEMENTED, by name, for the rest.

Every method works on the store's atomic, fenced transitions, so a call repeated on
another instance (the API retries when one is gone) changes nothing the second time:
submit is idempotent by ``taskId`` and ``requestId``, retry names the attempt it retries,
cancel of a CANCELLED task returns it as it is.

Phase 5 says who calls: a submit names its owner (the API token's name), whose
``requestId`` is then its own; a cancel or retry names its caller, who must own the task
or may change any (an admin).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from kafka import KafkaProducer

from shared.coordination.registry import AgentDirectory
from shared.core import metrics
from shared.core.config import Settings
from shared.core.keys import PENDING_QUEUE, heartbeat_key
from shared.core.logs import task_log
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import InvalidTask, Task, TaskSpec, TaskType, now_ms
from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.convert import submitted_fields, to_proto
from shared.scheduling.cancels import Canceller, Cancelling
from shared.scheduling.handover import Handover
from shared.scheduling.suspects import is_suspect

log = logging.getLogger("task-service")

RETRYABLE = (Status.FAILED, Status.CANCELLED)
MAX_PAGE = 200
CANCEL_ROUNDS = 5  # re-reads when the task moves while being cancelled
# every method of the service, as the proto names them
METHODS = tuple(pb.DESCRIPTOR.services_by_name["TaskService"].methods_by_name)


def task_or_abort(store: TaskStore, task_id: str, context: grpc.ServicerContext) -> Task:
    """The task, or the call ends NOT_FOUND."""
    task = store.get(task_id) if task_id else None
    if task is None:
        context.abort(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
    return task


def implements(part: object, method: str) -> bool:
    """Whether ``part`` serves ``method`` itself (not the generated UNIMPLEMENTED one)."""
    own = getattr(type(part), method, None)
    return own is not None and own is not getattr(pb_grpc.TaskServiceServicer, method, None)


def unimplemented(method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served in this phase")

    return refuse


def compose(*parts: object) -> pb_grpc.TaskServiceServicer:
    """One servicer: each method from the first part that implements it, else UNIMPLEMENTED."""
    servicer = pb_grpc.TaskServiceServicer()
    for method in METHODS:
        serving = next((part for part in parts if implements(part, method)), None)
        behavior = getattr(serving, method) if serving is not None else unimplemented(method)
        setattr(servicer, method, behavior)
    return servicer


class TaskService(pb_grpc.TaskServiceServicer):
    def __init__(
        self,
        store: TaskStore,
        directory: AgentDirectory,
        producer: KafkaProducer,
        settings: Settings,
    ) -> None:
        self.store = store
        self.handover = Handover(store)
        self.directory = directory
        self.settings = settings
        self.canceller = Canceller(store, directory, producer, settings)

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitReply:
        try:  # the service is an entry point of its own: any gRPC client may call it
            spec = TaskSpec.from_fields(submitted_fields(request), self.settings)
        except InvalidTask as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        task, created = self.store.create(spec, queue=PENDING_QUEUE)
        if not created and spec.owner and spec.request_id and task.requestId == spec.request_id:
            changed = task.differs_from(spec)
            if changed:  # a requestId names one task: never the same one with other fields
                context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"requestId {spec.request_id!r} was used for task {task.taskId}, "
                    f"submitted with another {', '.join(changed)}",
                )
        if created:
            metrics.TASKS_SUBMITTED.labels(task.type).inc()
            task_log(log, task.taskId, task.attempt).info(
                "submitted %s task %r", task.type, task.name
            )
        return pb.SubmitReply(task=to_proto(task), created=created)

    def Get(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.TaskReply:
        return pb.TaskReply(task=to_proto(self._task(request.task_id, context)))

    def List(self, request: pb.ListRequest, context: grpc.ServicerContext) -> pb.ListReply:
        if request.status and request.status not in Status.__members__:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown status {request.status!r}")
        if request.type and request.type not in TaskType.__members__:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown type {request.type!r}")
        limit = min(max(request.limit or 50, 1), MAX_PAGE)
        tasks, cursor = self.store.list(
            request.status, request.type, limit, request.cursor, request.schedule_id
        )
        return pb.ListReply(tasks=[to_proto(task) for task in tasks], next_cursor=cursor)

    # --8<-- [start:cancel]
    def Cancel(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.TaskReply:
        for _ in range(CANCEL_ROUNDS):
            task = self._task(request.task_id, context)
            self._may_change(task, request.caller, context)
            done = self.canceller.cancel(task)
            if done is Cancelling.ENDED:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"task is {task.status}: only queued or running tasks can be cancelled",
                )
            if done is Cancelling.KILLING:  # its agent kills it and reports CANCELLED
                return pb.TaskReply(task=to_proto(task))
            if done is Cancelling.CANCELLED:
                return pb.TaskReply(task=to_proto(self._task(task.taskId, context)))
        context.abort(grpc.StatusCode.ABORTED, "the task kept changing; try again")

    # --8<-- [end:cancel]

    # --8<-- [start:retry]
    def Retry(self, request: pb.RetryRequest, context: grpc.ServicerContext) -> pb.TaskReply:
        task = self._task(request.task_id, context)
        self._may_change(task, request.caller, context)
        if request.attempt and task.attempt > request.attempt:
            return pb.TaskReply(task=to_proto(task))  # that attempt was retried already
        if task.status not in RETRYABLE:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task is {task.status}: only FAILED or CANCELLED tasks can be retried",
            )
        if task.workflowId and task.status is Status.CANCELLED:  # it may never have waited
            context.abort(  # for its parents: only the workflow's retry knows what to redo
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task is a cancelled task of workflow {task.workflowId}: "
                "retry the workflow (POST /api/v1/workflows/{id}/retry)",
            )
        outcome = self.handover.requeue(task)
        if not outcome.ok:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"not retried: {outcome.describe(Status.PENDING)}",
            )
        task_log(log, task.taskId, outcome.attempt).info("retry requested")
        return pb.TaskReply(task=to_proto(self._task(task.taskId, context)))

    # --8<-- [end:retry]

    def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgentsReply:
        return pb.ListAgentsReply(agents=self.agents())

    def agents(self) -> list[pb.Agent]:
        """The live agents, with the load and health of their latest heartbeat."""
        agents = []
        now = now_ms()
        live = sorted(self.directory.live().values(), key=lambda a: a.id)
        pipe = self.store.redis.pipeline(transaction=False)
        for agent in live:
            pipe.hgetall(heartbeat_key(agent.id))
        for agent, beat in zip(live, pipe.execute(), strict=True):
            last_seen = int(beat.get("at", 0))
            agents.append(
                pb.Agent(
                    id=agent.id,
                    host=agent.host,
                    pid=agent.pid,
                    capacity=agent.capacity,
                    types=list(agent.types),
                    running=int(beat.get("running", 0)),
                    cpu_percent=float(beat.get("cpuPercent", 0)),
                    memory_percent=float(beat.get("memoryPercent", 0)),
                    last_seen=last_seen,
                    suspect=is_suspect(agent, last_seen, self.settings.agent_suspect_seconds, now),
                )
            )
        return agents

    def _may_change(self, task: Task, caller: pb.Caller, context: grpc.ServicerContext) -> None:
        """Only the task's owner, or a caller that may change any task, cancels or retries
        it. A call that names no caller (phase 4, which has no tokens) may."""
        if caller.name and not caller.any_owner and caller.name != task.owner:
            whose = f"token {task.owner!r}'s" if task.owner else "no token's"
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"task {task.taskId} is {whose}: {caller.name!r} may change its own tasks only",
            )

    def _task(self, task_id: str, context: grpc.ServicerContext) -> Task:
        return task_or_abort(self.store, task_id, context)
