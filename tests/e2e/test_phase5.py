"""Phase 5 end to end: the observed system, with its own Prometheus and Zipkin.

One stack for the module: 2 schedulers, 2 agents, a task-manager and the API (phase 5's
processes), a Prometheus that finds them in this test's ZooKeeper chroot, and a Zipkin
that receives their spans.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from devtools.infra.backends import local_server
from devtools.infra.ports import free_port
from devtools.isolation import private_kafka_env, private_zk_root
from devtools.monitoring import query, targets, targets_problems, trace_services, value
from devtools.procs import Processes
from devtools.stacks import PHASE5, start_api_stack
from devtools.tasks import api_session, run_through_api, submit_through_api
from shared.core.config import Settings
from shared.core.states import TERMINAL
from shared.core.waiting import wait_until
from shared.security.tokens import TOKEN_ENV
from tests.e2e.conftest import FAST, emptied
from tests.e2e.test_dashboard import panel_queries

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SCRAPED = 30.0  # seconds: discovery, a 5 s scrape, and a margin on a busy machine
SERVICES = {"api", "task-manager", "scheduler", "agent"}
# the processes of the module's stack (tests start and kill others of their own)
STACK = {"manager-1", "agent-1", "agent-2", "scheduler-1", "scheduler-2", "api"}


@dataclass
class Observed:
    url: str
    prometheus: str
    zipkin: str
    procs: Processes
    env: dict[str, str]


@pytest.fixture(scope="module")
def phase5(
    redis_url: str, zk_hosts: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    workdir = tmp_path_factory.mktemp("phase5")
    with (
        private_zk_root(zk_hosts) as zk_root,
        emptied(redis_url),
        local_server("prometheus", workdir / "servers", zk_hosts=zk_root) as prometheus,
        local_server("zipkin", workdir / "servers") as zipkin,
    ):
        env = {
            "REDIS_URL": redis_url,
            "ZK_HOSTS": zk_root,
            **FAST,
            **private_kafka_env(kafka_bootstrap),
            "LOG_FORMAT": "json",
            "ZIPKIN_ENDPOINT": f"{zipkin}/api/v2/spans",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach Zipkin soon after they end
            # the tasks' sandbox shows them this folder of the host, open to their uids
            "TASK_WRITABLE_PATHS": str(shared_with_tasks(workdir / "tasks")),
        }
        procs = Processes(env, workdir)
        try:
            url = start_api_stack(procs, free_port(), PHASE5, managers=1, schedulers=2)
            yield Observed(url, prometheus, zipkin, procs, env)
        finally:
            procs.close()


def run(stack: Observed, content: str, **fields: object) -> dict:
    """Submit through the API and return the task once it has ended."""
    return run_through_api(stack.url, content, **fields)


def runs_of(stack: Observed, task_id: str) -> list[dict]:
    reply = api_session().get(f"{stack.url}/api/v1/tasks/{task_id}/runs", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["runs"]


def shared_with_tasks(folder: Path) -> Path:
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    return folder


def test_a_failed_attempt_is_retried_after_a_backoff(phase5: Observed) -> None:
    marker = Path(phase5.env["TASK_WRITABLE_PATHS"]) / "failed-once"
    flaky = f'test -e {marker} && exit 0; touch {marker}; echo "not yet" >&2; exit 7'
    task = run(phase5, flaky, maxRetries=3)
    assert (task["status"], task["attempt"], task["retries"]) == ("SUCCESS", 2, 1), task
    assert task["nextAttemptAt"] is not None
    first, second = runs_of(phase5, task["taskId"])
    assert (first["attempt"], first["status"], first["exitCode"]) == (1, "FAILED", 7)
    assert first["error"] == "exit code 7"
    assert (second["attempt"], second["status"], second["exitCode"]) == (2, "SUCCESS", 0)
    assert task["nextAttemptAt"] >= first["finishedAt"]  # the backoff, by Redis' clock
    assert second["startedAt"] >= task["nextAttemptAt"]  # not started before it was due


def test_retries_end_with_the_last_failure_and_say_so(phase5: Observed) -> None:
    task = run(phase5, "exit 3", maxRetries=2)
    assert (task["status"], task["attempt"], task["retries"]) == ("FAILED", 3, 2), task
    assert task["error"] == "exit code 3; gave up after 2 retries"
    runs = runs_of(phase5, task["taskId"])
    assert [(r["attempt"], r["status"], r["exitCode"]) for r in runs] == [
        (1, "FAILED", 3),
        (2, "FAILED", 3),
        (3, "FAILED", 3),
    ]
    missing = api_session().get(f"{phase5.url}/api/v1/tasks/nope/runs", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"]
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "phase5_observability.taskctl",
            "--url",
            phase5.url,
            "runs",
            task["taskId"],
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0, printed.stderr
    rows = [line.split()[:2] for line in printed.stdout.splitlines()[1:]]
    assert rows == [["1", "FAILED"], ["2", "FAILED"], ["3", "FAILED"]], printed.stdout


def test_every_role_is_discovered_in_zookeeper_and_up(phase5: Observed) -> None:
    expected = {"scheduler-1", "scheduler-2", "agent-1", "agent-2", "task-manager-1"}

    def instances() -> set[str]:
        return {t["labels"]["instance"] for t in targets(phase5.prometheus)}

    # discovery and a first scrape of each take a moment on a loaded machine
    assert wait_until(lambda: expected <= instances(), SCRAPED), instances()
    assert wait_until(lambda: not targets_problems(phase5.prometheus), SCRAPED), targets_problems(
        phase5.prometheus
    )


def test_exactly_one_scheduler_leads(phase5: Observed) -> None:
    def seen(expr: str) -> float | None:
        return value(phase5.prometheus, expr)

    # both schedulers scraped (only schedulers export it), exactly one of them leading
    assert wait_until(lambda: seen("count(taskflow_scheduler_is_leader)") == 2, SCRAPED)
    assert wait_until(lambda: seen("sum(taskflow_scheduler_is_leader)") == 1, SCRAPED)
    assert (seen("max(taskflow_agents_live)") or 0) >= 2


def finished_now(stack: Observed, status: str) -> float:
    """``taskflow_tasks_finished_total{status}`` as the live task-managers count it now."""
    managers = wait_until(lambda: scraped_up(stack, "task-manager"), SCRAPED)
    assert managers, "Prometheus scrapes no task-manager"
    total = 0.0
    for target in managers:
        try:
            text = requests.get(target["scrapeUrl"], timeout=5).text
        except requests.RequestException:
            continue  # gone since Prometheus' last scrape: its counts are gone from the sum too
        total += sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "taskflow_tasks_finished_total" and sample.labels["status"] == status
        )
    return total


def scraped_up(stack: Observed, role: str) -> list[dict]:
    found = targets(stack.prometheus)
    return [t for t in found if t["labels"]["role"] == role and t["health"] == "up"]


def test_counters_move_after_tasks_run(phase5: Observed) -> None:
    def scraped(status: str) -> float:
        expr = f'sum(taskflow_tasks_finished_total{{status="{status}"}}) or vector(0)'
        return value(phase5.prometheus, expr) or 0

    before = {status: finished_now(phase5, status) for status in ("SUCCESS", "FAILED")}
    assert run(phase5, "true")["status"] == "SUCCESS"
    assert run(phase5, "exit 3")["status"] == "FAILED"
    assert wait_until(lambda: scraped("SUCCESS") >= before["SUCCESS"] + 1, SCRAPED)
    assert wait_until(lambda: scraped("FAILED") >= before["FAILED"] + 1, SCRAPED)
    # the histograms and the API's own counters moved too
    assert value(phase5.prometheus, "sum(taskflow_task_run_seconds_count)") >= 2
    posts = 'sum(taskflow_api_requests_total{route="/api/v1/tasks",method="POST",status="201"})'
    assert wait_until(lambda: (value(phase5.prometheus, posts) or 0) >= 2, SCRAPED)
    assert value(phase5.prometheus, 'sum(taskflow_grpc_calls_total{method="Submit"})') >= 2
    # every consumer reports its lag: the task-managers' group and each agent's partition
    lags = query(phase5.prometheus, "taskflow_kafka_consumer_lag")
    assert {series["metric"]["role"] for series in lags} >= {"agent", "task-manager"}


def test_the_alert_rules_are_loaded(phase5: Observed) -> None:
    reply = requests.get(f"{phase5.prometheus}/api/v1/rules", timeout=5).json()
    loaded = {rule["name"] for group in reply["data"]["groups"] for rule in group["rules"]}
    written = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert written and written <= loaded
    firing = query(
        phase5.prometheus, 'ALERTS{alertstate="firing",alertname=~"NoLeader|TwoLeaders"}'
    )
    assert firing == []


def test_prometheus_answers_every_dashboard_query(phase5: Observed) -> None:
    errors = []
    for title, expr in panel_queries():
        try:
            query(phase5.prometheus, expr)
        except ValueError as exc:
            errors.append(f"{title}: {exc}")
    assert errors == [], "\n".join(errors)


def test_one_trace_follows_a_task_through_every_service(phase5: Observed) -> None:
    task = run(phase5, "echo traced")
    assert len(task["traceId"]) == 32
    seen = wait_until(lambda: trace_services(phase5.zipkin, task["traceId"]) >= SERVICES, 30)
    assert seen, trace_services(phase5.zipkin, task["traceId"])


def test_json_log_lines_about_a_task_carry_its_ids_and_trace(phase5: Observed) -> None:
    task = run(phase5, "echo logged")
    lines = []
    for proc in phase5.procs.started:
        for line in proc.log().splitlines():
            if task["taskId"] in line and line.startswith("{"):
                lines.append(json.loads(line))
    by_process = {entry["process"] for entry in lines if entry.get("taskId") == task["taskId"]}
    assert {"agent-1", "agent-2"} & by_process and "task-manager-1" in by_process, lines
    running = [e for e in lines if e["message"].startswith("running") and "taskId" in e]
    assert running and running[0]["traceId"] == task["traceId"]


def test_stats_count_by_status_and_name_the_leader(phase5: Observed) -> None:
    run(phase5, "true")
    stats = api_session().get(f"{phase5.url}/api/v1/stats", timeout=10).json()
    assert stats["tasks"]["byStatus"].get("SUCCESS", 0) >= 1
    assert stats["finished"]["total"] >= 1 and 0 < stats["successRatio"] <= 1
    assert stats["leader"] in {"scheduler-1", "scheduler-2"}
    assert {"agent-1", "agent-2"} <= {agent["id"] for agent in stats["agents"]}
    printed = subprocess.run(
        [sys.executable, "-m", "phase5_observability.taskctl", "--url", phase5.url, "stats"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0, printed.stderr
    assert f"leader:     {stats['leader']}" in printed.stdout


def test_phase5_serves_phase4s_routes_and_its_own(phase5: Observed) -> None:
    """One app: phase 4's blueprint, phase 5's stats and admin blueprints, its document."""
    with api_session() as session:
        for path in ("/api/v1/agents", "/api/v1/stats", "/api/v1/tokens", "/api/v1/audit"):
            assert session.get(f"{phase5.url}{path}", timeout=10).status_code == 200, path
        document = session.get(f"{phase5.url}/api/v1/openapi.json", timeout=10).json()
        assert {"/api/v1/agents", "/api/v1/stats", "/api/v1/tasks/{taskId}/runs"} <= set(
            document["paths"]
        )
        assert "securitySchemes" in document["components"]
        unknown = session.get(f"{phase5.url}/api/v1/nowhere", timeout=10)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def wait_for(stack: Observed, task_id: str, wait: object) -> requests.Response:
    with api_session() as session:
        url = f"{stack.url}/api/v1/tasks/{task_id}"
        return session.get(url, params={"wait": wait}, timeout=60)


def test_one_get_with_wait_answers_once_the_task_has_ended(phase5: Observed) -> None:
    task_id = submit_through_api(phase5.url, "sleep 0.5; echo done")
    reply = wait_for(phase5, task_id, 10)
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["stdout"]) == ("SUCCESS", "done\n")


def test_a_wait_that_runs_out_answers_with_the_task_as_it_is(phase5: Observed) -> None:
    task_id = submit_through_api(phase5.url, "sleep 60")
    started = time.monotonic()
    reply = wait_for(phase5, task_id, 1.5)
    assert time.monotonic() - started >= 1.5
    assert reply.status_code == 200 and reply.json()["status"] not in TERMINAL, reply.text
    with api_session() as session:
        session.delete(f"{phase5.url}/api/v1/tasks/{task_id}", timeout=10).raise_for_status()
    assert wait_for(phase5, task_id, 10).json()["status"] == "CANCELLED"


@pytest.mark.parametrize("wait", ["soon", "-1", "11", "nan", "inf", ""])
def test_a_wait_out_of_bounds_is_a_400_that_names_it(phase5: Observed, wait: str) -> None:
    task_id = submit_through_api(phase5.url, "true")
    reply = wait_for(phase5, task_id, wait)
    assert reply.status_code == 400, reply.text
    assert set(reply.json()["error"]["fields"]) == {"wait"}


def test_a_killed_agent_leaves_the_targets(phase5: Observed) -> None:
    agent = phase5.procs.start("agent-9", PHASE5["agent"], AGENT_ID="agent-9")

    def scraped() -> set[str]:
        return {t["labels"]["instance"] for t in targets(phase5.prometheus)}

    assert wait_until(lambda: "agent-9" in scraped(), SCRAPED), agent.log()
    agent.kill()  # no goodbye: the target goes when its ZooKeeper session expires
    assert wait_until(lambda: "agent-9" not in scraped(), SCRAPED), scraped()


# Each kind of bad message a consumer may meet: bytes, another schema, another version, huge.
BAD_MESSAGES = [
    bytes(range(256)) * 4,
    b'{"v": 1, "kind": "nothing-we-know", "taskId": 7}',
    b'{"v": 2, "kind": "dispatch", "taskId": "t"}',
    json.dumps({"v": 1, "padding": "x" * 900_000}).encode(),
]


def test_bad_messages_on_every_topic_are_dead_lettered_and_nothing_stalls(
    phase5: Observed,
) -> None:
    settings = Settings(**{key.lower(): value for key, value in phase5.env.items()})

    def owned() -> list[int]:
        """The dispatch partitions agent-1 and agent-2 read (each says so once it reads)."""
        return sorted(
            int(match)
            for proc in phase5.procs.started
            if proc.name in ("agent-1", "agent-2")
            for match in re.findall(r"reading partition (\d+)", proc.log())
        )

    assert wait_until(lambda: len(owned()) == 2, SCRAPED), owned()
    aimed = [
        (settings.status_topic, 0),
        (settings.heartbeat_topic, 0),
        *((settings.dispatch_topic, partition) for partition in owned()),
        *((settings.control_topic, partition) for partition in owned()),
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for topic, partition in aimed:
        for message in BAD_MESSAGES:
            producer.send(topic, value=message, partition=partition).get(timeout=30)
    producer.close()
    expected = len(aimed) * len(BAD_MESSAGES)

    # the consumers go on: a task submitted after the poison runs
    assert run(phase5, "echo after the poison")["status"] == "SUCCESS"
    letters = "sum(taskflow_dead_letters_total) or vector(0)"
    assert wait_until(lambda: value(phase5.prometheus, letters) == expected, SCRAPED), value(
        phase5.prometheus, letters
    )
    read = read_letters(settings, expected)
    assert {(letter["topic"], letter["partition"]) for letter in read} == set(aimed)
    huge = [letter for letter in read if letter["bytes"] > 800_000]
    assert len(huge) == len(aimed) and all(letter["truncated"] for letter in huge)
    assert all(proc.alive for proc in phase5.procs.started if proc.name in STACK)


def read_letters(settings: Settings, expected: int) -> list[dict]:
    consumer = KafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    found: list[dict] = []

    def all_read() -> bool:
        found.extend(json.loads(record.value) for record in consumer)  # polls up to 1 s
        return len(found) >= expected

    wait_until(all_read, 60)
    consumer.close()
    return found


def test_killing_a_task_manager_fails_no_request(phase5: Observed) -> None:
    extra = phase5.procs.start("manager-3", PHASE5["manager"], PROCESS_NAME="task-manager-3")
    up = lambda: {t["labels"]["instance"] for t in scraped_up(phase5, "task-manager")}  # noqa: E731
    assert wait_until(lambda: "task-manager-3" in up(), SCRAPED), extra.log()
    accepted: list[int] = []
    failed: list[str] = []
    stop = threading.Event()

    def client() -> None:
        session = requests.Session()  # no repeats: every failure counts
        session.headers["Authorization"] = f"Bearer {os.environ[TOKEN_ENV]}"
        body = {"name": "t", "type": "SHELL", "content": "true"}
        while not stop.is_set():
            try:
                reply = session.post(f"{phase5.url}/api/v1/tasks", json=body, timeout=30)
            except requests.RequestException as exc:
                failed.append(str(exc))
                continue
            if reply.status_code == 201:
                accepted.append(reply.status_code)
            else:
                failed.append(f"{reply.status_code} {reply.text}")

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        assert wait_until(lambda: len(accepted) >= 30, 30)
        # the API spreads calls over the task-managers: the one to kill is serving some
        assert wait_until(lambda: '"submitted ' in extra.log(), 30), extra.log()
        extra.kill()  # kill -9, with calls in flight on it
        at_kill = len(accepted)
        assert wait_until(lambda: len(accepted) >= at_kill + 150, 60)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    assert failed == []
