"""What a simulation behind the Unity-player protocol server provides, and what it gets.

The server (server.py) owns the wire: handshake, side channels, message building, action
parsing, close. A simulation only answers `reset()` and `step(actions)` with, per behavior,
the agents that report this step (`AgentBatch`), as a Unity scene's agents would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# ML-Agents DimensionProperty values, as Unity's ObservationSpec.Vector/Visual set them.
DIM_NONE = 1
DIM_TRANSLATIONAL = 2


@dataclass(frozen=True)
class ObservationSpec:
    """One observation tensor of a behavior: 1-D vector or 3-D (height, width, channels)."""

    shape: tuple[int, ...]
    name: str

    def __post_init__(self) -> None:
        if len(self.shape) not in (1, 3) or min(self.shape) < 1:
            raise ValueError(f"observation {self.name!r}: shape {self.shape} is neither "
                             "(size,) nor (height, width, channels)")

    @property
    def dimension_properties(self) -> tuple[int, ...]:
        """What Unity sends: vectors None; images translational in height and width."""
        if len(self.shape) == 1:
            return (DIM_NONE,)
        return (DIM_TRANSLATIONAL, DIM_TRANSLATIONAL, DIM_NONE)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class BehaviorSpec:
    """A behavior as the trainer sees it; `name` is the wire name ('Name?team=0')."""

    name: str
    observations: tuple[ObservationSpec, ...]
    continuous: int = 0
    discrete: tuple[int, ...] = ()  # branch sizes


@dataclass
class AgentBatch:
    """The agents of one behavior that report in one message, in message order.

    A terminal row (done) and the same agent's next first decision may both be present,
    as Unity sends them: terminal rows first.
    """

    agent_id: np.ndarray  # (n,) int
    obs: list[np.ndarray]  # one (n, *shape) float32 array per ObservationSpec, in order
    reward: np.ndarray  # (n,) float32
    done: np.ndarray  # (n,) bool: the agent's episode ended (TerminalSteps)
    max_step_reached: np.ndarray  # (n,) bool: ended by a step limit (interrupted)

    def __len__(self) -> int:
        return len(self.agent_id)

    @classmethod
    def decisions(cls, agent_id, obs: list[np.ndarray], reward=None) -> AgentBatch:
        """Agents asking for a decision (reward 0 when not given: a first decision)."""
        n = len(agent_id)
        reward = np.zeros(n, np.float32) if reward is None else reward
        no = np.zeros(n, bool)
        return cls(np.asarray(agent_id), obs, np.asarray(reward, np.float32), no, no)

    @classmethod
    def terminals(cls, agent_id, obs: list[np.ndarray], reward, interrupted) -> AgentBatch:
        """Agents whose episode ended; `interrupted` marks step-limit ends."""
        n = len(agent_id)
        return cls(np.asarray(agent_id), obs, np.asarray(reward, np.float32),
                   np.ones(n, bool), np.asarray(interrupted, bool))

    @classmethod
    def concat(cls, batches: list[AgentBatch]) -> AgentBatch:
        """Rows of several batches of one behavior, in the given order."""
        batches = [b for b in batches if len(b)] or batches[:1]
        if len(batches) == 1:
            return batches[0]
        return cls(
            np.concatenate([b.agent_id for b in batches]),
            [np.concatenate(parts) for parts in zip(*(b.obs for b in batches))],
            np.concatenate([b.reward for b in batches]),
            np.concatenate([b.done for b in batches]),
            np.concatenate([b.max_step_reached for b in batches]),
        )


@dataclass
class Actions:
    """The trainer's actions for one behavior: one row per agent it was asked about.

    Those are the agents of the previous message that were not done, in that order
    (Unity's rule); rows the trainer did not send are zeros.
    """

    agent_id: np.ndarray  # (n,) int
    continuous: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    discrete: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))


class Simulation(Protocol):
    """A scene: one or more behaviors, each with agents that report when they want to."""

    name: str  # the env name the trainer's log shows
    behaviors: tuple[BehaviorSpec, ...]

    def start(self, num_areas: int, seed: int) -> None:
        """Build the scene once the trainer's initialization input (num_areas, seed) came."""

    def reset(self) -> dict[str, AgentBatch]:
        """A RESET command: every agent starts an episode; their first decisions."""

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        """A STEP command: act, advance, and report the agents that report this step."""

    def close(self) -> None:
        """Release what the scene holds; the process exits right after."""

    def summary(self) -> str:
        """One line for the log when the process stops."""
