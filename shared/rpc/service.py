"""The task-manager's gRPC service: submit, get, wait, list, cancel, retry, runs, agents,
stats.

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
import math
import threading

import grpc
from kafka import KafkaProducer

from shared.coordination.election import current_leader
from shared.coordination.registry import AgentDirectory
from shared.core import metrics
from shared.core.config import Settings
from shared.core.ends import MAX_WAIT_SECONDS, Ends
from shared.core.keys import PENDING_QUEUE, heartbeat_key
from shared.core.logs import task_log
from shared.core.states import TERMINAL, Status
from shared.core.store import TaskStore
from shared.core.task import InvalidTask, Task, TaskSpec, TaskType, now_ms
from shared.messaging.clients import send_sync
from shared.messaging.messages import Cancel
from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.convert import run_to_proto, submitted_fields, to_proto
from shared.scheduling.handover import Handover

log = logging.getLogger("task-service")

RETRYABLE = (Status.FAILED, Status.CANCELLED)
MAX_PAGE = 200
CANCEL_ROUNDS = 5  # re-reads when the task moves while being cancelled
STATS_WINDOW = 60  # seconds: Stats counts the attempts that ended this recently


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
        self.producer = producer
        self.settings = settings
        self.ends = Ends(store.redis)
        self.ends.start()  # subscribed before the first wait, which then is not a second late
        self.wait_slots = threading.BoundedSemaphore(settings.grpc_waits)

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitReply:
        try:  # the service is an entry point of its own: any gRPC client may call it
            spec = TaskSpec.from_fields(submitted_fields(request))
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

    # --8<-- [start:wait]
    def Wait(self, request: pb.WaitRequest, context: grpc.ServicerContext) -> pb.TaskReply:
        """The task once it has ended, or as it is when ``seconds`` (capped) have passed.

        Each wait holds one of this instance's gRPC threads (its pool has ``GRPC_WAITS``
        more than ``GRPC_WORKERS`` for them), and at most ``GRPC_WAITS`` are held at once:
        one more is refused with RESOURCE_EXHAUSTED at once, so the other calls always
        find a thread. A wait ends early when its caller is gone (deadline, cancel, this
        server stopping).
        """
        if not math.isfinite(request.seconds):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "seconds must be a number")
        left = context.time_remaining()  # None without a deadline
        seconds = min(max(request.seconds, 0.0), MAX_WAIT_SECONDS, left or MAX_WAIT_SECONDS)
        task = self._task(request.task_id, context)
        if task.state in TERMINAL or seconds == 0:
            return pb.TaskReply(task=to_proto(task))
        if not self.wait_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many waits; ask again later")
        try:

            def ended() -> bool:
                nonlocal task
                task = self._task(request.task_id, context)
                return task.state in TERMINAL

            self.ends.wait(task.taskId, ended, seconds, lambda: not context.is_active())
        finally:
            self.wait_slots.release()
        return pb.TaskReply(task=to_proto(task))

    # --8<-- [end:wait]

    def List(self, request: pb.ListRequest, context: grpc.ServicerContext) -> pb.ListReply:
        if request.status and request.status not in Status.__members__:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown status {request.status!r}")
        if request.type and request.type not in TaskType.__members__:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown type {request.type!r}")
        limit = min(max(request.limit or 50, 1), MAX_PAGE)
        tasks, cursor = self.store.list(request.status, request.type, limit, request.cursor)
        return pb.ListReply(tasks=[to_proto(task) for task in tasks], next_cursor=cursor)

    # --8<-- [start:cancel]
    def Cancel(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.TaskReply:
        for _ in range(CANCEL_ROUNDS):
            task = self._task(request.task_id, context)
            self._may_change(task, request.caller, context)
            if task.state is Status.CANCELLED:
                return pb.TaskReply(task=to_proto(task))
            if task.state in TERMINAL:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"task is {task.status}: only queued or running tasks can be cancelled",
                )
            if task.state is Status.RUNNING:
                # Stored first: if the agent dies before it obeys, the failover's next
                # attempt is cancelled instead of run. An agent that is gone may still be
                # running it (fenced only after a while): the failover, not this call,
                # ends that attempt.
                self.store.request_cancel(task.taskId)
                self._tell_agent(task)  # it kills the process group and reports CANCELLED
                return pb.TaskReply(task=to_proto(task))
            # Not started (or its agent is gone): cancel it here, at once.
            outcome = self.store.cancel(task)
            if outcome.ok:
                metrics.TASKS_FINISHED.labels(task.type, Status.CANCELLED.value).inc()
                if task.state in (Status.SCHEDULED, Status.DISPATCHED):
                    self._tell_agent(task)  # in case it started a moment ago
                task_log(log, task.taskId, task.attempt).info("cancelled while %s", task.status)
                return pb.TaskReply(task=to_proto(self._task(task.taskId, context)))
        context.abort(grpc.StatusCode.ABORTED, "the task kept changing; try again")

    # --8<-- [end:cancel]

    def _tell_agent(self, task: Task) -> None:
        agent = self.directory.live().get(task.agentId)
        if agent is None or agent.partition is None:
            return
        message = Cancel(taskId=task.taskId, attempt=task.attempt, agentId=agent.id)
        send_sync(
            self.producer,
            self.settings.control_topic,
            message.to_bytes(),
            task.taskId,
            agent.partition,
            timeout=self.settings.grpc_deadline,  # the caller waits no longer
        )
        task_log(log, task.taskId, task.attempt).info("cancel sent to %s", agent.id)

    # --8<-- [start:retry]
    def Retry(self, request: pb.RetryRequest, context: grpc.ServicerContext) -> pb.TaskReply:
        task = self._task(request.task_id, context)
        self._may_change(task, request.caller, context)
        if request.attempt and task.attempt > request.attempt:
            return pb.TaskReply(task=to_proto(task))  # that attempt was retried already
        if task.state not in RETRYABLE:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task is {task.status}: only FAILED or CANCELLED tasks can be retried",
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

    def Runs(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.RunsReply:
        task = self._task(request.task_id, context)
        return pb.RunsReply(runs=[run_to_proto(run) for run in self.store.runs(task.taskId)])

    def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgentsReply:
        return pb.ListAgentsReply(agents=self._agents())

    # --8<-- [start:stats]
    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsReply:
        """Read from counters the store keeps in the same step as each move: no scan."""
        since = now_ms() - STATS_WINDOW * 1000
        return pb.StatsReply(
            counts=[
                pb.TaskCount(type=task_type, status=status.value, count=count)
                for (task_type, status), count in sorted(self.store.counts().items())
            ],
            finished_recently=dict(self.store.finished_since(since)),
            window_seconds=STATS_WINDOW,
            leader=current_leader(self.directory.zk) or "",
            agents=self._agents(),
        )

    # --8<-- [end:stats]

    def _agents(self) -> list[pb.Agent]:
        """The live agents, with the load and health of their latest heartbeat."""
        agents = []
        suspect_before = now_ms() - self.settings.agent_suspect_seconds * 1000
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
                    suspect=last_seen < suspect_before,
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
        task = self.store.get(task_id) if task_id else None
        if task is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        return task
