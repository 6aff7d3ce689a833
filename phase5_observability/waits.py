"""``GET /api/v1/tasks/{id}?wait=S``: the task once it has ended, or as it is after S seconds.

Phase 5's reader of one task, plugged into phase 4's route (``tasks_blueprint``'s
``read_task``). Without ``?wait=`` (or with 0) it reads the task as phase 4 does. With
it, the task-manager's ``Wait`` answers when the store says the task ended
(``shared/core/ends.py``), or after S seconds (at most ``MAX_WAIT_SECONDS``).

A wait holds one of the API worker's threads: at most ``API_WAITS`` at once per worker,
so the other requests always find one; one more is a 429 at once, as is a wait the
task-managers have no room for (``RESOURCE_EXHAUSTED``).
"""

from __future__ import annotations

import threading

import grpc
from flask import request

from phase4_api.api import ApiError, Manager, current, manager_error
from shared.core import metrics
from shared.core.ends import MAX_WAIT_SECONDS
from shared.rpc import task_service_pb2 as pb
from shared.rpc.client import NoTaskManager
from shared.security.limits import Limit


# --8<-- [start:wait]
class Waits:
    """Reads a task for ``GET /api/v1/tasks/<task_id>``, waiting for its end if asked."""

    def __init__(self, client: Manager, most: int) -> None:
        self.client = client
        self.now = current(client)  # phase 4's reader, for a read that does not wait
        self.most = most
        self.slots = threading.BoundedSemaphore(most)  # this worker's waits, at once

    def __call__(self, task_id: str) -> pb.Task:
        seconds = wait_seconds(request.args.get("wait"))
        if not seconds:
            return self.now(task_id)
        if not self.slots.acquire(blocking=False):
            metrics.API_RATE_LIMITED.labels(Limit.WAITS).inc()
            message = f"this API worker holds {self.most} waits already; ask again"
            raise ApiError(429, "too_many_requests", message)
        try:
            return self.wait(task_id, seconds)
        finally:
            self.slots.release()

    def wait(self, task_id: str, seconds: float) -> pb.Task:
        """The task-manager's ``Wait``, whose deadline is ``seconds`` longer than a call's."""
        asked = pb.WaitRequest(task_id=task_id, seconds=seconds)
        try:
            return self.client.call("Wait", asked, seconds).task
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # it holds all it may
                message = exc.details() or exc.code().name
                raise ApiError(429, "too_many_requests", message) from None
            raise manager_error(exc) from None
        except NoTaskManager as exc:
            raise manager_error(exc) from None


# --8<-- [end:wait]


def wait_seconds(asked: str | None) -> float:
    """``?wait=`` as seconds, 0 when absent; a clear 400 for anything but 0 to 10."""
    if asked is None:
        return 0.0
    try:
        seconds = float(asked)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN fails this too
        message = f"seconds to wait, from 0 to {MAX_WAIT_SECONDS:g}"
        raise ApiError(400, "invalid_request", "bad query parameters", {"wait": message})
    return seconds
