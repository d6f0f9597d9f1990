"""What an env worker listens on, and how it picks its port."""

import socket
import time

import pytest

from actors.env_process import free_worker_id, port_free
from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from actors.config import NoiseConfig


# 127.0.0.1, the same as an IPv4-mapped IPv6 address, and ::1, as /proc/net/tcp* writes them
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                    found.add(address)
    return found


def test_the_env_server_listens_on_localhost_only():
    worker = EnvWorker(EnvConfig(), NoiseConfig(), worker_id=101, seed=0)
    try:
        found = listening_addresses(5005 + 101)
        assert found and found <= LOOPBACK, found  # never 0.0.0.0 or [::]
    finally:
        worker.close()


def test_free_worker_id_skips_busy_ports():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 5005 + 102))
        assert not port_free(5005 + 102)
        assert free_worker_id(5005, 102, stride=3) == 105
    assert free_worker_id(5005, 102, stride=3) == 102


def test_no_worker_id_past_the_last_port():
    """Port 65535 busy, and the next candidates past it: bind() raised OverflowError, a
    traceback, where the answer is the busy-port line."""
    from mlagents_envs.exception import UnityWorkerInUseException

    with socket.socket() as s:
        s.bind(("127.0.0.1", 65535))
        with pytest.raises(UnityWorkerInUseException) as raised:
            free_worker_id(65534, 1, stride=2)
    assert "ports 65535..65535" in str(raised.value)


def test_a_port_taken_between_the_check_and_the_bind_is_the_busy_port_error(monkeypatch):
    """grpcio raises RuntimeError where older releases returned 0: the race that lost the
    port came out as that bare RuntimeError."""
    from mlagents_envs.exception import UnityWorkerInUseException

    from actors.env_process import LocalhostCommunicator

    monkeypatch.setattr(LocalhostCommunicator, "check_port", lambda self, port: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 5005 + 103))
        s.listen()
        with pytest.raises(UnityWorkerInUseException):
            LocalhostCommunicator(worker_id=103, base_port=5005)


def test_a_short_timeout_wait_waits_without_spinning():
    """--timeout-wait under 10 s: the stock client polls in slices of timeout_wait // 10 = 0
    seconds, a busy loop that burned a whole core while an env took its time."""
    from mlagents_envs.exception import UnityTimeOutException

    from actors.env_process import LocalhostCommunicator

    communicator = LocalhostCommunicator(worker_id=103, base_port=5005, timeout_wait=2)
    checks = []
    try:
        cpu = time.thread_time()
        with pytest.raises(UnityTimeOutException, match="timeout_wait \\(2 s\\)"):
            communicator.poll_for_timeout(lambda: checks.append(1))  # no env ever answers
        cpu = time.thread_time() - cpu
    finally:
        communicator.close()
    assert cpu < 0.5, f"{cpu:.2f} s of CPU in a 2 s wait"  # spinning: about 2 s
    assert 1 <= len(checks) <= 3  # the env process is still checked on, once a second


@pytest.mark.parametrize("pickler", ["pickle", "process_worker", "ray"])
def test_the_busy_port_error_survives_the_trip_back_to_the_trainer(pickler):
    """A process worker (--overlap-envs) or a Ray worker sends its error pickled; the stock
    exception came back as 'Couldn't start ... worker number Couldn't start ... number 3'."""
    import pickle

    import ray.cloudpickle
    from mlagents_envs.exception import UnityWorkerInUseException

    from actors.worker_pipe import dumps

    dump, loads = {"pickle": (pickle.dumps, pickle.loads), "process_worker": (dumps, pickle.loads),
                   "ray": (ray.cloudpickle.dumps, ray.cloudpickle.loads)}[pickler]
    err = UnityWorkerInUseException(3)
    back = loads(dump(err))
    assert type(back) is UnityWorkerInUseException and str(back) == str(err)
    assert str(back).count("Couldn't start") == 1
