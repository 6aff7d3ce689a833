"""Which agents are alive: ephemeral znodes under ``/live-agents``.

An agent creates ``/live-agents/<id>`` as an *ephemeral* znode: ZooKeeper deletes it by
itself when the agent's session ends, whether the agent exits cleanly, crashes, or
stops answering for longer than the session timeout. The scheduler never has to decide
whether an agent is dead; it watches the children of ``/live-agents`` and ZooKeeper
tells it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass, field

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from shared.core.task import now_ms

LIVE_AGENTS = "/live-agents"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentInfo:
    """What an agent says about itself in its znode."""

    id: str
    capacity: int
    types: tuple[str, ...]
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    startedAt: int = field(default_factory=now_ms)
    partition: int | None = None  # its task-dispatch-topic partition (phase 3 on)
    # The ZooKeeper session that owns the znode (read from its stat, not its data): a
    # restarted agent keeps its id but gets a new session.
    session: str = ""

    def to_json(self) -> bytes:
        values = asdict(self)
        del values["session"]
        return json.dumps(values).encode()

    @classmethod
    def from_json(cls, data: bytes, session: str = "") -> AgentInfo:
        values = json.loads(data)
        values["types"] = tuple(values["types"])
        return cls(**values, session=session)


def agent_path(agent_id: str) -> str:
    return f"{LIVE_AGENTS}/{agent_id}"


# --8<-- [start:register]
def register_agent(zk: KazooClient, info: AgentInfo) -> None:
    """Create this agent's ephemeral znode (replacing one left by its previous run)."""
    path = agent_path(info.id)
    try:
        zk.create(path, info.to_json(), ephemeral=True, makepath=True)
    except NodeExistsError:
        # The same agent id restarted before ZooKeeper expired its old session.
        zk.delete(path)
        zk.create(path, info.to_json(), ephemeral=True, makepath=True)
    log.info("registered %s (capacity %d, types %s)", path, info.capacity, ",".join(info.types))


# --8<-- [end:register]


class AgentDirectory:
    """The live agents, kept current by a watch on the children of ``/live-agents``."""

    def __init__(self, zk: KazooClient) -> None:
        self.zk = zk
        self._agents: dict[str, AgentInfo] = {}
        self._lock = threading.Lock()
        self.changed = threading.Event()
        zk.ensure_path(LIVE_AGENTS)
        zk.ChildrenWatch(LIVE_AGENTS, self._on_children)

    def _on_children(self, children: list[str]) -> None:
        agents = {}
        for child in children:
            try:
                data, stat = self.zk.get(agent_path(child))
                agents[child] = AgentInfo.from_json(data, session=f"{stat.owner_session_id:x}")
            except NoNodeError:
                continue  # gone between the listing and the read
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("ignoring agent %s with unreadable data: %s", child, exc)
        with self._lock:
            joined, left = agents.keys() - self._agents.keys(), self._agents.keys() - agents.keys()
            self._agents = agents
        if joined or left:
            log.info(
                "live agents: %s (joined %s, left %s)", sorted(agents), sorted(joined), sorted(left)
            )
        self.changed.set()

    def live(self) -> dict[str, AgentInfo]:
        with self._lock:
            return dict(self._agents)
