"""The scheduler's internals are closed: the attacks of issue 23 on them, each failing.

One phase 5 stack for the module, closed as ``make phase5-up`` closes it: its processes
read ``SECRETS_DIR``, a folder holding ZooKeeper's digest (``zk_auth``) and the gRPC secret
(``grpc_secret``). Redis and Kafka are the session's open servers (their credentials
have their own tests, ``tests/infra/test_server_auth.py``). The ZooKeeper tree is a
chroot of the session's ZooKeeper, which taskflow closes as it closes a root of its own.

The attacker is a local client without those secrets: it calls the task-managers' gRPC
service directly.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis
import requests
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl
from prometheus_client.parser import text_string_to_metric_families

from devtools.infra.ports import LOOPBACK, free_port
from devtools.infra.zookeeper import MAX_CLIENT_CONNECTIONS
from devtools.isolation import private_kafka_env
from devtools.procs import Processes
from devtools.stacks import PHASE5, start_api_stack
from devtools.tasks import run_through_api, submit_through_api
from shared.coordination.election import ELECTION_PATH
from shared.coordination.registry import LIVE_AGENTS
from shared.coordination.serversets import METRICS_PATH
from shared.coordination.services import SERVICES_PATH, service_path
from shared.core.states import TERMINAL, Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until
from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.secret import call_metadata
from tests.e2e.conftest import FAST, emptied

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
WAIT = 30


@dataclass
class Sealed:
    """A running, closed phase 5 stack and what only taskflow knows about it."""

    url: str
    procs: Processes
    store: TaskStore
    zk_hosts: str  # the chroot, as the processes see it
    zk_auth: str
    secret: str

    def taskflow_zk(self) -> KazooClient:
        """A client with taskflow's digest: what a process of the stack reads."""
        client = KazooClient(hosts=self.zk_hosts, auth_data=[("digest", self.zk_auth)])
        client.start(timeout=WAIT)
        return client

    def manager_address(self) -> str:
        """Where the task-manager listens. The attacker of the issue read it in ZooKeeper;
        now only taskflow can, but a port scan would find it too."""
        zk = self.taskflow_zk()
        try:
            (address,) = zk.get_children(service_path("task-manager"))
        finally:
            zk.stop()
            zk.close()
        return address


@pytest.fixture(scope="module")
def sealed(
    redis_url: str, zk_hosts: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sealed]:
    workdir = tmp_path_factory.mktemp("sealed")
    zk_auth = f"taskflow:{uuid.uuid4().hex}"
    chroot = f"/sealed-{uuid.uuid4().hex[:12]}"
    admin = KazooClient(hosts=zk_hosts, auth_data=[("digest", zk_auth)])
    admin.start(timeout=WAIT)
    admin.ensure_path(chroot)
    secrets = workdir / "secrets"  # the folder start_api_stack adds the gRPC secret to
    secrets.mkdir(mode=0o700)
    (secrets / "zk_auth").write_text(zk_auth)
    env = {"REDIS_URL": redis_url, "ZK_HOSTS": f"{zk_hosts}{chroot}", **FAST}
    procs = Processes({**env, **private_kafka_env(kafka_bootstrap)}, workdir)
    try:
        with emptied(redis_url):
            url = start_api_stack(procs, free_port(), PHASE5, managers=1)
            store = TaskStore(redis.Redis.from_url(redis_url, decode_responses=True))
            secret = (secrets / "grpc_secret").read_text().strip()
            yield Sealed(url, procs, store, f"{zk_hosts}{chroot}", zk_auth, secret)
    finally:
        procs.close()
        with suppress(Exception):
            admin.delete(chroot, recursive=True)
        admin.stop()
        admin.close()


# First in the module, while no stack of its own holds connections to the ZooKeeper.
def test_zookeeper_takes_a_bounded_number_of_connections_from_one_address(zk_hosts: str) -> None:
    """One local client opening connections until refused: it is refused at the cap
    (other clients of the session hold a few), not after it took everything."""
    if os.environ.get("ZK_HOSTS"):
        pytest.skip("a ZooKeeper of your own (ZK_HOSTS) has a cap of its own")
    host, _, port = zk_hosts.partition(":")
    sockets: list[socket.socket] = []
    refused = 0  # closed by the server as they were made
    try:
        for _ in range(MAX_CLIENT_CONNECTIONS + 1):
            try:
                sockets.append(socket.create_connection((host, int(port)), timeout=5))
            except ConnectionError:
                refused += 1
        assert refused or wait_until(lambda: any(closed_by_server(s) for s in sockets), WAIT)
    finally:
        for sock in sockets:
            sock.close()
    zk = KazooClient(hosts=zk_hosts)  # the refusals end with the flood
    zk.start(timeout=WAIT)
    zk.stop()
    zk.close()


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def direct(address: str, method: str, request: object, secret: str = "") -> grpc.StatusCode:
    """Call the task-manager as an outsider would: the status the call ends with."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        try:
            getattr(stub, method)(request, metadata=call_metadata(secret), timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_the_closed_stack_runs_tasks_through_the_api(sealed: Sealed) -> None:
    """The API found the task-manager in the closed tree and called it with the secret;
    the scheduler and the agents found each other there too."""
    task = run_through_api(sealed.url, "echo sealed")
    assert (task["status"], task["stdout"]) == ("SUCCESS", "sealed\n")


@pytest.mark.parametrize("secret", ["", "a-guess"], ids=["without", "wrong"])
def test_grpc_without_the_secret_lists_nothing(sealed: Sealed, secret: str) -> None:
    address = sealed.manager_address()
    assert direct(address, "List", pb.ListRequest(limit=200), secret) == UNAUTHENTICATED
    assert direct(address, "ListAgents", pb.ListAgentsRequest(), secret) == UNAUTHENTICATED
    assert direct(address, "Stats", pb.StatsRequest(), secret) == UNAUTHENTICATED


@pytest.mark.parametrize("secret", ["", "a-guess"], ids=["without", "wrong"])
def test_grpc_without_the_secret_submits_nothing(sealed: Sealed, secret: str) -> None:
    chosen = f"chosen-{uuid.uuid4().hex}"
    forged = pb.SubmitRequest(task_id=chosen, name="x", type="SHELL", content="id")
    assert direct(sealed.manager_address(), "Submit", forged, secret) == UNAUTHENTICATED
    assert sealed.store.get(chosen) is None


@pytest.mark.parametrize("secret", ["", "a-guess"], ids=["without", "wrong"])
def test_grpc_without_the_secret_cancels_nothing(sealed: Sealed, secret: str) -> None:
    victim = submit_through_api(sealed.url, "sleep 2")
    address = sealed.manager_address()
    assert direct(address, "Cancel", pb.TaskRef(task_id=victim), secret) == UNAUTHENTICATED
    assert direct(address, "Get", pb.TaskRef(task_id=victim), secret) == UNAUTHENTICATED
    wait = pb.WaitRequest(task_id=victim, seconds=1)
    assert direct(address, "Wait", wait, secret) == UNAUTHENTICATED

    def ended() -> Status | None:
        task = sealed.store.get(victim)
        return task.status if task and task.status in TERMINAL else None

    assert wait_until(ended, WAIT) == Status.SUCCESS


def test_refusals_are_logged_and_the_secret_is_not(sealed: Sealed) -> None:
    direct(sealed.manager_address(), "List", pb.ListRequest(), "a-guess")
    manager = sealed.procs.named("manager-1")
    assert manager.wait_for_log("refused a gRPC", WAIT), manager.log()[-2000:]
    logs = "".join(path.read_text(errors="replace") for path in log_files(sealed.procs))
    assert sealed.secret not in logs


def log_files(procs: Processes) -> list[Path]:
    return sorted(procs.log_dir.glob("*.log"))


# --- ZooKeeper ----------------------------------------------------------------------------


@pytest.fixture
def outsider(sealed: Sealed) -> Iterator[Outsider]:
    """A ZooKeeper client without credentials. It cannot connect inside the chroot (kazoo
    reads the chroot's node, which is closed), so it names the stack's paths in full."""
    servers, _, chroot = sealed.zk_hosts.partition("/")
    client = KazooClient(hosts=servers)
    client.start(timeout=WAIT)
    yield Outsider(client, f"/{chroot}")
    client.stop()
    client.close()


@dataclass
class Outsider:
    zk: KazooClient
    chroot: str

    def path(self, path: str) -> str:
        return f"{self.chroot}{path}".rstrip("/")


def test_zookeeper_without_credentials_cannot_replace_live_agents(outsider: Outsider) -> None:
    """The attack of issue 23: an anonymous client re-created /live-agents with its own
    ACL, and no process could start after that."""
    live_agents = outsider.path(LIVE_AGENTS)
    mine = [make_digest_acl("squatter", "pw", all=True)]
    with pytest.raises(NoAuthError):
        outsider.zk.delete(live_agents, recursive=False)
    with pytest.raises(NoAuthError):
        outsider.zk.set_acls(live_agents, mine)
    with pytest.raises(NoAuthError):
        outsider.zk.create(f"{live_agents}/agent-9", b"{}", ephemeral=True)
    with pytest.raises(NoAuthError):
        outsider.zk.create(outsider.path("/live-agents-2"), acl=mine)  # a new top znode
    with pytest.raises(NoAuthError):
        outsider.zk.set_acls(outsider.path("/"), OPEN_ACL_UNSAFE)


@pytest.mark.parametrize("path", [f"{SERVICES_PATH}/task-manager", ELECTION_PATH, "/"])
def test_zookeeper_without_credentials_cannot_write_under_taskflows_nodes(
    outsider: Outsider, path: str
) -> None:
    with pytest.raises(NoAuthError):
        outsider.zk.create(f"{outsider.path(path)}/intruder", b"127.0.0.1:6666", ephemeral=True)
    with pytest.raises(NoAuthError):
        outsider.zk.get_children(outsider.path(path))  # where the gRPC addresses are


def test_zookeeper_without_credentials_reads_the_metrics_tree_only(
    sealed: Sealed, outsider: Outsider
) -> None:
    """Prometheus cannot log in: it reads ``/metrics`` and below, and nothing else."""
    roles = set(outsider.zk.get_children(outsider.path(METRICS_PATH)))
    assert {"agent", "scheduler", "task-manager", "api"} <= roles
    with pytest.raises(NoAuthError):
        outsider.zk.create(outsider.path(f"{METRICS_PATH}/agent/fake_"), b"{}", sequence=True)


# --- metrics ------------------------------------------------------------------------------


def endpoints(outsider: Outsider) -> dict[str, tuple[str, int]]:
    """Every announced metrics endpoint, read as Prometheus reads it (no credentials)."""
    found = {}
    for role in outsider.zk.get_children(outsider.path(METRICS_PATH)):
        folder = outsider.path(f"{METRICS_PATH}/{role}")
        for member in outsider.zk.get_children(folder):
            data, _ = outsider.zk.get(f"{folder}/{member}")
            endpoint = json.loads(data)["serviceEndpoint"]
            found[f"{role}/{member}"] = (endpoint["host"], endpoint["port"])
    return found


def test_metrics_bind_loopback_and_hold_no_task_data(sealed: Sealed, outsider: Outsider) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    task = run_through_api(sealed.url, f"echo {marker}", name=f"name-{marker}")
    direct(sealed.manager_address(), "List", pb.ListRequest())  # a refusal, to be counted
    found = endpoints(outsider)
    assert len(found) >= 5, found  # 2 agents, a scheduler, a task-manager, the API
    refused = 0.0
    for name, (host, port) in found.items():
        assert host == LOOPBACK, name
        text = requests.get(f"http://{host}:{port}/metrics", timeout=10).text
        for secret in (task["taskId"], marker):
            assert secret not in text, (name, secret)
        refused += sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "taskflow_grpc_calls_total"
            and sample.labels.get("code") == "UNAUTHENTICATED"
        )
    assert refused >= 1
