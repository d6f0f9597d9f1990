"""Gymnasium envs registered for the bridge's tests, used as `tests.envs.sims.gym_envs:ID`
(gymnasium.make imports this module first, as it would a user's own package).

- Echo-v0: Dict observation {"velocity": (2,), "position": (3,)} (sent sorted: position,
  velocity); action Box([-2, 0], [2, 10]). position = (action[0], action[1], t): the action
  as the env received it; velocity is drawn at reset from the env's RNG. Reward action[0];
  terminated when action[1] >= 10; truncated at 10 steps. NanEcho-v0: the same, with a
  NaN in position at step 3; NanResetEcho-v0, at every reset. ArrayEcho-v0: the same, its reward and terminated flag
  returned as arrays of one (which Gymnasium only warns about).
- Image-v0: image observation Box(0, 255, (6, 5, 3), uint8), pixel (h, w, c) = 15 h + 3 w
  + c, except pixel (5, 4, 2) = 100 + the last action + 1; action Discrete(3, start=-1);
  reward = the action; truncated at 10 steps.
- Hybrid-v0: action Tuple(Box(-1, 1, (1,)), MultiDiscrete([2, 3])); observation (3,) =
  (box action, branch 0, branch 1) as received.
- BigImage-v0: Image-v0 with a (512, 512, 3) image: 3 MiB per area as the bridge sends it.
- Unbounded-v0: action Box(-inf, inf, (2,)): refused by the bridge.
- OneCopyOnly-v0: Hybrid-v0 whose second construction in a process raises.
- LostSimulator-v0: Echo-v0 whose step raises from its 3rd call and whose close raises
  too (a simulator that went away); closes are counted in LostSimulator.closes.
- Hangs-v0: Echo-v0 whose step never returns from its 25th call in a process (a simulator
  stuck in a loop; nothing but a kill ends it); it then creates the file named by
  $HANGS_FLAG, if set.
"""

from __future__ import annotations

import os
import time

import gymnasium
import numpy as np
from gymnasium import spaces


class Echo(gymnasium.Env):
    """Shows the action it received; see the module docstring."""

    def __init__(self, nan_at: int = -1, arrays: bool = False, bad: float = np.nan):
        self.observation_space = spaces.Dict({
            "velocity": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "position": spaces.Box(-10.0, 10.0, (3,), np.float32),
        })
        self.action_space = spaces.Box(np.array([-2.0, 0.0], np.float32),
                                       np.array([2.0, 10.0], np.float32))
        self.nan_at, self.arrays, self.bad = nan_at, arrays, bad
        self.t = 0
        self.velocity = np.zeros(2, np.float32)

    def _obs(self, action) -> dict:
        position = np.array([action[0], action[1], self.t], np.float32)
        if self.t == self.nan_at:
            position[0] = self.bad
        return {"velocity": self.velocity.copy(), "position": position}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.velocity = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self._obs(np.zeros(2)), {}

    def step(self, action):
        self.t += 1
        reward, terminated = float(action[0]), bool(action[1] >= 10.0)
        if self.arrays:
            reward, terminated = np.array([reward]), np.array([terminated])
        return self._obs(action), reward, terminated, False, {}


class Image(gymnasium.Env):
    """An image observation and a Discrete action with start -1."""

    def __init__(self, height: int = 6, width: int = 5):
        self.observation_space = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = spaces.Discrete(3, start=-1)
        self.pattern = (15 * np.arange(height)[:, None, None]
                        + 3 * np.arange(width)[None, :, None]
                        + np.arange(3)[None, None, :]).astype(np.uint8)

    def _obs(self, action: int) -> np.ndarray:
        image = self.pattern.copy()
        image[5, 4, 2] = 100 + action + 1
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(0), {}

    def step(self, action):
        return self._obs(int(action)), float(action), False, False, {}


class Hybrid(gymnasium.Env):
    """A Tuple(Box, MultiDiscrete) action, echoed in the observation."""

    def __init__(self):
        self.observation_space = spaces.Box(-5.0, 5.0, (3,), np.float32)
        self.action_space = spaces.Tuple((spaces.Box(-1.0, 1.0, (1,), np.float32),
                                          spaces.MultiDiscrete([2, 3])))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        box, branches = action
        obs = np.array([box[0], branches[0], branches[1]], np.float32)
        return obs, 0.0, False, False, {}


class OneCopyOnly(Hybrid):
    """Its second construction in a process raises: an env that fails while the bridge
    builds its other areas."""

    made = 0

    def __init__(self):
        OneCopyOnly.made += 1
        if OneCopyOnly.made > 1:
            raise RuntimeError("OneCopyOnly: no second copy")
        super().__init__()


class LostSimulator(Echo):
    """Its step fails from the 3rd call, and its close fails after that."""

    closes = 0

    def __init__(self):
        super().__init__()
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= 3:
            raise ConnectionError("the simulator went away")
        return super().step(action)

    def close(self):
        LostSimulator.closes += 1
        if self.steps >= 3:
            raise BrokenPipeError("the simulator is gone")


class Hangs(Echo):
    """Its step never returns from the 25th call in a process."""

    steps = 0

    def step(self, action):
        Hangs.steps += 1
        if Hangs.steps >= 25:
            if os.environ.get("HANGS_FLAG"):
                open(os.environ["HANGS_FLAG"], "w").close()
            while True:
                time.sleep(1.0)
        return super().step(action)


class Unbounded(Hybrid):
    """An action Box without bounds."""

    def __init__(self):
        super().__init__()
        self.action_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)


for _id, _entry, _kwargs in [("Echo-v0", "Echo", {}), ("NanEcho-v0", "Echo", {"nan_at": 3}),
                             ("NanResetEcho-v0", "Echo", {"nan_at": 0}),
                             ("InfResetEcho-v0", "Echo", {"nan_at": 0, "bad": np.inf}),
                             ("ArrayEcho-v0", "Echo", {"arrays": True}),
                             ("LostSimulator-v0", "LostSimulator", {}),
                             ("Hangs-v0", "Hangs", {}),
                             ("Image-v0", "Image", {}), ("Hybrid-v0", "Hybrid", {}),
                             ("BigImage-v0", "Image", {"height": 512, "width": 512}),
                             ("Unbounded-v0", "Unbounded", {}),
                             ("OneCopyOnly-v0", "OneCopyOnly", {})]:
    gymnasium.register(id=_id, entry_point=f"{__name__}:{_entry}", max_episode_steps=10,
                       kwargs=_kwargs)
