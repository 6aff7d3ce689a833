"""Servers started with credentials let in only the clients that have them (phase 5).

One Redis, ZooKeeper and Kafka for the module, started by the launcher in a temporary
folder with a user and password each, as ``make phase5-up`` starts them: Redis with an
ACL user, ZooKeeper clients with a digest, Kafka with SASL/SCRAM. Each test then tries
the server as an outsider (no credentials) and as taskflow.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import UserScramCredentialUpsertion
from kafka.errors import KafkaTimeoutError
from kafka.protocol.admin.configs import IncrementalAlterConfigsRequest
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.metadata.api_versions import ApiVersionsRequest
from kafka.protocol.parser import KafkaProtocol
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from devtools.infra.backends import local_server, private_settings
from devtools.infra.catalog import select
from devtools.infra.launcher import Launcher
from devtools.infra.ports import LOOPBACK
from devtools.infra.redis_server import RedisServer
from devtools.monitoring import targets
from devtools.settings import DevSettings
from shared.coordination.acls import close_open_nodes, taskflow_acl
from shared.coordination.election import ELECTION_PATH, Leadership
from shared.coordination.registry import LIVE_AGENTS, AgentDirectory, AgentInfo, register_agent
from shared.coordination.serversets import ProcessKind, announce
from shared.coordination.services import SERVICES_PATH, ServiceDirectory, register_service
from shared.coordination.session import connect_zk
from shared.core.lifecycle import GracefulStop
from shared.core.waiting import wait_until
from shared.messaging.clients import kafka_security, make_consumer, make_producer, send_sync
from shared.messaging.topics import ensure_topics

log = logging.getLogger(__name__)
USER = "taskflow"
PASSWORD = f"test-{uuid.uuid4().hex}"
AUTH = f"{USER}:{PASSWORD}"
REFUSAL_MS = 3000  # how long an outsider's Kafka client tries before it gives up
# how long a client with the credentials may take: connect, SASL, metadata, an acks=all
# write, to a broker on half a core of a loaded machine
ACCEPTED_MS = 30_000
WAIT = 30  # seconds: Prometheus' discovery plus a 5 s scrape, with a margin


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSettings]:
    """DevSettings that reach Redis, ZooKeeper and Kafka started with credentials."""
    base = private_settings(tmp_path_factory.mktemp("secured"))
    settings = base.model_copy(
        update={
            "redis_url": f"redis://{USER}:{PASSWORD}@{LOOPBACK}:{base.redis_port}/0",
            "zk_hosts": f"{LOOPBACK}:{base.zookeeper_port}",
            "kafka_bootstrap_servers": f"{LOOPBACK}:{base.kafka_port}",
            "zk_auth": f"{USER}:{PASSWORD}",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": PASSWORD,
        }
    )
    launcher = Launcher(settings, say=log.info)
    services = select("redis,zookeeper,kafka", settings)
    try:
        launcher.up(services)
        yield settings
    finally:
        launcher.down(services)


# --- Redis ------------------------------------------------------------------------------


def redis_replies(port: int, *commands: str) -> list[str]:
    """Each command's first reply line, as ``redis-cli`` would show it, on one connection."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        replies = sock.makefile("rb")
        answers = []
        for command in commands:
            sock.sendall(f"{command}\r\n".encode())
            answers.append(replies.readline().decode().strip())
        return answers


def test_redis_answers_noauth_without_the_password(secured: DevSettings) -> None:
    assert redis_replies(
        secured.redis_port,
        "PING",
        f"AUTH {USER} guess",
        f"AUTH default {PASSWORD}",  # the default user is off, whatever the password
        "GET anything",
    ) == [
        "-NOAUTH Authentication required.",
        "-WRONGPASS invalid username-password pair or user is disabled.",
        "-WRONGPASS invalid username-password pair or user is disabled.",
        "-NOAUTH Authentication required.",
    ]
    assert redis_replies(secured.redis_port, f"AUTH {USER} {PASSWORD}", "PING") == ["+OK", "+PONG"]


def test_redis_serves_the_user_of_redis_url(secured: DevSettings) -> None:
    client = redis.Redis.from_url(secured.redis_url, decode_responses=True)
    client.set("auth-test", "in")
    assert client.get("auth-test") == "in"
    acl_file = RedisServer(secured).acl_file
    assert acl_file is not None and PASSWORD not in acl_file.read_text()


# --- ZooKeeper --------------------------------------------------------------------------


@pytest.fixture
def zk_settings(secured: DevSettings) -> Iterator[DevSettings]:
    """``secured`` chrooted to a fresh path, removed afterwards with taskflow's digest."""
    chroot = f"/auth-test-{uuid.uuid4().hex[:12]}"
    admin = KazooClient(hosts=secured.zk_hosts, auth_data=[("digest", secured.zk_auth)])
    admin.start(timeout=WAIT)
    admin.ensure_path(chroot)
    try:
        yield secured.model_copy(update={"zk_hosts": f"{secured.zk_hosts}{chroot}"})
    finally:
        admin.delete(chroot, recursive=True)
        admin.stop()
        admin.close()


@pytest.fixture
def outsider(zk_settings: DevSettings) -> Iterator[KazooClient]:
    """A ZooKeeper client without credentials, in the same chroot (connected while the
    chroot is still open: kazoo reads a chroot's node when it connects)."""
    client = KazooClient(hosts=zk_settings.zk_hosts)
    client.start(timeout=WAIT)
    yield client
    client.stop()
    client.close()


@pytest.fixture
def taskflow_zk(zk_settings: DevSettings, outsider: KazooClient) -> Iterator[KazooClient]:
    """A taskflow process' client: it closes the chroot, once the outsider is in."""
    zk = connect_zk(zk_settings)
    yield zk
    zk.stop()
    zk.close()


def test_an_outsider_can_neither_read_taskflows_znodes_nor_add_any(
    taskflow_zk: KazooClient, outsider: KazooClient
) -> None:
    AgentDirectory(taskflow_zk)
    register_agent(taskflow_zk, AgentInfo(id="agent-1", capacity=1, types=("SHELL",)))
    Leadership(taskflow_zk, "scheduler-1", GracefulStop())  # makes the election path
    ServiceDirectory(taskflow_zk, "task-manager")
    register_service(taskflow_zk, "task-manager", f"{LOOPBACK}:50051")

    with pytest.raises(NoAuthError):
        register_agent(outsider, AgentInfo(id="fake-agent", capacity=99, types=("SHELL",)))
    with pytest.raises(NoAuthError):
        outsider.Election(ELECTION_PATH, "usurper").run(lambda: None)
    with pytest.raises(NoAuthError):
        register_service(outsider, "task-manager", f"{LOOPBACK}:6666")
    with pytest.raises(NoAuthError):
        outsider.delete(f"{LIVE_AGENTS}/agent-1")

    for path in (LIVE_AGENTS, ELECTION_PATH, f"{SERVICES_PATH}/task-manager", "/"):
        with pytest.raises(NoAuthError):
            outsider.get_children(path)
    with pytest.raises(NoAuthError):
        outsider.get(f"{SERVICES_PATH}/task-manager/{LOOPBACK}:50051")
    assert taskflow_zk.get_children(LIVE_AGENTS) == ["agent-1"]


def test_an_outsider_cannot_replace_or_squat_taskflows_top_znodes(
    taskflow_zk: KazooClient, outsider: KazooClient
) -> None:
    """The attack of issue 23: an anonymous client re-created /live-agents with an ACL of
    its own, and no taskflow process could start after that."""
    AgentDirectory(taskflow_zk)  # an empty /live-agents
    mine = [make_digest_acl("squatter", "pw", all=True)]
    with pytest.raises(NoAuthError):
        outsider.delete(LIVE_AGENTS)
    with pytest.raises(NoAuthError):
        outsider.set_acls(LIVE_AGENTS, mine)
    with pytest.raises(NoAuthError):
        outsider.set_acls("/", OPEN_ACL_UNSAFE)
    with pytest.raises(NoAuthError):
        outsider.create("/elsewhere", acl=mine)
    with pytest.raises(NoAuthError):
        outsider.create(f"{SERVICES_PATH}/task-manager", acl=mine, makepath=True)
    assert set(taskflow_zk.get_acls(LIVE_AGENTS)[0]) == set(taskflow_acl(AUTH))


def test_the_local_zookeeper_is_closed_from_its_root(secured: DevSettings) -> None:
    """The launcher closed the server's root, and ZooKeeper's own /zookeeper, as soon as
    it answered: no top znode, and nothing under /zookeeper, from an outsider."""
    outsider = KazooClient(hosts=secured.zk_hosts)
    outsider.start(timeout=WAIT)
    try:
        for path in ("/live-agents", "/squat", "/zookeeper/squat", "/zookeeper/quota/squat"):
            with pytest.raises(NoAuthError):
                outsider.create(path)
        with pytest.raises(NoAuthError):
            outsider.get_children("/")
    finally:
        outsider.stop()
        outsider.close()


def test_znodes_left_open_are_closed_when_taskflow_starts(
    zk_settings: DevSettings, outsider: KazooClient
) -> None:
    outsider.create(LIVE_AGENTS, acl=OPEN_ACL_UNSAFE)
    outsider.create(f"{SERVICES_PATH}/task-manager", acl=OPEN_ACL_UNSAFE, makepath=True)
    zk = connect_zk(zk_settings)
    try:
        for path in ("/", LIVE_AGENTS, SERVICES_PATH, f"{SERVICES_PATH}/task-manager"):
            assert set(zk.get_acls(path)[0]) == set(taskflow_acl(zk_settings.zk_auth)), path
        with pytest.raises(NoAuthError):
            outsider.create(f"{LIVE_AGENTS}/fake-agent", ephemeral=True)
        with pytest.raises(NoAuthError):
            outsider.create("/live-agents-2")
    finally:
        zk.stop()
        zk.close()


def test_a_znode_closed_by_someone_else_stops_the_start(
    zk_settings: DevSettings, outsider: KazooClient
) -> None:
    """A root left open (here: the chroot, made before taskflow came) let someone squat a
    path; taskflow refuses to start on it, and the root it closed lets only taskflow's
    user remove the squatted znode."""
    squatter = [make_digest_acl("squatter", "pw", all=True)]
    outsider.add_auth("digest", "squatter:pw")
    outsider.create(LIVE_AGENTS, acl=squatter)
    with pytest.raises(PermissionError, match=f"znode {LIVE_AGENTS} is not taskflow's"):
        connect_zk(zk_settings)
    with pytest.raises(NoAuthError):
        outsider.delete(LIVE_AGENTS)  # the root is closed now, to the squatter too
    admin = KazooClient(hosts=zk_settings.zk_hosts, auth_data=[("digest", zk_settings.zk_auth)])
    admin.start(timeout=WAIT)
    try:
        admin.delete(LIVE_AGENTS)  # as the docs say: removed with the root's credentials
    finally:
        admin.stop()
        admin.close()


def test_a_new_digest_takes_over_the_tree_while_the_old_one_still_works(
    zk_settings: DevSettings, taskflow_zk: KazooClient
) -> None:
    """Rotation, as docs/security.md tells it: a client holding both digests gives the
    tree the new ACL; then the new credentials start, and the old ones no longer do."""
    AgentDirectory(taskflow_zk)
    ServiceDirectory(taskflow_zk, "task-manager")
    new_auth = f"{USER}:rotated-{uuid.uuid4().hex}"
    both = [("digest", zk_settings.zk_auth), ("digest", new_auth)]
    rotator = KazooClient(hosts=zk_settings.zk_hosts, auth_data=both)
    rotator.start(timeout=WAIT)
    try:
        changed = close_open_nodes(rotator, new_auth)
        assert set(changed) == {"/", LIVE_AGENTS, SERVICES_PATH, f"{SERVICES_PATH}/task-manager"}

        renewed = connect_zk(zk_settings.model_copy(update={"zk_auth": new_auth}))
        try:
            register_agent(renewed, AgentInfo(id="agent-1", capacity=1, types=("SHELL",)))
        finally:
            renewed.stop()
            renewed.close()
        with pytest.raises(PermissionError):
            connect_zk(zk_settings)
    finally:
        close_open_nodes(rotator, zk_settings.zk_auth)  # back, so the chroot can go
        rotator.stop()
        rotator.close()


def test_prometheus_still_discovers_what_taskflow_announces(
    zk_settings: DevSettings, taskflow_zk: KazooClient, metrics_port: int, tmp_path: Path
) -> None:
    overrides = {"zk_hosts": zk_settings.zk_hosts, "zk_auth": zk_settings.zk_auth}
    with local_server("prometheus", tmp_path, **overrides) as prometheus:
        # The launcher made the watched path, closed to writes like the rest, open to reads.
        metrics_acl = set(taskflow_acl(zk_settings.zk_auth, "/metrics"))
        assert set(taskflow_zk.get_acls("/metrics")[0]) == metrics_acl
        assert set(taskflow_zk.get_acls("/")[0]) == set(taskflow_acl(zk_settings.zk_auth))
        announce(taskflow_zk, ProcessKind.AGENT, "agent-7", LOOPBACK, metrics_port)
        (member,) = taskflow_zk.get_children("/metrics/agent")
        assert set(taskflow_zk.get_acls(f"/metrics/agent/{member}")[0]) == metrics_acl

        def scraped() -> bool:
            return any(target["health"] == "up" for target in targets(prometheus))

        assert wait_until(scraped, WAIT), targets(prometheus)


# --- Kafka ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def topics(secured: DevSettings) -> list[str]:
    """The project's topics, created with taskflow's credentials."""
    return ensure_topics(secured.kafka_bootstrap_servers, settings=secured)


def produce(bootstrap: str, topic: str, wait_ms: int = ACCEPTED_MS, **security: str) -> None:
    """Send one message and wait up to ``wait_ms`` for the broker's acknowledgement."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        max_block_ms=wait_ms,
        bootstrap_timeout_ms=wait_ms,
        request_timeout_ms=wait_ms,
        **security,
    )
    try:
        producer.send(topic, b"from outside").get(timeout=wait_ms / 1000)
    finally:
        producer.close(timeout=1)


def test_topics_are_created_with_the_credentials(secured: DevSettings, topics: list[str]) -> None:
    assert secured.dispatch_topic in topics
    assert ensure_topics(secured.kafka_bootstrap_servers, settings=secured) == []


def test_kafka_lets_in_only_the_sasl_user(secured: DevSettings, topics: list[str]) -> None:
    bootstrap, topic = secured.kafka_bootstrap_servers, secured.dispatch_topic
    produce(bootstrap, topic, **kafka_security(secured))  # with the credentials: accepted
    with pytest.raises(KafkaTimeoutError):
        produce(bootstrap, topic, REFUSAL_MS)
    with pytest.raises(KafkaTimeoutError):
        guess = {**kafka_security(secured), "sasl_plain_password": "guess"}
        produce(bootstrap, topic, REFUSAL_MS, **guess)


def test_taskflows_clients_produce_and_consume(secured: DevSettings, topics: list[str]) -> None:
    token = uuid.uuid4().hex.encode()
    producer = make_producer(secured, "auth-test")
    try:
        send_sync(producer, secured.dispatch_topic, token, partition=0)
    finally:
        producer.close()
    consumer: KafkaConsumer = make_consumer(secured, f"auth-test-{uuid.uuid4().hex}", "auth-test")
    try:
        partition = TopicPartition(secured.dispatch_topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        seen: list[bytes] = []

        def arrived() -> bool:
            batches = consumer.poll(timeout_ms=500)
            seen.extend(record.value for records in batches.values() for record in records)
            return token in seen

        assert wait_until(arrived, WAIT)
    finally:
        consumer.close()


def ask(sock: socket.socket, protocol: KafkaProtocol, request: ApiMessage) -> object | None:
    """Send one request; its response, or None when the server closes the connection."""
    protocol.send_request(request)
    sock.sendall(protocol.send_bytes())
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionError:
            return None
        if not data:
            return None
        responses = protocol.receive_bytes(data)
        if responses:
            return responses[0][1]


def test_kafka_controller_refuses_config_changes_without_login(secured: DevSettings) -> None:
    """Open, the controller listener would take a broker config change from anyone (a new
    listener without SASL, say): the request is sent by hand, as no client library would."""
    change = IncrementalAlterConfigsRequest
    resource = change.AlterConfigsResource
    retention = resource.AlterableConfig(name="log.retention.ms", config_operation=0, value="1")
    request = change(
        version=0,
        validate_only=True,
        resources=[resource(resource_type=4, resource_name="1", configs=[retention])],
    )
    protocol = KafkaProtocol(client_id="outsider")
    with socket.create_connection((LOOPBACK, secured.kafka_controller_port), timeout=5) as sock:
        # Allowed before a login: proves the conversation itself works.
        assert ask(sock, protocol, ApiVersionsRequest(version=0)) is not None
        assert ask(sock, protocol, request) is None


def test_a_new_scram_password_takes_over(secured: DevSettings, topics: list[str]) -> None:
    """Rotation, as docs/security.md tells it: logged in with the old password, set a new
    one; clients with the new one get in, the old one no longer does."""
    bootstrap, topic = secured.kafka_bootstrap_servers, secured.dispatch_topic
    new = {**kafka_security(secured), "sasl_plain_password": f"rotated-{uuid.uuid4().hex}"}

    def set_password(login: dict[str, str], password: str) -> None:
        change = UserScramCredentialUpsertion(USER, secured.kafka_sasl_mechanism.value, password)
        with KafkaAdminClient(bootstrap_servers=bootstrap, **login) as admin:
            assert admin.alter_user_scram_credentials([change]) == {USER: None}

    set_password(kafka_security(secured), new["sasl_plain_password"])
    try:
        produce(bootstrap, topic, **new)
        with pytest.raises(KafkaTimeoutError):
            produce(bootstrap, topic, REFUSAL_MS, **kafka_security(secured))
    finally:
        set_password(new, secured.kafka_sasl_password)  # as it was, for whatever runs next
