"""The phase 3 demo: tasks flowing through the three topics, then an agent killed mid-task.

Run ``make phase3-up`` first; ``make phase3-demo`` runs this. A tap reads the three
topics (without a consumer group, so it takes nothing from anyone) and prints each
message as it passes.
"""

from __future__ import annotations

import json
import threading
import time

import click
from kafka import KafkaConsumer
from redis import Redis

from devtools.settings import DevSettings, get_dev_settings
from devtools.stack import kill_a_busy_agent
from shared.core.keys import PENDING_QUEUE
from shared.core.store import TaskStore
from shared.core.submit import submit
from shared.core.task import TaskSpec

WAIT = 60


def describe(topic: str, partition: int, message: dict, settings: DevSettings) -> str:
    if topic == settings.dispatch_topic:
        return (
            f"task={message['taskId'][:8]} attempt={message['attempt']} -> "
            f"{message['agentId']} (partition {partition}): {message['content']!r}"
        )
    if topic == settings.status_topic:
        detail = f" exit={message['exitCode']}" if message.get("exitCode") is not None else ""
        return (
            f"task={message['taskId'][:8]} attempt={message['attempt']} "
            f"{message['agentId']}: {message['status']}{detail}"
        )
    return (
        f"{message['agentId']} running {message['running']}/{message['capacity']}, "
        f"cpu {message['cpuPercent']:.0f}%, memory {message['memoryPercent']:.0f}%"
    )


def tap(settings: DevSettings, stop: threading.Event) -> None:
    """Print every message on the three topics until ``stop``."""
    topics = [settings.dispatch_topic, settings.status_topic, settings.heartbeat_topic]
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                line = describe(record.topic, record.partition, json.loads(record.value), settings)
                click.secho(f"  [{record.topic:<24}] {line}", fg="cyan")
    consumer.close()


def step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


def main() -> None:
    settings = get_dev_settings()
    store = TaskStore(Redis.from_url(settings.redis_url, decode_responses=True))
    stop = threading.Event()
    threading.Thread(target=tap, args=(settings, stop), daemon=True).start()
    time.sleep(2)  # let the tap join the topics before anything is sent

    step("three tasks: dispatch -> RUNNING -> SUCCESS / FAILED, and heartbeats between")
    contents = ['echo "hello from $TASKFLOW_AGENT_ID"', "exit 3", "print(6 * 7)"]
    ids = []
    for content in contents:
        task_type = "PYTHON" if content.startswith("print") else "SHELL"
        spec = TaskSpec.from_fields({"name": "demo", "type": task_type, "content": content})
        ids.append(submit(store, spec, PENDING_QUEUE))
    for task_id in ids:
        task = store.wait_for_terminal(task_id, WAIT)
        click.echo(f"task={task_id[:8]} {task.status} on {task.agentId}: {task.stdout.strip()!r}")

    step("kill -9 the agent running a long task; it finishes elsewhere; restart the agent")
    kill_a_busy_agent(store, WAIT)
    stop.set()


if __name__ == "__main__":
    main()
