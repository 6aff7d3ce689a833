"""HTTP tasks' rules, without a network: the allow list, taskflow's ports, the content, the
types each phase accepts. (The requests themselves: tests/integration/test_http_tasks.py.)"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.core.config import PHASE5_TASK_TYPES, Settings, TaskSettings
from shared.core.task import InvalidTask, TaskFields, TaskSpec, TaskType, state_limits
from shared.execution.http_allow import (
    ANY_PORT,
    Allowed,
    HttpPolicy,
    Refused,
    TaskflowPorts,
    parse_allow,
    taskflow_ports,
)
from shared.execution.http_executor import BadRequest, HttpRequest


def test_the_allow_list_parses_addresses_names_and_any_port() -> None:
    assert parse_allow(" 127.0.0.1:8080, [::0001]:*,Api.Example.com.:443,, ") == (
        Allowed("127.0.0.1", 8080),
        Allowed("::1", ANY_PORT),
        Allowed("api.example.com", 443),
    )
    assert parse_allow("") == ()


@pytest.mark.parametrize("item", ["127.0.0.1", ":80", "host:0", "host:65536", "host:x", "::1:80"])
def test_an_allow_list_entry_that_is_not_host_and_port_is_refused(item: str) -> None:
    with pytest.raises(ValueError, match="is not host:port"):
        parse_allow(item)


@pytest.mark.parametrize("item", ["127.0.0.1", ":80", "host:65536", "host:x"])
def test_the_setting_refuses_it_at_start(item: str) -> None:
    with pytest.raises(ValidationError, match="agent_http_allow"):
        Settings(agent_http_allow=item)


def addresses_of(table: dict[str, list[str]]):  # a resolver answering from a table
    return lambda host, port: table[host]


NO_PORTS = TaskflowPorts({}, frozenset())


def test_every_address_a_name_resolves_to_must_be_allowed() -> None:
    policy = HttpPolicy(parse_allow("127.0.0.2:*"), NO_PORTS)
    resolve = addresses_of({"localhost": ["127.0.0.1"], "two": ["127.0.0.2", "10.0.0.1"]})
    with pytest.raises(Refused, match=r"127.0.0.1:80 is not in .* \(localhost resolves to"):
        policy.addresses("localhost", 80, resolve)
    with pytest.raises(Refused, match="10.0.0.1:80 is not in AGENT_HTTP_ALLOW"):
        policy.addresses("two", 80, resolve)
    assert policy.addresses("127.0.0.2", 80, addresses_of({"127.0.0.2": ["127.0.0.2"]})) == [
        "127.0.0.2"
    ]


def test_a_name_in_the_list_allows_its_addresses_on_its_port_only() -> None:
    policy = HttpPolicy(parse_allow("service.local:8080"), NO_PORTS)
    resolve = addresses_of({"service.local": ["10.1.2.3"]})
    assert policy.addresses("SERVICE.local", 8080, resolve) == ["10.1.2.3"]
    with pytest.raises(Refused, match="10.1.2.3:8081 is not in AGENT_HTTP_ALLOW"):
        policy.addresses("service.local", 8081, resolve)


def test_an_empty_allow_list_refuses_before_resolving_anything() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved")

    with pytest.raises(Refused, match=r"not allowed on this agent \(AGENT_HTTP_ALLOW is empty\)"):
        HttpPolicy((), NO_PORTS).addresses("example.com", 80, resolve)


def test_taskflows_ports_come_from_the_settings_and_are_refused_even_when_allowed() -> None:
    settings = Settings(
        redis_url="redis://u:p@127.0.0.1:6390/0",
        zk_hosts="127.0.0.1:2191,127.0.0.1:2192/taskflow",
        kafka_bootstrap_servers="127.0.0.1:9093",
        grpc_port=50051,
        metrics_port=0,  # picked at start: not known from the settings
        zipkin_endpoint="http://127.0.0.1:9412/api/v2/spans",
    )
    ports = taskflow_ports(settings)
    assert {port: ports.ports[port] for port in (6390, 2191, 2192, 9093, 50051, 9412)} == {
        6390: "Redis",
        2191: "ZooKeeper",
        2192: "ZooKeeper",
        9093: "Kafka",
        50051: "gRPC",
        9412: "Zipkin",
    }
    assert {8000, 9090, 9411} <= set(ports.ports)  # AGENT_HTTP_REFUSED_PORTS
    policy = HttpPolicy(parse_allow("127.0.0.1:*,[::1]:*,10.9.9.9:*"), ports)
    for host in ("127.0.0.1", "::1"):
        with pytest.raises(Refused, match=r"6390 is taskflow's own port \(Redis\)"):
            policy.addresses(host, 6390, addresses_of({host: [host]}))
    # the same port on a host that is none of taskflow's is another service's
    assert policy.addresses("10.9.9.9", 6390, addresses_of({"10.9.9.9": ["10.9.9.9"]}))


def test_a_local_port_in_the_ephemeral_range_may_be_a_picked_one_and_is_refused() -> None:
    ports = TaskflowPorts({}, frozenset({"10.0.0.5"}), range(32768, 61000))
    policy = HttpPolicy(parse_allow("127.0.0.1:*,10.0.0.5:*,10.0.0.6:*"), ports)
    for host in ("127.0.0.1", "10.0.0.5"):  # loopback, and a host of taskflow's
        with pytest.raises(Refused, match="in the ephemeral range, where GRPC_PORT=0"):
            policy.addresses(host, 40000, addresses_of({host: [host]}))
    assert policy.addresses("10.0.0.6", 40000, addresses_of({"10.0.0.6": ["10.0.0.6"]}))
    assert policy.addresses("127.0.0.1", 30000, addresses_of({"127.0.0.1": ["127.0.0.1"]}))


def test_bad_content_is_a_clear_error() -> None:
    cases = {
        "not json": "content is not JSON",
        "[1]": "must be a JSON object",
        "{}": "url is missing",
        '{"url": "ftp://h/"}': "scheme must be http or https",
        '{"url": "http:///x"}': "has no host",
        '{"url": "http://u:p@h/"}': "no credentials in the URL",
        '{"url": "http://h/", "method": "TRACE"}': "method must be one of",
        '{"url": "http://h/", "headers": {"a": 1}}': "headers must be an object of strings",
        '{"url": "http://h/", "headers": {"Host": "x"}}': "is the executor's to set",
        '{"url": "http://h/", "headers": {"a": "b\\r\\nc: d"}}': "is not a valid header",
        '{"url": "http://h/", "expectStatus": [700]}': "expectStatus must be a list",
        '{"url": "http://h/", "timeout": 3}': "unknown fields: timeout",
    }
    for content, why in cases.items():
        with pytest.raises(BadRequest, match=why):
            HttpRequest.parse(content)


def test_a_body_that_is_not_a_string_goes_as_json_and_expect_defaults_to_2xx() -> None:
    request = HttpRequest.parse(json.dumps({"url": "http://h/", "body": {"a": 1}}))
    assert (request.method, request.body) == ("GET", b'{"a": 1}')
    assert [request.expected(code) for code in (200, 204, 299, 301, 404)] == [1, 1, 1, 0, 0]


HTTP_TASK = {"name": "h", "type": "HTTP", "content": '{"url": "http://h/"}'}


def test_phases_1_to_4_do_not_accept_http_tasks_phase_5_does() -> None:
    with pytest.raises(InvalidTask, match="^type: Input should be 'SHELL' or 'PYTHON'$"):
        TaskSpec.from_fields(HTTP_TASK)  # as phases 1 to 4 refused it before HTTP existed
    phase5 = TaskSettings(task_types=PHASE5_TASK_TYPES)
    assert TaskSpec.from_fields(HTTP_TASK, phase5).type is TaskType.HTTP
    with pytest.raises(InvalidTask, match="^type: Input should be 'SHELL', 'PYTHON' or 'HTTP'$"):
        TaskSpec.from_fields({**HTTP_TASK, "type": "PERL"}, phase5)


def test_the_served_document_states_the_accepted_types() -> None:
    properties = TaskFields.model_json_schema()["properties"]
    assert properties["type"]["enum"] == ["SHELL", "PYTHON"]
    state_limits(properties, TaskSettings(task_types=PHASE5_TASK_TYPES))
    assert properties["type"]["enum"] == ["SHELL", "PYTHON", "HTTP"]
