"""Dispatch strategies: which live agent gets the next task.

A strategy is an object with one method, ``choose(candidates, loads)``. The scheduler
gives it only agents that are alive and run the task's type (task-type affinity is a
filter before any strategy), with each agent's current load (tasks given to it and not
finished yet). Adding a strategy is adding a class here and a name in ``STRATEGIES``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Protocol

from shared.coordination.registry import AgentInfo


class Strategy(Protocol):
    def choose(self, candidates: Sequence[AgentInfo], loads: Mapping[str, int]) -> AgentInfo: ...


class RandomStrategy:
    """Any candidate, uniformly: no state, spreads work evenly on average."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def choose(self, candidates: Sequence[AgentInfo], loads: Mapping[str, int]) -> AgentInfo:
        return self.rng.choice(list(candidates))


class RoundRobinStrategy:
    """The candidates in turn, by id, starting after the one chosen last."""

    def __init__(self) -> None:
        self.last = ""

    def choose(self, candidates: Sequence[AgentInfo], loads: Mapping[str, int]) -> AgentInfo:
        ordered = sorted(candidates, key=lambda agent: agent.id)
        chosen = next((agent for agent in ordered if agent.id > self.last), ordered[0])
        self.last = chosen.id
        return chosen


class LeastLoadStrategy:
    """The candidate with the most free capacity (fewest tasks per slot); ties by id."""

    def choose(self, candidates: Sequence[AgentInfo], loads: Mapping[str, int]) -> AgentInfo:
        return min(
            candidates, key=lambda agent: (loads.get(agent.id, 0) / agent.capacity, agent.id)
        )


STRATEGIES: dict[str, type] = {
    "random": RandomStrategy,
    "round-robin": RoundRobinStrategy,
    "least-load": LeastLoadStrategy,
}


def make_strategy(name: str) -> Strategy:
    """The strategy called ``name``, or a clear error naming the known ones."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise ValueError(f"unknown strategy {name!r}; known strategies: {known}") from None


def candidates_for(task_type: str, agents: Mapping[str, AgentInfo]) -> list[AgentInfo]:
    """The live agents that run ``task_type``."""
    return [agent for agent in agents.values() if task_type in agent.types]
