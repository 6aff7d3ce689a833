"""The phase 1 demo: three tasks (one succeeds, one fails, one times out) and their hashes.

Run ``make phase1-up`` first; ``make phase1-demo`` runs this.
"""

from __future__ import annotations

import click
from redis import Redis

from devtools.settings import get_dev_settings
from shared.core.keys import TASK_QUEUE
from shared.core.store import TaskStore
from shared.core.submit import print_hash, submit
from shared.core.task import TaskSpec

DEMO_TASKS = [
    {"name": "succeeds", "type": "SHELL", "content": "echo hello from $(hostname)", "timeout": 10},
    {"name": "fails", "type": "SHELL", "content": "echo about to fail >&2; exit 3", "timeout": 10},
    {"name": "times-out", "type": "SHELL", "content": "echo sleeping; sleep 30", "timeout": 2},
    {
        "name": "python",
        "type": "PYTHON",
        "content": "import sys; print(sys.version)",
        "timeout": 10,
    },
]
WAIT_SECONDS = 30


def main() -> None:
    settings = get_dev_settings()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    store = TaskStore(redis)
    ids = []
    for fields in DEMO_TASKS:
        task_id = submit(store, TaskSpec.from_fields(fields), TASK_QUEUE)
        click.echo(f"submitted {fields['name']!r}: {fields['content']!r} -> {task_id}")
        ids.append(task_id)
    for task_id in ids:
        task = store.wait_for_terminal(task_id, WAIT_SECONDS)
        click.echo(f"\n{task.status if task else 'NOT FINISHED'}")
        print_hash(redis, task_id)


if __name__ == "__main__":
    main()
