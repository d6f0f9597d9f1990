"""The process around a PlayerServer: Unity-player arguments, logging, parent watchdog.

The stock client launches a build with `-nographics -batchmode --mlagents-port P
[-logFile F] [additional_args]`. Every executable here accepts those, ignores (and logs)
arguments it does not know, as a Unity player does, and leaves at once when the trainer
closes, goes away, or dies.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Callable

# gRPC's INFO lines (e.g. a GOAWAY at close) are noise on the client's inherited stderr.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from envs import protobuf_compat  # noqa: E402  (importing envs installs the fast path)
from envs.unity_player.server import OutputTooLargeError, PlayerServer, ServerConfig  # noqa: E402
from envs.unity_player.simulation import Simulation  # noqa: E402

log = logging.getLogger("unity_player")


def player_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the arguments every player takes; add your own to it."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--mlagents-port", type=int, default=5004, help="trainer's gRPC port")
    p.add_argument("--seed", type=int, default=None, help="overrides the trainer's seed")
    p.add_argument("--connect-timeout", type=float, default=300.0,
                   help="seconds to wait for the trainer's server")
    p.add_argument("-logFile", "-logfile", dest="log_file", default=None,
                   help="log file ('-' = stdout), as Unity's player takes it")
    # Unity player flags: accepted, meaningless for a headless process.
    p.add_argument("-nographics", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-batchmode", action="store_true", help=argparse.SUPPRESS)
    return p


def setup_logging(title: str, log_file: str | None) -> None:
    """Log to the -logFile the client chose, else to stdout (Unity's player does the same)."""
    if log_file and log_file != "-":
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"%(asctime)s [{title} pid %(process)d] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Library warnings belong in the env's log, not on the trainer's terminal.
    logging.captureWarnings(True)


def watch_parent(interval: float = 0.5) -> None:
    """Exit when the process that started us dies (we would be reparented): the one our
    launcher names (launch.sh), else our parent now (started by hand)."""
    parent = int(os.environ.pop("UNITY_PLAYER_PARENT", "0")) or os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                log.info("parent process %d is gone: exiting", parent)
                logging.shutdown()
                os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def run_player(title: str, parser: argparse.ArgumentParser,
               make_simulation: Callable[[argparse.Namespace], Simulation],
               argv: list[str] | None = None) -> int:
    """Parse, build the simulation, serve the trainer; the process's exit code.

    `make_simulation` raises ValueError with a one-line message for bad arguments or an
    unsupported env: it is logged (and printed on stderr, which the trainer shares) and
    the process exits with 2 before it connects, so the client fails fast.
    """
    args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    setup_logging(title, args.log_file)
    watch_parent()
    if unknown:
        log.info("ignoring unknown arguments, as a Unity player does: %s", " ".join(unknown))
    try:
        simulation = make_simulation(args)
    except ValueError as err:
        log.error("%s", err)
        if args.log_file not in (None, "-"):  # else the log line is on the terminal already
            print(f"{title}: {err}", file=sys.stderr, flush=True)
        return 2
    config = ServerConfig(port=args.mlagents_port, seed=args.seed,
                          connect_timeout=args.connect_timeout, log_path=args.log_file or "")
    log.info("headless %s on port %d (pid %d, protobuf route %s)", simulation.name,
             config.port, os.getpid(), protobuf_compat.route())
    server = PlayerServer(simulation, config)
    try:
        reason = server.run()
    except OutputTooLargeError as err:
        log.error("%s: %s", type(err).__name__, err)  # the trainer's error line quotes it
        return 1
    except Exception:  # a broken simulation: say why, then exit non-zero like a crash
        log.exception("the simulation failed")
        return 1
    finally:
        simulation.close()
    log.info("stopping: %s after %d steps, %s", reason, server.steps, simulation.summary())
    return 0


def exit_now(code: int) -> None:
    """Leave at once: gRPC's threads may linger at interpreter exit, and the client's
    close() waits on us."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
