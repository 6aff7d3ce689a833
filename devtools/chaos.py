"""``make chaos``: faults against the whole phase 5 system, and a report of what survived.

    .venv/bin/python -m devtools.chaos [--tasks 2000] [--seconds 120]

A private system (Redis with ``appendfsync always``, ZooKeeper, Kafka on free ports; 2
schedulers, 3 agents, 2 task-managers and the API) takes ``--tasks`` tasks at a steady
rate through the REST API, from clients that retry with a ``requestId`` as a careful
client does: at once when the connection failed or broke (``api_session`` in
``devtools/tasks.py``), 0.5 s later when the answer was an error.
Meanwhile, at fixed moments: ``kill -9`` of a busy agent, of the leader and of a
task-manager (each started again 3 s later, as supervisord would) and of one API worker
(gunicorn's master starts another), a restart of Kafka, of ZooKeeper and of Redis, and an
agent frozen with SIGSTOP.

A schedule (``every: 1``, ``catchup: ALL``, ``overlap: ALLOW``) made in Redis as the
run starts, and paused once the submits stop and it has caught up, starts a task of the
same kind each second through all of it.

Each task appends ``<taskId> <attempt> <agent>`` to a file when its work is done, so
work done twice is counted from the work itself, not from what the system says. The
report: tasks accepted and how they ended, tasks stuck, work done twice (and how many of
those ran first on an agent that was killed or frozen), client requests that failed (after
the session's own repeats), the time from each fault to the next task that completes, and
which processes still run. For the schedule: the nominal ticks of its window, how many
its ticks log holds exactly once (and any twice or missing), their outcomes, the tasks
per STARTED tick, and the scheduled work done twice.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import click
import psutil
import redis
import requests

from devtools.infra.backends import private_settings
from devtools.infra.catalog import SERVICES
from devtools.infra.launcher import Launcher
from devtools.infra.ports import free_port
from devtools.procs import Proc, Processes, leader_of
from devtools.settings import Fsync
from devtools.stacks import PHASE5, admit, api_ready, gunicorn_args, seal
from devtools.tasks import api_session
from shared.core.states import TERMINAL
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.core.task import now_ms
from shared.core.waiting import wait_until
from shared.messaging.topics import ensure_topics
from shared.schedules.spec import ScheduleFields, TickOutcome
from shared.schedules.store import TICKS_KEPT, ScheduleStore

RESTART_AFTER = 3.0  # seconds from a kill -9 to the process' new start
CLIENTS = 8
PATIENCE = 15.0  # seconds a client tries one submit (0.5 s apart), plus any outage
SETTLE = 300.0  # seconds for every accepted task to end after the last submit
CAUGHT_UP = 30.0  # seconds for the schedule to handle every tick of its window


@dataclass
class Outcome:
    """What the clients saw."""

    accepted: dict[int, str] = field(default_factory=dict)  # task number -> taskId
    failed_requests: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class System:
    """The system under test: servers from the launcher, processes restarted like supervisord."""

    def __init__(self, workdir: Path) -> None:
        self.settings = private_settings(workdir / "servers").model_copy(
            update={"redis_appendfsync": Fsync.ALWAYS}
        )
        self.launcher = Launcher(self.settings, say=lambda line: click.echo(f"  {line}"))
        self.servers = {
            name: SERVICES[name](self.settings) for name in ("redis", "zookeeper", "kafka")
        }
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.workdir = workdir
        # The tasks run in phase 5's sandbox, each as a uid of its own: this folder is bound
        # into them (TASK_WRITABLE_PATHS), the file open to all of them.
        self.done_file = workdir / "tasks" / "done.txt"
        self.procs: Processes | None = None
        self.current: dict[str, Proc] = {}
        self.victims: set[str] = set()  # agents killed or frozen
        self.stopping = threading.Event()  # no restart, no fault once the run is over
        self.programs: dict[str, tuple[str, list[str], dict[str, str]]] = {}
        self.restarting: set[str] = set()  # down on purpose or after a crash, back soon
        self.crashes: list[str] = []  # "<name> exited <code>", restarted as supervisord does

    def start(self) -> None:
        for service in self.servers.values():
            self.launcher.start(service)
        env = {
            "REDIS_URL": self.servers["redis"].endpoint,
            "ZK_HOSTS": self.servers["zookeeper"].endpoint,
            "KAFKA_BOOTSTRAP_SERVERS": self.servers["kafka"].endpoint,
            "ZK_SESSION_TIMEOUT": "6",
            "QUEUE_POLL_SECONDS": "0.2",
            "RECONCILE_SECONDS": "2",
            "LOG_FORMAT": "json",
        }
        ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], settings=self.settings)
        self.done_file.parent.mkdir(mode=0o755)
        self.done_file.touch(mode=0o666)
        self.done_file.chmod(0o666)
        env["TASK_WRITABLE_PATHS"] = str(self.done_file.parent)
        self.procs = Processes(env, self.workdir)
        seal(self.procs)  # the task-managers answer the API's calls, with the secret, only
        for n in (1, 2):
            self.add(f"scheduler-{n}", PHASE5["scheduler"], SCHEDULER_ID=f"scheduler-{n}")
            self.add(f"task-manager-{n}", PHASE5["manager"])
        for n in (1, 2, 3):
            self.add(f"agent-{n}", PHASE5["agent"], AGENT_ID=f"agent-{n}", AGENT_CAPACITY="4")
        admit(self.procs)  # the API starts only with a token; chaos' clients send it
        self.add("api", "gunicorn", *gunicorn_args(PHASE5, self.api_port))
        if not wait_until(lambda: api_ready(self.url, agents=3), 90):
            raise click.ClickException(f"the system did not start; logs in {self.workdir}")
        threading.Thread(target=self.restart_crashed, name="supervise", daemon=True).start()

    def add(self, name: str, module: str, *args: str, **env: str) -> None:
        self.programs[name] = (module, list(args), env)
        self.run(name)

    def run(self, name: str) -> None:
        if self.stopping.is_set():
            return
        assert self.procs is not None
        module, args, env = self.programs[name]
        self.current[name] = self.procs.start(name, module, *args, PROCESS_NAME=name, **env)
        self.restarting.discard(name)

    def restart_crashed(self) -> None:
        """supervisord's ``autorestart = unexpected``: a process that exits with a code
        other than 0 on its own (a task-manager that could not reach Kafka as it started,
        say) starts again, ``RESTART_AFTER`` later. The report names each one."""
        while not self.stopping.wait(0.5):
            for name, proc in list(self.current.items()):
                code = proc.process.poll()
                if code in (None, 0) or name in self.restarting:
                    continue
                self.crashes.append(f"{name} exited {code}")
                self.restarting.add(name)
                later(RESTART_AFTER, self.run, name)

    # --- faults -------------------------------------------------------------------------

    def kill(self, name: str) -> str:
        """kill -9, and a new start 3 s later."""
        if name.startswith("agent"):
            self.victims.add(name)
        self.restarting.add(name)
        self.current[name].kill()
        later(RESTART_AFTER, self.run, name)
        return name

    def kill_api_worker(self) -> str:
        """kill -9 of one gunicorn worker, not the master: the master starts another at
        once, and the other workers go on serving meanwhile."""
        master = psutil.Process(self.current["api"].process.pid)
        workers = master.children()
        if not workers:
            raise RuntimeError("the API's master has no worker")
        workers[0].send_signal(signal.SIGKILL)
        return f"api worker {workers[0].pid}"

    def kill_leader(self) -> str:
        schedulers = [self.current[f"scheduler-{n}"] for n in (1, 2)]
        leader = leader_of(schedulers)
        return self.kill(leader.name if leader else "scheduler-1")

    def restart_server(self, name: str, down: float = 0.0) -> str:
        service = self.servers[name]
        self.launcher.stop(service)
        time.sleep(down)  # the outage itself is the point here
        self.launcher.start(service)
        return f"{name} down {down:g}s"

    def freeze(self, name: str, seconds: float) -> str:
        self.victims.add(name)
        pid = self.current[name].process.pid
        os.kill(pid, signal.SIGSTOP)
        later(seconds, os.kill, pid, signal.SIGCONT)
        return f"{name} frozen {seconds:g}s"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.servers["redis"].endpoint, decode_responses=True)

    def stop(self) -> None:
        self.stopping.set()
        if self.procs is not None:
            self.procs.close()
        for service in reversed(list(self.servers.values())):
            self.launcher.stop(service)


def later(seconds: float, act: Callable[..., object], *args: object) -> None:
    """``act(*args)`` in ``seconds``, on a thread that does not keep the process alive."""
    timer = threading.Timer(seconds, act, args=args)
    timer.daemon = True
    timer.start()


def faults(
    system: System, seconds: float, outage: float | None = None
) -> list[tuple[float, str, Callable[[], str]]]:
    """(when, what, act): spread over the run like the 2-minute schedule they come from.

    ``outage`` keeps each server down that long; without it, Kafka and Redis restart at
    once and ZooKeeper stays down 5 s.
    """
    scale = seconds / 120
    kafka, zookeeper, redis_down = (0.0, 5.0, 0.0) if outage is None else (outage,) * 3
    plan: list[tuple[float, str, Callable[[], str]]] = [
        (8, "kill -9 an agent", lambda: system.kill("agent-1")),
        (18, "kill -9 the leader", system.kill_leader),
        (28, "kill -9 a task-manager", lambda: system.kill("task-manager-1")),
        (38, "kill -9 an API worker", system.kill_api_worker),
        (48, *outage_of(system, "kafka", kafka)),
        (63, *outage_of(system, "zookeeper", zookeeper)),
        (78, "freeze an agent for 8 s", lambda: system.freeze("agent-2", 8)),
        (95, *outage_of(system, "redis", redis_down)),
    ]
    return [(at * scale, what, act) for at, what, act in plan]


def outage_of(system: System, server: str, down: float) -> tuple[str, Callable[[], str]]:
    """The fault that stops ``server`` for ``down`` seconds (0: a restart), and its name."""
    what = f"stop {server} for {down:g} s" if down else f"restart {server}"
    return what, lambda: system.restart_server(server, down)


def work(system: System, name: str) -> dict[str, object]:
    """A task whose work appends ``<taskId> <attempt> <agent> <when>`` to the done file."""
    return {
        "name": name,
        "type": "SHELL",
        "content": 'sleep 0.2; echo "$TASKFLOW_TASK_ID $TASKFLOW_ATTEMPT $TASKFLOW_AGENT_ID'
        f' $(date +%s.%N)" >> {system.done_file}',
        "timeout": 30,
    }


def submit(
    system: System, outcome: Outcome, number: int, started: float, patience: float = PATIENCE
) -> None:
    """One task, tried until accepted (same requestId each time, so never twice)."""
    body = {**work(system, f"chaos-{number}"), "requestId": f"chaos-{number}"}
    with api_session() as session:
        for _ in range(int(patience / 0.5)):
            try:
                reply = session.post(f"{system.url}/api/v1/tasks", json=body, timeout=10)
                if reply.status_code in (200, 201):
                    with outcome.lock:
                        outcome.accepted[number] = reply.json()["taskId"]
                    return
                why = f"{reply.status_code} {reply.text[:80]}"
            except requests.RequestException as exc:
                why = type(exc).__name__
            with outcome.lock:
                outcome.failed_requests.append((time.monotonic() - started, why))
            time.sleep(0.5)


def done_lines(system: System) -> list[tuple[str, int, str, float]]:
    """(taskId, attempt, agent, when its work ended) from the tasks' own file."""
    if not system.done_file.exists():
        return []
    lines = []
    for line in system.done_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            lines.append((parts[0], int(parts[1]), parts[2], float(parts[3])))
    return lines


@dataclass
class Window:
    """The chaos schedule, and the stretch whose every tick must fire once."""

    schedule_id: str
    created: int  # UTC ms: its ticks come after this
    end: int = 0  # UTC ms: the submits stopped; ticks up to here are counted
    caught_up: bool = False  # its cursor reached ``end`` before it was paused

    def nominal(self) -> list[int]:
        return list(range((self.created // 1000 + 1) * 1000, self.end + 1, 1000))


def open_schedule(system: System) -> Window:
    """The schedule, made in Redis as an operator's POST would: every tick catches up."""
    body = {
        "name": "chaos-every-second",
        "every": 1,
        "catchup": "ALL",
        "catchupWindow": 3600,  # longer than any run and its settling
        "overlap": "ALLOW",
        "task": work(system, "chaos-tick"),
    }
    client = system.redis()
    schedules = ScheduleStore(client, phase5_store(client))
    created = now_ms()
    schedule = schedules.create(ScheduleFields.model_validate(body), "", created)
    return Window(schedule.schedule_id, created)


def close_schedule(system: System, window: Window) -> None:
    """End the window now: wait until every tick up to here is handled, then pause it
    (a pause drops the ticks not yet handled, so it must not come before)."""
    client = system.redis()
    schedules = ScheduleStore(client, phase5_store(client))
    window.end = now_ms()

    def caught_up() -> bool:
        try:
            schedule = schedules.get(window.schedule_id)
        except redis.RedisError:
            return False
        return schedule is not None and schedule.cursor >= window.end

    window.caught_up = bool(wait_until(caught_up, CAUGHT_UP, interval=0.2))
    schedules.set_paused(window.schedule_id, True, now_ms())


@dataclass
class ScheduleReport:
    """What the schedule did: each tick of its window logged once and STARTED, one task
    per STARTED tick, and its tasks' work done once (but where an agent was cut)."""

    nominal: int  # ticks in the window
    caught_up: bool
    once: int  # of those, the ones logged exactly once
    twice: list[float]  # ticks logged more than once (seconds into the window)
    missing: list[float]  # nominal ticks not logged
    outcomes: Counter[str]  # of the window's ticks
    latest: float  # seconds: the longest a tick of the window waited to be fired
    tasks_per_tick: Counter[int]  # tasks made -> STARTED ticks with that many (whole log)
    stray_tasks: int  # its tasks whose tick the log does not say STARTED
    statuses: Counter[str]  # how its tasks ended
    work_twice: int
    work_twice_with_cause: int


def schedule_ids(client: redis.Redis, window: Window) -> tuple[list[dict], list[str]]:
    """The schedule's ticks log, oldest first, and the ids of the tasks it made."""
    log = ScheduleStore(client, phase5_store(client)).ticks(window.schedule_id, TICKS_KEPT)
    made = phase5_store(client).list(schedule_id=window.schedule_id, limit=10 * TICKS_KEPT)[0]
    return log[::-1], [task.taskId for task in made]


def schedule_report(
    client: redis.Redis, window: Window, runs: dict[str, list[tuple[int, str]]], victims: set[str]
) -> ScheduleReport:
    log, made_ids = schedule_ids(client, window)
    tasks = phase5_store(client)
    made = [task for i in made_ids if (task := tasks.get(i)) is not None]
    nominal = window.nominal()
    logged = Counter(entry["tick"] for entry in log)
    started = {entry["tick"] for entry in log if entry["outcome"] == TickOutcome.STARTED}
    per_tick = Counter(task.tick for task in made)
    mine = set(made_ids)
    twice = {i: r for i, r in runs.items() if i in mine and len(r) > 1}
    into = [(tick - window.created) / 1000 for tick in nominal]
    inside = [e for e in log if window.created < e["tick"] <= window.end]
    return ScheduleReport(
        nominal=len(nominal),
        caught_up=window.caught_up,
        once=sum(1 for tick in nominal if logged[tick] == 1),
        twice=[at for tick, at in zip(nominal, into, strict=True) if logged[tick] > 1],
        missing=[at for tick, at in zip(nominal, into, strict=True) if not logged[tick]],
        outcomes=Counter(entry["outcome"] for entry in inside),
        latest=max((e["firedAt"] - e["tick"] for e in inside), default=0) / 1000,
        tasks_per_tick=Counter(per_tick[tick] for tick in started),
        stray_tasks=sum(n for tick, n in per_tick.items() if tick not in started),
        statuses=Counter(task.status.value for task in made),
        work_twice=len(twice),
        work_twice_with_cause=sum(1 for r in twice.values() if sorted(r)[0][1] in victims),
    )


def recovery(done_at: list[float], fault_at: float, window: float = 30.0) -> float:
    """The longest stretch without a task done after a fault, within ``window`` seconds
    (the whole window when nothing was done in it)."""
    inside = sorted(t for t in done_at if fault_at < t < fault_at + window)
    if not inside:
        return window
    return max(b - a for a, b in pairwise([fault_at, *inside]))


@dataclass
class Report:
    """What survived a run: the numbers ``make chaos`` prints and the short test checks."""

    accepted: int
    statuses: Counter[str]
    stuck: int
    twice: int  # tasks whose work was done more than once
    twice_with_cause: int  # of those, the ones first run on a killed or frozen agent
    victims: list[str]
    failed_after: Counter[str]  # failed client requests, by the fault before them
    recovery: list[tuple[str, float, str, float]]  # (fault, at, detail, longest gap)
    down: list[str]  # processes not running at the end
    crashes: list[str]  # processes that exited on their own, and were started again
    processes: int
    schedule: ScheduleReport | None  # None when Redis could not be read at the end

    @property
    def failed_requests(self) -> int:
        return sum(self.failed_after.values())

    def failed_outside(self, fault: str) -> int:
        """Failed client requests that came after another fault than ``fault``."""
        return sum(n for where, n in self.failed_after.items() if not where.startswith(fault))


@click.command()
@click.option("--tasks", "count", default=2000, show_default=True)
@click.option("--seconds", default=120.0, show_default=True, help="how long submitting lasts")
@click.option(
    "--outage",
    type=float,
    default=None,
    help="seconds Kafka, ZooKeeper and Redis each stay down (default: restarts, ZooKeeper 5 s)",
)
@click.option("--keep", type=click.Path(path_type=Path), help="keep logs and data in this folder")
def main(count: int, seconds: float, outage: float | None, keep: Path | None) -> None:
    if keep is not None and keep.exists() and any(keep.iterdir()):
        # its Redis would still hold an earlier run's tasks, answering this run's submits
        raise click.BadParameter(f"{keep} is not empty; name a new folder", param_hint="--keep")
    with tempfile.TemporaryDirectory(prefix="chaos-") as folder:
        workdir = keep or Path(folder)
        workdir.mkdir(parents=True, exist_ok=True)
        print_report(chaos(workdir, count, seconds, outage), seconds)


def chaos(workdir: Path, count: int, seconds: float, outage: float | None = None) -> Report:
    """Start a private system, run the faults while ``count`` tasks go in, and measure."""
    system = System(workdir)
    try:
        click.echo("starting the system")
        system.start()
        return measure(system, run(system, count, seconds, outage))
    finally:
        system.stop()


def run(
    system: System, count: int, seconds: float, outage: float | None = None
) -> tuple[Outcome, list, float, Window]:
    outcome = Outcome()
    window = open_schedule(system)
    started = time.monotonic()
    plan = faults(system, seconds, outage)
    # (run time when it began, wall clock when it was over, what, detail)
    happened: list[tuple[float, float, str, str]] = []

    def inject() -> None:
        for at, what, act in plan:
            if system.stopping.wait(max(0.0, started + at - time.monotonic())):
                return
            began = time.monotonic() - started
            try:
                detail = act()
            except Exception as exc:  # a fault that could not be made is reported, not fatal
                detail = f"failed: {exc}"
            happened.append((began, time.time(), what, detail))
            click.echo(f"  {began:6.1f}s  {what}: {detail}")

    injector = threading.Thread(target=inject, name="faults", daemon=True)
    injector.start()
    patience = PATIENCE + (outage or 0)  # a careful client outlasts the outage
    with ThreadPoolExecutor(CLIENTS) as clients:
        for number in range(count):
            time.sleep(max(0.0, started + number * seconds / count - time.monotonic()))
            clients.submit(submit, system, outcome, number, started, patience)
    close_schedule(system, window)
    injector.join()
    return outcome, happened, started, window


def measure(system: System, result: tuple[Outcome, list, float, Window]) -> Report:
    """Wait for every accepted and scheduled task to end (or ``SETTLE`` to pass), then count."""
    outcome, happened, started, window = result
    client = system.redis()
    store = TaskStore(client)
    ids = list(outcome.accepted.values())
    try:
        scheduled = schedule_ids(client, window)[1]
    except redis.RedisError:
        scheduled = []

    def ended() -> bool:
        try:
            return all(
                (t := store.get(i)) is not None and t.status in TERMINAL for i in ids + scheduled
            )
        except redis.RedisError:
            return False

    wait_until(ended, SETTLE, interval=2)
    try:
        statuses = Counter(t.status.value if (t := store.get(i)) else "MISSING" for i in ids)
    except redis.RedisError as exc:
        statuses = Counter({f"unknown (Redis: {exc})": len(ids)})
    lines = done_lines(system)
    runs: dict[str, list[tuple[int, str]]] = {}
    for task_id, attempt, agent, _ in lines:
        runs.setdefault(task_id, []).append((attempt, agent))
    accepted = set(ids)
    twice = {task_id: r for task_id, r in runs.items() if task_id in accepted and len(r) > 1}
    after = Counter(
        next((what for when, _, what, _ in reversed(happened) if when <= at), "no fault yet")
        + f" ({why.split()[0]})"
        for at, why in outcome.failed_requests
    )
    done_at = [when for task_id, *_, when in lines if task_id in accepted]
    try:
        schedule = schedule_report(client, window, runs, system.victims)
    except redis.RedisError:
        schedule = None
    alive = {name: proc.alive for name, proc in system.current.items()}
    return Report(
        accepted=len(ids),
        statuses=statuses,
        stuck=sum(n for status, n in statuses.items() if status not in TERMINAL),
        twice=len(twice),
        twice_with_cause=sum(1 for r in twice.values() if sorted(r)[0][1] in system.victims),
        victims=sorted(system.victims),
        failed_after=after,
        recovery=[
            (what, at, detail, recovery(done_at, wall)) for at, wall, what, detail in happened
        ],
        down=[name for name, running in alive.items() if not running],
        crashes=list(system.crashes),
        processes=len(alive),
        schedule=schedule,
    )


def print_report(report: Report, seconds: float) -> None:
    click.echo(f"\nchaos report: {report.accepted} of the tasks accepted in {seconds:g}s")
    click.echo(f"  final status:          {dict(report.statuses)}")
    click.echo(f"  stuck (not ended):     {report.stuck}")
    click.echo(
        f"  work done twice:       {report.twice} ({report.twice_with_cause} first ran on a"
        f" killed or frozen agent: {report.victims})"
    )
    click.echo(f"  failed client requests: {report.failed_requests}, after:")
    for where, count in report.failed_after.most_common():
        click.echo(f"      {where}: {count}")
    click.echo("  recovery (longest time without a task done, in the 30 s after each fault ended):")
    for what, at, detail, gap in report.recovery:
        click.echo(f"      {what:<26} at {at:6.1f}s ({detail}): {gap:5.1f}s")
    running = report.processes - len(report.down)
    click.echo(f"  processes running at the end: {running} of {report.processes} {report.down}")
    click.echo(f"  exited on their own, started again: {report.crashes or 'none'}")
    print_schedule(report.schedule)


def at(ticks: list[float]) -> str:
    """Where those ticks are, in seconds into the schedule's window ('' for none)."""
    return f" (at {', '.join(f'{t:g}s' for t in ticks[:10])})" if ticks else ""


def print_schedule(report: ScheduleReport | None) -> None:
    if report is None:
        click.echo("  schedule: not read (Redis did not answer)")
        return
    caught = "" if report.caught_up else " (it had not caught up when paused)"
    click.echo(f"  schedule (every 1 s): {report.nominal} nominal ticks in its window{caught}")
    click.echo(f"      logged exactly once: {report.once}")
    click.echo(f"      logged twice:        {len(report.twice)}{at(report.twice)}")
    click.echo(f"      missing:             {len(report.missing)}{at(report.missing)}")
    click.echo(f"      outcomes:            {dict(report.outcomes)}")
    click.echo(f"      latest fire:         {report.latest:.1f}s after its tick")
    click.echo(
        f"      tasks per STARTED tick: {dict(report.tasks_per_tick)}"
        f" (tasks of no STARTED tick: {report.stray_tasks})"
    )
    click.echo(f"      its tasks' status:   {dict(report.statuses)}")
    click.echo(
        f"      work done twice:     {report.work_twice} ({report.work_twice_with_cause}"
        " first ran on a killed or frozen agent)"
    )


if __name__ == "__main__":
    main()
