"""Run the headless Drone: `python -m envs.drone --mlagents-port 5004` (editor mode).

The stock client launches it through `envs/drone/Drone.x86_64` with the arguments it gives
a Unity player: `-nographics -batchmode --mlagents-port P [-logFile F] [additional_args]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

# gRPC's INFO lines (e.g. a GOAWAY at close) are noise on the client's inherited stderr.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from envs import protobuf_compat  # noqa: E402  (importing envs installs the fast path)
from envs.drone.server import DroneServer, ServerConfig  # noqa: E402

log = logging.getLogger("drone")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="Drone", description=__doc__)
    p.add_argument("--mlagents-port", type=int, default=5004, help="trainer's gRPC port")
    p.add_argument("--seed", type=int, default=None, help="overrides the trainer's seed")
    p.add_argument("--max-step", type=int, default=0, help="episode step limit, 0 = none")
    p.add_argument("--connect-timeout", type=float, default=300.0,
                   help="seconds to wait for the trainer's server")
    p.add_argument("--fault-nan-at-step", type=int, default=0,
                   help="fault injection for tests: send a NaN observation at this step")
    p.add_argument("-logFile", "-logfile", dest="log_file", default=None,
                   help="log file ('-' = stdout), as Unity's player takes it")
    # Unity player flags: accepted, meaningless for a headless process.
    p.add_argument("-nographics", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-batchmode", action="store_true", help=argparse.SUPPRESS)
    return p.parse_known_args(argv)


def setup_logging(log_file: str | None) -> None:
    if log_file and log_file != "-":
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s [Drone pid %(process)d] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def watch_parent(interval: float = 0.5) -> None:
    """Exit when the process that started us dies (we would be reparented)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                log.info("parent process %d is gone: exiting", parent)
                logging.shutdown()
                os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args, unknown = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_file)
    watch_parent()
    if args.max_step < 0:
        log.error("--max-step must be >= 0 (0 = no limit), got %d", args.max_step)
        return 2
    if unknown:
        log.info("ignoring unknown arguments, as a Unity player does: %s", " ".join(unknown))
    config = ServerConfig(
        port=args.mlagents_port, seed=args.seed, max_step=args.max_step,
        connect_timeout=args.connect_timeout, log_path=args.log_file or "",
        nan_at_step=args.fault_nan_at_step,
    )
    log.info("headless Drone on port %d (pid %d, protobuf route %s)", config.port, os.getpid(),
             protobuf_compat.route())
    server = DroneServer(config)
    reason = server.run()
    log.info(
        "stopping: %s after %d steps, %d episodes (%d at the goal)",
        reason, server.env_steps, server.episodes, server.successes,
    )
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    # gRPC's threads may linger for a while at interpreter exit; the close() of the
    # client waits on us, so leave at once.
    os._exit(code)
