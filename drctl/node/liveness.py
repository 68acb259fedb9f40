"""Is PostgreSQL running there? A burst of new connections, each asking a question only a
running server answers, at the moment automatic failover decides (drctl-auto validate).

A connection alone proves nothing: a frozen host's kernel still completes the TCP
handshake. An SSLRequest is answered (one byte, S or N) by PostgreSQL itself, before any
authentication, so no credentials are needed and nothing is logged as a failed login.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time

from drctl.rules.facts import Liveness

# What a client sends first to ask for TLS (PostgreSQL's protocol: length 8, code
# 1234.5679).
SSL_REQUEST = struct.pack("!II", 8, 80877103)


def probe(host: str, address: str, port: int, seconds: float, every_s: float) -> Liveness:
    """Probe ADDRESS:PORT for SECONDS: a new connection every EVERY_S, each sending an
    SSLRequest; stop at the first byte that comes back. Staggered connections, because a
    lost SYN is only sent again after a second and a lost request after 200 ms: on a
    lossy link some of them get through within the probe. A refused connection is no
    answer (nothing listens: no PostgreSQL there)."""
    start = time.monotonic()
    try:
        family, kind, proto, _, target = socket.getaddrinfo(address, port,
                                                            type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        return Liveness(host, 0.0, 0, None, f"{address}: {exc}")
    sel = selectors.DefaultSelector()
    attempts = 0
    next_try = start
    deadline = start + seconds
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return Liveness(host, round(now - start, 3), attempts, None)
            if now >= next_try:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                attempts += 1
                err = sock.connect_ex(target)
                if err in (0, errno.EINPROGRESS):
                    sel.register(sock, selectors.EVENT_WRITE, "connecting")
                else:
                    sock.close()
                next_try += every_s
            for key, _ in sel.select(max(0.0, min(deadline, next_try) - now)):
                conn = key.fileobj
                if not isinstance(conn, socket.socket):
                    continue
                if key.data == "connecting":
                    if conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        try:
                            conn.send(SSL_REQUEST)
                            sel.modify(conn, selectors.EVENT_READ, "asked")
                            continue
                        except OSError:
                            pass
                else:
                    try:
                        if conn.recv(1):
                            took = round(time.monotonic() - start, 3)
                            return Liveness(host, took, attempts, took)
                    except OSError:
                        pass
                sel.unregister(conn)
                conn.close()
    finally:
        for key in list(sel.get_map().values()):
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
        sel.close()
