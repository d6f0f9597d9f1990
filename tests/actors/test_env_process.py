"""What an env worker listens on, and how it picks its port."""

import socket

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
