"""Phase 5 agent: the phase 4 agent, observed, and its tasks in a sandbox.

Run it: ``AGENT_ID=agent-1 python -m phase5_observability.agent``. It runs exactly as in
phase 4; around it, its metrics are served and announced in ZooKeeper, and each task
it runs is a span in the trace of the task's submit (``shared/observability/``).

Each task runs in the full sandbox unless ``AGENT_SANDBOX`` says otherwise: a uid of its
own, a cgroup, a private /tmp in a read-only view of the host, its own PIDs, no network
(``shared/execution/slots.py``, docs/security.md). Where this machine cannot give a part
of it, the agent does not start; ``AGENT_SANDBOX=weak`` starts it without those parts,
and says which.

It also runs phase 5's HTTP tasks (``AGENT_TASK_TYPES``), to the hosts of
``AGENT_HTTP_ALLOW`` only: none unless it is set (docs/security.md, "HTTP tasks").
"""

from __future__ import annotations

import os

from phase4_api import agent
from shared.coordination.serversets import ProcessKind
from shared.core.config import PHASE5_TASK_TYPES, SandboxMode, get_settings
from shared.core.logs import setup_logging
from shared.observability.process import observed


def main() -> None:
    os.environ.setdefault("AGENT_SANDBOX", SandboxMode.FULL.value)  # before it is read
    os.environ.setdefault("AGENT_TASK_TYPES", PHASE5_TASK_TYPES)
    settings = get_settings()
    setup_logging(settings)
    with observed(settings, ProcessKind.AGENT, settings.agent_id):
        agent.serve(settings)


if __name__ == "__main__":
    main()
