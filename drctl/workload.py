"""Client-side workloads for `drctl drill`: a SQL writer through the VIP and an application
probe through the demo application. Each records every outcome with a monotonic timestamp;
nothing here trusts the server's word for what was acknowledged."""

from __future__ import annotations

import http.cookiejar
import itertools
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any


class SqlWriter:
    """Inserts unique ids through the VIP; an id counts only once its commit returned.
    The one writer of the drill, the integration tests and the benchmarks (START_ID: the
    first id; by default one derived from the clock, unique per run)."""

    def __init__(self, connect, table: str = "app.drill_writes", rate: float = 100.0,
                 start_id: int | None = None):
        self.connect = connect
        self.table = table
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.run_id = int(time.time() * 1000) * 1000 if start_id is None else start_id
        self.next_id = self.run_id
        self.acked: list[tuple[float, int]] = []
        self.errors: list[tuple[float, str]] = []
        self.max_wait_s = 0.0  # the longest single attempt, connection included
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sql-writer")

    def prepare(self, connect=None) -> None:
        """Create the writer's table where it writes (CONNECT: where it will write next)."""
        with (connect or self.connect)() as conn:
            conn.execute(f"create table if not exists {self.table} "
                         "(id bigint primary key, at timestamptz default now())")
            conn.commit()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            i = self.next_id
            self.next_id += 1  # never reuse an id whose outcome may be unknown
            began = time.monotonic()
            try:
                if conn is None:
                    conn = self.connect(connect_timeout=2)
                conn.execute(f"insert into {self.table} (id) values (%s)", (i,))
                conn.commit()
                now = time.monotonic()
                self.max_wait_s = max(self.max_wait_s, now - began)
                self.acked.append((now, i))
                time.sleep(self.interval)
            except Exception as exc:  # any failure: reconnect, the VIP may have moved
                now = time.monotonic()
                self.max_wait_s = max(self.max_wait_s, now - began)
                self.errors.append((now, type(exc).__name__))
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.05)

    def wait_for_acks(self, n: int, timeout: float = 30) -> None:
        """Wait until N more writes than now are acknowledged (AssertionError past
        TIMEOUT, naming the errors seen)."""
        deadline = time.monotonic() + timeout
        start = len(self.acked)
        while len(self.acked) < start + n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {n} acknowledged writes within {timeout} s "
                                     f"({len(self.errors)} errors)")
            time.sleep(0.05)

    def longest_gap(self) -> float:
        """The longest time between two acknowledged writes, in seconds."""
        times = [t for t, _ in self.acked]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def missing(self, connect) -> list[int]:
        ids = {i for _, i in self.acked}
        if not ids:
            return []
        with connect() as conn:
            rows = conn.execute(f"select id from {self.table} where id between %s and %s",
                                (min(ids), max(ids))).fetchall()
        return sorted(ids - {r[0] for r in rows})


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


class NameResolver:
    """The service's name as a client resolves it: asked of its DNS server, each answer
    kept for its TTL. Every change of address is recorded (t, address), for the report."""

    def __init__(self, lookup: Callable[[], tuple[list[str], int | None, str]]):
        self._lookup = lookup
        self._address: str | None = None
        self._until = 0.0
        self.moves: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def address(self) -> str | None:
        with self._lock:
            now = time.monotonic()
            if now >= self._until:
                found, ttl, _error = self._lookup()
                address = found[0] if found else None
                self._until = now + (ttl if ttl is not None else 1)
                if address != self._address:
                    self.moves.append({"t": now, "address": address})
                self._address = address
            return self._address


class AppProbe:
    """Registers a new unique user and logs in, at a steady rate, through the app. With a
    RESOLVER, BASE_URL's host is the service's name and each request goes to the address it
    resolves to then (no knowledge of the topology); results record that address."""

    def __init__(self, base_url: str, rate: float = 2.0, timeout: float = 10.0,
                 resolver: NameResolver | None = None):
        self.resolver = resolver
        self._last_url: str | None = None
        self.base = base_url.rstrip("/")
        self.bases = [self.base]  # every address it used, in order (see move)
        self.interval = 1.0 / rate if rate > 0 else 1.0
        self.timeout = timeout
        self.prefix = "drill" + uuid.uuid4().hex[:8]
        self.results: list[dict[str, Any]] = []  # t, action, ok, status, ms, user
        self.registered: list[str] = []
        self._accounts: list[tuple[float, str, str]] = []  # (registered at, user, password)
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="app-probe")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def registrations(self) -> list[tuple[float, str]]:
        """(when its registration was acknowledged, on the monotonic clock; user) of every
        account registered: registrations are acknowledged writes too."""
        return [(t, user) for t, user, _password in self._accounts]

    def move(self, base_url: str) -> None:
        """From the next request on, use another address (users sent elsewhere by DNS)."""
        self.base = base_url.rstrip("/")
        self.bases.append(self.base)

    def _opener(self):
        return urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _url(self, path: str) -> str | None:
        if self.resolver is None:
            return self.base + path
        address = self.resolver.address()
        if address is None:
            return None
        parts = urllib.parse.urlsplit(self.base)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{address}{port}{path}"

    def _call(self, opener, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        url = self._url(path)
        self._last_url = url
        if url is None:
            return 0, "the service's name does not resolve"
        try:
            with opener.open(url, data=data, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    def _record(self, t0: float, action: str, status: int, ok: bool, user: str,
                why: str = "") -> None:
        """One request's outcome; WHY, for a failed one: which call and what it got."""
        address = urllib.parse.urlsplit(self._last_url or "").hostname
        self.results.append({"t": t0, "action": action, "status": status, "ok": ok,
                             "ms": round((time.monotonic() - t0) * 1000, 1), "user": user,
                             "address": address, **({"why": why[:200]} if why else {})})

    @staticmethod
    def _why(call: str, status: int, body: str) -> str:
        """What a failed call got: the client's error (no HTTP answer), or the status."""
        return f"{call}: {body.strip() if status == 0 else f'HTTP {status}'}"

    # a returning user registered at least this long ago (replicated to every standby
    # by then, in any mode: their login reads, it needs no primary)
    RETURNING_AFTER_S = 3.0

    def cycle(self) -> None:
        """One new user: GET the form, register, log in again from a fresh browser. Then a
        returning user, registered earlier, logs in (action "return"): a page that only
        reads, which goes on while the primary is gone."""
        self._n += 1
        user = f"{self.prefix}_{self._n}"
        password = uuid.uuid4().hex
        if self.register(user, password):
            self.registered.append(user)
            self._accounts.append((time.monotonic(), user, password))
            self.login(user, password)
        now = time.monotonic()
        earlier = [a for a in self._accounts if now - a[0] >= self.RETURNING_AFTER_S]
        if earlier:
            _, who, secret = earlier[self._n % len(earlier)]
            self.login(who, secret, action="return")

    def register(self, user: str, password: str) -> bool:
        """Register USER as a browser would (form, then post); True when the app shows the
        new user logged in. Recorded in results."""
        opener = self._opener()
        t0 = time.monotonic()
        status, body = self._call(opener, "/register")
        m, k = _CSRF.search(body), _KEY.search(body)
        if status != 200 or not m or not k:
            self._record(t0, "register", status, False, user,
                         self._why("GET /register", status, body))
            return False
        status, body = self._call(opener, "/register", {
            "csrf": m.group(1), "idempotency_key": k.group(1), "username": user,
            "password": password})
        ok = status == 200 and f'id="username">{user}<' in body
        self._record(t0, "register", status, ok, user,
                     "" if ok else self._why("POST /register", status, body))
        return ok

    def login(self, user: str, password: str, action: str = "login") -> bool:
        """Log USER in from a fresh browser; True when the app shows them logged in."""
        opener = self._opener()
        t0 = time.monotonic()
        status, body = self._call(opener, "/login")
        m = _CSRF.search(body)
        if status != 200 or not m:
            self._record(t0, action, status, False, user, self._why("GET /login", status, body))
            return False
        status, body = self._call(opener, "/login", {"csrf": m.group(1), "username": user,
                                                      "password": password})
        ok = status == 200 and f'id="username">{user}<' in body
        self._record(t0, action, status, ok, user,
                     "" if ok else self._why("POST /login", status, body))
        return ok

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            self.cycle()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - start)))
