"""Starting a whole phase stack as processes, for tests and benchmarks."""

from __future__ import annotations

import requests

from shared.core.waiting import wait_until
from shared.devtools.procs import Processes

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
    procs.start("api", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", modules["api"])
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: api_ready(url, agents=2), 60), procs.started[-1].log()
    return url


def api_ready(url: str, agents: int) -> bool:
    try:
        reply = requests.get(f"{url}/api/v1/agents", timeout=2)
    except requests.RequestException:
        return False
    return reply.status_code == 200 and len(reply.json()["agents"]) == agents
