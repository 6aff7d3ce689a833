"""Calling the task-manager: discover instances, balance, retry on another, with deadlines.

Instances come from the ZooKeeper watch (``shared/coordination/services.py``). Calls go
round-robin over them; a call that finds an instance gone (UNAVAILABLE) or too slow
(DEADLINE_EXCEEDED) is repeated on the next one, which every method of the service
allows (``shared/rpc/service.py``). Every call has a deadline.

An instance that failed that way is set aside (``SetAside``, below): it goes last while
others answer, until a probe answers; a call never fails without trying every instance.
The channels fail fast and reconnect soon (``CHANNEL_OPTIONS``). Why: docs/phase4.md.

In phase 5 every call carries the gRPC secret (``shared/rpc/secret.py``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from shared.coordination.services import ServiceDirectory
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.secret import call_metadata

log = logging.getLogger(__name__)

# Failures that mean "try another instance"; anything else is the answer.
RETRY_ON = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

CHANNEL_OPTIONS = [
    # one retry mechanism, ours: on another instance, never again on the same channel
    ("grpc.enable_retries", 0),
    # a refused connection is tried again after 0.1 s, then at most every second (gRPC's
    # default grows to 120 s: an instance restarted on its address would stay unreachable)
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class NoTaskManager(RuntimeError):
    """No task-manager instance is registered, or none answered."""


class TaskManagerClient:
    def __init__(
        self,
        directory: ServiceDirectory,
        deadline: float,
        set_aside: SetAside | None = None,
        secret: str = "",
    ) -> None:
        """``secret``: the gRPC secret every call carries (phase 5), '' for none."""
        self.directory = directory
        self.deadline = deadline
        self.metadata = call_metadata(secret)
        self._stubs: dict[str, tuple[grpc.Channel, pb_grpc.TaskServiceStub]] = {}
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self.set_aside = set_aside or SetAside()

    # --8<-- [start:call]
    def call(self, method: str, request: object, longer: float = 0.0) -> object:
        """``TaskService.<method>(request)`` on a live instance, another one if it fails.

        ``longer``: seconds the call may take beyond the deadline (a ``Wait``'s own). They
        are spent once: a call made again on another instance gets what is left of them.
        """
        longer_until = time.monotonic() + longer
        addresses = self.directory.addresses()
        if not addresses:
            raise NoTaskManager("no task-manager is registered in ZooKeeper")
        start = next(self._turn) % len(addresses)
        last_error: grpc.RpcError | None = None
        for address in self.set_aside.order(addresses[start:] + addresses[:start]):
            try:
                # wait_for_ready=False: a channel that cannot connect fails the call at once
                reply = getattr(self._stub(address), method)(
                    request,
                    timeout=self.deadline + max(0.0, longer_until - time.monotonic()),
                    metadata=self.metadata,
                    wait_for_ready=False,
                )
            except grpc.RpcError as exc:
                if exc.code() not in RETRY_ON:
                    self.set_aside.answered(address)  # an answer, if not the one hoped for
                    raise
                log.warning("%s on %s: %s; trying another instance", method, address, exc.code())
                self.set_aside.failed(address)
                last_error = exc
            else:
                self.set_aside.answered(address)
                return reply
        raise NoTaskManager(f"no task-manager answered ({last_error.code().name})")

    # --8<-- [end:call]

    def _stub(self, address: str) -> pb_grpc.TaskServiceStub:
        with self._lock:
            live = set(self.directory.addresses())
            for gone in [a for a in self._stubs if a not in live]:
                self._stubs.pop(gone)[0].close()
            if address not in self._stubs:
                channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                self._stubs[address] = (channel, pb_grpc.TaskServiceStub(channel))
            return self._stubs[address][1]


# --- which instance first -------------------------------------------------------------

FIRST_PAUSE = 0.5  # seconds before the first probe of a failed address
MAX_PAUSE = 4.0  # the pause doubles with every failed probe, up to this


@dataclass
class Failed:
    """One address set aside: its current pause, and when it may be probed."""

    pause: float
    probe_at: float


class SetAside:
    """Which addresses to try first, given which ones failed lately."""

    def __init__(
        self,
        first_pause: float = FIRST_PAUSE,
        max_pause: float = MAX_PAUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.clock = clock
        self._failed: dict[str, Failed] = {}
        self._lock = threading.Lock()

    def order(self, addresses: list[str]) -> list[str]:
        """``addresses`` in the order to try them: one due probe, the healthy, the set aside.

        Handing out a probe moves its next probe a pause away, so concurrent calls do not
        all probe the same dead address. Addresses gone from ``addresses`` are forgotten.
        """
        now = self.clock()
        with self._lock:
            self._failed = {a: f for a, f in self._failed.items() if a in addresses}
            aside = [a for a in addresses if a in self._failed]
            probe = [a for a in aside if self._failed[a].probe_at <= now][:1]
            for address in probe:
                self._failed[address].probe_at = now + self._failed[address].pause
        healthy = [a for a in addresses if a not in aside]
        return probe + healthy + [a for a in aside if a not in probe]

    def failed(self, address: str) -> None:
        """A call to ``address`` found it gone or too slow: set it aside, or double its pause."""
        now = self.clock()
        with self._lock:
            known = self._failed.get(address)
            pause = min(known.pause * 2, self.max_pause) if known else self.first_pause
            self._failed[address] = Failed(pause, now + pause)
        if known is None:
            log.warning("%s set aside until it answers again", address)

    def answered(self, address: str) -> None:
        """``address`` answered a call: it is healthy again."""
        with self._lock:
            known = self._failed.pop(address, None)
        if known is not None:
            log.info("%s answers again", address)
