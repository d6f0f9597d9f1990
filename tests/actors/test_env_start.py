"""Why an env stopped, read from its log for the one-line error; what an exit leaves."""

import pytest
from mlagents_envs.exception import UnityEnvironmentException

from actors.config import EnvConfig
from actors.env_start import did_not_connect, last_error


def test_a_players_logged_error_is_found_without_its_prefix(tmp_path):
    """The Drone and the bridge log 'OutputTooLargeError: ...' behind their timestamp and
    pid: the line was missed, and a run with too many areas said only 'return code 1'."""
    log = tmp_path / "Player-0.log"
    log.write_text("2026-12-01 05:10:36,515 [Drone pid 6863] headless Drone on port 6650\n"
                   "2026-12-01 05:10:37,001 [Drone pid 6863] OutputTooLargeError: our message "
                   "of 7.0 MiB is over the trainer's gRPC limit (4 MiB): lower --num-areas\n")
    assert last_error(str(log)) == ("OutputTooLargeError: our message of 7.0 MiB is over the "
                                    "trainer's gRPC limit (4 MiB): lower --num-areas")


def test_an_env_that_exits_at_its_first_reset_says_what_its_log_ends_with(tmp_path):
    log = tmp_path / "Player-0.log"
    log.write_text("Traceback (most recent call last):\nValueError: the scene broke\n")
    err = did_not_connect(UnityEnvironmentException("Environment shut down with return "
                                                    "code 1."), EnvConfig(), str(log),
                          first_reset=True)
    assert str(err).startswith("exited at its first reset (return code 1): its log ends "
                               "with ValueError: the scene broke;"), err


def test_a_process_that_exits_with_a_client_mid_handshake_does_not_hang():
    """A Ray env worker made to exit while its env opened hung in Python's exit for good
    (found an hour later, an orphan): the stock client's gRPC handler thread waited on a
    pipe for a message the client would never send, and the exit joined that thread."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    probe = ("import concurrent.futures\n"
             "from actors.env_start import close_clients_at_exit\n"
             "from mlagents_envs.rpc_communicator import RpcCommunicator\n"
             "close_clients_at_exit()\n"
             f"client = RpcCommunicator(worker_id=0, base_port={port})\n"
             "pool = concurrent.futures.ThreadPoolExecutor(1)  # a handler, mid-handshake\n"
             "pool.submit(client.unity_to_external.Exchange, 'hello', None)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_opening_an_env_registers_the_exit_hook(monkeypatch):
    from actors import env_start

    registered = []
    monkeypatch.setattr(env_start, "close_clients_at_exit", lambda: registered.append(True))
    monkeypatch.setattr(env_start, "LocalUnityEnvironment",
                        lambda **kw: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # e.g. a Ctrl-C mid-handshake
        env_start.open_env(EnvConfig(), 0, 0, None)
    assert registered == [True]
