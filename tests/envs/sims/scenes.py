"""Test scenes with one Reach task per behavior: several behaviors, visual observations,
discrete and hybrid actions. One agent per area and behavior; every agent decides every step.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from envs.unity_player.simulation import Actions, AgentBatch, BehaviorSpec, ObservationSpec
from tests.envs.sims.reach import Reach, step_batch

IMAGE_SHAPE = (8, 8, 3)
# Discrete branch value -> velocity along one axis.
DIRECTION = np.array([-1.0, 0.0, 1.0])
# Hybrid: discrete branch value -> unit direction (x-, x+, y-, y+).
COMPASS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def vector(size: int) -> ObservationSpec:
    return ObservationSpec((size,), f"VectorSensor_size{size}")


class ReachBehavior:
    """One behavior on a Reach task; agent ids start at `first_id`."""

    def __init__(self, spec: BehaviorSpec, dim: int,
                 velocity: Callable[[Actions], np.ndarray],
                 observe: Callable[[Reach], list[np.ndarray]]):
        self.spec, self.dim = spec, dim
        self.velocity, self.observe = velocity, observe
        self.reach: Reach | None = None
        self.first_id = 0
        self.ids = np.zeros(0, np.int64)

    def start(self, num_areas: int, seed: int, first_id: int) -> None:
        self.reach = Reach(num_areas, self.dim, seed)
        self.first_id = first_id
        self.ids = first_id + np.arange(num_areas)

    def reset(self) -> AgentBatch:
        self.reach.reset(np.arange(self.reach.n))
        return AgentBatch.decisions(self.ids, self.observe(self.reach))

    def step(self, actions: Actions | None) -> AgentBatch:
        velocity = np.zeros((self.reach.n, self.dim))
        if actions is not None:
            velocity[actions.agent_id - self.first_id] = self.velocity(actions)
        return step_batch(self.reach, self.ids, velocity, lambda: self.observe(self.reach))


class ReachScene:
    """A Simulation made of ReachBehaviors that all step together."""

    def __init__(self, name: str, behaviors: list[ReachBehavior]):
        self.name = name
        self.parts = behaviors
        self.behaviors = tuple(b.spec for b in behaviors)
        self.steps = 0

    def start(self, num_areas: int, seed: int) -> None:
        for i, part in enumerate(self.parts):
            # Agent ids are unique across behaviors, as in Unity: behavior i has
            # ids i * num_areas ... (i + 1) * num_areas - 1.
            part.start(num_areas, seed * 31 + i, first_id=i * num_areas)

    def reset(self) -> dict[str, AgentBatch]:
        return {p.spec.name: p.reset() for p in self.parts}

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        self.steps += 1
        return {p.spec.name: p.step(actions.get(p.spec.name)) for p in self.parts}

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return f"{self.steps} scene steps"


def continuous(actions: Actions) -> np.ndarray:
    return actions.continuous


def delta_only(reach: Reach) -> list[np.ndarray]:
    return [reach.delta()]


def image(reach: Reach) -> np.ndarray:
    """(n, 8, 8, 3): channel 0 marks the point's cell, channel 1 the goal's (x -> width,
    y -> height), channel 2 is (h * 8 + w) / 64 so that a test can check the HWC layout."""
    h, w, _ = IMAGE_SHAPE
    out = np.zeros((reach.n,) + IMAGE_SHAPE, np.float32)
    out[..., 2] = (np.arange(h)[:, None] * w + np.arange(w)[None, :]) / (h * w)
    for channel, xy in ((0, reach.pos), (1, reach.goal)):
        cells = np.clip(((xy + 1.0) / 2.0 * w).astype(int), 0, w - 1)
        out[np.arange(reach.n), cells[:, 1], cells[:, 0], channel] = 1.0
    return out


def two_behaviors() -> ReachScene:
    """Alpha: obs (2,), 2 continuous actions; Beta: obs (3,), 3 continuous actions."""
    alpha = BehaviorSpec("Alpha?team=0", (vector(2),), continuous=2)
    beta = BehaviorSpec("Beta?team=0", (vector(3),), continuous=3)
    return ReachScene("two-behaviors", [ReachBehavior(alpha, 2, continuous, delta_only),
                                        ReachBehavior(beta, 3, continuous, delta_only)])


def visual() -> ReachScene:
    """One vector (2,) and one visual (8, 8, 3) observation; 2 continuous actions."""
    spec = BehaviorSpec("Visual?team=0", (vector(2), ObservationSpec(IMAGE_SHAPE, "CameraSensor")),
                        continuous=2)
    return ReachScene("visual", [ReachBehavior(spec, 2, continuous,
                                               lambda r: [r.delta(), image(r)])])


def discrete() -> ReachScene:
    """Discrete actions only: branches (3, 3), each -1/0/+1 along one axis."""
    spec = BehaviorSpec("Discrete?team=0", (vector(2),), discrete=(3, 3))

    def velocity(a: Actions) -> np.ndarray:
        return DIRECTION[np.clip(a.discrete, 0, 2)]

    return ReachScene("discrete", [ReachBehavior(spec, 2, velocity, delta_only)])


def hybrid() -> ReachScene:
    """One continuous action (speed, [-1, 1] -> [0, 1]) and one discrete branch of 4
    (direction: x-, x+, y-, y+)."""
    spec = BehaviorSpec("Hybrid?team=0", (vector(2),), continuous=1, discrete=(4,))

    def velocity(a: Actions) -> np.ndarray:
        speed = (np.clip(a.continuous[:, :1], -1.0, 1.0) + 1.0) / 2.0
        return speed * COMPASS[np.clip(a.discrete[:, 0], 0, 3)]

    return ReachScene("hybrid", [ReachBehavior(spec, 2, velocity, delta_only)])


class OneArea(ReachScene):
    """A scene without a TrainingAreaReplicator: one area, whatever num_areas asks."""

    def start(self, num_areas: int, seed: int) -> None:
        super().start(1, seed)


def one_area() -> ReachScene:
    """Obs (2,), 2 continuous actions, one agent whatever --num-areas says."""
    spec = BehaviorSpec("OneArea?team=0", (vector(2),), continuous=2)
    return OneArea("one-area", [ReachBehavior(spec, 2, continuous, delta_only)])
