"""--address checked before anything starts (no Ray import): an address where nothing
listens, or where something other than a Ray cluster answers, costs the user minutes of
ray.init's retries and warnings otherwise."""

from __future__ import annotations

import socket

# HTTP/2's opening: the client preface and an empty SETTINGS frame. A gRPC server (a Ray
# cluster's GCS, a Ray Client server) answers with a SETTINGS frame of its own.
H2_OPENING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS = 4  # the frame type, the fourth byte of a frame header


def address_problem(address: str | None, timeout_s: float = 5.0,
                    resumed: bool = False) -> str | None:
    """An unreachable `host:port` fails here within `timeout_s`, before Ray retries for
    minutes. A resumed run's address may come from its configuration.yaml: then the line
    also says how to go on without that cluster."""
    if not address or address == "auto" or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.removeprefix("ray://"), int(port)),
                                      timeout_s) as sock:
            other = not_grpc(sock)
    except (OSError, ValueError) as err:
        from runner.errors import venv_command

        saved = ("; a resumed run joins the cluster it was saved with: pass --address None "
                 "to go on in a fresh local Ray instance") if resumed else ""
        return (f"cannot reach the Ray cluster at {address} ({err}); start it with "
                f"`{venv_command('ray')} start --head` or fix --address{saved}")
    if other is None:
        return None
    what = ("a web server (HTTP/1), such as Ray's dashboard" if other.startswith(b"HTTP/")
            else "something other than gRPC")
    return (f"--address {address} is not a Ray cluster: {what} answers there; pass the "
            "address that `ray start --head` printed (port 6379 by default)")


def not_grpc(sock: socket.socket, timeout_s: float = 2.0) -> bytes | None:
    """The first bytes of what answers HTTP/2's opening on `sock` when that is a text
    protocol (a web server's HTTP/1 status line, a banner), which no Ray cluster speaks;
    None for binary answers (a gRPC server's SETTINGS frame, a TLS alert from a cluster
    with RAY_USE_TLS) and for silence: ray.init then finds out."""
    try:
        sock.sendall(H2_OPENING)
        sock.settimeout(timeout_s)
        reply = sock.recv(64)
    except OSError:
        return None
    if len(reply) < 4 or reply[3] == SETTINGS or not all(32 <= b < 127 for b in reply[:4]):
        return None
    return reply
