"""Dispatch strategies: pure choices over a list of agents."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from shared.coordination.registry import AgentInfo
from shared.scheduling.strategies import (
    LeastLoadStrategy,
    RandomStrategy,
    RoundRobinStrategy,
    candidates_for,
    make_strategy,
)

AGENTS = [AgentInfo(id=f"agent-{n}", capacity=2, types=("SHELL", "PYTHON")) for n in (1, 2, 3)]


def test_random_spreads_over_every_agent() -> None:
    strategy = RandomStrategy(random.Random(7))
    counts = Counter(strategy.choose(AGENTS, {}).id for _ in range(3000))
    assert set(counts) == {a.id for a in AGENTS}
    assert min(counts.values()) > 800  # each near 1000


def test_round_robin_cycles_in_order_and_survives_membership_changes() -> None:
    strategy = RoundRobinStrategy()
    assert [strategy.choose(AGENTS, {}).id for _ in range(4)] == [
        "agent-1",
        "agent-2",
        "agent-3",
        "agent-1",
    ]
    assert strategy.choose(AGENTS[::2], {}).id == "agent-3"  # agent-2 left: skip it
    assert strategy.choose(AGENTS[::2], {}).id == "agent-1"


def test_least_load_prefers_the_idle_agent_relative_to_capacity() -> None:
    big = AgentInfo(id="big", capacity=8, types=("SHELL",))
    small = AgentInfo(id="small", capacity=1, types=("SHELL",))
    assert LeastLoadStrategy().choose([big, small], {"big": 3, "small": 1}).id == "big"
    assert LeastLoadStrategy().choose([big, small], {"big": 8, "small": 0}).id == "small"
    assert LeastLoadStrategy().choose(AGENTS, {"agent-1": 1, "agent-3": 1}).id == "agent-2"


def test_candidates_are_the_agents_that_run_the_type() -> None:
    shell_only = AgentInfo(id="s", capacity=1, types=("SHELL",))
    agents = {a.id: a for a in [*AGENTS, shell_only]}
    assert {a.id for a in candidates_for("PYTHON", agents)} == {a.id for a in AGENTS}
    assert len(candidates_for("SHELL", agents)) == 4


def test_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known strategies: random, round-robin, least-load"):
        make_strategy("fastest")


def test_agent_info_round_trips_through_znode_data() -> None:
    assert AgentInfo.from_json(AGENTS[0].to_json()) == AGENTS[0]
