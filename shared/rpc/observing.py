"""The methods phase 5 adds to the task service: Wait, Runs and Stats.

Each is a part that ``compose`` (``service.py``) puts beside phase 4's ``TaskService``.
They read what phase 5's store steps keep (``shared/core/steps.py``): the ``tasks:ended``
channel, ``runs:{taskId}`` and the ``stats:*`` counters. Phase 4 serves none of them and
so never subscribes to the channel nor reads those keys.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import grpc
from kazoo.client import KazooClient

from shared.coordination.election import current_leader
from shared.core.ends import MAX_WAIT_SECONDS, Ends
from shared.core.states import TERMINAL
from shared.core.store import TaskStore
from shared.core.task import now_ms
from shared.rpc import task_service_pb2 as pb
from shared.rpc.convert import run_to_proto, to_proto
from shared.rpc.service import TaskService, task_or_abort

STATS_WINDOW = 60  # seconds: Stats counts the attempts that ended this recently


class Waits:
    """``Wait``: the task once it has ended, woken by the ``tasks:ended`` channel."""

    def __init__(self, store: TaskStore, slots: int) -> None:
        self.store = store
        self.ends = Ends(store.redis)
        self.ends.start()  # subscribed before the first wait, which then is not a second late
        self.wait_slots = threading.BoundedSemaphore(slots)

    # --8<-- [start:wait]
    def Wait(self, request: pb.WaitRequest, context: grpc.ServicerContext) -> pb.TaskReply:
        """The task once it has ended, or as it is when ``seconds`` (capped) have passed.

        At most ``slots`` waits are held at once (each holds a gRPC thread): one more is
        refused with RESOURCE_EXHAUSTED at once, so the other calls always find a thread.
        A wait ends early when its caller is gone (deadline, cancel, server stopping).
        """
        if not math.isfinite(request.seconds):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "seconds must be a number")
        left = context.time_remaining()  # None without a deadline
        seconds = min(max(request.seconds, 0.0), MAX_WAIT_SECONDS, left or MAX_WAIT_SECONDS)
        task = task_or_abort(self.store, request.task_id, context)
        if task.status in TERMINAL or seconds == 0:
            return pb.TaskReply(task=to_proto(task))
        if not self.wait_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many waits; ask again later")
        try:

            def ended() -> bool:
                nonlocal task
                task = task_or_abort(self.store, request.task_id, context)
                return task.status in TERMINAL

            self.ends.wait(task.taskId, ended, seconds, lambda: not context.is_active())
        finally:
            self.wait_slots.release()
        return pb.TaskReply(task=to_proto(task))

    # --8<-- [end:wait]


class History:
    """``Runs``: a task's ended attempts, from ``runs:{taskId}``."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def Runs(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.RunsReply:
        task = task_or_abort(self.store, request.task_id, context)
        return pb.RunsReply(runs=[run_to_proto(run) for run in self.store.runs(task.taskId)])


class Stats:
    """``Stats``: the counters, the leader and the live agents."""

    def __init__(
        self, store: TaskStore, zk: KazooClient, agents: Callable[[], list[pb.Agent]]
    ) -> None:
        self.store = store
        self.zk = zk
        self.agents = agents

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
            leader=current_leader(self.zk) or "",
            agents=self.agents(),
        )

    # --8<-- [end:stats]


def observing(service: TaskService, slots: int) -> list[object]:
    """Phase 5's parts for ``compose(service, *observing(service, slots))``."""
    store = service.store
    return [Waits(store, slots), History(store), Stats(store, service.directory.zk, service.agents)]
