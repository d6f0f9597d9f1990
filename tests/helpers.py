"""Helpers shared by tests: a view of running Drone processes, polling, TensorBoard tags."""

import os
import time


def drone_pids(port: int | None = None) -> list[int]:
    """Pids of live headless Drone processes, optionally only the one on `port`."""
    return player_pids("envs.drone", port)


def player_pids(module: str, port: int | None = None) -> list[int]:
    """Pids of live env processes running `python -m module` (the Drone, the Gymnasium
    bridge, the test scenes), optionally only the one on `port`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or module not in args:
            continue
        if port is None or f"{port}" in args:
            pids.append(int(entry))
    return pids


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def act(learner, obs):
    """The learner's greedy actions for raw observations (normalized first, if it does), as
    float32 numpy: what an env worker holding its latest weights would do."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(obs, dtype=torch.float32, device=learner.device)
        if learner.state.normalizer is not None:
            x = learner.state.normalizer(x)
        return learner.state.actor(x).cpu().numpy()


def tags(run_dir) -> set[str]:
    """The scalar tags of the TensorBoard events in `run_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"])
