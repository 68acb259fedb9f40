"""drctl's demo application: register, log in, log out, a private profile, /health.

It reaches PostgreSQL through the VIP over TLS (verify-full) as its own least-privileged
role, with a fresh connection per request, so a new primary needs no restart. A request
whose connection breaks is retried within a bounded budget; a registration carries an
idempotency key, so a retry after an unknown commit outcome neither registers twice nor
tells its own user that the name is taken. Sessions are signed cookies: they survive a
database failover. Configuration comes from the environment (the systemd unit's
EnvironmentFile): DEMO_DB_HOST, DEMO_DB_PORT, DEMO_DB_NAME, DEMO_DB_USER, DEMO_DB_PASSWORD,
DEMO_DB_CA, DEMO_SECRET_KEY, DEMO_RETRY_BUDGET_S, DEMO_FILES_DIR, DEMO_PICTURE_MAX_BYTES,
DEMO_DB_READ_HOSTS, DEMO_DB_READ_PORT.

The pages that only read (log in, the profile) ask any database node of the site first
(DEMO_DB_READ_HOSTS, straight, TLS verify-full): people keep logging in while the
primary is gone, before and during a failover. A row not found there (a registration
not replicated yet) is asked of the primary, as every write is.

Data that is not in the database: each user may upload a profile picture (PNG or JPEG),
kept as one file per user in DEMO_FILES_DIR. The file is written to a temporary name and
renamed, so a copy taken at any moment (drctl's file sync) sees a whole picture or none.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHash, VerificationError
from flask import Flask, abort, jsonify, redirect, request, session

log = logging.getLogger("drctl-demo-app")
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
RETRY_BUDGET_S = float(os.environ.get("DEMO_RETRY_BUDGET_S", "5"))
FILES_DIR = os.environ.get("DEMO_FILES_DIR", "")
PICTURE_MAX_BYTES = int(os.environ.get("DEMO_PICTURE_MAX_BYTES", str(256 * 1024)))
# The first bytes of the picture formats accepted, and the type each is served as.
PICTURE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
SCHEMA = """
create table if not exists app.users (
  id bigserial primary key,
  username text not null unique,
  password_hash text not null,
  idempotency_key uuid not null unique,
  created_at timestamptz not null default now()
)"""

# The site's database nodes for the pages that only read; empty: they read from the
# primary like the rest. The node that answered last is tried first.
READ_HOSTS = [h for h in os.environ.get("DEMO_DB_READ_HOSTS", "").split(",") if h.strip()]
READ_PORT = int(os.environ.get("DEMO_DB_READ_PORT", "5432"))

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("DEMO_SECRET_KEY", ""),
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    MAX_CONTENT_LENGTH=PICTURE_MAX_BYTES + 16 * 1024,
)
hasher = PasswordHasher()
_failures: dict[str, tuple[int, float]] = {}
_failures_lock = threading.Lock()
_schema_ready = threading.Event()
_read_first = {"host": ""}  # the read host that answered last
_read_lock = threading.Lock()


class Unavailable(Exception):
    """The database stayed unreachable for the whole retry budget."""


def connect(timeout: int | None = None) -> psycopg.Connection:
    # Straight to the VIP: TLS verify-full, and the options set the statement timeout.
    # Through the pooler on this host (DEMO_DB_SSLMODE=disable, on loopback): PgBouncer
    # refuses startup options and sets the timeout itself, and a connection may wait in it
    # for the length of a switchover's pause (DEMO_DB_CONNECT_TIMEOUT). TIMEOUT, when
    # given, bounds the wait instead (/health must answer within seconds either way).
    options = os.environ.get("DEMO_DB_OPTIONS", "-c statement_timeout=5000")
    return psycopg.connect(
        host=os.environ["DEMO_DB_HOST"], port=int(os.environ.get("DEMO_DB_PORT", "5432")),
        dbname=os.environ.get("DEMO_DB_NAME", "app"), user=os.environ.get("DEMO_DB_USER", "app"),
        password=os.environ["DEMO_DB_PASSWORD"],
        sslmode=os.environ.get("DEMO_DB_SSLMODE", "verify-full"),
        sslrootcert=os.environ["DEMO_DB_CA"],
        connect_timeout=timeout or int(os.environ.get("DEMO_DB_CONNECT_TIMEOUT", "2")),
        application_name="drctl-demo-app",
        # a frozen or vanished server is noticed within seconds, not never (README:
        # "Connecting applications to a drctl VIP")
        keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2,
        tcp_user_timeout=3000, target_session_attrs="read-write",
        # no server-side prepared statements: a transaction-pooling PgBouncer would hand
        # the next statement to another server connection
        prepare_threshold=None,
        **({"options": options} if options else {}))


def connect_read() -> psycopg.Connection:
    """Any node of the site that answers, straight (the pooler's path leads only to the
    primary), first the one that answered last: a node that does not answer costs its
    connect timeout (2 s) once, not at every request. One host at a time: psycopg 3.1
    counts connect_timeout once for a whole list of hosts, so the second would never be
    tried after a first that does not answer."""
    with _read_lock:
        first = _read_first["host"]
    error: psycopg.Error | None = None
    for host in sorted(READ_HOSTS, key=lambda h: h != first):
        try:
            conn = psycopg.connect(
                host=host, port=READ_PORT, dbname=os.environ.get("DEMO_DB_NAME", "app"),
                user=os.environ.get("DEMO_DB_USER", "app"),
                password=os.environ["DEMO_DB_PASSWORD"], sslmode="verify-full",
                sslrootcert=os.environ["DEMO_DB_CA"], connect_timeout=2,
                application_name="drctl-demo-app-read", keepalives=1, keepalives_idle=2,
                keepalives_interval=1, keepalives_count=2, tcp_user_timeout=3000,
                options="-c statement_timeout=3000")
        except psycopg.Error as exc:
            error = exc
            continue
        with _read_lock:
            _read_first["host"] = host
        return conn
    raise error or psycopg.OperationalError("no read host is configured")


def read_row(query: str, args: tuple[Any, ...]) -> Any:
    """One row a page only reads: from any node of the site, else (no node answered, or
    the row is not there yet) from the primary, within the retry budget."""
    def work(conn: psycopg.Connection) -> Any:
        return conn.execute(query, args).fetchone()

    if READ_HOSTS:
        try:
            with connect_read() as conn:
                row = work(conn)
            if row is not None:
                return row
        except psycopg.Error as exc:
            log.info("no node of the site answered a read (%s): asking the primary",
                     str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
    return with_db(work)


def with_db(work: Callable[[psycopg.Connection], Any]) -> Any:
    """Run `work` in a transaction on the primary; retry on a broken or read-only connection
    until the budget is spent. `work` must be safe to repeat (see register)."""
    deadline = time.monotonic() + RETRY_BUDGET_S
    delay = 0.1
    while True:
        try:
            with connect() as conn:
                if not _schema_ready.is_set():
                    conn.execute(SCHEMA)
                    conn.commit()
                    _schema_ready.set()
                result = work(conn)
                conn.commit()
                return result
        except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction,
                psycopg.errors.AdminShutdown) as exc:
            if time.monotonic() + delay > deadline:
                log.warning("database unavailable after %.1f s: %s", RETRY_BUDGET_S, exc)
                raise Unavailable(str(exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.8)


# --- pages ----------------------------------------------------------------------------------

STYLE = """body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;color:#222}
form{display:grid;gap:.6rem}input,button{font-size:1rem;padding:.45rem}
.err{background:#fde8e8;border:1px solid #e99;padding:.6rem}
.ok{background:#e8f6ea;border:1px solid #9c9;padding:.6rem}nav a{margin-right:1rem}"""


def page(title: str, body: str, status: int = 200):
    user = session.get("user")
    nav = ('<nav><a href="/">home</a>'
           + (f'<a href="/profile">profile</a><form method="post" action="/logout" '
              f'style="display:inline"><input type="hidden" name="csrf" value="{csrf_token()}">'
              f'<button id="logout">log out {html.escape(user)}</button></form>' if user else
              '<a href="/register">register</a><a href="/login">log in</a>') + "</nav>")
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body>{nav}<h1>{html.escape(title)}</h1>{body}"
           "</body></html>")
    return doc, status, {"Content-Type": "text/html; charset=utf-8",
                         "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'",
                         "X-Frame-Options": "DENY"}


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, "the form expired or did not come from this site: reload it and try again")


def error(msg: str) -> str:
    return f'<p class="err" role="alert">{html.escape(msg)}</p>'


def unavailable_page():
    return page("Please try again", error("The service is briefly unavailable (the database is "
                                          "switching servers). Nothing was lost: please try "
                                          "again in a few seconds."), 503)


def register_form(msg: str = "", username: str = "") -> str:
    return (f"{msg}<form method=post action=/register>"
            f'<input type="hidden" name="csrf" value="{csrf_token()}">'
            f'<input type="hidden" name="idempotency_key" value="{uuid.uuid4()}">'
            f'<label>Username <input name="username" value="{html.escape(username)}" '
            'autocomplete="username" required></label>'
            '<label>Password <input name="password" type="password" '
            'autocomplete="new-password" required></label>'
            '<button id="register">Register</button></form>'
            "<p>3 to 32 characters: lower-case letters, digits, _ . -; a password of 8 to 128 "
            "characters.</p>")


def login_form(msg: str = "") -> str:
    return (f"{msg}<form method=post action=/login>"
            f'<input type="hidden" name="csrf" value="{csrf_token()}">'
            '<label>Username <input name="username" autocomplete="username" required></label>'
            '<label>Password <input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            '<button id="login">Log in</button></form>')


@app.get("/")
def home():
    user = session.get("user")
    body = (f'<p class="ok">Logged in as <b>{html.escape(user)}</b>.</p>' if user else
            '<p>A demo of an application that keeps serving while its PostgreSQL primary '
            'fails over. <a href="/register">Register</a> or <a href="/login">log in</a>.</p>')
    return page("drctl demo", body)


@app.get("/register")
def register_get():
    return page("Register", register_form())


@app.post("/register")
def register_post():
    check_csrf()
    username = request.form.get("username", "").strip().lower()
    password = request.form.get("password", "")
    key = request.form.get("idempotency_key", "")
    try:
        key = str(uuid.UUID(key))
    except ValueError:
        return page("Register", register_form(error("The form is incomplete: reload it.")), 400)
    if not USERNAME_RE.match(username):
        return page("Register", register_form(error(
            "Username: 3 to 32 characters, lower-case letters, digits, _ . - only."),
            username[:32]), 400)
    if not 8 <= len(password) <= 128:
        return page("Register", register_form(error(
            "Password: 8 to 128 characters."), username), 400)
    pw_hash = hasher.hash(password)

    def work(conn):
        row = conn.execute(
            "insert into app.users (username, password_hash, idempotency_key) "
            "values (%s, %s, %s) on conflict do nothing returning id",
            (username, pw_hash, key)).fetchone()
        if row:
            return "created"
        # nothing inserted: either this very request committed before a broken connection
        # (its key is there), or the name belongs to someone else
        mine = conn.execute("select username from app.users where idempotency_key = %s",
                            (key,)).fetchone()
        if mine and mine[0] == username:
            return "created"
        return "taken"

    try:
        outcome = with_db(work)
    except Unavailable:
        return unavailable_page()
    if outcome == "taken":
        return page("Register", register_form(error("That username is taken."), username), 409)
    session.clear()
    session["user"] = username
    return redirect("/profile", code=303)


def _slow_down(who: str) -> None:
    with _failures_lock:
        count, _ = _failures.get(who, (0, 0.0))
    if count >= 3:
        time.sleep(min(0.5 * (count - 2), 3.0))


def _record(who: str, failed: bool) -> None:
    with _failures_lock:
        if failed:
            count, _ = _failures.get(who, (0, 0.0))
            _failures[who] = (count + 1, time.time())
            if len(_failures) > 10000:
                _failures.clear()
        else:
            _failures.pop(who, None)


@app.get("/login")
def login_get():
    return page("Log in", login_form())


@app.post("/login")
def login_post():
    check_csrf()
    username = request.form.get("username", "").strip().lower()[:64]
    password = request.form.get("password", "")[:256]
    who = f"{request.remote_addr}/{username}"
    _slow_down(who)
    try:
        row = read_row("select password_hash from app.users where username = %s",
                       (username,))
    except Unavailable:
        return unavailable_page()
    ok = False
    if row:
        try:
            ok = hasher.verify(row[0], password)
        except (VerificationError, InvalidHash):
            ok = False
    else:
        hasher.hash(password)  # same work either way: timing says nothing about the name
    _record(who, not ok)
    if not ok:
        return page("Log in", login_form(error("Wrong username or password.")), 401)
    session.clear()
    session["user"] = username
    return redirect("/profile", code=303)


@app.post("/logout")
def logout():
    check_csrf()
    session.clear()
    return redirect("/", code=303)


def picture_path(user: str) -> str:
    """The user's picture file (user names match USERNAME_RE: no path separators)."""
    if not FILES_DIR or not USERNAME_RE.match(user):
        abort(404)
    return os.path.join(FILES_DIR, f"{user}.picture")


def picture_type(data: bytes) -> str | None:
    return next((kind for magic, kind in PICTURE_TYPES if data.startswith(magic)), None)


def picture_form(msg: str = "") -> str:
    if not FILES_DIR:
        return ""
    have = os.path.exists(picture_path(session["user"]))
    return (('<p><img id="picture" src="/profile/picture" alt="your picture" '
             'style="max-width:8rem"></p>' if have else '<p id="no-picture">No picture yet.</p>')
            + f"{msg}<form method=post action=/profile/picture enctype=multipart/form-data>"
            f'<input type="hidden" name="csrf" value="{csrf_token()}">'
            '<label>Profile picture (PNG or JPEG, up to '
            f'{PICTURE_MAX_BYTES // 1024} KiB) <input type="file" name="picture" '
            'accept="image/png,image/jpeg" required></label>'
            '<button id="upload">Upload</button></form>')


@app.get("/profile")
def profile():
    return _profile_page()


def _profile_page(msg: str = "", status: int = 200):
    user = session.get("user")
    if not user:
        return redirect("/login", code=303)
    try:
        row = read_row("select username, created_at from app.users where username = %s",
                       (user,))
    except Unavailable:
        return unavailable_page()
    if not row:
        session.clear()
        return redirect("/login", code=303)
    return page("Profile", f'<p class="ok">Username: <b id="username">{html.escape(row[0])}'
                           f"</b></p><p>Registered {row[1]:%Y-%m-%d %H:%M:%S %Z}.</p>"
                           + picture_form(msg), status)


@app.post("/profile/picture")
def picture_post():
    check_csrf()
    user = session.get("user")
    if not user:
        return redirect("/login", code=303)
    upload = request.files.get("picture")
    data = upload.read(PICTURE_MAX_BYTES + 1) if upload else b""
    if not data:
        return _profile_page(error("Choose a picture to upload."), 400)
    if len(data) > PICTURE_MAX_BYTES:
        return _profile_page(error(f"The picture is larger than {PICTURE_MAX_BYTES // 1024} "
                                   "KiB; nothing was changed."), 400)
    if picture_type(data) is None:
        return _profile_page(error("That is not a PNG or JPEG picture; nothing was changed."),
                             400)
    final = picture_path(user)
    tmp = os.path.join(FILES_DIR, f".{user}.{secrets.token_hex(6)}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    log.info("picture of %s stored (%d bytes)", user, len(data))
    return redirect("/profile", code=303)


@app.get("/profile/picture")
def picture_get():
    user = session.get("user")
    if not user:
        return redirect("/login", code=303)
    try:
        with open(picture_path(user), "rb") as fh:
            data = fh.read(PICTURE_MAX_BYTES + 1)
    except FileNotFoundError:
        abort(404)
    kind = picture_type(data)
    if kind is None:
        abort(404)
    return data, 200, {"Content-Type": kind, "Cache-Control": "private, no-store",
                       "X-Content-Type-Options": "nosniff"}


@app.get("/alive")
def alive():
    """The application answers, without asking the database: what the application VIP's
    check asks every second (a new database connection a second per app host, with TLS and
    scram, would cost the database and the host more than the check is worth: whether the
    database answers is the same for every app host of a site, and /health reports it)."""
    return jsonify(alive=True)


@app.get("/health")
def health():
    start = time.monotonic()
    try:
        # 2 s (libpq's shortest), not the pooler's patience: callers (the status, the copy
        # of the files) wait 4-5 s for this answer, also when no primary answers behind the
        # pooler (another site's application while its site's VIP is held by nobody)
        with connect(timeout=2) as conn:
            server, in_recovery = conn.execute(
                "select host(inet_server_addr()), pg_is_in_recovery()").fetchone()
        return jsonify(ok=not in_recovery, database="reachable", server=server,
                       writable=not in_recovery,
                       latency_ms=round((time.monotonic() - start) * 1000, 1))
    except psycopg.Error as exc:
        return jsonify(ok=False, database="unreachable", error=str(exc).splitlines()[0][:200],
                       latency_ms=round((time.monotonic() - start) * 1000, 1)), 503


@app.errorhandler(400)
def bad_request(exc):
    return page("Bad request", error(getattr(exc, "description", "Bad request")), 400)


@app.errorhandler(413)
def too_large(exc):
    return page("Too large", error(f"The upload is larger than {PICTURE_MAX_BYTES // 1024} KiB; "
                                   "nothing was changed."), 413)


@app.errorhandler(500)
def server_error(exc):
    return page("Error", error("Something went wrong; nothing was changed. Please try again."),
                500)


if not app.config["SECRET_KEY"]:
    raise SystemExit("DEMO_SECRET_KEY is not set")
