"""Calling the task-manager: discover instances, balance, retry on another, with deadlines.

Instances come from the ZooKeeper watch (``shared/coordination/services.py``). Calls go round-robin
over them; a call that finds an instance gone (UNAVAILABLE) or too slow
(DEADLINE_EXCEEDED) is repeated on the next one. That is safe because every method of
the service is idempotent (see ``shared/rpc/service.py``). Every call has a deadline.
"""

from __future__ import annotations

import itertools
import logging
import threading

import grpc

from shared.coordination.services import ServiceDirectory
from shared.rpc import task_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# Failures that mean "try another instance"; anything else is the answer.
RETRY_ON = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class NoTaskManager(RuntimeError):
    """No task-manager instance is registered, or none answered."""


class TaskManagerClient:
    def __init__(self, directory: ServiceDirectory, deadline: float) -> None:
        self.directory = directory
        self.deadline = deadline
        self._stubs: dict[str, tuple[grpc.Channel, pb_grpc.TaskServiceStub]] = {}
        self._lock = threading.Lock()
        self._turn = itertools.count()

    # --8<-- [start:call]
    def call(self, method: str, request: object) -> object:
        """``TaskService.<method>(request)`` on a live instance, another one if it fails."""
        addresses = self.directory.addresses()
        if not addresses:
            raise NoTaskManager("no task-manager is registered in ZooKeeper")
        start = next(self._turn) % len(addresses)
        last_error: grpc.RpcError | None = None
        for address in addresses[start:] + addresses[:start]:
            try:
                return getattr(self._stub(address), method)(request, timeout=self.deadline)
            except grpc.RpcError as exc:
                if exc.code() not in RETRY_ON:
                    raise
                log.warning("%s on %s: %s; trying another instance", method, address, exc.code())
                last_error = exc
        raise NoTaskManager(f"no task-manager answered ({last_error.code().name})")

    # --8<-- [end:call]

    def _stub(self, address: str) -> pb_grpc.TaskServiceStub:
        with self._lock:
            live = set(self.directory.addresses())
            for gone in [a for a in self._stubs if a not in live]:
                self._stubs.pop(gone)[0].close()
            if address not in self._stubs:
                channel = grpc.insecure_channel(address)
                self._stubs[address] = (channel, pb_grpc.TaskServiceStub(channel))
            return self._stubs[address][1]
