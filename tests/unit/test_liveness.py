"""The liveness probe automatic failover makes before it gives a primary up, against
servers on loopback that answer, never answer, or answer only some connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from drctl.node import liveness


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def serve(sock: socket.socket, ignore_first: int = 0) -> None:
    """Answer an SSLRequest as PostgreSQL does without TLS ('N'), after closing the
    first IGNORE_FIRST connections unanswered (a lossy link's lost replies)."""
    seen = 0
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            if conn.recv(8) == liveness.SSL_REQUEST and seen >= ignore_first:
                conn.sendall(b"N")
            seen += 1


@pytest.fixture
def server() -> Iterator[tuple[socket.socket, int]]:
    sock = listener()
    yield sock, sock.getsockname()[1]
    sock.close()


def test_a_running_server_answers_at_once(server: tuple[socket.socket, int]) -> None:
    sock, port = server
    threading.Thread(target=serve, args=(sock,), daemon=True).start()
    live = liveness.probe("pg1", "127.0.0.1", port, 2.0, 0.03)
    assert live.answered_after_s is not None and live.answered_after_s < 1.0
    assert live.host == "pg1" and live.attempts >= 1 and not live.error


def test_a_server_that_answers_only_later_connections_is_alive(
        server: tuple[socket.socket, int]) -> None:
    sock, port = server
    threading.Thread(target=serve, args=(sock, 5), daemon=True).start()
    live = liveness.probe("pg1", "127.0.0.1", port, 2.0, 0.03)
    assert live.answered_after_s is not None and live.attempts >= 6


def test_a_frozen_server_completes_handshakes_but_never_answers(
        server: tuple[socket.socket, int]) -> None:
    """Nobody accepts: the kernel completes each handshake into the backlog, as it does
    for a frozen PostgreSQL. That is no answer."""
    _, port = server
    live = liveness.probe("pg1", "127.0.0.1", port, 0.5, 0.03)
    assert live.answered_after_s is None and not live.error
    assert live.probed_s >= 0.5 and live.attempts >= 10


def test_nothing_listening_is_no_answer() -> None:
    sock = listener()
    port = sock.getsockname()[1]
    sock.close()
    live = liveness.probe("pg1", "127.0.0.1", port, 0.3, 0.03)
    assert live.answered_after_s is None and not live.error and live.attempts >= 5


def test_an_unknown_address_is_an_error_not_silence() -> None:
    live = liveness.probe("pg1", "no-such-host.invalid", 5432, 0.3, 0.03)
    assert live.error and live.attempts == 0 and live.answered_after_s is None
