"""Starting a whole phase stack as processes, for tests and benchmarks."""

from __future__ import annotations

import requests

from shared.core.waiting import wait_until
from shared.devtools.procs import Processes


def start_phase4(procs: Processes, port: int) -> str:
    """2 task-managers, 2 agents, a scheduler and the API; returns the API's URL when ready."""
    for n in (1, 2):
        procs.start(f"manager-{n}", "phase4_api.manager")
    for n in (1, 2):
        procs.start(f"agent-{n}", "phase4_api.agent", AGENT_ID=f"agent-{n}", AGENT_CAPACITY="4")
    # least-load fills the agents evenly, so 8 long tasks take exactly the 8 slots
    procs.start("scheduler", "phase3_kafka.scheduler", SCHEDULER_STRATEGY="least-load")
    procs.start(
        "api", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "phase4_api.api:create_app()"
    )
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: api_ready(url, agents=2), 60), procs.started[-1].log()
    return url


def api_ready(url: str, agents: int) -> bool:
    try:
        reply = requests.get(f"{url}/api/v1/agents", timeout=2)
    except requests.RequestException:
        return False
    return reply.status_code == 200 and len(reply.json()["agents"]) == agents
