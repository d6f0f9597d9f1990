"""Ray mode's start: a SIGTERM while Ray starts is an interrupt like any other."""

import os
import signal
import sys

import pytest

from runner.config import Config


def test_a_sigterm_while_ray_starts_is_an_interrupt(monkeypatch, tmp_path):
    """ray.init installs its own SIGTERM handler, sys.exit(15): a SIGTERM in that window
    ended the run with status 15, no message, and Ray's shutdown skipped."""
    import runner.distributed
    from runner import ray_start

    def init_like_ray(ray, cfg):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(15))  # as ray.init does
        os.kill(os.getpid(), signal.SIGTERM)

    def interrupt(signum, frame):  # launch.py's: SIGTERM ends the run as Ctrl-C does
        raise KeyboardInterrupt

    ran = []
    # What run_ray sets for the Ray it starts, undone after the test: left in os.environ,
    # RAY_AUTH_MODE=token reached the local Ray instances of later tests, whose GCS then
    # wanted a token that their driver (its auth mode read earlier) did not send.
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_COLOR_PREFIX", "0")
    monkeypatch.setattr(ray_start, "init_ray", init_like_ray)
    monkeypatch.setattr(runner.distributed, "run_distributed", lambda *a: ran.append(a))
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            ray_start.run_ray(Config(), str(tmp_path))
        assert signal.getsignal(signal.SIGTERM) is interrupt  # ours again, not Ray's
    finally:
        signal.signal(signal.SIGTERM, before)
    assert ran == []


@pytest.mark.parametrize("mode", [None, "token"])
def test_a_refused_join_says_what_a_token_cluster_needs(monkeypatch, mode):
    """Ray sends no token to an explicit --address unless RAY_AUTH_MODE=token: a token
    cluster then refused the join, and the error told the user to start a running cluster."""
    from runner import ray_start
    from runner.errors import RayUnreachable

    class RefusingRay:
        def init(self, **kwargs):
            raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6379")

    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    cfg = Config()
    cfg.run.address = "192.0.2.2:6379"
    with pytest.raises(RayUnreachable) as err:
        ray_start.init_ray(RefusingRay(), cfg)
    message = str(err.value)
    assert "\n" not in message and "192.0.2.2:6379" in message
    assert ("RAY_AUTH_MODE=token" in message) == (mode is None)


def test_what_ray_left_in_its_node_groups_is_ended(monkeypatch):
    """A Ctrl-C as the raylet started its agents left them running, re-parented to init:
    the processes Ray starts are recorded, and their groups emptied after shutdown."""
    import subprocess

    from ray._private import services

    from runner import ray_start
    from tests.helpers import wait_until

    monkeypatch.setattr(services, "ConsolePopen", subprocess.Popen)
    monkeypatch.setattr(ray_start, "node_groups", [])
    with ray_start.own_process_groups():  # a "raylet" that starts an "agent" in its group
        raylet = services.ConsolePopen(["sh", "-c", "sleep 60 & exec sleep 60"])
    assert ray_start.node_groups == [raylet.pid] and os.getpgid(raylet.pid) == raylet.pid
    assert wait_until(lambda: len(members(raylet.pid)) == 2, 10)
    ray_start.end_groups(ray_start.node_groups)
    raylet.wait(timeout=10)
    assert wait_until(lambda: not members(raylet.pid), 10) and ray_start.node_groups == []
    ray_start.end_groups([raylet.pid])  # a group already gone is no error


def members(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def test_a_token_cluster_refuses_an_explicit_address_at_once(monkeypatch):
    """Without RAY_AUTH_MODE=token an explicit --address sends no token: ray.init retried
    the refused join for 30 s, a warning line a second, before the one-line error."""
    import ray as real_ray

    from runner import ray_start
    from runner.errors import RayUnreachable

    class Gcs:
        def __init__(self, address):
            raise real_ray.exceptions.AuthenticationError("InvalidAuthToken")

    class TokenClusterRay:
        exceptions = real_ray.exceptions
        _raylet = type("raylet", (), {"GcsClient": Gcs})

        def init(self, **kwargs):
            raise AssertionError("ray.init was called: it retries for 30 s")

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    cfg = Config()
    cfg.run.address = "192.0.2.2:6379"
    with pytest.raises(RayUnreachable) as err:
        ray_start.init_ray(TokenClusterRay(), cfg)
    assert "token authentication" in str(err.value) and "RAY_AUTH_MODE=token" in str(err.value)
