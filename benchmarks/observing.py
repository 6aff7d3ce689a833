"""What a system spends, and what its servers do, while it works: one ``observe`` call.

``observe`` runs an act (a burst of tasks, an idle wait) between two readings and gives
the totals: every process' CPU seconds, its own and its reaped children's (``Watch``,
from each process' counters, so a share is exact whatever the sampling), its memory
(sampled on a thread, for the peak), the machine's busy time, and what the servers did
(``Counters``: Redis commands and read events from ``INFO``, Kafka messages from the end
offsets of the run's topics), less the benchmark's own requests. Dividing the totals by
tasks or seconds, and deciding what to run, is ``benchmarks/measuring.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import psutil
from kafka import KafkaConsumer, TopicPartition

from benchmarks.systems import OFFSETS_TOPIC, System

SAMPLE_SECONDS = 0.5  # how often memory is sampled during a burst


# ------------------------------------------------------------------ processes, measured


@dataclass
class Usage:
    """One process over a burst: CPU seconds of its own and of the children it reaped
    (the task processes, for an agent or a Celery pool process), memory in MB."""

    cpu: float = 0.0
    task_cpu: float = 0.0
    rss_after: float = 0.0
    rss_peak: float = 0.0


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """(own user+system, reaped children's user+system) seconds of ``process``."""
    times = process.cpu_times()
    return times.user + times.system, times.children_user + times.children_system


def machine_busy() -> float:
    """CPU seconds all cores have been busy since boot, whoever ran."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


class Watch:
    """CPU and memory of named processes over a burst.

    CPU comes from each process' own counters, read before and after, so a process'
    share is exact whatever the sampling; memory is sampled every ``SAMPLE_SECONDS`` on
    a thread, for the peak, and once more at the end.
    """

    def __init__(self, processes: Mapping[str, psutil.Process]) -> None:
        self.processes = dict(processes)
        self.usage = {name: Usage() for name in self.processes}
        self._before = {name: cpu_seconds(p) for name, p in self.processes.items()}
        self._machine = machine_busy()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._peaks()

    def _peaks(self) -> None:
        for name, process in self.processes.items():
            try:
                usage = self.usage[name]
                usage.rss_peak = max(usage.rss_peak, rss_mb(process))
            except psutil.NoSuchProcess:
                continue

    def machine(self) -> float:
        """CPU seconds the whole machine was busy since the start, anyone's."""
        return machine_busy() - self._machine

    def stop(self) -> dict[str, Usage]:
        self._stop.set()
        self._sampler.join()
        self._peaks()
        for name, process in self.processes.items():
            own, children = cpu_seconds(process)
            usage = self.usage[name]
            usage.cpu = own - self._before[name][0]
            usage.task_cpu = children - self._before[name][1]
            usage.rss_after = rss_mb(process)
        return self.usage


# ------------------------------------------------------------------ servers, counted


def kafka_offsets(consumer: KafkaConsumer, topics: list[str]) -> dict[str, int]:
    """Messages ever written to each topic: the sum of its partitions' end offsets (the
    producers are idempotent, not transactional, so every offset is one message). A topic
    not made yet has none."""
    consumer.topics()  # fresh metadata
    offsets = {}
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, n) for n in numbers]
        offsets[topic] = sum(consumer.end_offsets(partitions).values()) if partitions else 0
    return offsets


def topic_label(topic: str) -> str:
    """``dispatch-1a2b3c4d`` -> ``dispatch``; the broker's own topic of committed offsets
    (the broker is this run's alone, so every commit in it is the system's)."""
    return "offset commits" if topic == OFFSETS_TOPIC else topic.rsplit("-", 1)[0]


@dataclass
class Counters:
    """What a system's servers have done so far, and what of it the benchmark asked."""

    commands: dict[str, int]  # Redis, by command, those run inside Lua scripts included
    reads: int  # Redis read events: requests (or pipelines) that came in, about
    own: int  # the benchmark's own requests to Redis
    offsets: dict[str, int]  # Kafka, by topic

    @classmethod
    def read(cls, system: System) -> Counters:
        info = system.redis.info("all")  # one request: stats and commandstats
        return cls(
            commands={
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in info.items()
                if name.startswith("cmdstat_")
            },
            reads=int(info["total_reads_processed"]),
            own=system.own_commands(),
            offsets=kafka_offsets(system.kafka, system.topics) if system.kafka else {},
        )

    def since(self, before: Counters) -> dict[str, Any]:
        """What happened between ``before`` and this, without the benchmark's own
        requests (its looks for the end of a burst, and the INFO that read ``before``)."""
        commands = {k: n - before.commands.get(k, 0) for k, n in self.commands.items()}
        commands["info"] = commands.get("info", 0) - 1
        own = self.own - before.own
        if own and "hgetall" in commands:
            commands["hgetall"] -= own  # every look is one HGETALL
        return {
            "redis_commands": {k: n for k, n in sorted(commands.items()) if n > 0},
            "redis_reads": self.reads - before.reads - 1 - own,
            "benchmark_redis_requests": own,
            "kafka_messages": {
                topic_label(topic): n - before.offsets[topic] for topic, n in self.offsets.items()
            },
        }


# --8<-- [start:observe]
def observe(system: System, act: Callable[[], dict[str, float]]) -> dict[str, Any]:
    """Run ``act`` (it returns the seconds it measured); what every process spent on it
    (CPU seconds, memory), and what the servers did (Redis commands and read events,
    Kafka messages), all as totals."""
    watch = Watch({**system.processes(), "client (this benchmark)": psutil.Process()})
    before = Counters.read(system)
    timing = act()
    done = Counters.read(system).since(before)
    machine = watch.machine()
    usage = watch.stop()
    watched = sum(u.cpu + u.task_cpu for u in usage.values())
    return {
        **timing,
        "processes": {n: asdict(u) for n, u in usage.items()},
        # how busy the machine was meanwhile, and how much of that was someone else's
        "machine_busy_cores": machine / timing["seconds"],
        "others_busy_cores": max(0.0, machine - watched) / timing["seconds"],
        **done,
    }


# --8<-- [end:observe]
