"""Cancels (phase 4 on): a second consumer of the agent, on ``task-control-topic``.

The task-manager sends a ``Cancel`` to the partition of the agent that runs the task (the
same number as its dispatch partition). The agent's main loop reads dispatches only when
a slot is free, so cancels need a consumer of their own, in its own thread: a cancel is
obeyed at once, however busy the slots. Obeying is setting the attempt's cancel flag;
the executor then kills the task's process group and the agent reports CANCELLED.
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from shared.agent.loop import Agent
from shared.core.config import Settings
from shared.core.logs import task_log
from shared.messaging.clients import make_consumer
from shared.messaging.dead_letters import send_to_dead_letters
from shared.messaging.messages import Cancel, InvalidMessage, parse_message
from shared.messaging.partitions import partition_group

log = logging.getLogger("agent")


class CancelListener:
    """Reads this agent's partition of ``task-control-topic`` and sets cancel flags."""

    def __init__(self, agent: Agent, control: KafkaConsumer, settings: Settings) -> None:
        self.agent = agent
        self.control = control
        self.settings = settings

    # --8<-- [start:obey]
    def serve(self) -> None:
        """Read cancels until the agent stops; each is obeyed at once, busy slots or not."""
        partition = TopicPartition(self.settings.control_topic, self.agent.info.partition)
        self.control.assign([partition])
        try:
            self.listen()
        finally:
            self.control.close(autocommit=False)

    def listen(self) -> None:
        while not self.agent.stop.stopping:
            batch = self.control.poll(timeout_ms=self.settings.kafka_poll_ms)
            for record in (r for records in batch.values() for r in records):
                self.obey(record)
            if batch:
                self.control.commit()

    def obey(self, record: ConsumerRecord) -> None:
        """Cancel the attempt named, if this agent runs it."""
        try:
            cancel = parse_message(Cancel, record.value)
        except InvalidMessage as exc:
            send_to_dead_letters(self.agent.reporter.producer, self.settings, record, str(exc))
            return
        running = self.agent.running.get((cancel.taskId, cancel.attempt))
        tlog = task_log(log, cancel.taskId, cancel.attempt)
        if running is not None:
            tlog.info("cancel requested: killing its process group")
            running.cancel.set()
        else:
            tlog.info("cancel for a task this agent does not run; nothing to do")

    # --8<-- [end:obey]


class Cancels:
    """The cancel listener as a part of the agent (``AgentPart``), in its own thread."""

    def start(self, agent: Agent) -> None:
        settings = agent.settings
        group = partition_group(settings.control_topic, agent.info.partition)
        control = make_consumer(settings, group, client_id=settings.agent_id)
        listener = CancelListener(agent, control, settings)
        threading.Thread(target=listener.serve, name="cancels").start()
