"""Submitting tasks and waiting for them, for end-to-end tests, demos and benchmarks.

Straight into the store (``submit``), or through the REST API (``*_through_api``), as a
careful client does: through ``api_session``, which repeats a request whose connection
failed, and with a ``requestId`` on every submit, so a repeated one never makes a second
task.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from devtools.procs import Proc, Processes
from devtools.settings import get_dev_settings
from shared.core.keys import PENDING_QUEUE
from shared.core.states import TERMINAL
from shared.core.store import TaskStore
from shared.core.task import Task, TaskSpec
from shared.core.waiting import wait_until
from shared.security.tokens import client_token

WAIT = 60
REPEATS = 3  # times a request to the API is repeated when its connection failed or broke
# A task that prints which agent ran which attempt of it.
IDENTITY = 'echo "$TASKFLOW_AGENT_ID $TASKFLOW_ATTEMPT"'


def submit(store: TaskStore, content: str, **fields: object) -> str:
    spec = TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": content, **fields})
    task, _ = store.create(spec, queue=PENDING_QUEUE)
    return task.taskId


def wait_all_terminal(store: TaskStore, task_ids: list[str], timeout: float) -> dict[str, Task]:
    def done() -> dict[str, Task] | None:
        tasks = {task_id: store.get(task_id) for task_id in task_ids}
        return tasks if all(t and t.status in TERMINAL for t in tasks.values()) else None

    tasks = wait_until(done, timeout, interval=0.2)
    assert tasks, "not every task reached a terminal state"
    return tasks


def count_terminal(store: TaskStore, task_ids: list[str]) -> int:
    return sum(1 for task_id in task_ids if (t := store.get(task_id)) and t.status in TERMINAL)


def start_agents(procs: Processes, module: str, count: int, **env: str) -> list[Proc]:
    agents = [procs.start(f"agent-{n}", module, AGENT_ID=f"agent-{n}", **env) for n in range(count)]
    for agent in agents:
        assert agent.wait_for_log("registered /live-agents/", WAIT), agent.log()
    return agents


class CarefulSession(requests.Session):
    """A session that repeats a request whose answer broke off: the API worker serving it
    died (``kill -9``) after the status line, before the body. The adapter's ``Retry``
    cannot: requests reads the body after the adapter has returned."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        for _ in range(REPEATS):
            try:
                return super().send(request, **kwargs)
            except requests.exceptions.ChunkedEncodingError:
                continue
        return super().send(request, **kwargs)


def api_session(token: str | None = None) -> requests.Session:
    """A session that sends ``token`` (by default the client's: ``TASKFLOW_TOKEN``, else
    the admin token ``make phase5-up`` saved), and repeats at once (up to 3 times) a
    request whose connection failed or broke before the answer: an API worker killed with
    its requests in flight, or a refused connection. Any method: a GET reads, and a submit
    carries a ``requestId``. An answer, even a 503 with Retry-After, is returned as it is:
    the caller decides what to do with it.
    """
    retry = Retry(
        total=REPEATS,
        connect=REPEATS,
        read=REPEATS,
        status=0,
        allowed_methods=None,
        backoff_factor=0.05,
        respect_retry_after_header=False,  # else urllib3 repeats a 503, then raises
    )
    session = CarefulSession()
    token = token or client_token(get_dev_settings().run_dir)
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def submit_through_api(api: str, content: str, name: str = "t", **fields: Any) -> str:
    """POST a shell task to the API at ``api``; its taskId. A ``requestId`` of its own
    unless ``fields`` bring one: a repeated POST then finds the task the first one made."""
    body = {"name": name, "type": "SHELL", "content": content, "requestId": uuid.uuid4().hex}
    with api_session() as session:
        reply = session.post(f"{api}/api/v1/tasks", json={**body, **fields}, timeout=10)
    reply.raise_for_status()
    return reply.json()["taskId"]


def task_through_api(api: str, task_id: str) -> dict[str, Any]:
    with api_session() as session:
        return session.get(f"{api}/api/v1/tasks/{task_id}", timeout=10).json()


def run_through_api(api: str, content: str, timeout: float = WAIT, **fields: Any) -> dict:
    """Submit through the API and return the task once it has ended (or raise)."""
    task_id = submit_through_api(api, content, **fields)

    def ended() -> dict[str, Any] | None:
        task = task_through_api(api, task_id)
        return task if task["status"] in TERMINAL else None

    task = wait_until(ended, timeout, interval=0.2)
    if task is None:
        raise TimeoutError(f"task {task_id} did not end within {timeout:g}s")
    return task
