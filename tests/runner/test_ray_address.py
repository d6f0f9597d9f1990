"""--address checked before Ray starts (runner/ray_address.py)."""

import socketserver
import threading
import time

import pytest

from runner.ray_address import address_problem

GRPC_SETTINGS = bytes([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 64, 0, 0])  # a SETTINGS frame


def serving(reply: bytes | None):
    """A localhost server that answers every connection with `reply` (None: never)."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(64)
            if reply is None:
                time.sleep(3.0)
            else:
                self.request.sendall(reply)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("reply, what", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "a web server (HTTP/1), such as Ray's dashboard"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "something other than gRPC")])
def test_an_address_where_no_ray_cluster_answers_is_one_line(reply, what):
    """The dashboard's port (8265, the address Ray prints most visibly) or another service:
    ray.init retried for minutes, printing Ray's connection warnings, before it failed."""
    server = serving(reply)
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        line = address_problem(address)
    finally:
        server.shutdown()
    assert line == (f"--address {address} is not a Ray cluster: {what} answers there; pass "
                    "the address that `ray start --head` printed (port 6379 by default)")


TLS_ALERT = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32])  # a TLS server's "decode error"


@pytest.mark.parametrize("reply", [GRPC_SETTINGS, TLS_ALERT, None, b""])
def test_a_grpc_server_or_one_that_says_nothing_is_left_to_ray(reply):
    """A gRPC server (a GCS answers HTTP/2's opening with its SETTINGS) passes, and so do
    a TLS server (a cluster with RAY_USE_TLS answers plain bytes with an alert) and one that
    says nothing in time: ray.init decides, not a guess."""
    server = serving(reply)
    try:
        started = time.monotonic()
        assert address_problem(f"127.0.0.1:{server.server_address[1]}") is None
        assert time.monotonic() - started < 2.9  # the probe's wait, not the server's
    finally:
        server.shutdown()

