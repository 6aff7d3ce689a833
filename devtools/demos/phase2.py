"""The phase 2 demo: election, dispatch, leader failover, agent failover, step by step.

Run ``make phase2-up`` first; ``make phase2-demo`` runs this. It kills processes of the
running stack with ``kill -9`` (their pids come from supervisord).
"""

from __future__ import annotations

import time
from collections import Counter

import click
from kazoo.client import KazooClient
from redis import Redis

from devtools.settings import get_dev_settings
from devtools.stack import kill_9, kill_a_busy_agent
from shared.coordination.election import ELECTION_PATH, current_leader
from shared.coordination.registry import LIVE_AGENTS
from shared.core.keys import PENDING_QUEUE
from shared.core.store import TaskStore
from shared.core.submit import submit
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until

WAIT = 60


def step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


def run_tasks(store: TaskStore, count: int) -> None:
    content = 'echo "ran on $TASKFLOW_AGENT_ID"'
    ids = [
        submit(
            store,
            TaskSpec.from_fields({"name": f"demo-{n}", "type": "SHELL", "content": content}),
            PENDING_QUEUE,
        )
        for n in range(count)
    ]
    tasks = [store.wait_for_terminal(task_id, WAIT) for task_id in ids]
    spread = Counter(task.agentId if task else "NOT FINISHED" for task in tasks)
    click.echo(f"{count} tasks, all {', '.join({t.status for t in tasks if t})}: {dict(spread)}")


def main() -> None:
    settings = get_dev_settings()
    store = TaskStore(Redis.from_url(settings.redis_url, decode_responses=True))
    zk = KazooClient(hosts=settings.zk_hosts)
    zk.start(timeout=15)

    step("who is there")
    click.echo(
        f"leader: {current_leader(zk)}   contenders: {zk.Election(ELECTION_PATH).contenders()}"
    )
    click.echo(f"live agents: {sorted(zk.get_children(LIVE_AGENTS))}")

    step("submit 6 tasks to queue:pending; the leader spreads them")
    run_tasks(store, 6)

    step("kill -9 the leader; the other scheduler takes over when its session expires")
    old = current_leader(zk)
    kill_9(f"scheduler:{old}")
    started = time.monotonic()
    new = wait_until(lambda: (lead := current_leader(zk)) and lead != old and lead, WAIT, 0.1)
    click.echo(f"new leader: {new} after {time.monotonic() - started:.1f}s")
    run_tasks(store, 3)

    step("kill -9 the agent running a long task; it finishes elsewhere; restart the agent")
    kill_a_busy_agent(store, WAIT)
    zk.stop()


if __name__ == "__main__":
    main()
