"""How a Gymnasium env's spaces map to one ML-Agents behavior, or why they cannot.

Observations: a 1-D Box is one vector observation; a 3-D Box is an image (height, width,
channels), sent as a visual observation (uint8 images scaled to [0, 1], as Unity's camera
sensor sends them); a Dict of those is one tensor per key, in the Dict space's own key
order (gymnasium sorts the keys of a plain dict; an OrderedDict keeps its order).
Actions: a bounded float Box is continuous, the trainer's [-1, 1] scaled linearly to the
bounds; Discrete and MultiDiscrete are discrete branches; Tuple(Box, Discrete |
MultiDiscrete) is hybrid. Anything else is refused with one line naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from envs.gymnasium.naming import behavior_name
from envs.unity_player.simulation import BehaviorSpec, ObservationSpec


def _shown(space: spaces.Space) -> str:
    """A space on one line (numpy prints multi-row arrays over several)."""
    return " ".join(str(space).split())


FIX = "register a wrapped version of the env (e.g. gymnasium.wrappers.FlattenObservation)"


@dataclass(frozen=True)
class ObservationPart:
    """One observation tensor: which Dict key (None: the whole observation), and scale."""

    key: str | None
    spec: ObservationSpec
    scale: float | None  # 1/255 for uint8 images, else None


def observation_parts(space: spaces.Space) -> list[ObservationPart]:
    """The observation tensors of `space`, in the order they are sent."""
    if isinstance(space, spaces.Dict):
        if not space.spaces:
            raise ValueError(f"observation space {_shown(space)} is an empty Dict; {FIX}")
        return [_box_part(sub, str(key), key) for key, sub in space.spaces.items()]
    return [_box_part(space, None, None)]


def _box_part(space: spaces.Space, label: str | None, key) -> ObservationPart:
    where = f"observation {label!r}" if label else "observation space"
    if not isinstance(space, spaces.Box) or len(space.shape) not in (1, 3):
        raise ValueError(f"{where} {_shown(space)} is not supported: the bridge takes a 1-D "
                         "Box (vector), a 3-D Box (height, width, channels) or a Dict of "
                         f"those; {FIX}")
    if len(space.shape) == 1:
        name = label or f"VectorSensor_size{space.shape[0]}"
        return ObservationPart(key, ObservationSpec(space.shape, name), None)
    scale = 1.0 / 255.0 if space.dtype == np.uint8 else None
    return ObservationPart(key, ObservationSpec(space.shape, label or "CameraSensor"), scale)


@dataclass(frozen=True)
class ActionMapping:
    """Turns the trainer's action rows into the env's actions."""

    space: spaces.Space
    low: np.ndarray | None  # continuous part's bounds (None: no continuous part)
    high: np.ndarray | None
    discrete_start: np.ndarray | None  # discrete part's offsets (None: no discrete part)

    @property
    def continuous(self) -> int:
        return 0 if self.low is None else len(self.low)

    def scale(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] (clipped) -> [low, high], linearly, for a (n, continuous) batch."""
        a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        return self.low + (a + 1.0) * 0.5 * (self.high - self.low)

    def env_actions(self, continuous: np.ndarray, discrete: np.ndarray) -> list:
        """Each agent's action in the env's space, from a (n, continuous) batch in [-1, 1]
        and a (n, branches) batch of branch values."""
        space = self.space
        if isinstance(space, spaces.Box):
            return list(self.scale(continuous).astype(space.dtype))
        values = self.discrete_start + np.asarray(discrete, np.int64)
        if isinstance(space, spaces.Tuple):
            box, branches = space.spaces
            return list(zip(self.scale(continuous).astype(box.dtype),
                            _discrete_rows(branches, values)))
        return _discrete_rows(space, values)


def _discrete_rows(space: spaces.Space, values: np.ndarray) -> list:
    if isinstance(space, spaces.Discrete):
        return [np.int64(v) for v in values[:, 0].tolist()]
    return list(values.astype(space.dtype))


def action_mapping(space: spaces.Space) -> tuple[ActionMapping, tuple[int, ...]]:
    """The mapping and the discrete branch sizes of an action space."""
    if isinstance(space, spaces.Box):
        low, high = _continuous_bounds(space)
        return ActionMapping(space, low, high, None), ()
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        start, branches = _discrete_branches(space)
        return ActionMapping(space, None, None, start), branches
    if (isinstance(space, spaces.Tuple) and len(space.spaces) == 2
            and isinstance(space.spaces[0], spaces.Box)
            and isinstance(space.spaces[1], (spaces.Discrete, spaces.MultiDiscrete))):
        low, high = _continuous_bounds(space.spaces[0])
        start, branches = _discrete_branches(space.spaces[1])
        return ActionMapping(space, low, high, start), branches
    raise ValueError(f"action space {_shown(space)} is not supported: the bridge takes a bounded "
                     "1-D Box, Discrete, MultiDiscrete or Tuple(Box, Discrete|MultiDiscrete); "
                     "register a wrapped version of the env with one of those")


def _continuous_bounds(box: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    if len(box.shape) != 1 or not np.issubdtype(box.dtype, np.floating):
        raise ValueError(f"action space {_shown(box)} is not supported: continuous actions "
                         "must be a 1-D float Box; register a wrapped version of the env with one")
    if not (np.all(np.isfinite(box.low)) and np.all(np.isfinite(box.high))):
        raise ValueError(f"action space {_shown(box)} has infinite bounds, so the trainer's "
                         "actions in [-1, 1] cannot be scaled to it; register a wrapped "
                         "version of the env with finite bounds")
    return box.low.astype(np.float64), box.high.astype(np.float64)


def _discrete_branches(space) -> tuple[np.ndarray, tuple[int, ...]]:
    if isinstance(space, spaces.Discrete):
        return np.array([space.start]), (int(space.n),)
    if space.nvec.ndim != 1:
        raise ValueError(f"action space {_shown(space)} is not supported: MultiDiscrete must "
                         "be 1-D; register a wrapped version of the env with a 1-D one")
    return np.asarray(space.start), tuple(int(n) for n in space.nvec)


@dataclass(frozen=True)
class BridgeSpec:
    """What the trainer will see for a Gymnasium env id through the bridge."""

    env_id: str
    behavior: BehaviorSpec
    max_episode_steps: int | None  # the time limit in force (None: the env has none)

    @property
    def behavior_name(self) -> str:
        return self.behavior.name

    @property
    def observation_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(o.shape for o in self.behavior.observations)

    @property
    def continuous_size(self) -> int:
        return self.behavior.continuous

    @property
    def discrete_branches(self) -> tuple[int, ...]:
        return self.behavior.discrete

    def summary(self) -> str:
        """One line: behavior, observations, actions, time limit."""
        acts = [f"{self.continuous_size} continuous"] if self.continuous_size else []
        if self.discrete_branches:
            acts.append(f"discrete branches {list(self.discrete_branches)}")
        return (f"{self.env_id}: behavior {self.behavior_name!r}, observations "
                f"{list(self.observation_shapes)}, actions {' + '.join(acts)}, "
                f"episode limit {self.max_episode_steps or 'none'}")


def bridge_spec(env_id: str, observation_space, action_space,
                max_episode_steps: int | None) -> tuple[BridgeSpec, list[ObservationPart],
                                                       ActionMapping]:
    """Map both spaces; ValueError (one line, naming the env id) when one is unsupported."""
    try:
        parts = observation_parts(observation_space)
        actions, branches = action_mapping(action_space)
    except ValueError as err:
        raise ValueError(f"--env-id {env_id}: {err}") from None
    behavior = BehaviorSpec(behavior_name(env_id), tuple(p.spec for p in parts),
                            actions.continuous, branches)
    return BridgeSpec(env_id, behavior, max_episode_steps), parts, actions
