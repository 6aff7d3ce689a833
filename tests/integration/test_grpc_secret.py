"""The gRPC secret on a real gRPC server: every method refuses a call without it.

The server is the generated ``TaskService`` with phase 5's interceptors in front of a
servicer that implements nothing: a call the secret lets through ends UNIMPLEMENTED, one
it stops ends UNAUTHENTICATED, so each answer says which side of the check it was on.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from prometheus_client import REGISTRY

from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.client import TaskManagerClient
from shared.rpc.interceptors import CallMetrics, DependencyErrors
from shared.rpc.secret import UNKNOWN_METHOD, RefusalLog, RequireSecret, call_metadata, source

SECRET = "s3cret-of-the-test"
SERVICE = pb.DESCRIPTOR.services_by_name["TaskService"]
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server = grpc.server(
        ThreadPoolExecutor(2),
        interceptors=[RequireSecret(SECRET), CallMetrics(), DependencyErrors()],
    )
    pb_grpc.add_TaskServiceServicer_to_server(pb_grpc.TaskServiceServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()


def code_of(address: str, method: str, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """The status a call of ``method`` with an empty request and ``metadata`` ends with."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE.full_name}/{method}",
            request_serializer=lambda message: b"",
            response_deserializer=lambda data: data,
        )
        try:
            call(None, metadata=metadata, timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def refused(method: str) -> float:
    labels = {"method": method, "code": UNAUTHENTICATED.name}
    return REGISTRY.get_sample_value("taskflow_grpc_calls_total", labels) or 0.0


@pytest.mark.parametrize("method", [method.name for method in SERVICE.methods])
def test_every_method_refuses_a_call_without_the_secret_or_with_another(
    address: str, method: str
) -> None:
    before = refused(method)
    assert code_of(address, method, ()) == UNAUTHENTICATED
    assert code_of(address, method, call_metadata("a-guess")) == UNAUTHENTICATED
    assert code_of(address, method, (("authorization", SECRET),)) == UNAUTHENTICATED  # no scheme
    assert refused(method) == before + 3
    assert code_of(address, method, call_metadata(SECRET)) == grpc.StatusCode.UNIMPLEMENTED


def test_an_unknown_method_is_refused_too_and_counted_under_one_label(address: str) -> None:
    before = refused(UNKNOWN_METHOD)
    assert code_of(address, "Shutdown", ()) == UNAUTHENTICATED
    assert code_of(address, "Another", ()) == UNAUTHENTICATED
    assert refused(UNKNOWN_METHOD) == before + 2
    assert refused("Shutdown") == 0.0
    assert code_of(address, "Shutdown", call_metadata(SECRET)) == grpc.StatusCode.UNIMPLEMENTED


class Listed:
    def __init__(self, addresses: list[str]) -> None:
        self._addresses = addresses

    def addresses(self) -> list[str]:
        return list(self._addresses)


def test_the_client_sends_the_secret_it_is_given(address: str) -> None:
    sealed = TaskManagerClient(Listed([address]), 5.0, secret=SECRET)  # type: ignore[arg-type]
    bare = TaskManagerClient(Listed([address]), 5.0)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as passed:
        sealed.call("Get", pb.TaskRef(task_id="t"))
    assert passed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as stopped:
        bare.call("Get", pb.TaskRef(task_id="t"))
    assert stopped.value.code() == UNAUTHENTICATED
    assert SECRET not in (stopped.value.details() or "")


def test_refusals_are_logged_once_a_minute_per_source_with_the_count() -> None:
    now = [1000.0]
    tally = RefusalLog(60.0, clock=lambda: now[0])
    assert tally.refused("ipv4:127.0.0.1", "List", "no secret")
    assert not any(tally.refused("ipv4:127.0.0.1", "List", "no secret") for _ in range(50))
    assert tally.refused("ipv4:10.0.0.9", "Cancel", "no secret")  # another source: its own line
    now[0] += 60
    assert tally.refused("ipv4:127.0.0.1", "Submit", "a wrong secret")


def test_a_source_is_the_client_whatever_its_port() -> None:
    assert source("ipv4:127.0.0.1:53422") == "ipv4:127.0.0.1"
    assert source("ipv6:[::1]:53422") == "ipv6:[::1]"
    assert source("unix:/tmp/sock") == "unix:/tmp/sock"


def test_an_empty_secret_is_not_a_check() -> None:
    with pytest.raises(ValueError, match="empty"):
        RequireSecret("")
