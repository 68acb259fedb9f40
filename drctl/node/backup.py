"""drctl's backup tool on a pgBackRest repository host (`drctl-backup`, a wrapper the
pgbackrest role installs around `drctl-node backup`).

One place for what drctl, the playbooks and the systemd timers do with the repository:

  drctl-backup backup --type full|diff|incr [--standby auto|yes|no]
  drctl-backup info
  drctl-backup restore --name NAME (--time T | --lsn L | --latest | --immediate) [--replace]
  drctl-backup drop --name NAME
  drctl-backup verify [--sql SQL] [--database DB]
  (each with --repo N: an object store this host backs up into, not its own repository)

Every command prints one JSON document on stdout; errors go to stderr with exit 1 (bad
input: exit 2) and change nothing. Runs as root or as the repository user; pgBackRest and
the scratch PostgreSQL instances always run as the repository user. The repository it
works on, its paths and its user come from the configuration (/etc/drctl/backup.json,
written by the pgbackrest role); a host holding repository N passes --repo=N to every
pgBackRest command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from drctl.node.common import DEFAULT_BACKUP_CONFIG as DEFAULT_CONFIG

LSN_RE = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


class Refused(Exception):
    """Bad input or a state that forbids the command: nothing was changed."""


@dataclass(frozen=True)
class BackupConfig:
    """backup.json as the pgbackrest role writes it."""

    stanza: str
    repo_user: str
    repo_path: str
    scratch_dir: str
    scratch_port: int
    pg_bindir: str
    repo: int = 1  # the repository this host holds (its place in the `backup` group)
    # every repository this host backs up into (its own, and the object stores it is the
    # backup host of; drctl.rules.repos), and each one's kind: posix or s3
    repos: tuple[int, ...] = ()
    repo_types: dict[str, str] = field(default_factory=dict)
    pg_nodes: int = 1  # how many pgN-host options the stanza has
    scratch_start_timeout: float = 1800

    @classmethod
    def load(cls, path: str = DEFAULT_CONFIG) -> BackupConfig:
        with open(path) as fh:
            raw = json.load(fh)
        known = set(cls.__dataclass_fields__)
        raw["repos"] = tuple(int(r) for r in raw.get("repos") or ())
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def repo_type(self) -> str:
        return self.repo_types.get(str(self.repo), "posix")

    def on(self, repo: int | None) -> BackupConfig:
        """This configuration for repository REPO (None: this host's own); Refused when
        this host does not back up into it."""
        if repo is None or repo == self.repo:
            return self
        if repo not in self.repos:
            served = ", ".join(f"repo{r}" for r in (self.repos or (self.repo,)))
            raise Refused(f"this host backs up into {served}, not repo{repo}")
        return replace(self, repo=repo)


@dataclass(frozen=True)
class Scratch:
    """A scratch instance: a restore started under the repository user, on a private
    socket, never a cluster member."""

    name: str
    dir: str
    port: int

    @classmethod
    def of(cls, cfg: BackupConfig, name: str) -> Scratch:
        return cls(name, os.path.join(cfg.scratch_dir, name),
                   cfg.scratch_port + (1 if name == "verify" else 0))

    @property
    def data(self) -> str:
        return os.path.join(self.dir, "data")

    @property
    def socket(self) -> str:
        return self.dir

    @property
    def conf(self) -> str:
        return os.path.join(self.dir, "postgresql.conf")

    @property
    def unit(self) -> str:
        return f"drctl-scratch@{self.name}.service"


def as_repo_user(cfg: BackupConfig, args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", cfg.repo_user, "--", *args]
    return args


def run(cfg: BackupConfig, args: list[str], timeout: float | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(as_repo_user(cfg, args), capture_output=True, text=True,
                          timeout=timeout, check=False, cwd="/")
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        raise RuntimeError(f"{' '.join(args[:3])} ... exited {proc.returncode}: {detail}")
    return proc


def pgbackrest_argv(cfg: BackupConfig, *args: str) -> list[str]:
    """A pgBackRest command on this host's repository: a host that holds repo2 only must
    name it (pgBackRest requires --repo then), so every command names it."""
    return ["pgbackrest", f"--stanza={cfg.stanza}", f"--repo={cfg.repo}", *args]


def pgbackrest(cfg: BackupConfig, *args: str, timeout: float | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(cfg, pgbackrest_argv(cfg, *args), timeout=timeout, check=check)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


# --- info -------------------------------------------------------------------------------

def repo_ls(cfg: BackupConfig, path: str) -> dict[str, dict[str, Any]]:
    """`pgbackrest repo-ls` of PATH in the repository (an object store's too): name ->
    {type, size, time}, without the '.' entry."""
    proc = pgbackrest(cfg, "repo-ls", "--output=json", path, timeout=60)
    listed = json.loads(proc.stdout or "{}")
    return {k: v for k, v in listed.items() if k != "."}


def latest_archived_listed(cfg: BackupConfig) -> tuple[str | None, float | None]:
    """latest_archived through pgBackRest's own listing (an object store has no
    directory to scan): the archive ids, the last two WAL directories of each."""
    root = f"archive/{cfg.stanza}"
    name: str | None = None
    newest: float | None = None
    for aid, kind in sorted(repo_ls(cfg, root).items()):
        if kind.get("type") != "path":
            continue
        dirs = sorted(k for k, v in repo_ls(cfg, f"{root}/{aid}").items()
                      if v.get("type") == "path")
        for d in reversed(dirs[-2:]):
            for f, meta in repo_ls(cfg, f"{root}/{aid}/{d}").items():
                mtime = meta.get("time")
                if meta.get("type") == "file" and isinstance(mtime, int | float) and (
                        newest is None or mtime > newest):
                    name, newest = f.split("-")[0], float(mtime)
    return name, newest


def latest_archived_named(cfg: BackupConfig, stanzas: list[dict[str, Any]]
                          ) -> tuple[str | None, float | None] | None:
    """An object store's newest segment as `pgbackrest info` names it (its archive's
    max), and its arrival time from one listing of its directory: one request instead of
    the three or four of latest_archived_listed. None when info names no segment or the
    listing does not hold it (the caller lists then)."""
    st = stanzas[0] if stanzas else {}
    archives = [a for a in st.get("archive") or [] if a.get("id") and a.get("max")]
    if not archives:
        return None
    last = archives[-1]  # pgBackRest lists them in the database's history order
    newest = str(last["max"])
    found = [meta.get("time") for f, meta in
             repo_ls(cfg, f"archive/{cfg.stanza}/{last['id']}/{newest[:16]}").items()
             if f.startswith(newest) and meta.get("type") == "file"]
    times = [t for t in found if isinstance(t, int | float)]
    return (newest, float(max(times))) if times else None


def latest_archived(cfg: BackupConfig) -> tuple[str | None, float | None]:
    """(name, mtime) of the newest WAL segment in the repository's archive."""
    if cfg.repo_type != "posix":
        return latest_archived_listed(cfg)
    root = os.path.join(cfg.repo_path, "archive", cfg.stanza)
    name: str | None = None
    newest: float | None = None
    try:
        archive_ids = [e.path for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return None, None
    for aid in archive_ids:
        dirs = sorted((e for e in os.scandir(aid) if e.is_dir()), key=lambda e: e.name)
        for d in reversed(dirs[-2:]):
            for f in os.scandir(d.path):
                mtime = f.stat().st_mtime
                if newest is None or mtime > newest:
                    name, newest = f.name.split("-")[0], mtime
    return name, newest


def summarize(cfg: BackupConfig, stanzas: list[dict[str, Any]],
              archived: tuple[str | None, float | None]) -> dict[str, Any]:
    """`pgbackrest info --output=json` and the newest archived segment, as drctl reads
    them: each backup, the archive's range, the recoverable window."""
    st = stanzas[0] if stanzas else {}
    status = st.get("status") or {"code": 1, "message": "missing stanza"}
    backups = []
    for b in st.get("backup", []):
        ts = b.get("timestamp") or {}
        arch = b.get("archive") or {}
        size = (b.get("info") or {}).get("size")
        stored = ((b.get("info") or {}).get("repository") or {}).get("delta")
        backups.append({
            "label": b.get("label"), "type": b.get("type"), "prior": b.get("prior"),
            "start": iso(ts.get("start")), "stop": iso(ts.get("stop")),
            "start_epoch": ts.get("start"), "stop_epoch": ts.get("stop"),
            "duration_s": (ts["stop"] - ts["start"]) if ts.get("stop") else None,
            "size_bytes": size, "repo_bytes": stored,
            "wal_start": arch.get("start"), "wal_stop": arch.get("stop"),
            "lsn_start": (b.get("lsn") or {}).get("start"),
            "lsn_stop": (b.get("lsn") or {}).get("stop"),
            "error": b.get("error", False),
        })
    archives = st.get("archive") or []
    last_wal, last_mtime = archived
    good = [b for b in backups if not b["error"]]
    earliest = min((b["stop_epoch"] for b in good), default=None)
    latest = None
    if good:
        latest = max(max(b["stop_epoch"] for b in good), last_mtime or 0)
    return {
        "stanza": cfg.stanza,
        "repo": cfg.repo,
        "type": cfg.repo_type,
        "status_code": status.get("code"),
        "status": status.get("message"),
        "exists": status.get("code") != 1,
        "backups": backups,
        "archive": {
            "min": min((a["min"] for a in archives if a.get("min")), default=None),
            "max": max((a["max"] for a in archives if a.get("max")), default=None),
            "last_segment": last_wal,
            "last_arrived": iso(last_mtime),
        },
        "window": {"earliest": iso(earliest), "latest": iso(latest),
                   "earliest_epoch": earliest, "latest_epoch": latest},
        "checked_at": iso(time.time()),
    }


def info(cfg: BackupConfig) -> dict[str, Any]:
    proc = pgbackrest(cfg, "info", "--output=json", timeout=60)
    stanzas = json.loads(proc.stdout or "[]")
    named = latest_archived_named(cfg, stanzas) if cfg.repo_type != "posix" else None
    return summarize(cfg, stanzas, named or latest_archived(cfg))


def require_stanza(data: dict[str, Any]) -> None:
    if not data["exists"]:
        raise Refused(f"stanza '{data['stanza']}' does not exist in the repository "
                      "(run provision with a backup host first)")
    if not [b for b in data["backups"] if not b["error"]]:
        raise Refused(f"stanza '{data['stanza']}' has no backup yet: run `drctl backup`")


# --- backup -----------------------------------------------------------------------------

def backup(cfg: BackupConfig, kind: str, standby: str) -> dict[str, Any]:
    before = {b["label"] for b in info(cfg)["backups"]}
    attempts: list[tuple[str, list[str]]] = []
    if standby in ("auto", "yes"):
        attempts.append(("standby", ["--backup-standby"]))
    if standby in ("auto", "no"):
        attempts.append(("primary", ["--no-backup-standby"]))
    started = time.time()
    note = None
    source = ""
    for source, opt in attempts:
        proc = pgbackrest(cfg, "backup", f"--type={kind}", *opt, check=False)
        if proc.returncode == 0:
            break
        err = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        if source == "standby" and standby == "auto" and "standby" in err.lower():
            note = (f"no healthy standby to copy from ({err.splitlines()[-1][:200]}); "
                    "copied from the primary")
            continue
        raise RuntimeError(f"pgbackrest backup --type={kind} failed: {err}")
    data = info(cfg)
    new = [b for b in data["backups"] if b["label"] not in before]
    if not new:
        raise RuntimeError("pgbackrest reported success but no new backup is listed")
    return {"backup": new[-1], "source": source, "note": note, "repo": cfg.repo,
            "elapsed_s": round(time.time() - started, 2), "window": data["window"]}


# --- scratch instances --------------------------------------------------------------------

def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def drop(cfg: BackupConfig, name: str) -> dict[str, Any]:
    s = Scratch.of(cfg, name)
    systemctl("stop", s.unit, check=False)
    existed = os.path.isdir(s.dir)
    shutil.rmtree(s.dir, ignore_errors=True)
    return {"name": name, "dropped": existed}


def scratch_conf(s: Scratch) -> str:
    return f"""# drctl scratch instance '{s.name}' (restored from the repository; not a member)
port = {s.port}
listen_addresses = ''
unix_socket_directories = '{s.socket}'
unix_socket_permissions = 0700
hba_file = '{s.dir}/pg_hba.conf'
ident_file = '{s.dir}/pg_ident.conf'
archive_mode = off
synchronous_standby_names = ''
ssl = off
hot_standby = off
max_connections = 20
shared_buffers = 128MB
logging_collector = off
log_line_prefix = '%m [%p] scratch-{s.name} '
"""


def write_scratch_conf(cfg: BackupConfig, s: Scratch) -> None:
    files = {s.conf: scratch_conf(s),
             os.path.join(s.dir, "pg_hba.conf"): (
                 "# only the repository user reaches the socket (mode 0700)\n"
                 "local all all trust\n"),
             os.path.join(s.dir, "pg_ident.conf"): ""}
    pw = pwd.getpwnam(cfg.repo_user)
    for path, text in files.items():
        with open(path, "w") as fh:
            fh.write(text)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def clean_auto_conf(s: Scratch) -> None:
    """A restored cluster member's postgresql.auto.conf may carry its replication settings,
    and a standby's backup its standby.signal: the scratch instance is nobody's standby."""
    path = os.path.join(s.data, "postgresql.auto.conf")
    try:
        with open(path) as fh:
            lines = fh.read().splitlines(keepends=True)
    except OSError:
        lines = None
    if lines is not None:
        drop_keys = ("synchronous_standby_names", "primary_conninfo", "primary_slot_name")
        kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in drop_keys]
        with open(path, "w") as fh:
            fh.writelines(kept)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(s.data, "standby.signal"))


def psql(cfg: BackupConfig, s: Scratch, sql: str, database: str = "postgres") -> str:
    proc = run(cfg, [f"{cfg.pg_bindir}/psql", "-XAtq", "-h", s.socket, "-p", str(s.port),
                     "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
               timeout=120)
    return proc.stdout.strip()


def wait_ready(cfg: BackupConfig, s: Scratch, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if psql(cfg, s, "select pg_is_in_recovery()") == "f":
                return
            last = "still in recovery"
        except RuntimeError as exc:
            last = str(exc)
        if systemctl("is-failed", "--quiet", s.unit, check=False).returncode == 0:
            log = subprocess.run(["journalctl", "-u", s.unit, "-n", "15", "--no-pager",
                                  "-o", "cat"], capture_output=True, text=True,
                                 check=False).stdout
            if "recovery ended before configured recovery target was reached" in log:
                seen = re.search(r"last completed transaction was at log time (\S+ \S+)", log)
                raise Refused("the archive ends before the recovery target: its last "
                              "transaction is from "
                              f"{seen.group(1) if seen else 'before the target'}; later WAL "
                              "has not reached the repository yet (see archive_timeout)")
            raise RuntimeError(f"scratch instance {s.name} failed to start:\n{log}")
        time.sleep(0.5)
    raise RuntimeError(f"scratch instance {s.name} not ready after {timeout} s: {last}")


def parse_time(text: str) -> datetime:
    t = text.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M%z",
                "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            dt = datetime.strptime(t.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    raise Refused(f"cannot read '{text}' as a time: use ISO 8601, e.g. 2026-11-26T13:05:00Z "
                  "(no zone means UTC)")


def restore_options(target: tuple[str, str], window: dict[str, Any]) -> list[str]:
    """pgBackRest's restore options for TARGET (kind, value), refusing a time outside the
    recoverable window or what is not an LSN, before anything is changed."""
    kind, value = target
    if kind == "time":
        dt = parse_time(value)
        epoch = dt.timestamp()
        if not (window["earliest_epoch"] <= epoch <= window["latest_epoch"]):
            raise Refused(f"target time {dt.isoformat()} is outside the recoverable window "
                          f"{window['earliest']} .. {window['latest']}")
        return ["--archive-mode=off", "--target-action=promote", "--type=time",
                f"--target={dt.strftime('%Y-%m-%d %H:%M:%S.%f%z')}"]
    if kind == "lsn":
        if not LSN_RE.match(value):
            raise Refused(f"'{value}' is not an LSN (like 0/3000060)")
        return ["--archive-mode=off", "--target-action=promote", "--type=lsn",
                f"--target={value}"]
    if kind == "immediate":
        return ["--archive-mode=off", "--type=immediate", "--target-action=promote",
                *([f"--set={value}"] if value else [])]
    return ["--archive-mode=off", "--type=default"]  # latest: replay all archived WAL


def restore(cfg: BackupConfig, name: str, target: tuple[str, str], replace: bool,
            started_by: str = "restore") -> dict[str, Any]:
    if not NAME_RE.match(name):
        raise Refused(f"scratch name '{name}' must match {NAME_RE.pattern}")
    data = info(cfg)
    require_stanza(data)
    win = data["window"]
    opts = restore_options(target, win)
    s = Scratch.of(cfg, name)
    if os.path.exists(s.dir):
        if not replace:
            raise Refused(f"scratch instance '{name}' already exists in {s.dir}: pass "
                          "--replace to overwrite it, or drop it first")
        drop(cfg, name)
    pw = pwd.getpwnam(cfg.repo_user)
    os.makedirs(s.data, mode=0o700)
    for p in (s.dir, s.data):
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, 0o700)
    t0 = time.monotonic()
    # the stanza's pgN-host options name the cluster members: reset them to restore here
    resets = [f"--reset-pg{i}-host" for i in range(1, cfg.pg_nodes + 1)]
    pgbackrest(cfg, "restore", *resets, f"--pg1-path={s.data}", *opts)
    t_restore = time.monotonic() - t0
    clean_auto_conf(s)
    write_scratch_conf(cfg, s)
    systemctl("start", "--no-block", s.unit)
    wait_ready(cfg, s, cfg.scratch_start_timeout)
    t_ready = time.monotonic() - t0
    state = json.loads(psql(cfg, s, """select json_build_object(
        'timeline', (select timeline_id from pg_control_checkpoint()),
        'lsn', pg_current_wal_lsn()::text,
        'databases', (select json_agg(datname order by datname) from pg_database
                      where not datistemplate))"""))
    kind, value = target
    return {"name": name, "target": {"type": kind, "value": value}, "window": win,
            "repo": cfg.repo, "data_dir": s.data, "port": s.port, "socket": s.socket,
            "connect": f"sudo -u {cfg.repo_user} psql -h {s.socket} -p {s.port} -U postgres",
            "restore_s": round(t_restore, 2), "ready_s": round(t_ready, 2), **state,
            "by": started_by}


TABLE_COUNTS = """select coalesce(json_object_agg(n.nspname || '.' || c.relname,
    (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I',
     n.nspname, c.relname), false, true, '')))[1]::text::bigint), '{}'::json)
 from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p')
   and n.nspname not in ('pg_catalog', 'information_schema')
   and n.nspname not like 'pg_toast%'"""


def check_passes(output: str) -> bool:
    """A --sql check passes unless its first value is false, 0 or empty."""
    return output not in ("", "f", "false", "0")


def verify(cfg: BackupConfig, sql: str, database: str) -> dict[str, Any]:
    t0 = time.monotonic()
    checks: list[dict[str, Any]] = []
    result: dict[str, Any] = {"ok": False, "checks": checks, "repo": cfg.repo}
    try:
        data = info(cfg)
        require_stanza(data)
        latest = [b for b in data["backups"] if not b["error"]][-1]
        result["backup"] = latest["label"]
        r = restore(cfg, "verify", ("immediate", latest["label"]), replace=True,
                    started_by="verify")
        s = Scratch.of(cfg, "verify")
        result.update(restore_s=r["restore_s"], ready_s=r["ready_s"], timeline=r["timeline"])
        checks.append({"check": "the restored instance starts and accepts queries", "ok": True})
        counts = {db: json.loads(psql(cfg, s, TABLE_COUNTS, db))
                  for db in r["databases"] or [] if db != "postgres"}
        result["row_counts"] = counts
        checks.append({"check": "every table of every database can be read", "ok": True,
                       "tables": sum(len(v) for v in counts.values())})
        if sql:
            out = psql(cfg, s, sql, database)
            checks.append({"check": f"user check on {database}: {sql}",
                           "ok": check_passes(out), "output": out[:500]})
        result["ok"] = all(c["ok"] for c in checks)
    except (RuntimeError, Refused) as exc:
        result["error"] = str(exc)
    finally:
        drop(cfg, "verify")
    result["elapsed_s"] = round(time.monotonic() - t0, 2)
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drctl-backup")
    # every command takes --repo after its name (drctl-node hands drctl-backup's words on
    # as they come, and argparse keeps an option in front of them for itself)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", type=int, default=None,
                        help="the repository (this host's own unless given; an object "
                             "store this host backs up into)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup", parents=[common])
    b.add_argument("--type", choices=["full", "diff", "incr"], default="incr")
    b.add_argument("--standby", choices=["auto", "yes", "no"], default="auto")
    sub.add_parser("info", parents=[common])
    r = sub.add_parser("restore", parents=[common])
    r.add_argument("--name", default="restore")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--time")
    g.add_argument("--lsn")
    g.add_argument("--latest", action="store_true")
    g.add_argument("--immediate", action="store_true")
    r.add_argument("--replace", action="store_true")
    d = sub.add_parser("drop", parents=[common])
    d.add_argument("--name", default="restore")
    v = sub.add_parser("verify", parents=[common])
    v.add_argument("--sql", default="")
    v.add_argument("--database", default="postgres")
    return ap


def main(config_path: str, argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = BackupConfig.load(config_path).on(args.repo)
        out: dict[str, Any]
        if args.cmd == "backup":
            out = backup(cfg, args.type, args.standby)
        elif args.cmd == "info":
            out = info(cfg)
        elif args.cmd == "restore":
            target = (("time", args.time) if args.time else ("lsn", args.lsn) if args.lsn
                      else ("immediate", "") if args.immediate else ("latest", ""))
            out = restore(cfg, args.name, target, args.replace)
        elif args.cmd == "drop":
            out = drop(cfg, args.name)
        else:
            out = verify(cfg, args.sql, args.database)
            print(json.dumps(out), flush=True)
            return 0 if out["ok"] else 1
    except Refused as exc:
        print(f"drctl-backup: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        print(f"drctl-backup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out), flush=True)
    return 0
