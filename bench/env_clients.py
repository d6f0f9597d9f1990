"""What the throughput benchmarks share: seeded random actions and the stock client
stepping an env executable with them."""

from __future__ import annotations

import numpy as np

from envs.drone.physics import ACTION_SIZE


def suffix(n: int) -> str:
    return "1_area" if n == 1 else f"{n}_areas"


def action_pool(n: int, size: int = 64, seed: int = 0,
                width: int = ACTION_SIZE) -> list[np.ndarray]:
    """Pre-drawn uniform random actions, so drawing them is not timed."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, width)).astype(np.float32) for _ in range(size)]


class StockClient:
    """The stock client driving an env executable with `n` areas and random actions."""

    def __init__(self, file_name: str, n: int, worker_id: int, log_folder: str,
                 args: tuple[str, ...] = (), width: int = ACTION_SIZE):
        from mlagents_envs.environment import UnityEnvironment

        self.env = UnityEnvironment(file_name=file_name, worker_id=worker_id, num_areas=n,
                                    no_graphics=True, log_folder=log_folder,
                                    additional_args=list(args))
        self.env.reset()
        self._ready(n, width)
        self.pid = self.env._process.pid  # the launchers exec'd Python: the env process

    def _ready(self, n: int, width: int) -> None:
        self.name = next(iter(self.env.behavior_specs))
        self.pool, self.i = action_pool(n, width=width), 0

    def run(self, count: int) -> None:
        from mlagents_envs.base_env import ActionTuple

        for _ in range(count):
            decisions, _ = self.env.get_steps(self.name)
            act = self.pool[self.i % len(self.pool)][: len(decisions)]
            self.i += 1
            self.env.set_actions(self.name, ActionTuple(continuous=act))
            self.env.step()

    def close(self) -> None:
        self.env.close()


class InProcessClient(StockClient):
    """The same loop on `--transport in-process`: the env's simulation in this process."""

    def __init__(self, env: str, n: int, args: tuple[str, ...] = (), width: int = ACTION_SIZE):
        from envs.in_process import open_in_process

        self.env = open_in_process(env, list(args), 0, n)
        self._ready(n, width)
