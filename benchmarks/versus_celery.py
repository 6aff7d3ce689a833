"""taskflow's phase 5 beside Celery + Redis: the same work, measured in one run on one machine.

    .venv/bin/python -m benchmarks.versus_celery [--tasks 500] [--clients 8] [--sequential 100]
        [--backlog 1000,10000] [--out benchmarks/results] [--plot docs/img/versus_celery.png]

Each system gets servers of its own, started fresh, and runs alone while it is measured:

* **taskflow**: phase 5 in the shape of ``phase5_observability/processes.conf`` (2
  schedulers, 3 agents with 2 slots each running tasks as ``nobody`` under limits, 2
  task-managers, the API under gunicorn with 2 workers), metrics served, every request
  traced to a local Zipkin; Redis with ``appendfsync always``, ZooKeeper and Kafka.
* **Celery**: one worker (``--pool prefork -c 2``, late acks) on a Redis of its own,
  which is its broker and its result backend (``benchmarks/celery_app.py``).

The work is a shell task that runs ``true``. For each system: a burst of ``--tasks``
tasks from ``--clients`` threads (tasks/s from the first submit to the last task done),
``--sequential`` tasks one after another (submit to SUCCESS, p50 and p99), the CPU time
and memory of every process, Redis commands and (taskflow) Kafka messages per task.
Then, for taskflow alone, bursts of growing size (``--backlog``): the time per task and
every process' peak memory as the backlog grows. Everything goes to
``<out>/versus_celery.json`` and a plot; docs/performance.md reads the numbers.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import psutil
import redis
import requests
from kafka import KafkaConsumer, TopicPartition

from shared.core.config import Fsync, get_settings
from shared.core.states import TERMINAL, Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until
from shared.devtools.infra.backends import local_server
from shared.devtools.infra.ports import free_port
from shared.devtools.isolation import private_kafka_env, private_zk_root
from shared.devtools.procs import Processes, leader_of
from shared.devtools.stacks import PHASE5, admit, api_ready, gunicorn_args
from shared.devtools.tasks import api_session
from shared.execution.executors import run_command

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.5  # how often memory is sampled during a burst
DONE_POLL_SECONDS = 0.01  # how often the end of a burst is looked for
SEQUENTIAL_POLL_SECONDS = 0.002  # how often a sequential task's status is read
IDLE_SECONDS = 5.0  # the idle window measured before the burst
WARM_UP = 500  # tasks run before any measurement: connections, imports, Lua scripts, JIT
TARGETS = {"throughput": 1.2, "p50": 3.0, "p99": 3.0}  # taskflow / Celery (issue 14)
# processes.conf's agents: tasks as nobody (as root), with its limits and interpreter
AGENT_SANDBOX = {
    "AGENT_RUN_AS": "nobody" if os.geteuid() == 0 else "",
    "TASK_PYTHON": "/usr/bin/python3",
    "TASK_LIMIT_OPEN_FILES": "1024",
    "TASK_LIMIT_PROCESSES": "1024",
    "TASK_LIMIT_MEMORY_BYTES": "4294967296",
}
OFFSETS_TOPIC = "__consumer_offsets"  # Kafka's own: consumer groups' commits
TASK_BODY = {"name": "bench", "type": "SHELL", "content": "true"}


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


def listening_pid(port: int) -> int:
    """The process that listens on ``port``: a server the launcher started (redis-server,
    a JVM), whatever wrapper started it."""
    for connection in psutil.net_connections(kind="tcp"):
        listens = connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        if listens and connection.pid is not None:
            return connection.pid
    raise RuntimeError(f"nothing listens on port {port}")


def port_of(endpoint: str) -> int:
    """The port of ``redis://...``, ``http://...`` or ``host:port[/chroot]``."""
    parts = urlsplit(endpoint if "://" in endpoint else f"tcp://{endpoint}")
    assert parts.port is not None, endpoint
    return parts.port


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


# ------------------------------------------------------------------ the two systems


@dataclass
class System:
    """A system under test, as the measurements see it."""

    name: str
    redis: redis.Redis
    processes: Callable[[], dict[str, psutil.Process]]
    # (tasks, clients) -> seconds to the last one done, and to the last one submitted
    burst: Callable[[int, int], dict[str, float]]
    # how -> one task, submit to SUCCESS; it may tell where the time went (ms by stage)
    sequential: dict[str, Callable[[], dict[str, float] | None]]
    kafka: KafkaConsumer | None = None
    topics: list[str] = field(default_factory=list)
    own_commands: Callable[[], int] = lambda: 0  # Redis commands the benchmark itself sent


# --8<-- [start:taskflow]
def start_taskflow(stack: ExitStack, work: Path) -> System:
    """Phase 5 as ``processes.conf`` shapes it, on servers of its own, with tracing to a
    local Zipkin. Settings not named here keep their defaults, as under ``make
    phase5-up``, but for the run's own topics (4 dispatch partitions, 2 for the others)."""
    redis_url = stack.enter_context(
        local_server("redis", work / "redis", redis_appendfsync=Fsync.ALWAYS)
    )
    zookeeper = stack.enter_context(local_server("zookeeper", work / "zookeeper"))
    kafka = stack.enter_context(local_server("kafka", work / "kafka"))
    zipkin = stack.enter_context(local_server("zipkin", work / "zipkin"))
    topics = private_kafka_env(kafka)  # topics of this run, created on the broker
    env = {
        "REDIS_URL": redis_url,
        "ZK_HOSTS": stack.enter_context(private_zk_root(zookeeper)),
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ZIPKIN_ENDPOINT": f"{zipkin}/api/v2/spans",
        "LOG_FORMAT": "json",
        **{k: v for k, v in topics.items() if k.endswith(("_TOPIC", "_GROUP", "_PARTITIONS"))},
    }
    procs = Processes(env, work / "logs")
    procs.log_dir.mkdir(parents=True)
    stack.callback(procs.close)
    for n in (1, 2):
        name = f"scheduler-{n}"
        procs.start(name, PHASE5["scheduler"], SCHEDULER_ID=name, PROCESS_NAME=name)
    for n in (1, 2, 3):
        name = f"agent-{n}"
        procs.start(name, PHASE5["agent"], AGENT_ID=name, PROCESS_NAME=name, **AGENT_SANDBOX)
    for n in (1, 2):
        procs.start(f"task-manager-{n}", PHASE5["manager"], PROCESS_NAME=f"task-manager-{n}")
    admit(procs)  # the API's admin token, sent by api_session()
    port = free_port()
    procs.start("api", "gunicorn", *gunicorn_args(PHASE5, port), PROCESS_NAME="api")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: api_ready(url, agents=3), 120):
        raise click.ClickException(f"taskflow did not start; logs in {procs.log_dir}")
    servers = {"redis": redis_url, "zookeeper": zookeeper, "kafka": kafka, "zipkin": zipkin}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return Taskflow(url, TaskStore(client), procs, servers).system(kafka, topics)


# --8<-- [end:taskflow]


class Taskflow:
    """Drives phase 5 through its REST API, as a client does, and sees the end of a
    burst in Redis (the store's per-status counts, one HGETALL per look)."""

    def __init__(
        self, url: str, store: TaskStore, procs: Processes, servers: dict[str, str]
    ) -> None:
        self.url = url
        self.store = store
        self.procs = procs
        self.servers = {name: listening_pid(port_of(e)) for name, e in servers.items()}
        self.looks = 0  # HGETALLs this benchmark sent to Redis
        self._sessions = threading.local()

    def system(self, kafka: str, topics: dict[str, str]) -> System:
        return System(
            name="taskflow",
            redis=self.store.redis,
            processes=self.processes,
            burst=self.burst,
            sequential={"API": self.one_polling_api, "store": self.one_polling_store},
            kafka=KafkaConsumer(bootstrap_servers=kafka),
            topics=[*(v for k, v in topics.items() if k.endswith("_TOPIC")), OFFSETS_TOPIC],
            own_commands=lambda: self.looks,
        )

    def processes(self) -> dict[str, psutil.Process]:
        """Every process by name; a scheduler that leads says so."""
        found: dict[str, psutil.Process] = {}
        schedulers = [p for p in self.procs.started if p.name.startswith("scheduler")]
        leader = leader_of(schedulers)
        for proc in self.procs.started:
            process = psutil.Process(proc.process.pid)
            if proc.name == "api":
                found["api (gunicorn master)"] = process
                for n, worker in enumerate(sorted(process.children(), key=lambda c: c.pid), 1):
                    found[f"api worker-{n}"] = worker
            else:
                leads = leader is not None and proc.name == leader.name
                found[proc.name + (" (leader)" if leads else "")] = process
        found.update({name: psutil.Process(pid) for name, pid in self.servers.items()})
        return found

    @property
    def session(self) -> requests.Session:
        """One HTTP session per client thread, with the stack's token."""
        if not hasattr(self._sessions, "session"):
            self._sessions.session = api_session()
        return self._sessions.session

    def submit(self) -> str:
        body = {**TASK_BODY, "requestId": uuid.uuid4().hex}  # as a careful client sends
        reply = self.session.post(f"{self.url}/api/v1/tasks", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()["taskId"]

    def ended(self) -> int:
        """Tasks in a final status, from the counts every status change keeps in Redis."""
        self.looks += 1
        return sum(n for (_, status), n in self.store.counts().items() if status in TERMINAL)

    # --8<-- [start:taskflow_burst]
    def burst(self, count: int, clients: int) -> dict[str, float]:
        """Submit ``count`` tasks from ``clients`` threads; seconds from the first submit
        until all of them have ended. Then every one must be SUCCESS."""
        before = self.ended()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            ids = list(pool.map(lambda _: self.submit(), range(count)))
        submitted = time.perf_counter() - started
        while self.ended() < before + count:
            time.sleep(DONE_POLL_SECONDS)
        elapsed = time.perf_counter() - started
        self.check_success(ids)
        return {"seconds": elapsed, "submit_seconds": submitted}

    # --8<-- [end:taskflow_burst]

    def check_success(self, ids: list[str]) -> None:
        failed = [i for i in ids if (t := self.store.get(i)) is None or t.state != Status.SUCCESS]
        self.looks += len(ids)
        if failed:
            raise click.ClickException(f"taskflow: {len(failed)} tasks did not succeed")

    # --8<-- [start:taskflow_sequential]
    def one_polling_api(self) -> dict[str, float]:
        """One task: POST, then GET /api/v1/tasks/{id} every 2 ms until it has ended."""
        submitted = time.time() * 1000
        task_id = self.submit()
        while (status := self.status_from_api(task_id)) not in TERMINAL:
            time.sleep(SEQUENTIAL_POLL_SECONDS)
        assert status == Status.SUCCESS, status
        return self.stages(task_id, submitted, time.time() * 1000)

    def one_polling_store(self) -> dict[str, float]:
        """One task: POST, then read its hash in Redis every 2 ms until it has ended."""
        submitted = time.time() * 1000
        task_id = self.submit()
        while (task := self.store.get(task_id)) is None or task.state not in TERMINAL:
            time.sleep(SEQUENTIAL_POLL_SECONDS)
        assert task.state == Status.SUCCESS, task.state
        return self.stages(task_id, submitted, time.time() * 1000)

    # --8<-- [end:taskflow_sequential]

    # --8<-- [start:stages]
    def stages(self, task_id: str, submitted: float, seen: float) -> dict[str, float]:
        """Where one task's time went (ms), from the moments its hash records: created
        (the task-manager's create script), scheduled (the leader chose an agent),
        dispatched (the broker took the message), started and finished (the agent's
        clock, carried in its reports). One machine, one clock."""
        task = self.store.get(task_id)
        assert task is not None
        marks = [
            ("submit", submitted),
            ("created", task.createdAt),
            ("scheduled", task.scheduledAt),
            ("dispatched", task.dispatchedAt),
            ("started", task.startedAt),
            ("finished", task.finishedAt),
            ("seen", seen),
        ]
        return {
            f"{a} -> {b}": float(tb or 0) - float(ta or 0) for (a, ta), (b, tb) in pairwise(marks)
        }

    # --8<-- [end:stages]

    def status_from_api(self, task_id: str) -> str:
        reply = self.session.get(f"{self.url}/api/v1/tasks/{task_id}", timeout=30)
        reply.raise_for_status()
        return reply.json()["status"]


# --8<-- [start:celery]
def start_celery(stack: ExitStack, work: Path, fsync: Fsync) -> System:
    """A Redis of its own and one worker with 2 pool processes, as Celery's docs start
    one, with the gossip, mingle and heartbeat chatter between workers off."""
    from benchmarks import celery_app  # the app reads nothing until it is used

    url = stack.enter_context(local_server("redis", work / "celery-redis", redis_appendfsync=fsync))
    # A result that is freed unsubscribes from its channel, and retries for long when
    # Redis is gone: the last ones are freed while it still runs.
    stack.callback(gc.collect)
    celery_app.app.conf.update(broker_url=url, result_backend=url)
    procs = Processes({celery_app.URL_ENV: url}, work)
    stack.callback(procs.close)
    worker = procs.start(
        "celery-worker",
        "celery",
        *("-A", "benchmarks.celery_app", "worker", "--pool", "prefork", "-c", "2"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "bench"),
    )
    celery_app.run_true.delay().get(timeout=60)  # answers once the worker consumes
    redis_pid = listening_pid(port_of(url))

    def processes() -> dict[str, psutil.Process]:
        main = psutil.Process(worker.process.pid)
        pool = sorted(main.children(), key=lambda c: c.pid)
        return {
            "worker (main)": main,
            **{f"pool process-{n}": child for n, child in enumerate(pool, 1)},
            "redis": psutil.Process(redis_pid),
        }

    return System(
        name="celery",
        redis=redis.Redis.from_url(url),
        processes=processes,
        burst=celery_burst,
        sequential={"get()": celery_one},
    )


def celery_one() -> None:
    """One task: ``.delay()``, then ``.get()``, which waits on the result's channel."""
    from benchmarks.celery_app import run_true

    run_true.delay().get(timeout=30)


def celery_burst(count: int, clients: int) -> dict[str, float]:
    """Each client thread sends its share with ``.delay()``, then waits for each result
    with ``.get()`` (Redis pub/sub); seconds from the first send to the last result."""
    from benchmarks.celery_app import run_true

    shares = [count // clients + (n < count % clients) for n in range(clients)]

    def client(share: int) -> float:
        results = [run_true.delay() for _ in range(share)]
        submitted = time.perf_counter()
        for result in results:
            result.get(timeout=600)
        return submitted

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        submitted = max(pool.map(client, shares))
    return {"seconds": time.perf_counter() - started, "submit_seconds": submitted - started}


# --8<-- [end:celery]

# ------------------------------------------------------------------ measurements


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sequential(one: Callable[[], dict[str, float] | None], count: int) -> dict[str, Any]:
    """``count`` tasks one after another: submit-to-SUCCESS in ms, and the median of each
    stage when ``one`` tells them."""
    latencies, stages = [], []
    for _ in range(count):
        started = time.perf_counter()
        marks = one()
        latencies.append((time.perf_counter() - started) * 1000)
        if marks:
            stages.append(marks)
    result: dict[str, Any] = {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.mean(latencies),
        "max_ms": max(latencies),
    }
    if stages:
        result["stages_p50_ms"] = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    return result


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


def per(observed: dict[str, Any], units: float) -> dict[str, Any]:
    """An observation's totals divided by ``units`` (tasks, or seconds of idling)."""
    kafka = {topic: n / units for topic, n in observed["kafka_messages"].items()}
    return {
        "cpu": {
            name: {"own": u["cpu"] / units, "tasks": u["task_cpu"] / units}
            for name, u in observed["processes"].items()
        },
        "redis_commands": sum(observed["redis_commands"].values()) / units,
        "redis_reads": observed["redis_reads"] / units,
        "redis_by_command": {k: n / units for k, n in observed["redis_commands"].items()},
        # messages on the system's topics; the commits of consumed offsets apart
        "kafka_messages": sum(n for topic, n in kafka.items() if topic != "offset commits"),
        "kafka_by_topic": kafka,
    }


def system_cpu(per_task: dict[str, Any]) -> float:
    """CPU seconds per task of every process but the benchmark's own, tasks included."""
    return sum(
        cpu["own"] + cpu["tasks"]
        for name, cpu in per_task["cpu"].items()
        if not name.startswith("client")
    )


def measure_burst(system: System, count: int, clients: int) -> dict[str, Any]:
    """One burst of ``count`` tasks, observed."""
    observed = observe(system, lambda: system.burst(count, clients))
    return {
        "tasks": count,
        "clients": clients,
        "tasks_per_s": count / observed["seconds"],
        "submits_per_s": count / observed["submit_seconds"],
        **observed,
        "per_task": per(observed, count),
    }


def measure_idle(system: System, seconds: float) -> dict[str, Any]:
    """The system doing nothing for ``seconds``: what it spends on its own (heartbeats,
    polls, metrics, the JVMs), to tell from what a task costs."""

    def idle() -> dict[str, float]:
        time.sleep(seconds)
        return {"seconds": seconds}

    observed = observe(system, idle)
    return {**observed, "per_s": per(observed, seconds)}


def measure(system: System, count: int, clients: int, rounds: int) -> dict[str, Any]:
    """Warm up, idle a while, one measured burst, then the sequential round trips."""
    system.burst(WARM_UP, clients)
    click.echo(f"{system.name}: idle for {IDLE_SECONDS:g} s", err=True)
    result: dict[str, Any] = {"idle": measure_idle(system, IDLE_SECONDS)}
    click.echo(f"{system.name}: burst of {count} tasks, {clients} clients", err=True)
    result["burst"] = measure_burst(system, count, clients)
    result["sequential"] = {}
    for how, one in system.sequential.items():
        click.echo(f"{system.name}: {rounds} tasks one after another ({how})", err=True)
        result["sequential"][how] = sequential(one, rounds)
    return result


def backlog(system: System, sizes: list[int], clients: int) -> list[dict[str, Any]]:
    """Bursts of growing size: does a task take longer when many wait, and does any
    process' memory grow with the backlog?"""
    rows = []
    for size in sizes:
        click.echo(f"{system.name}: backlog burst of {size} tasks", err=True)
        burst = measure_burst(system, size, clients)
        rows.append(
            {
                "tasks": size,
                "seconds": burst["seconds"],
                "submit_seconds": burst["submit_seconds"],
                "ms_per_task": burst["seconds"] * 1000 / size,
                "cpu_ms_per_task": 1000 * system_cpu(burst["per_task"]),
                "cpu_ms_per_task_by_process": {
                    k: 1000 * (v["own"] + v["tasks"]) for k, v in burst["per_task"]["cpu"].items()
                },
                "others_busy_cores": burst["others_busy_cores"],
                "rss_peak_mb": {k: v["rss_peak"] for k, v in burst["processes"].items()},
                "rss_after_mb": {k: v["rss_after"] for k, v in burst["processes"].items()},
            }
        )
    return rows


# --8<-- [start:spawn]
def spawn_rate(spawn: Callable[[], object], seconds: float = 2.0) -> float:
    """Processes started (and waited for) per second from one thread."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        spawn()
        count += 1
    return count / (time.perf_counter() - started)


def bare_spawn() -> None:
    subprocess.run(["/bin/sh", "-c", "true"], check=True)


@contextmanager
def agent_settings() -> Iterator[None]:
    """This process' settings as an agent's of ``processes.conf`` (its user, its limits),
    for as long as the block runs."""
    saved = {name: os.environ.get(name) for name in AGENT_SANDBOX}
    os.environ.update(AGENT_SANDBOX)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def agent_spawn() -> None:
    """What an agent's slot does for ``true``: the guard, ``setpriv`` to the task's
    user, ``prlimit``, a clean environment, the output read by two threads."""
    result = run_command(["/bin/sh", "-c", "true"], timeout=60)
    assert result.status == Status.SUCCESS, result


# --8<-- [end:spawn]

# ------------------------------------------------------------------ the report


def ratios(taskflow: dict[str, Any], celery: dict[str, Any], how: str) -> dict[str, Any]:
    """taskflow / Celery for each target; met or not."""
    tf_seq, c_seq = taskflow["sequential"][how], celery["sequential"]["get()"]
    values = {
        "throughput": taskflow["burst"]["tasks_per_s"] / celery["burst"]["tasks_per_s"],
        "p50": tf_seq["p50_ms"] / c_seq["p50_ms"],
        "p99": tf_seq["p99_ms"] / c_seq["p99_ms"],
    }
    return {
        name: {
            "ratio": value,
            "target": TARGETS[name],
            "met": value >= TARGETS[name] if name == "throughput" else value <= TARGETS[name],
        }
        for name, value in values.items()
    }


def print_headline(results: dict[str, Any]) -> None:
    tf, celery, r = results["taskflow"], results["celery"], results["ratios"]
    tf_api, c_get = tf["sequential"]["API"], celery["sequential"]["get()"]
    rows = [
        ("burst throughput (tasks/s)", tf["burst"]["tasks_per_s"], celery["burst"]["tasks_per_s"],
         "throughput", ">="),
        ("sequential p50 (ms)", tf_api["p50_ms"], c_get["p50_ms"], "p50", "<="),
        ("sequential p99 (ms)", tf_api["p99_ms"], c_get["p99_ms"], "p99", "<="),
    ]  # fmt: skip
    click.echo(f"\n{'':28}{'taskflow':>10}{'Celery':>10}{'ratio':>9}{'target':>10}  met")
    for label, mine, theirs, key, sign in rows:
        met = "yes" if r[key]["met"] else "no"
        target = f"{sign} {r[key]['target']:g}x"
        click.echo(
            f"{label:28}{mine:10.1f}{theirs:10.1f}{r[key]['ratio']:8.2f}x{target:>10}  {met}"
        )
    stages = ", ".join(f"{k} {v:.1f}" for k, v in tf_api["stages_p50_ms"].items())
    click.echo(f"taskflow, median of each stage (ms): {stages}")
    store = tf["sequential"]["store"]
    click.echo(
        f"taskflow polling Redis instead of the API: p50 {store['p50_ms']:.1f} ms, "
        f"p99 {store['p99_ms']:.1f} ms"
    )
    spawn = results["spawn_per_s"]
    click.echo(
        f"spawns/s from one thread: bare {spawn['bare']:.0f}, "
        f"through an agent's guard and sandbox {spawn['agent']:.0f}"
    )


def print_processes(name: str, result: dict[str, Any]) -> None:
    """Every process: CPU per 1000 tasks of the burst, CPU while idle, memory."""
    burst, idle = result["burst"], result["idle"]
    cpu, idle_cpu = burst["per_task"]["cpu"], idle["per_s"]["cpu"]
    click.echo(
        f"\n{name}: {'CPU s per 1000 tasks':>22}{'idle':>7}{'RSS MB':>16}\n"
        f"{'':28}{'own':>9}{'tasks':>8}{'% core':>8}{'after':>8}{'peak':>8}"
    )
    for process, usage in burst["processes"].items():
        own, tasks = cpu[process]["own"] * 1000, cpu[process]["tasks"] * 1000
        idle_share = idle_cpu.get(process, {"own": 0.0})["own"] * 100
        click.echo(
            f"  {process:26}{own:9.2f}{tasks:8.2f}{idle_share:8.1f}"
            f"{usage['rss_after']:8.0f}{usage['rss_peak']:8.0f}"
        )
    click.echo(f"  {'all but the client':26}{system_cpu(burst['per_task']) * 1000:17.2f}")
    task, idle_rate = burst["per_task"], idle["per_s"]
    click.echo(
        f"  Redis: {task['redis_commands']:.1f} commands per task (those in Lua scripts "
        f"included), {task['redis_reads']:.1f} requests per task; idle "
        f"{idle_rate['redis_commands']:.1f} commands/s"
    )
    if task["kafka_by_topic"]:
        topics = ", ".join(f"{topic} {n:.2f}" for topic, n in task["kafka_by_topic"].items())
        click.echo(
            f"  Kafka: {task['kafka_messages']:.2f} messages per task ({topics}); "
            f"idle {idle_rate['kafka_messages']:.1f} messages/s"
        )


def print_backlog(rows: list[dict[str, Any]]) -> None:
    """Time per task, and every process' peak memory, for each size of burst."""
    if not rows:
        return
    sizes = "".join(f"{row['tasks']:>10}" for row in rows)
    click.echo(f"\ntaskflow, bursts of growing size:{sizes}")
    click.echo(f"  {'ms per task':31}" + "".join(f"{r['ms_per_task']:10.1f}" for r in rows))
    click.echo(f"  {'CPU ms per task':31}" + "".join(f"{r['cpu_ms_per_task']:10.1f}" for r in rows))
    others = "".join(f"{r['others_busy_cores']:10.2f}" for r in rows)
    click.echo(f"  {'cores busy outside the system':31}{others}")
    click.echo(
        f"  {'all submitted after (s)':31}" + "".join(f"{r['submit_seconds']:10.0f}" for r in rows)
    )
    click.echo("  CPU ms per task")
    for process in rows[-1]["cpu_ms_per_task_by_process"]:
        cpu = "".join(f"{row['cpu_ms_per_task_by_process'][process]:10.2f}" for row in rows)
        click.echo(f"    {process:29}{cpu}")
    click.echo("  peak RSS (MB)")
    for process in rows[-1]["rss_peak_mb"]:
        peaks = "".join(f"{row['rss_peak_mb'].get(process, 0.0):10.0f}" for row in rows)
        click.echo(f"    {process:29}{peaks}")


def component(process: str) -> str:
    """The bar a process adds to in the plot: workers, managers, agents... added up."""
    for prefix, group in (
        ("api", "API (gunicorn)"),
        ("task-manager", "task-managers"),
        ("scheduler", "schedulers"),
        ("agent", "agents"),
        ("pool process", "pool processes"),
        ("worker", "worker (main)"),
    ):
        if process.startswith(prefix):
            return group
    return process


def cpu_by_component(burst: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per 1000 tasks, by ``component``; the task processes apart."""
    groups: dict[str, float] = {}
    for process, cpu in burst["per_task"]["cpu"].items():
        if process.startswith("client"):
            continue
        key = component(process)
        groups[key] = groups.get(key, 0.0) + cpu["own"] * 1000
        if cpu["tasks"]:
            groups["task processes"] = groups.get("task processes", 0.0) + cpu["tasks"] * 1000
    return groups


def plot(results: dict[str, Any], path: Path) -> None:
    """Three panels: throughput, p50/p99, CPU per 1000 tasks by component."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tf, celery = results["taskflow"], results["celery"]
    colors = {"taskflow": "#3b6ea5", "Celery": "#5a9e4b"}
    fig, (speed, latency, cpu) = plt.subplots(
        1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [0.8, 1.2, 2]}, layout="constrained"
    )
    bars = speed.bar(
        list(colors),
        [tf["burst"]["tasks_per_s"], celery["burst"]["tasks_per_s"]],
        color=list(colors.values()),
    )
    speed.bar_label(bars, fmt="%.0f")
    speed.set_title(f"burst of {tf['burst']['tasks']} tasks")
    speed.set_ylabel("tasks/s (higher is better)")
    for offset, (name, seq) in zip(
        (-0.2, 0.2),
        (("taskflow", tf["sequential"]["API"]), ("Celery", celery["sequential"]["get()"])),
        strict=True,
    ):
        bars = latency.bar(
            [x + offset for x in (0, 1)],
            [seq["p50_ms"], seq["p99_ms"]],
            width=0.4,
            label=name,
            color=colors[name],
        )
        latency.bar_label(bars, fmt="%.0f")
    latency.set_xticks([0, 1], ["p50", "p99"])
    latency.set_ylabel("ms, submit to SUCCESS (lower is better)")
    latency.set_title("one task at a time")
    latency.legend()
    rows = [(f"taskflow: {k}", v, "taskflow") for k, v in cpu_by_component(tf["burst"]).items()]
    rows += [(f"Celery: {k}", v, "Celery") for k, v in cpu_by_component(celery["burst"]).items()]
    rows.sort(key=lambda row: (row[2] != "taskflow", -row[1]))
    bars = cpu.barh(
        [r[0] for r in rows][::-1],
        [r[1] for r in rows][::-1],
        color=[colors[r[2]] for r in rows][::-1],
    )
    cpu.bar_label(bars, fmt="%.1f", padding=2)
    cpu.set_xlabel("CPU seconds per 1000 tasks")
    cpu.set_title("CPU by component")
    fig.suptitle(
        f"taskflow phase 5 vs Celery {results['versions']['celery']} + Redis, "
        f"{results['machine']['cores']} cores, {results['date'][:10]}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def versions() -> dict[str, str]:
    import celery
    import kombu

    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    return {
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis-py": redis.__version__,
        "redis-server": server.stdout.split()[2].removeprefix("v="),
        "kafka": get_settings().kafka_version,
        "zookeeper": get_settings().zookeeper_version,
    }


# ------------------------------------------------------------------ main


def run_all(
    work: Path, count: int, clients: int, rounds: int, sizes: list[int], celery_fsync: Fsync
) -> dict[str, Any]:
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "settings": {
            "tasks": count,
            "clients": clients,
            "sequential": rounds,
            "taskflow_redis_appendfsync": "always",
            "celery_redis_appendfsync": celery_fsync.value,
            "sequential_poll_ms": SEQUENTIAL_POLL_SECONDS * 1000,
            "warm_up_tasks": WARM_UP,
        },
    }
    click.echo("spawn rates, 2 s each", err=True)
    with agent_settings():
        results["spawn_per_s"] = {"bare": spawn_rate(bare_spawn), "agent": spawn_rate(agent_spawn)}
    with ExitStack() as stack:
        click.echo("Celery: starting", err=True)
        results["celery"] = measure(start_celery(stack, work, celery_fsync), count, clients, rounds)
    with ExitStack() as stack:
        click.echo("taskflow: starting", err=True)
        taskflow = start_taskflow(stack, work / "taskflow")
        results["taskflow"] = measure(taskflow, count, clients, rounds)
        results["backlog"] = backlog(taskflow, sizes, clients)
    results["ratios"] = ratios(results["taskflow"], results["celery"], "API")
    results["machine"] = {
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    return results


@click.command()
@click.option("--tasks", "count", default=500, show_default=True, help="tasks in the burst")
@click.option("--clients", default=8, show_default=True, help="client threads of the burst")
@click.option("--sequential", "rounds", default=100, show_default=True, help="tasks in a row")
@click.option(
    "--backlog",
    "sizes",
    default="1000,10000",
    show_default=True,
    help="taskflow bursts of these sizes, comma-separated ('' for none)",
)
@click.option(
    "--celery-fsync",
    type=click.Choice([f.value for f in Fsync]),
    default=Fsync.EVERYSEC.value,
    show_default=True,
    help="appendfsync of Celery's Redis (taskflow's is always)",
)
@click.option(
    "--out",
    default=ROOT / "benchmarks" / "results",
    type=click.Path(path_type=Path),
    show_default=True,
    help="folder of versus_celery.json",
)
@click.option(
    "--plot",
    "plot_path",
    default=ROOT / "docs" / "img" / "versus_celery.png",
    type=click.Path(path_type=Path),
    show_default=True,
    help="the plot, a PNG",
)
def main(
    count: int,
    clients: int,
    rounds: int,
    sizes: str,
    celery_fsync: str,
    out: Path,
    plot_path: Path,
) -> None:
    backlog_sizes = [int(size) for size in sizes.split(",") if size.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        results = run_all(Path(folder), count, clients, rounds, backlog_sizes, Fsync(celery_fsync))
    machine = results["machine"]
    click.echo(
        f"\ntaskflow vs Celery on {machine['cores']} cores; load average before "
        f"{machine['loadavg_before'][0]:.2f}, after {machine['loadavg_after'][0]:.2f}"
    )
    print_headline(results)
    for name in ("taskflow", "celery"):
        burst = results[name]["burst"]
        click.echo(
            f"during {name}'s burst the machine was busy {burst['machine_busy_cores']:.2f} "
            f"cores, {burst['others_busy_cores']:.2f} of them outside the systems measured"
        )
    print_processes("taskflow", results["taskflow"])
    print_processes("Celery", results["celery"])
    print_backlog(results["backlog"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "versus_celery.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, plot_path)
    click.echo(f"\nwrote {out / 'versus_celery.json'} and {plot_path}")


if __name__ == "__main__":
    main()
