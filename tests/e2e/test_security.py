"""Phase 5's API is closed: tokens with roles, revocation, the audit trail, fail closed.

One phase 5 stack for the module (``running_api_stack`` with phase 5's processes): the
API starts with an admin token in a tokens file; the tests make the other tokens with
``taskctl``, as an admin would.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests
from kafka import KafkaConsumer
from kazoo.client import KazooClient
from prometheus_client.parser import text_string_to_metric_families

from devtools.infra.ports import free_port
from devtools.stacks import PHASE5, gunicorn_args
from devtools.tasks import api_session, run_through_api
from shared.coordination.serversets import METRICS_PATH, ProcessKind
from shared.core.config import Settings
from shared.core.states import Status
from shared.core.waiting import wait_until
from shared.security.tokens import TOKEN_ENV
from tests.e2e.conftest import ApiStack
from tests.e2e.test_phase4_schema import CHECKS, schema_run

TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module")
def stack(phase5_stack: ApiStack) -> ApiStack:
    return phase5_stack


def taskctl(stack: ApiStack, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, TOKEN_ENV: token or os.environ[TOKEN_ENV]}
    command = [sys.executable, "-m", "phase5_observability.taskctl", "--url", stack.url, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)


def make_token(stack: ApiStack, name: str, role: str) -> str:
    done = taskctl(stack, "tokens", "create", "--name", name, "--role", role, "--json")
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert (reply["name"], reply["role"]) == (name, role)
    return reply["token"]


def call(stack: ApiStack, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def shell(content: str) -> dict:
    return {"name": "sec", "type": "SHELL", "content": content}


def test_no_token_is_401_with_a_json_error_and_the_probes_stay_open(stack: ApiStack) -> None:
    for method, path in [("GET", TASKS), ("POST", TASKS), ("GET", "/api/v1/openapi.json")]:
        reply = call(stack, method, path, None, json=shell("true"))
        assert reply.status_code == 401, (method, path)
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="taskflow"'
        assert reply.json()["error"]["code"] == "unauthenticated"
    wrong = call(stack, "GET", TASKS, "tf_not-a-token")
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert call(stack, "GET", "/healthz", None).status_code == 200
    assert call(stack, "GET", "/readyz", None).status_code == 200


def test_a_reader_reads_and_may_not_submit(stack: ApiStack) -> None:
    reader = make_token(stack, "reader-1", "reader")
    assert call(stack, "GET", TASKS, reader).status_code == 200
    refused = call(stack, "POST", TASKS, reader, json=shell("true"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert call(stack, "GET", "/api/v1/tokens", reader).status_code == 403
    assert call(stack, "GET", "/api/v1/audit", reader).status_code == 403


def test_an_operator_submits_a_task_that_succeeds(stack: ApiStack) -> None:
    operator = make_token(stack, "operator-1", "operator")
    reply = call(stack, "POST", TASKS, operator, json=shell("echo secured"))
    assert reply.status_code == 201
    task_id = reply.json()["taskId"]

    def ended() -> dict | None:
        task = call(stack, "GET", f"{TASKS}/{task_id}", operator).json()
        return task if task["status"] in {"SUCCESS", "FAILED", "CANCELLED"} else None

    task = wait_until(ended, 60, 0.2)
    assert task and task["status"] == Status.SUCCESS and task["stdout"] == "secured\n"
    assert call(stack, "POST", "/api/v1/tokens", operator, json={}).status_code == 403


def test_a_revoked_token_is_refused_within_a_second_by_every_worker(stack: ApiStack) -> None:
    token = make_token(stack, "short-lived", "reader")
    assert call(stack, "GET", TASKS, token).status_code == 200
    done = taskctl(stack, "tokens", "revoke", "short-lived")
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    # The promise is a bound: once a second has passed, no worker lets the token in. The
    # requests are made after it, so their own time (long on a loaded machine) is no part.
    wait_until(lambda: time.monotonic() >= revoked_at + 1.0, 2)
    # 8 requests: both gunicorn workers answer some
    assert [call(stack, "GET", TASKS, token).status_code for _ in range(8)] == [401] * 8
    assert taskctl(stack, "get", "x", token=token).returncode == 7  # taskctl: refused


def listed_tokens(stack: ApiStack) -> dict[str, dict]:
    done = taskctl(stack, "tokens", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {t["name"]: t for t in json.loads(done.stdout)["tokens"]}


def test_a_token_is_listed_at_once_by_either_worker(stack: ApiStack) -> None:
    admin = os.environ[TOKEN_ENV]
    for n in range(10):  # made through one worker, listed at once through either
        body = {"name": f"fresh-{n}", "role": "reader"}
        assert call(stack, "POST", "/api/v1/tokens", admin, json=body).status_code == 201
        names = {t["name"] for t in call(stack, "GET", "/api/v1/tokens", admin).json()["tokens"]}
        assert f"fresh-{n}" in names


def test_tokens_are_listed_without_secrets_and_names_are_unique(stack: ApiStack) -> None:
    make_token(stack, "lister", "reader")
    listed = listed_tokens(stack)
    assert listed["admin"]["source"] == "file" and listed["lister"]["source"] == "store"
    assert set(listed["lister"]) == {"name", "role", "source", "createdAt"}  # no hash
    again = taskctl(stack, "tokens", "create", "--name", "lister", "--role", "admin")
    assert again.returncode == 4 and "exists" in again.stderr
    file_token = taskctl(stack, "tokens", "revoke", "admin")
    assert file_token.returncode == 4 and "API_TOKENS_FILE" in file_token.stderr


def test_every_mutating_call_of_a_token_is_audited_with_who_what_and_outcome(
    stack: ApiStack,
) -> None:
    operator = make_token(stack, "auditee", "operator")
    reader = make_token(stack, "peeker", "reader")
    task_id = call(stack, "POST", TASKS, operator, json=shell("sleep 30")).json()["taskId"]
    assert call(stack, "DELETE", f"{TASKS}/{task_id}", operator).status_code in (200, 202)
    assert call(stack, "DELETE", f"{TASKS}/{task_id}", reader).status_code == 403
    assert call(stack, "POST", TASKS, None, json=shell("true")).status_code == 401
    call(stack, "GET", f"{TASKS}/{task_id}", operator)  # a read: not audited

    done = taskctl(stack, "audit", "--limit", "20", "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)["entries"]
    about = [(e["token"], e["method"], e["outcome"]) for e in entries if e["taskId"] == task_id]
    assert about == [
        ("peeker", "DELETE", "forbidden"),
        ("auditee", "DELETE", "ok"),
        ("auditee", "POST", "ok"),
    ]  # newest first; the read is not there
    assert all(e["token"] for e in entries), "a call without a token is counted, not audited"
    made = next(e for e in entries if e["target"] == "peeker")
    assert (made["token"], made["route"], made["role"]) == ("admin", "/api/v1/tokens", "admin")
    log = stack.procs.named("api").log()
    assert f"audit DELETE /api/v1/tasks/<task_id> {task_id} by auditee: ok" in log


def test_the_tools_send_the_token_they_are_given(stack: ApiStack) -> None:
    task = run_through_api(stack.url, "echo tools")
    assert task["status"] == Status.SUCCESS
    with api_session("tf_wrong") as session:
        assert session.get(f"{stack.url}{TASKS}", timeout=10).status_code == 401


def test_the_api_will_not_start_without_a_token(redis_url: str, tmp_path: Path) -> None:
    empty = redis_url.rsplit("/", 1)[0] + "/7"  # a database with no token in it
    redis.Redis.from_url(empty).flushdb()
    env = {**os.environ, "REDIS_URL": empty, "API_TOKENS_FILE": ""}
    env.pop("API_TOKENS_FILE")
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", *gunicorn_args(PHASE5, free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no API token is configured, so the API will not start" in done.stderr
    assert "python -m shared.security.tokenfile" in done.stderr


def test_the_schema_driven_run_with_a_token_finds_no_error_and_no_open_route(
    stack: ApiStack, tmp_path: Path
) -> None:
    """Every route the document declares, with an admin token: no 5xx, every answer as
    declared; and ``ignored_auth``: each one refuses the same request without the token."""
    header = f"Authorization: Bearer {os.environ[TOKEN_ENV]}"
    schema_run(stack.url, tmp_path, f"{CHECKS},ignored_auth", "-H", header)


@pytest.mark.parametrize(
    "task_id",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "task%0d%0aSet-Cookie:x=1",
        "é" * 300,
        "x" * 5000,
        "*",
        "task:abc",
        "{taskId}",
    ],
)
def test_hostile_ids_get_a_4xx_json_answer_and_reach_nothing(stack: ApiStack, task_id: str) -> None:
    admin = os.environ[TOKEN_ENV]
    for method, path in [
        ("GET", f"{TASKS}/{task_id}"),
        ("GET", f"{TASKS}/{task_id}/runs"),
        ("DELETE", f"{TASKS}/{task_id}"),
        ("POST", f"{TASKS}/{task_id}/retry"),
        ("DELETE", f"/api/v1/tokens/{task_id}"),
    ]:
        reply = call(stack, method, path, admin)
        assert 400 <= reply.status_code < 500, (method, path, reply.status_code)
        assert reply.headers["Content-Type"] == "application/json", (method, path)
        assert reply.json()["error"]["status"] == reply.status_code
    assert call(stack, "GET", "/api/v1/tokens", admin).json()["tokens"]  # all still there


def test_an_oversized_body_is_refused_before_it_is_read(stack: ApiStack) -> None:
    admin = os.environ[TOKEN_ENV]
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    reply = call(stack, "POST", TASKS, admin, data=big)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_entity_too_large"


# --- ownership: a task is its token's -----------------------------------------------------


def error_code(reply: requests.Response) -> str:
    assert reply.headers["Content-Type"] == "application/json", reply.text
    return reply.json()["error"]["code"]


def test_an_operator_cancels_and_retries_only_its_own_tasks(stack: ApiStack) -> None:
    """The attack: one operator cancelled and retried another's task. Now 403 ``not_owner``;
    an admin may, and the owner may."""
    alice = make_token(stack, "alice", "operator")
    mallory = make_token(stack, "mallory", "operator")
    admin = os.environ[TOKEN_ENV]
    task_id = call(stack, "POST", TASKS, alice, json=shell("sleep 30")).json()["taskId"]
    assert call(stack, "GET", f"{TASKS}/{task_id}", mallory).json()["owner"] == "alice"

    refused = call(stack, "DELETE", f"{TASKS}/{task_id}", mallory)
    assert refused.status_code == 403 and error_code(refused) == "not_owner"
    assert "mallory" in refused.json()["error"]["message"]
    assert stack.store.get(task_id).status is not Status.CANCELLED

    assert call(stack, "DELETE", f"{TASKS}/{task_id}", admin).status_code in (200, 202)
    assert wait_until(lambda: stack.store.get(task_id).status is Status.CANCELLED, 30)
    refused = call(stack, "POST", f"{TASKS}/{task_id}/retry", mallory)
    assert refused.status_code == 403 and error_code(refused) == "not_owner"
    assert stack.store.get(task_id).attempt == 1

    retried = call(stack, "POST", f"{TASKS}/{task_id}/retry", alice)
    assert retried.status_code == 200 and retried.json()["attempt"] == 2
    assert call(stack, "DELETE", f"{TASKS}/{task_id}", alice).status_code in (200, 202)
    entries = call(stack, "GET", "/api/v1/audit?limit=20", admin).json()["entries"]
    about = [(e["token"], e["method"], e["status"]) for e in entries if e["taskId"] == task_id]
    assert ("mallory", "DELETE", "403") in about and ("mallory", "POST", "403") in about


def test_a_request_id_is_the_tokens_own(stack: ApiStack) -> None:
    """The attack: a second operator reused the first's requestId and got the first's
    task, its own content dropped. Now each token's requestIds are its own, and one
    reused with other fields is a 409."""
    carol = make_token(stack, "carol", "operator")
    dave = make_token(stack, "dave", "operator")
    body = {**shell("echo carol"), "requestId": "shared-id"}
    first = call(stack, "POST", TASKS, carol, json=body)
    assert first.status_code == 201
    carols = first.json()["taskId"]

    taken = call(stack, "POST", TASKS, dave, json={**body, "content": "echo dave"})
    assert taken.status_code == 201 and taken.json()["taskId"] != carols
    daves = call(stack, "GET", f"{TASKS}/{taken.json()['taskId']}", dave).json()
    assert (daves["content"], daves["owner"], daves["requestId"]) == (
        "echo dave",
        "dave",
        "shared-id",
    )

    again = call(stack, "POST", TASKS, carol, json=body)
    assert (again.status_code, again.json()["taskId"]) == (200, carols)
    for changed in ({"content": "echo other"}, {"name": "other"}, {"timeout": 7}):
        reused = call(stack, "POST", TASKS, carol, json={**body, **changed})
        assert reused.status_code == 409 and error_code(reused) == "request_id_reused"
    same_as_carol = call(stack, "POST", TASKS, dave, json=body)  # dave's id names dave's task
    assert same_as_carol.status_code == 409 and error_code(same_as_carol) == "request_id_reused"
    assert stack.store.get(carols).content == "echo carol"


# --- an audit no one can flush, and rate limits -------------------------------------------


def flood(url: str, count: int, source: str, token: str | None = None) -> list[tuple]:
    """``count`` submits from the address ``source`` (127.0.0.x: another client than this
    test's others); each answer as (status, Retry-After, error code)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    body = json.dumps(shell("true"))
    answers = []
    try:
        for n in range(count):
            auth = {"Authorization": f"Bearer {token or f'tf_guess-{n}'}"} if n % 2 or token else {}
            connection.request("POST", TASKS, body=body, headers={**headers, **auth})
            reply = connection.getresponse()
            data = json.loads(reply.read())
            code = data["error"]["code"] if "error" in data else ""
            answers.append((reply.status, reply.getheader("Retry-After"), code))
    finally:
        connection.close()
    return answers


def api_metric(stack: ApiStack, name: str, **labels: str) -> float:
    """A counter summed over the API's workers, read from their own metrics endpoints
    (announced in ZooKeeper, as Prometheus finds them)."""
    zk = KazooClient(hosts=stack.procs.env["ZK_HOSTS"])
    zk.start(timeout=15)
    try:
        path = f"{METRICS_PATH}/{ProcessKind.API}"
        members = [json.loads(zk.get(f"{path}/{child}")[0]) for child in zk.get_children(path)]
    finally:
        zk.stop()
    total = 0.0
    for member in members:
        endpoint = member["serviceEndpoint"]
        try:
            text = requests.get(f"http://{endpoint['host']}:{endpoint['port']}/metrics", timeout=5)
        except requests.ConnectionError:  # a worker of an API started and stopped earlier
            continue
        for family in text_string_to_metric_families(text.text):
            for sample in family.samples:
                wanted = sample.labels.items() >= labels.items()
                if sample.name == f"{name}_total" and wanted:
                    total += sample.value
    return total


def test_anonymous_requests_cannot_flush_the_audit(stack: ApiStack) -> None:
    """The attack: 1,000 anonymous POSTs a second rolled the capped audit stream over.
    Now a request without a valid token is counted, never streamed; past the anonymous
    limit of its address it gets 429 with Retry-After; the earlier entries stay."""
    witness = make_token(stack, "witness", "operator")
    task_id = call(stack, "POST", TASKS, witness, json=shell("true")).json()["taskId"]
    audit = stack.store.redis
    length = audit.xlen("audit")
    refused_before = api_metric(stack, "taskflow_api_unauthenticated")

    answers = flood(stack.url, 2000, "127.0.0.2")

    limit = Settings().api_rate_anonymous
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {401, 429}, statuses
    # the limit, once for each window the flood reached into (a minute: one or two)
    assert limit <= statuses[401] <= 2 * limit, statuses
    assert answers[:limit] == [(401, None, "unauthenticated")] * limit
    limited = [(retry, code) for status, retry, code in answers if status == 429]
    assert all(code == "too_many_requests" and 1 <= int(retry) <= 60 for retry, code in limited)

    assert audit.xlen("audit") == length, "no refused call reached the stream"
    admin = os.environ[TOKEN_ENV]
    entries = call(stack, "GET", "/api/v1/audit?limit=1000", admin).json()["entries"]
    assert any(e["taskId"] == task_id and e["token"] == "witness" for e in entries)
    refused = api_metric(stack, "taskflow_api_unauthenticated") - refused_before
    assert refused == 2000
    lines = [line for line in stack.procs.named("api").log().splitlines() if "127.0.0.2" in line]
    assert 1 <= len(lines) <= 2, lines  # one a minute for the source, whatever the count
    assert "refused a request without a valid token" in lines[0]


@pytest.fixture(scope="module")
def limited_api(stack: ApiStack) -> str:
    """Another API on the stack's servers, 2 workers, with low limits to reach quickly:
    4 requests per token or 6 per address in 5 s, 3 anonymous ones per address in 3 s."""
    port = free_port()
    stack.procs.start(
        "api-limited",
        "gunicorn",
        *gunicorn_args(PHASE5, port),
        API_RATE_PER_TOKEN="4",
        API_RATE_PER_ADDRESS="6",
        API_RATE_WINDOW_SECONDS="5",
        API_RATE_ANONYMOUS="3",
        API_RATE_ANONYMOUS_WINDOW="3",
    )
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: answers_health(url), 60), stack.procs.named("api-limited").log()
    return url


def answers_health(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_of_window(seconds: int) -> None:
    """Wait for a fresh window, so that a count in the test is not cut in two."""
    time.sleep(seconds - time.time() % seconds + 0.05)


def test_a_token_past_its_limit_gets_429_whichever_worker_answers(
    stack: ApiStack, limited_api: str
) -> None:
    """The limits are counted in Redis: with 2 workers a token still gets 4 requests a
    window, not 4 from each; another token from another address is not affected."""
    busy, other = make_token(stack, "busy", "reader"), make_token(stack, "other", "reader")
    start_of_window(5)
    answers = flood_get(limited_api, busy, "127.0.0.3", 5)
    assert [status for status, _, _ in answers] == [200] * 4 + [429], answers
    status, retry, code = answers[-1]
    assert code == "too_many_requests" and 1 <= int(retry) <= 5
    assert flood_get(limited_api, other, "127.0.0.4", 1)[0][0] == 200
    # the address's own limit: 6 a window, whatever the tokens (5 of busy's counted already)
    answers = flood_get(limited_api, other, "127.0.0.3", 2)
    assert [status for status, _, _ in answers] == [200, 429], answers


def flood_get(url: str, token: str, source: str, count: int) -> list[tuple]:
    """``count`` reads on new connections (so both workers get some) from ``source``."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    for _ in range(count):
        connection = http.client.HTTPConnection(
            host, int(port), timeout=10, source_address=(source, 0)
        )
        try:
            connection.request("GET", TASKS, headers={"Authorization": f"Bearer {token}"})
            reply = connection.getresponse()
            data = json.loads(reply.read())
        finally:
            connection.close()
        code = data["error"]["code"] if "error" in data else ""
        answers.append((reply.status, reply.getheader("Retry-After"), code))
    return answers


def test_refusals_are_logged_once_per_source_and_window(stack: ApiStack, limited_api: str) -> None:
    """One line per address and window, with the count of the window before."""
    start_of_window(3)
    first = flood(limited_api, 10, "127.0.0.5")
    assert [status for status, _, _ in first] == [401] * 3 + [429] * 7
    start_of_window(3)
    assert flood(limited_api, 1, "127.0.0.5")[0][0] == 401  # a new window

    def lines() -> list[str]:
        log = stack.procs.named("api-limited").log()
        return [line for line in log.splitlines() if "from 127.0.0.5" in line]

    assert len(lines()) == 2, lines()
    assert "none in the window before" in lines()[0]
    assert "10 in the 3 s before, 7 of them past the limit (429)" in lines()[1]


def test_every_audit_entry_is_also_on_the_kafka_topic(stack: ApiStack) -> None:
    """The append-only copy: the capped stream can roll over, the topic keeps 90 days."""
    name = f"kafka-{uuid.uuid4().hex[:8]}"
    operator = make_token(stack, name, "operator")
    task_id = call(stack, "POST", TASKS, operator, json=shell("true")).json()["taskId"]
    consumer = KafkaConsumer(
        Settings().audit_topic,
        bootstrap_servers=stack.procs.env["KAFKA_BOOTSTRAP_SERVERS"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    found: list[dict] = []

    def arrived() -> bool:
        found.extend(e for m in consumer if (e := json.loads(m.value))["token"] == name)
        return bool(found)

    try:
        assert wait_until(arrived, 30, 0)
    finally:
        consumer.close()
    entry = found[0]
    assert (entry["taskId"], entry["method"], entry["outcome"]) == (task_id, "POST", "ok")


# --- a safe CLI ---------------------------------------------------------------------------

ESC, BEL = "\x1b", "\x07"


def test_taskctl_shows_the_escape_codes_of_a_name_and_an_output_as_text(stack: ApiStack) -> None:
    """The attack: a task named with escape codes forged rows in ``taskctl list`` and
    wrote to the terminal's clipboard (OSC 52). Now every control character is text."""
    operator = make_token(stack, "artist", "operator")
    name = f"evil{ESC}[2K\rFORGED-ROW  SUCCESS\n{ESC}]52;c;aGk={BEL}"
    content = r"printf 'out\033]52;c;aGk=\007\n\033[31mred\n'"
    body = {"name": name, "type": "SHELL", "content": content}
    task_id = call(stack, "POST", TASKS, operator, json=body).json()["taskId"]
    assert wait_until(lambda: stack.store.get(task_id).status is Status.SUCCESS, 60)

    listed = taskctl(stack, "list", "--limit", "200", token=operator)
    assert listed.returncode == 0, listed.stderr
    assert ESC not in listed.stdout and BEL not in listed.stdout and "\r" not in listed.stdout
    [row] = [line for line in listed.stdout.splitlines() if task_id in line]
    assert row.endswith("evil\\x1b[2K\\rFORGED-ROW  SUCCESS\\n\\x1b]52;c;aGk=\\x07")
    assert not any(line.startswith("FORGED-ROW") for line in listed.stdout.splitlines())

    shown = taskctl(stack, "get", task_id, token=operator)
    assert shown.returncode == 0, shown.stderr
    assert ESC not in shown.stdout and BEL not in shown.stdout
    assert "  out\\x1b]52;c;aGk=\\x07\n  \\x1b[31mred\n" in shown.stdout


def test_taskctl_reads_its_token_from_a_file_and_warns_against_token(
    stack: ApiStack, tmp_path: Path
) -> None:
    """``--token`` puts the token in ``/proc/<pid>/cmdline`` for every user to read."""
    reader = make_token(stack, "cli-reader", "reader")
    secret = tmp_path / "token"
    secret.write_text(f"{reader}\n")
    secret.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "phase5_observability.taskctl", "--url", stack.url]
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env)

    from_file = run("--token-file", str(secret), "agents")
    assert (from_file.returncode, from_file.stderr) == (0, "")
    deprecated = run("--token", reader, "agents")
    assert deprecated.returncode == 0 and "--token is deprecated" in deprecated.stderr
    assert "TASKFLOW_TOKEN or --token-file" in deprecated.stderr
    secret.chmod(0o644)
    readable = run("--token-file", str(secret), "agents")
    assert readable.returncode == 0 and "can be read by other users" in readable.stderr
    missing = run("--token-file", str(tmp_path / "absent"), "agents")
    assert missing.returncode == 2 and "cannot read --token-file" in missing.stderr
