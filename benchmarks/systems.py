"""The two systems under test, started fresh and driven as their clients drive them.

``benchmarks/versus_celery.py`` measures whatever a ``System`` offers: its Redis, its
processes by name, a burst of tasks from many threads, one task at a time, and (for
taskflow) its Kafka topics. This module makes the two of them:

* **taskflow**: ``start_taskflow`` runs phase 5 in the shape of
  ``phase5_observability/processes.conf`` on servers of its own; ``Taskflow`` submits
  through the REST API and reads the end of a burst, and each task's stages, in Redis.
* **Celery**: ``start_celery`` runs one prefork worker on a Redis of its own;
  ``celery_burst`` and ``celery_one`` send ``.delay()`` and wait on ``.get()``.

What is measured, and how, is ``benchmarks/observing.py`` and ``benchmarks/measuring.py``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import click
import psutil
import redis
import requests
from kafka import KafkaConsumer

from devtools.infra.backends import local_server
from devtools.infra.ports import free_port
from devtools.isolation import private_kafka_env, private_zk_root
from devtools.procs import Processes, leader_of
from devtools.settings import Fsync
from devtools.stacks import PHASE5, admit, api_ready, gunicorn_args, seal
from devtools.tasks import api_session
from shared.core.ends import MAX_WAIT_SECONDS
from shared.core.states import TERMINAL, Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until

DONE_POLL_SECONDS = 0.01  # how often the end of a burst is looked for
SEQUENTIAL_POLL_SECONDS = 0.002  # how often a sequential task's hash is read (store)
# processes.conf's agents: each task in the full sandbox (as root; docs/security.md), with
# its limits and interpreter
AGENT_SANDBOX = {
    "AGENT_SANDBOX": "full" if os.geteuid() == 0 else "weak",
    "TASK_PYTHON": "/usr/bin/python3",
    "TASK_LIMIT_OPEN_FILES": "1024",
    "TASK_LIMIT_PROCESSES": "1024",
    "TASK_LIMIT_MEMORY_BYTES": "4294967296",
}
OFFSETS_TOPIC = "__consumer_offsets"  # Kafka's own: consumer groups' commits
TASK_BODY = {"name": "bench", "type": "SHELL", "content": "true"}


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


# --8<-- [start:taskflow]
def start_taskflow(stack: ExitStack, work: Path) -> System:
    """Phase 5 as ``processes.conf`` shapes it, on servers of its own, with tracing to a
    local Zipkin. DevSettings not named here keep their defaults, as under ``make
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
    seal(procs)  # the gRPC secret, as make phase5-up has it
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
            sequential={"API": self.one_through_api, "store": self.one_polling_store},
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
        failed = [i for i in ids if (t := self.store.get(i)) is None or t.status != Status.SUCCESS]
        self.looks += len(ids)
        if failed:
            raise click.ClickException(f"taskflow: {len(failed)} tasks did not succeed")

    # --8<-- [start:taskflow_sequential]
    def one_through_api(self) -> dict[str, float]:
        """One task: POST, then GET /api/v1/tasks/{id}?wait=10, which answers once it has
        ended (asked again should the 10 s run out), as Celery's ``get()`` waits."""
        submitted = time.time() * 1000
        task_id = self.submit()
        while (status := self.status_from_api(task_id, wait=MAX_WAIT_SECONDS)) not in TERMINAL:
            pass
        assert status == Status.SUCCESS, status
        return self.stages(task_id, submitted, time.time() * 1000)

    def one_polling_store(self) -> dict[str, float]:
        """One task: POST, then read its hash in Redis every 2 ms until it has ended."""
        submitted = time.time() * 1000
        task_id = self.submit()
        while (task := self.store.get(task_id)) is None or task.status not in TERMINAL:
            time.sleep(SEQUENTIAL_POLL_SECONDS)
        assert task.status == Status.SUCCESS, task.status
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

    def status_from_api(self, task_id: str, wait: float) -> str:
        url = f"{self.url}/api/v1/tasks/{task_id}"
        reply = self.session.get(url, params={"wait": wait}, timeout=wait + 30)
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
