"""Starting a whole phase stack as processes, for tests and benchmarks."""

from __future__ import annotations

import os

import requests

from devtools.credentials import ensure_credentials
from devtools.procs import Processes
from devtools.settings import get_dev_settings
from devtools.tasks import api_session
from shared.core.config import SECRETS_DIR
from shared.core.waiting import wait_until
from shared.security.tokenfile import ensure
from shared.security.tokens import TOKEN_ENV, Role

PHASE4 = {
    "manager": "phase4_api.manager",
    "agent": "phase4_api.agent",
    "scheduler": "phase3_kafka.scheduler",
    "api": "phase4_api.api:create_app()",
}
PHASE5 = {
    "manager": "phase5_observability.manager",
    "agent": "phase5_observability.agent",
    "scheduler": "phase5_observability.scheduler",
    "api": "phase5_observability.api:create_app()",
    "api_config": "python:phase5_observability.gunicorn_conf",  # limits, JSON refusals
    "api_tokens": "admin",  # the API refuses calls without a token: the stack makes one
    "grpc_secret": "stack",  # the task-managers take calls with the stack's secret only
}


def start_api_stack(
    procs: Processes,
    port: int,
    modules: dict[str, str] = PHASE4,
    managers: int = 2,
    schedulers: int = 1,
) -> str:
    """Phase 4 (or, with ``PHASE5``, phase 5): task-managers, 2 agents, schedulers and the
    API; returns the API's URL when it answers."""
    if "grpc_secret" in modules:
        seal(procs)
    for n in range(1, managers + 1):
        procs.start(f"manager-{n}", modules["manager"], PROCESS_NAME=f"task-manager-{n}")
    for n in (1, 2):
        name = f"agent-{n}"
        procs.start(name, modules["agent"], AGENT_ID=name, PROCESS_NAME=name, AGENT_CAPACITY="4")
    # least-load fills the agents evenly, so 8 long tasks take exactly the 8 slots
    for n in range(1, schedulers + 1):
        procs.start(
            f"scheduler-{n}",
            modules["scheduler"],
            SCHEDULER_ID=f"scheduler-{n}",
            PROCESS_NAME=f"scheduler-{n}",
            SCHEDULER_STRATEGY="least-load",
        )
    if "api_tokens" in modules:
        admit(procs)
    procs.start("api", "gunicorn", *gunicorn_args(modules, port))
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: api_ready(url, agents=2), 60), procs.started[-1].log()
    return url


def gunicorn_args(modules: dict[str, str], port: int) -> list[str]:
    """Gunicorn's arguments for the API of ``modules``, with phase 5's own configuration
    (``processes.conf`` runs it so too); phase 4's runs with gunicorn's defaults."""
    config = ["-c", modules["api_config"]] if "api_config" in modules else []
    return [*config, "-b", f"127.0.0.1:{port}", "-w", "2", modules["api"]]


def admit(procs: Processes) -> None:
    """Phase 5's API starts only with a token to accept: an admin token in a tokens file of
    the stack's own, which this process then sends (``TASKFLOW_TOKEN``)."""
    secret_file = procs.log_dir / "admin.token"
    ensure(procs.log_dir / "tokens", "admin", Role.ADMIN, secret_file)
    procs.env["API_TOKENS_FILE"] = str(procs.log_dir / "tokens")
    os.environ[TOKEN_ENV] = secret_file.read_text().strip()


def seal(procs: Processes) -> str:
    """Phase 5's task-managers answer only calls that carry the gRPC secret: one of the
    stack's own, in a ``SECRETS_DIR`` of its own, as ``make phase5-up`` keeps it (the
    servers' settings still come from ``procs.env``, unless a file is put there too).
    Call it before the task-managers and the API start; returns the secret."""
    folder = procs.log_dir / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    ensure_credentials(folder, get_dev_settings(), only=("grpc_secret",))
    procs.env[SECRETS_DIR] = str(folder)
    return (folder / "grpc_secret").read_text().strip()


def api_ready(url: str, agents: int) -> bool:
    try:
        with api_session() as session:
            reply = session.get(f"{url}/api/v1/agents", timeout=2)
    except requests.RequestException:
        return False
    return reply.status_code == 200 and len(reply.json()["agents"]) == agents
