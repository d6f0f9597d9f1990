"""An env the trainer cannot train (several behaviors, visual observations, discrete or hybrid
actions, a space the bridge cannot serve): one line naming the problem, exit status 2, and
no env process left, in both modes."""

import os
import subprocess
import sys

import pytest

from actors.config import EnvConfig
from actors.env_process import UnsupportedEnv
from runner.distributed import run_distributed
from tests.helpers import player_pids, wait_until
from tests.test_distributed import tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(REPO, "tests", "envs", "sims", "Sim")
SCENES = {  # test scene -> words its refusal must say
    "two-behaviors": "2 behaviors",
    "visual": "visual or other non-vector observations",
    "discrete": "discrete actions",
    "hybrid": "hybrid actions",
}
PORT = 5700  # base port of this module: 5700-5703


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "launch.py", "--base-port", str(PORT), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=180)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("scene", SCENES)
def test_local_mode_refuses_in_one_line_and_closes_the_env(tmp_path, scene, main_error):
    """In this process; the Ray test below goes through a real launch.py."""
    line, _ = main_error("--mode", "local", "--results-dir", str(tmp_path), "--base-port",
                         str(PORT), "--num-workers", "2", "--env", SIM, "--env-args",
                         "--sim", scene)
    assert SCENES[scene] in line
    assert player_pids("tests.envs.sims") == []


def test_the_refused_env_is_closed_at_once_not_at_exit():
    """The worker kills the env before it raises: nothing waits for our process to end."""
    from actors.env_worker import EnvWorker
    from actors.config import NoiseConfig

    cfg = EnvConfig(env=SIM, env_args=["--sim", "hybrid"], base_port=PORT)
    with pytest.raises(UnsupportedEnv, match="hybrid actions"):
        EnvWorker(cfg, NoiseConfig())
    assert wait_until(lambda: player_pids("tests.envs.sims") == [], timeout=2)


@pytest.mark.parametrize("env_id, fix", [("Image-v0", "gymnasium.wrappers.FlattenObservation"),
                                         ("Hybrid-v0", "whose action space is one Box")])
def test_a_gymnasium_env_is_told_the_gymnasium_fix(env_id, fix):
    """Not Unity's ('use vector sensors', 'make every action continuous'): a Gymnasium
    user fixes the env with a wrapper."""
    from actors.env_worker import EnvWorker
    from actors.config import NoiseConfig

    cfg = EnvConfig(env=f"gymnasium:tests.envs.sims.gym_envs:{env_id}", base_port=PORT)
    with pytest.raises(UnsupportedEnv) as refused:
        EnvWorker(cfg, NoiseConfig())
    message = str(refused.value)
    assert fix in message and "sensors" not in message and "make every" not in message



@pytest.mark.parametrize("scene", SCENES)
def test_ray_mode_refuses_with_the_same_line_and_closes_every_env(local_ray, tmp_path, scene):
    cfg, run_dir = tiny(tmp_path, scene, PORT, num_workers=2)
    cfg.env = EnvConfig(env=SIM, env_args=["--sim", scene], base_port=PORT)
    with pytest.raises(UnsupportedEnv) as refused:
        run_distributed(cfg, run_dir)
    assert SCENES[scene] in str(refused.value) and "\n" not in str(refused.value)
    assert wait_until(lambda: player_pids("tests.envs.sims") == [], timeout=10)


def test_ray_mode_refusal_reaches_the_user_as_one_line(tmp_path):
    """End to end through launch.py: the worker's error is the driver's one line."""
    line = one_line(launch("--results-dir", str(tmp_path), "--env", SIM,
                           "--env-args", "--sim", "visual"))
    assert SCENES["visual"] in line
    assert player_pids("tests.envs.sims") == []


@pytest.mark.parametrize("mode", ["local", "ray"])
@pytest.mark.parametrize("env_id, problem", [
    ("Unbounded-v0", "infinite bounds"),  # the bridge cannot serve it
    ("Image-v0", "visual or other non-vector observations"),  # DDPG cannot train them: the
    ("Hybrid-v0", "hybrid actions"),  # envs, Ray and the run folder started for nothing
])
def test_a_gymnasium_space_we_refuse_is_refused_before_anything_starts(main_error, tmp_path,
                                                                        mode, env_id, problem):
    line, _ = main_error("--mode", mode, "--results-dir", str(tmp_path), "--base-port",
                         str(PORT), "--env", f"gymnasium:tests.envs.sims.gym_envs:{env_id}")
    assert problem in line, line
    assert not (tmp_path / "drone").exists()  # refused before the run folder was made
