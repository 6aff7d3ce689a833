"""Every setting of every process, in one place.

Each field is read from the environment variable of the same name in upper case
(``redis_url`` <- ``REDIS_URL``); the default written here applies when the variable
is unset. A value that does not parse (``TASK_MAX_TIMEOUT=ten``) stops the process at
start-up with a message naming the variable, instead of failing later mid-task.

Secrets are better kept out of process environments (``ps e``, crash reports, children):
``SECRETS_DIR`` names a folder holding one file per field, named after it (``redis_url``,
``zk_auth``, ``kafka_sasl_password``), each holding the value. An environment variable
still wins over a file.

The docs page "Configuration" lists these fields; keep the descriptions short and true.
"""

from __future__ import annotations

import os
import socket
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Not TASKFLOW_*: the agent passes those on to tasks (shared/execution/sandbox.py).
SECRETS_DIR = "SECRETS_DIR"


class SecretsDirMissing(ValueError):
    """``SECRETS_DIR`` names a folder that is not there: no credentials, so no start."""


def secrets_dir() -> Path | None:
    """The folder ``SECRETS_DIR`` names, or None when it is unset or empty."""
    value = os.environ.get(SECRETS_DIR, "")
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise SecretsDirMissing(
            f"{SECRETS_DIR}={value} is not a folder: create the credentials first "
            "(make phase5-up does, with python -m devtools.credentials), "
            f"or unset {SECRETS_DIR}"
        )
    return path


def _default_process_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_process_name() -> str:
    """``phase4_api.agent-1234``: the module run with ``python -m``, and the pid."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = spec.name if spec is not None else Path(sys.argv[0]).stem
    return f"{program}-{os.getpid()}"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class SaslMechanism(StrEnum):
    """How a Kafka client proves its password (SCRAM: the password never crosses the wire)."""

    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class SandboxMode(StrEnum):
    """How much of the task sandbox an agent insists on (docs/security.md, "The task sandbox")."""

    OFF = "off"  # phases 1 to 4: AGENT_RUN_AS and TASK_LIMIT_* only
    FULL = "full"  # phase 5: every part, or the agent does not start
    WEAK = "weak"  # every part this machine can give; the log names those it cannot


class TaskNetwork(StrEnum):
    """The network a sandboxed task sees."""

    NONE = "none"  # a namespace of its own with only a loopback: no server, no host port
    HOST = "host"  # the host's: every port the host reaches, 127.0.0.1 included


class Section(BaseModel):
    """A part of the settings: the fields one kind of component reads."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)


class ProcessSettings(Section):
    """Every process: how it logs, where it keeps its files."""

    log_level: str = Field("INFO", description="logging level of every process")
    log_format: LogFormat = Field(LogFormat.TEXT, description="text (readable) or json")
    process_name: str = Field(
        default_factory=_default_process_name, description="`process` in JSON log lines"
    )
    run_dir: Path = Field(PROJECT_ROOT / "run", description="pid files, logs and server data")


class RedisSettings(Section):
    """Where Redis is (phase 1 on). Its user and password ride in the URL."""

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for tasks and queues; redis://user:password@host:port/db with ACLs",
    )


class ZooKeeperSettings(Section):
    """Where ZooKeeper is, and how long a silent peer lives (phase 2 on)."""

    zk_hosts: str = Field("127.0.0.1:2181", description="ZooKeeper connection string")
    # '' leaves a server open, as in phases 1 to 4 (docs/security.md). Best kept in
    # SECRETS_DIR files, not in the environment.
    zk_auth: str = Field(
        "", description="ZooKeeper digest 'user:password'; taskflow's znodes get its ACL"
    )
    zk_session_timeout: float = Field(
        10.0, ge=1, description="seconds before a silent peer is dead"
    )

    @field_validator("zk_auth")
    @classmethod
    def _user_and_password(cls, value: str) -> str:
        user, colon, password = value.partition(":")
        if value and not (user and colon and password):
            raise ValueError("must be 'user:password' (or '' for none)")
        return value

    @property
    def fence_seconds(self) -> float:
        """An agent cut off from ZooKeeper this long kills its tasks: its session may be
        about to expire, and then the leader gives them to another agent."""
        return self.zk_session_timeout / 3


class KafkaSettings(Section):
    """Where Kafka is, how clients talk to it, and its topics (phase 3 on)."""

    # Topics are created by shared/messaging/topics.py (the broker creates none itself).
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    # '' for no SASL, as in phases 1 to 4 (docs/security.md).
    kafka_sasl_username: str = Field("", description="Kafka SASL user; '' for no SASL")
    kafka_sasl_password: str = Field("", description="that user's password")
    kafka_sasl_mechanism: SaslMechanism = Field(
        SaslMechanism.SCRAM_SHA_256, description="SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_linger_ms: int = Field(0, ge=0, description="producer batching delay")
    kafka_poll_ms: int = Field(500, gt=0, description="consumer poll timeout; bounds SIGTERM delay")
    kafka_commit_ms: int = Field(
        200, ge=0, description="offsets committed at most this often; a crash redelivers more"
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=6000, description="a silent group member is replaced after this"
    )
    dispatch_topic: str = Field("task-dispatch-topic", description="scheduler -> agents")
    status_topic: str = Field("task-status-update-topic", description="agents -> task-manager")
    heartbeat_topic: str = Field("agent-heartbeat-topic", description="agents' heartbeats")
    dead_letter_topic: str = Field("task-dead-letter-topic", description="malformed messages")
    control_topic: str = Field("task-control-topic", description="cancels, to one agent (phase 4)")
    dispatch_partitions: int = Field(16, gt=0, description="dispatch partitions = most agents")
    topic_partitions: int = Field(3, gt=0, description="partitions of each task topic")
    topic_replication: int = Field(1, gt=0, description="replicas of each topic (1: one broker)")
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, gt=0, description="task topic retention")
    heartbeat_retention_ms: int = Field(3600 * 1000, gt=0, description="heartbeat topic retention")

    @model_validator(mode="after")
    def _sasl_user_with_password(self) -> KafkaSettings:
        if bool(self.kafka_sasl_username) != bool(self.kafka_sasl_password):
            raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD go together")
        return self


# The task types phase 5's processes accept and run (TASK_TYPES, AGENT_TASK_TYPES).
PHASE5_TASK_TYPES = "SHELL,PYTHON,HTTP"


class TaskSettings(Section):
    """What a task may ask for, and how its end is kept (every phase)."""

    task_default_timeout: float = Field(60.0, gt=0, description="seconds, when a task gives none")
    task_max_timeout: float = Field(86_400.0, gt=0, description="largest timeout a task may ask")
    # /bin/sh -c takes the content as one argument, which Linux caps at 128 KiB
    task_max_content_bytes: int = Field(64 * 1024, gt=0, description="largest task content")
    task_output_limit: int = Field(64 * 1024, gt=0, description="stdout/stderr bytes kept")
    task_kill_grace: float = Field(2.0, ge=0, description="seconds from SIGTERM to SIGKILL")
    task_types: str = Field(
        "SHELL,PYTHON", description="types a submit may ask for; phase 5's processes: + HTTP"
    )

    @field_validator("task_types")
    @classmethod
    def _type_names(cls, value: str) -> str:
        if not all(name.strip() for name in value.split(",")):
            raise ValueError("must be type names, ',' between them (SHELL,PYTHON)")
        return value


class AgentSettings(Section):
    """An agent: who it is, how much it runs, as whom (phase 1 on; heartbeats phase 3,
    prefetch phase 5)."""

    agent_id: str = Field(default_factory=_default_process_id, description="this agent's id")
    queue_poll_seconds: float = Field(1.0, gt=0, description="BRPOP timeout; bounds SIGTERM delay")
    agent_capacity: int = Field(2, gt=0, description="tasks one agent runs at the same time")
    agent_task_types: str = Field("SHELL,PYTHON", description="task types this agent runs")
    agent_run_as: str = Field("", description="user tasks run as ('' = the agent's); needs root")
    agent_task_env: str = Field("", description="agent variables passed to tasks, by name")
    task_python: str = Field("", description="interpreter of PYTHON tasks ('' = the agent's)")
    task_limit_cpu_seconds: int = Field(0, ge=0, description="a task's CPU seconds; 0: none")
    task_limit_memory_bytes: int = Field(0, ge=0, description="a task's address space; 0: none")
    task_limit_open_files: int = Field(0, ge=0, description="a task's open files; 0: none")
    task_limit_processes: int = Field(0, ge=0, description="processes of the task user; 0: none")
    heartbeat_seconds: float = Field(3.0, gt=0, description="agent heartbeat interval")
    running_report_ms: int = Field(
        50, ge=0, description="a task reports RUNNING once it ran this long (0: at once)"
    )
    agent_prefetch: int = Field(
        2, ge=1, description="phase 5: tasks an agent holds per slot at most, running or queued"
    )
    # docs/security.md, "HTTP tasks"
    agent_http_allow: str = Field(
        "", description="host:port HTTP tasks may reach (port may be *), ',' between; '' none"
    )
    agent_http_refused_ports: str = Field(
        "8000,9090,9411",
        description="ports HTTP tasks never reach on taskflow's hosts: API, Prometheus, Zipkin",
    )

    @field_validator("agent_http_allow")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            host, _, port = item.rpartition(":")
            if item and not (host and (port == "*" or _a_port(port))):
                raise ValueError(f"{item!r} is not host:port (the port a number or *)")
        return value

    @field_validator("agent_http_refused_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        if not all(_a_port(port.strip()) for port in value.split(",") if port.strip()):
            raise ValueError("must be port numbers, ',' between them")
        return value


def _a_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < int(text) < 65536


class SandboxSettings(Section):
    """The task sandbox (phase 5; docs/security.md, "The task sandbox")."""

    agent_sandbox: SandboxMode = Field(
        SandboxMode.OFF, description="off, full (or no start) or weak; phase 5's agent: full"
    )
    task_network: TaskNetwork = Field(
        TaskNetwork.NONE, description="none (a loopback only) or host (the host's network)"
    )
    task_writable_paths: str = Field(
        "", description="host folders bound read-write into every task, ':' between them"
    )
    task_uids: str = Field(
        "1900000000-1900000999", description="uids of running tasks, 'first-last', no user's"
    )
    task_uid_locks: Path = Field(
        Path("/run/taskflow/task-uids"), description="a lock per uid, shared by a host's agents"
    )
    task_tmp_bytes: int = Field(
        128 * 2**20, gt=0, description="size of a task's private /tmp, and of its /dev/shm"
    )
    task_file_bytes: int = Field(
        1 * 2**30, gt=0, description="largest file a sandboxed task may write (RLIMIT_FSIZE)"
    )
    task_memory_bytes: int = Field(
        1 * 2**30, gt=0, description="memory of a task's cgroup, its /tmp included"
    )
    task_processes: int = Field(256, gt=0, description="processes of a task's cgroup")
    task_cpus: float = Field(1.0, gt=0, description="CPUs a task's cgroup may use at once")
    task_cgroup_parent: str = Field(
        "taskflow", description="cgroup under which each task uid has its own"
    )


class SchedulerSettings(Section):
    """The schedulers and their leader (phase 2 on; batches and the watchdog phase 5)."""

    scheduler_id: str = Field(
        default_factory=_default_process_id, description="this scheduler's id"
    )
    scheduler_strategy: str = Field("random", description="random, round-robin or least-load")
    reconcile_seconds: float = Field(5.0, gt=0, description="leader re-checks dead agents' tasks")
    agent_suspect_seconds: float = Field(10.0, gt=0, description="silent this long: no new tasks")
    dispatch_batch: int = Field(
        64, gt=0, description="tasks the phase 5 leader places per turn, published together"
    )
    watchdog_grace_seconds: float = Field(
        30.0, gt=0, description="past timeout + kill grace + this, a silent agent's task is lost"
    )
    schedule_misfire_seconds: float = Field(
        2.0, ge=0, description="a schedule's tick later than this is missed: its catchup decides"
    )


class RetrySettings(Section):
    """Retries with backoff (phase 5)."""

    retry_base_seconds: float = Field(1.0, gt=0, description="bound of a first retry's wait")
    retry_factor: float = Field(2.0, ge=1, description="each retry multiplies the bound by this")
    retry_cap_seconds: float = Field(300.0, gt=0, description="largest backoff bound")


class ManagerSettings(Section):
    """The task-manager: its consumer group (phase 3), its gRPC service (phase 4), the
    secret every call carries (phase 5)."""

    manager_group: str = Field("task-manager", description="the task-managers' consumer group")
    grpc_host: str = Field("127.0.0.1", description="address the task-manager's gRPC binds")
    grpc_port: int = Field(0, ge=0, lt=65536, description="its port; 0 picks a free one")
    grpc_workers: int = Field(8, gt=0, description="threads serving gRPC calls")
    grpc_waits: int = Field(
        32, ge=0, description="waits for a task's end (Wait) a task-manager holds at once"
    )
    grpc_deadline: float = Field(
        5.0, gt=0, description="seconds every API -> manager call may take"
    )
    # '' leaves the task-managers' gRPC open, as in phase 4. make phase5-up keeps it in
    # SECRETS_DIR/grpc_secret; the API sends it with every call.
    grpc_secret: str = Field(
        "", description="the secret every gRPC call to a task-manager carries; '' for none"
    )

    @field_validator("grpc_secret")
    @classmethod
    def _metadata_safe(cls, value: str) -> str:
        """gRPC metadata carries printable ASCII only; a space would split the header."""
        if not all("!" <= char <= "~" for char in value):
            raise ValueError("must be printable ASCII without spaces")
        return value


class ApiSettings(Section):
    """The REST API (phase 4); its tokens, audit, rate limits and waits (phase 5)."""

    api_page_limit: int = Field(50, gt=0, le=200, description="tasks per page by default")
    api_tokens_file: Path | None = Field(
        None, description="tokens configured by hand: '<name> <role> sha256:<hex>' a line"
    )
    audit_max_entries: int = Field(
        100_000, gt=0, description="entries the audit stream keeps (the oldest go first)"
    )
    audit_topic: str = Field(
        "api-audit-topic", description="Kafka topic with every audit entry, appended; '' for none"
    )
    audit_retention_ms: int = Field(
        90 * 24 * 3600 * 1000, gt=0, description="how long the audit topic keeps an entry"
    )
    # Counted in Redis, shared by every API worker; high enough for make bench, make chaos
    # and the tests, from one address. 0: no limit.
    api_rate_window_seconds: int = Field(
        10, gt=0, description="window of the per-token and per-address limits"
    )
    api_rate_per_token: int = Field(
        10_000, ge=0, description="requests one token may make per window; then 429"
    )
    api_rate_per_address: int = Field(
        20_000, ge=0, description="authenticated requests one address may make per window"
    )
    api_rate_anonymous: int = Field(
        300, ge=0, description="requests without a valid token per address and anonymous window"
    )
    api_rate_anonymous_window: int = Field(
        60, gt=0, description="seconds; also one log line per address and window about them"
    )
    api_waits: int = Field(
        16, ge=0, description="?wait= requests one API worker holds at once; more: 429"
    )


class TracingSettings(Section):
    """Metrics and traces (phase 5)."""

    # One address, announced to Prometheus as it is: loopback on one machine, the pod's
    # address in Kubernetes (the downward API's status.podIP). METRICS_HOST, its old name,
    # still works. Never every interface: tasks in the host's network would reach it.
    metrics_bind: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("metrics_bind", "metrics_host"),
        description="address every metrics endpoint binds and announces",
    )
    metrics_port: int = Field(0, ge=0, lt=65536, description="its port; 0 picks a free one")
    zipkin_endpoint: str = Field(
        "", description="Zipkin's span API (http://host:9411/api/v2/spans); '' for none"
    )
    otel_exporter_otlp_endpoint: str = Field(
        "", description="an OTLP/HTTP collector (http://host:4318); '' for none"
    )
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="share of requests whose trace is kept"
    )

    @field_validator("metrics_bind")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if value.strip("[]") in ("", "0.0.0.0", "::", "*"):
            raise ValueError(
                "must name one address (127.0.0.1 on one machine, the pod's in Kubernetes), "
                "not every interface"
            )
        return value


class Settings(
    ProcessSettings,
    RedisSettings,
    ZooKeeperSettings,
    KafkaSettings,
    TaskSettings,
    AgentSettings,
    SandboxSettings,
    SchedulerSettings,
    RetrySettings,
    ManagerSettings,
    ApiSettings,
    TracingSettings,
    BaseSettings,
):
    """Every section, read from the environment (and ``SECRETS_DIR``) in one place.

    A component asks for the section it reads (``KafkaSettings``, ``AgentSettings``, ...)
    in its signature; a process reads ``Settings()`` once in ``main`` and hands it, or a
    section of it, to each component. ``Settings`` is every section at once, so it can be
    given wherever one is asked for.
    """

    # An error names the variable but never quotes its value, which may be a secret.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the files of ``SECRETS_DIR``, read now
        (not at import), so a process started with the variable set finds its folder."""
        files = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir())
        return init_settings, env_settings, dotenv_settings, files

    @property
    def failover_delay(self) -> float:
        """Seconds the leader waits, after an agent's session ended, before its tasks run
        elsewhere: long enough for that agent's fence to have killed them."""
        return self.fence_seconds + self.task_kill_grace + 1.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
