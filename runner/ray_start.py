"""Ray mode's start and end: a fresh local Ray instance (or the cluster at --address), the
run on it, and Ray shut down whatever happens. Imported only in Ray mode.

The fresh instance's processes (GCS, raylet, and through it the actors and their envs)
each get a process group of their own: a SIGTERM sent to the driver's group (Slurm's
scancel, systemd, `kill -TERM -PGID`) then reaches the driver alone, which saves and
shuts Ray down, instead of killing the learner before it can be saved. They still die
with the driver when it is killed: Ray starts them with PR_SET_PDEATHSIG. After
ray.shutdown() whatever is left in those groups is killed: a Ctrl-C just as the raylet
started its agents (DashboardAgent, RuntimeEnvAgent, in the raylet's group) left them
running without a parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from actors.signals import signals_deferred
from runner.errors import RayUnreachable, venv_command

# The process groups of the fresh local instance's node processes (own_process_groups).
node_groups: list[int] = []


def run_ray(cfg, run_dir: str):
    """Start (or join) Ray, train on it, and always shut it down."""
    if cfg.run.address is None:
        # Token authentication, Ray's default for a new local instance, said explicitly (and
        # before Ray reads its config at import): Ray then starts without a WARNING about it.
        # docs/security.md says what it means.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        # Ray colours the "(EnvWorkerActor pid=...)" prefix of the actors' lines even in
        # a log file, where it reads as escape codes; it reads this when it prints.
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    with signals_deferred():  # Ctrl-C mid-import left Ray's exit handler a traceback
        import ray

    from runner.distributed import run_distributed

    ours = signal.getsignal(signal.SIGTERM)  # launch.py's: SIGTERM is an interrupt
    try:
        try:
            init_ray(ray, cfg)
        except SystemExit as stop:  # ray.init's own SIGTERM handler is sys.exit(15)
            if stop.code != signal.SIGTERM:
                raise
            raise KeyboardInterrupt from None  # one line and status 130, as elsewhere
        finally:
            signal.signal(signal.SIGTERM, ours)
        return run_distributed(cfg, os.path.abspath(run_dir))
    finally:
        try:
            # A second Ctrl-C inside shutdown cut it short: Ray's core worker then ended
            # the process with status 1, before our clean-up. Held until it is done.
            with signals_deferred():
                ray.shutdown()
        finally:
            end_groups(node_groups)


def init_ray(ray, cfg) -> None:
    """A fresh local instance, or the cluster at --address; RayUnreachable (one line)."""
    if cfg.run.address is None:
        # address="local": a fresh instance; a bare init() could join a stale cluster.
        # Loopback as the node address; no dashboard (docs/security.md: what listens where).
        try:
            with own_process_groups():
                ray.init(address="local", include_dashboard=False, log_to_driver=True,
                         configure_logging=True, logging_level="warning",
                         _node_ip_address="127.0.0.1")
        except Exception as err:  # Ray's start-up failures come as bare Exceptions
            raise RayUnreachable(f"the local Ray instance did not start "
                                 f"({str(err).splitlines()[0]}); try again when the machine "
                                 "is less loaded, or use --mode local") from None
        return
    if token_refused(ray, cfg.run.address):  # ray.init would retry it for 30 s, a line a second
        raise RayUnreachable(f"the Ray cluster at {cfg.run.address!r} uses token "
                             "authentication and refused this run without a token"
                             f"{token_hint()}")
    try:
        ray.init(address=cfg.run.address, log_to_driver=True, logging_level="warning")
    except (ConnectionError, RuntimeError) as err:
        raise RayUnreachable(f"cannot join the Ray cluster at {cfg.run.address!r} "
                             f"({str(err).splitlines()[0]}); check that it runs "
                             f"(`{venv_command('ray')} status --address {cfg.run.address}`) "
                             "and fix --address"
                             f"{token_hint()}") from None
    if cfg.learner.device == "cuda" and not ray.cluster_resources().get("GPU"):
        ray.shutdown()
        raise RayUnreachable("--device cuda but the Ray cluster has no GPU; use --device "
                             "auto or cpu")


def token_refused(ray, address: str) -> bool:
    """Whether the cluster at an explicit `address` refuses us for want of a token: asked
    once, in a second, before ray.init (which retries for 30 s, logging each refusal)."""
    if address == "auto" or address.startswith("ray://") or \
            os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return False
    refused = getattr(getattr(ray, "exceptions", None), "AuthenticationError", None)
    client = getattr(getattr(ray, "_raylet", None), "GcsClient", None)
    if refused is None or client is None:  # another Ray: ray.init finds out
        return False
    try:
        client(address=address)
    except refused:
        return True
    except Exception:  # anything else: ray.init says what it is
        return False
    return False


def token_hint() -> str:
    """Ray sends its token to an explicit --address only with RAY_AUTH_MODE=token (so a
    local token never leaks to another host): without it, a token cluster refuses us."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return ("; a cluster started with token authentication also needs RAY_AUTH_MODE=token "
            "and its token (~/.ray/auth_token or RAY_AUTH_TOKEN) here")


@contextlib.contextmanager
def own_process_groups():
    """Every process Ray starts in the block leads a process group of its own (Ray 2.60
    starts its node's processes through services.ConsolePopen; Popen's process_group=0)."""
    from ray._private import services

    original = getattr(services, "ConsolePopen", None)
    if original is None:  # another Ray: its processes stay in our group, as before
        yield
        return

    class OwnGroupPopen(original):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("process_group", 0)
            super().__init__(*args, **kwargs)
            node_groups.append(self.pid)

    services.ConsolePopen = OwnGroupPopen
    try:
        yield
    finally:
        services.ConsolePopen = original


def end_groups(groups: list[int]) -> None:
    """SIGKILL what is left in `groups` (Ray has shut down: anything there is an orphan)."""
    while groups:
        try:
            os.killpg(groups.pop(), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # gone already, as after a clean shutdown
