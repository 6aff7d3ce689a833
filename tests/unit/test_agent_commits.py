"""The agent commits its dispatch offset at most every ``KAFKA_COMMIT_MS`` (each commit is
a write on the broker), except when it must not wait: ``commit(now=True)``, as it stops.

A consumer that records its commits stands in for Kafka: what is tested is when the agent
commits, not the commit itself.
"""

from __future__ import annotations

from kafka.structs import OffsetAndMetadata, TopicPartition

from shared.agent.loop import Agent
from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop


class Commits:
    """A consumer that keeps the offsets it is asked to commit."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int) -> None:
        [committed] = offsets.values()
        self.offsets.append(committed.offset)


def test_commit_waits_out_the_interval_unless_asked_now() -> None:
    commits = Commits()
    info = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0)
    settings = Settings(kafka_commit_ms=60_000)
    agent = Agent(settings, info, None, commits, None, GracefulStop())  # type: ignore[arg-type]

    def done(offset: int) -> None:
        agent.offsets.started(offset)
        agent.offsets.finished(offset)

    done(0)
    agent.commit()  # the first one goes at once
    assert commits.offsets == [1]
    done(1)
    agent.commit()  # within the 60 s that follow: not yet
    assert commits.offsets == [1]
    agent.commit(now=True)
    assert commits.offsets == [1, 2]
