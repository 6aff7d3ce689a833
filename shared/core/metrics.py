"""Every Prometheus metric of the system, declared once.

The code that sees an event counts it here in every phase; only phase 5 serves the
numbers (``shared/observability/exposition.py``), so earlier phases pay a microsecond
or two per event and expose nothing. Names follow Prometheus' conventions:
``taskflow_`` prefix, ``_total`` counters, ``_seconds`` in base units, and labels with a
small, fixed set of values (a status, a type, a route: never a task id).

Each process exports only the metrics it moves; a dashboard sums them across processes
(``sum by (status) (rate(taskflow_tasks_finished_total[5m]))``). A metric with labels
has no series until its first use; the scheduler's metrics have none, so they stay out
of the default registry (``registry=None``) until a scheduler registers them: an agent
does not report ``taskflow_scheduler_is_leader 0``.
"""

from __future__ import annotations

from contextlib import suppress

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

# Run times of shell tasks: from milliseconds to the hour.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Waits and round trips inside the system: from a millisecond to a minute.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)

# --8<-- [start:metrics]
# --- tasks (task-manager) ---
TASKS_SUBMITTED = Counter("taskflow_tasks_submitted_total", "Tasks created by a submit", ["type"])
TASKS_FINISHED = Counter(
    "taskflow_tasks_finished_total",
    "Attempts that ended, by final status (SUCCESS, FAILED, CANCELLED)",
    ["type", "status"],
)
TASK_RUN = Histogram(
    "taskflow_task_run_seconds",
    "Run time of an attempt on its agent, start to end",
    ["type", "status"],
    buckets=RUN_BUCKETS,
)
TASK_START_LATENCY = Histogram(
    "taskflow_task_start_latency_seconds",
    "Submit to start: how long a task waited before an agent ran it",
    ["type"],
    buckets=FAST_BUCKETS,
)
TASK_LATENCY = Histogram(
    "taskflow_task_latency_seconds",
    "Submit to end: what a client waits for a result",
    ["type", "status"],
    buckets=RUN_BUCKETS,
)
TASK_RETRIES = Counter(
    "taskflow_task_retries_total",
    "Failed attempts that will run again after a backoff (maxRetries not spent)",
    ["type"],
)
STATUS_UPDATES = Counter(
    "taskflow_status_updates_total",
    "Agents' status reports, by what the store did (ok, stale, forbidden, ...)",
    ["result"],
)

# --- agents ---
AGENT_RUNNING = Gauge("taskflow_agent_tasks_running", "Tasks this agent runs now", ["agent"])
AGENT_CAPACITY = Gauge(
    "taskflow_agent_capacity", "Tasks this agent may run at the same time", ["agent"]
)

# --- scheduler (exported by schedulers only: see SCHEDULER_METRICS) ---
AGENTS_LIVE = Gauge(
    "taskflow_agents_live", "Agents registered in ZooKeeper, as a scheduler sees", registry=None
)
IS_LEADER = Gauge(
    "taskflow_scheduler_is_leader", "1 on the scheduler that leads, 0 elsewhere", registry=None
)
LEADER_CHANGES = Counter(
    "taskflow_scheduler_leader_changes_total",
    "Terms this scheduler started as leader",
    registry=None,
)
PENDING = Gauge(
    "taskflow_pending_tasks", "Entries waiting in queue:pending for the leader", registry=None
)
OVERDUE = Gauge(
    "taskflow_tasks_overdue",
    "Tasks held by agents for longer than their timeout allows (seen by the leader)",
    registry=None,
)
DISPATCH = Histogram(
    "taskflow_dispatch_seconds",
    "Placing one pending entry: choose an agent, write Redis, publish to Kafka",
    buckets=FAST_BUCKETS,
    registry=None,
)
PLACEMENTS = Counter(
    "taskflow_placements_total", "Pending entries the leader handled, by outcome", ["placement"]
)
SCHEDULE_TICKS = Counter(
    "taskflow_schedule_ticks_total",
    "Schedule ticks handled, by outcome (STARTED, SKIPPED_OVERLAP, MISSED, ...)",
    ["outcome"],
)
SCHEDULE_FIRE_DELAY = Histogram(
    "taskflow_schedule_fire_delay_seconds",
    "How late a schedule's task was made: fired - nominal tick",
    buckets=FAST_BUCKETS,
    registry=None,
)
SCHEDULER_METRICS = (
    *(AGENTS_LIVE, IS_LEADER, LEADER_CHANGES, PENDING, OVERDUE, DISPATCH),
    SCHEDULE_FIRE_DELAY,
)


def register_scheduler_metrics() -> None:
    """Export the scheduler's metrics from this process (once; a second call does nothing)."""
    for metric in SCHEDULER_METRICS:
        with suppress(ValueError):  # registered already
            REGISTRY.register(metric)


# --- messaging ---
DEAD_LETTERS = Counter(
    "taskflow_dead_letters_total", "Messages set aside as unreadable, by source", ["source"]
)
CONSUMER_LAG = Gauge(
    "taskflow_kafka_consumer_lag",
    "Messages on the broker this consumer has not read yet",
    ["group", "topic"],
)

# --- API and gRPC ---
API_REQUESTS = Counter(
    "taskflow_api_requests_total", "REST requests", ["route", "method", "status"]
)
API_LATENCY = Histogram(
    "taskflow_api_request_seconds", "REST request time", ["route", "method"], buckets=FAST_BUCKETS
)
API_UNAUTHENTICATED = Counter(
    "taskflow_api_unauthenticated_total",
    "REST requests refused before authentication (phase 5): counted here, not audited",
    ["reason"],  # missing (no token), invalid (unknown or revoked)
)
API_RATE_LIMITED = Counter(
    "taskflow_api_rate_limited_total",
    "REST requests answered 429, by the limit they passed (phase 5)",
    ["limit"],  # anonymous, token, address, waits
)
GRPC_CALLS = Counter(
    "taskflow_grpc_calls_total", "gRPC calls the task-manager served", ["method", "code"]
)
GRPC_LATENCY = Histogram(
    "taskflow_grpc_call_seconds",
    "gRPC call time in the task-manager",
    ["method"],
    buckets=FAST_BUCKETS,
)
# --8<-- [end:metrics]
