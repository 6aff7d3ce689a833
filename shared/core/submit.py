"""The submit command of phases 1 and 2: create ``task:{taskId}`` and LPUSH it on a queue.

    python -m phase1_mvp.submit --name hello 'echo hi'
    python -m phase2_zookeeper.submit --type PYTHON --wait 10 'print(6 * 7)'

The same as ``redis-cli LPUSH <queue> '{"name": ..., "type": ..., "content": ...}'``,
except that the hash exists (PENDING) from the moment the command returns. Each phase
makes its command with ``submit_command(queue, get_settings)``: only the queue differs;
the settings are read when the command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from redis import Redis
from redis.exceptions import RedisError

from shared.core.config import Settings
from shared.core.keys import task_key
from shared.core.redaction import redact
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import InvalidTask, TaskSpec, TaskType


def submit(store: TaskStore, spec: TaskSpec, queue: str) -> str:
    """Create and queue the task in one atomic step; returns its id."""
    task, created = store.create(spec, queue=queue)
    if not created:
        click.echo(f"task {task.taskId} already exists ({task.status}); not queued again")
    return task.taskId


def print_hash(redis: Redis, task_id: str) -> None:
    """Print ``task:{taskId}`` the way ``redis-cli HGETALL`` lists it, one field a line."""
    click.echo(f"HGETALL {task_key(task_id)}")
    for field, value in sorted(redis.hgetall(task_key(task_id)).items()):
        click.echo(f"  {field:<11} {value.rstrip()!s}")


def submit_command(queue: str, load_settings: Callable[[], Settings]) -> click.Command:
    """The submit command for tasks that go on ``queue``, with the settings
    ``load_settings`` reads when it runs."""

    @click.command()
    @click.argument("content")
    @click.option("--name", default="adhoc", show_default=True, help="a label for the task")
    @click.option(
        "--type",
        "task_type",
        type=click.Choice([t.value for t in TaskType]),
        default=TaskType.SHELL.value,
        show_default=True,
    )
    @click.option("--timeout", type=float, help="seconds before the task is killed")
    @click.option("--request-id", help="idempotency key: the same id never creates a second task")
    @click.option(
        "--wait", "wait_seconds", type=float, help="wait up to this many seconds for the end"
    )
    def main(
        content: str,
        name: str,
        task_type: str,
        timeout: float | None,
        request_id: str | None,
        wait_seconds: float | None,
    ) -> None:
        """Queue CONTENT as a task and print its id."""
        fields = {
            "name": name,
            "type": task_type,
            "content": content,
            "timeout": timeout,
            "requestId": request_id,
        }
        settings = load_settings()
        try:
            spec = TaskSpec.from_fields(fields, settings)
        except InvalidTask as exc:
            raise click.UsageError(str(exc)) from None
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        try:
            store = TaskStore(redis)
            task_id = submit(store, spec, queue)
            click.echo(task_id)
            if wait_seconds is None:
                return
            task = store.wait_for_terminal(task_id, wait_seconds)
            print_hash(redis, task_id)
        except RedisError as exc:
            raise click.ClickException(
                f"cannot reach Redis at {redact(settings.redis_url)}: {exc}"
            ) from None
        if task is None:
            raise click.ClickException(f"task {task_id} did not finish within {wait_seconds:g}s")
        sys.exit(0 if task.status is Status.SUCCESS else 1)

    return main
