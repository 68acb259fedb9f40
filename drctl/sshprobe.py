"""Run drctl's node probe on many hosts at once over plain SSH.

`drctl status` must answer in well under two seconds, which a playbook run cannot, so
it uses the inventory's own connection settings (ansible_host, ansible_user,
ansible_port, ansible_ssh_private_key_file, ansible_ssh_common_args) with OpenSSH
directly, in parallel, with connection sharing. Values are read as written in the
inventory (no Jinja templating).
"""

from __future__ import annotations

import errno
import json
import select
import shlex
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drctl.inventory import Inventory
from drctl.paths import ssh_control_dir

PROBE = "/usr/local/libexec/drctl/drctl-probe"
NODE_COMMAND = "/usr/local/libexec/drctl/drctl-node"
NO_ANSWER = "no answer within"  # how run() says that the command outlived its timeout


@dataclass
class ProbeResult:
    host: str
    ok: bool
    data: dict[str, Any] | None
    error: str = ""


def _ssh_base(inv: Inventory, host: str, connect_timeout: int = 3,
              shared: bool = True) -> tuple[list[str], str]:
    """ssh and its options for HOST (SHARED: over the control connection drctl keeps to
    each host), and the target."""
    hv = inv.hostvars(host)
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}"]
    if shared:
        cmd += ["-o", "ControlMaster=auto", "-o", f"ControlPath={ssh_control_dir()}/%C",
                "-o", "ControlPersist=120"]
    else:
        cmd += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    cmd += ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"]
    if hv.get("ansible_ssh_private_key_file"):
        cmd += ["-i", str(hv["ansible_ssh_private_key_file"])]
    if hv.get("ansible_port"):
        cmd += ["-p", str(hv["ansible_port"])]
    if hv.get("ansible_ssh_common_args"):
        cmd += shlex.split(str(hv["ansible_ssh_common_args"]))
    user = hv.get("ansible_user")
    return cmd, f"{user}@{inv.hosts[host].address}" if user else inv.hosts[host].address


def ssh_command(inv: Inventory, host: str, remote: list[str],
                connect_timeout: int = 3) -> list[str]:
    cmd, target = _ssh_base(inv, host, connect_timeout)
    hv = inv.hostvars(host)
    become = hv.get("ansible_become", False) and hv.get("ansible_user") != "root"
    # ssh hands the remote side one string to a shell: quote each argument, so that an
    # argument with spaces (or `sh -c SCRIPT`) arrives as the one argument it was
    return [*cmd, target, "--", shlex.join([*(["sudo", "-n"] if become else []), *remote])]


def tunnel(inv: Inventory, host: str, remote_port: int, timeout: float = 10
           ) -> tuple[subprocess.Popen[bytes], int]:
    """Forward a free local port to HOST's loopback REMOTE_PORT over SSH (a service that
    listens on the host's loopback only, such as its pooler), on a connection of its own:
    the ssh process (the caller terminates it) and the local port, once the forward
    accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = int(s.getsockname()[1])
    cmd, target = _ssh_base(inv, host, shared=False)
    proc = subprocess.Popen([*cmd, "-N", "-o", "ExitOnForwardFailure=yes",
                             "-L", f"127.0.0.1:{local}:127.0.0.1:{remote_port}", target],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise OSError(f"ssh -L to {host} exited {proc.returncode}: {err.strip()[-300:]}")
        if port_answers("127.0.0.1", local, timeout=0.3):
            return proc, local
        time.sleep(0.1)
    proc.terminate()
    proc.wait(timeout=5)
    raise OSError(f"ssh -L to {host}: no forward within {timeout:g} s")


def run(inv: Inventory, host: str, remote: list[str], timeout: float = 8,
        stdin: str | None = None) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(ssh_command(inv, host, remote), capture_output=True, text=True,
                              timeout=timeout, check=False, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 255, "", f"{NO_ANSWER} {timeout:.0f} s"
    return proc.returncode, proc.stdout, proc.stderr


def port_answers(address: str, port: int, timeout: float = 0.5, stagger: float = 0.1) -> bool:
    """Whether a TCP connection to ADDRESS:PORT opens within TIMEOUT seconds.

    A dead host must cost half a second, not an SSH timeout (or a hung shared connection to
    a host that lost power). A live host's kernel answers a SYN within a round trip, but a
    SYN that is lost is only sent again after a second: so a new attempt starts every
    STAGGER seconds and the first one to connect answers. A refusal (the host is up, nothing
    listens) is an answer too: False at once.
    """
    try:
        family, kind, proto, _, target = socket.getaddrinfo(address, port,
                                                            type=socket.SOCK_STREAM)[0]
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    next_try = time.monotonic()
    pending: list[socket.socket] = []
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                # a last look without waiting: on a loaded machine this process may not have
                # run for the whole timeout while the host's answer sat in the socket
                _, ready, _ = select.select([], pending, [], 0)
                return any(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                           for sock in ready)
            if now >= next_try:
                sock = socket.socket(family, kind, proto)
                pending.append(sock)
                sock.setblocking(False)
                err = sock.connect_ex(target)
                if err == 0:
                    return True
                if err == errno.ECONNREFUSED:
                    return False
                next_try = now + stagger
            wait = max(0.0, min(deadline, next_try) - now)
            _, ready, _ = select.select([], pending, [], wait)
            for sock in ready:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    return True
                if err == errno.ECONNREFUSED:
                    return False
                pending.remove(sock)  # unreachable, for now: the others may still connect
                sock.close()
    finally:
        for sock in pending:
            sock.close()


def forget_connection(inv: Inventory, host: str) -> None:
    """Close a shared SSH connection to a host that stopped answering."""
    cmd = ssh_command(inv, host, ["true"])
    target = cmd.index("--") - 1
    subprocess.run([*cmd[:target], "-O", "exit", cmd[target]], capture_output=True,
                   timeout=5, check=False)


def dead(inv: Inventory, host: str) -> str | None:
    """Why HOST is unreachable, when nothing answers on its SSH port within half a second
    (its shared connection is then closed); None when it answers or sits behind a proxy
    (which only SSH itself can try). Costs a dead host 0.5 s instead of SSH's timeout."""
    hv = inv.hostvars(host)
    port = int(hv.get("ansible_port") or 22)
    proxied = "proxy" in str(hv.get("ansible_ssh_common_args", "")).lower()
    if proxied or port_answers(inv.hosts[host].address, port):
        return None
    forget_connection(inv, host)
    return f"unreachable: nothing answers on {inv.hosts[host].address}:{port}"


def probe(inv: Inventory, host: str, command: list[str] | None = None,
          timeout: float = 6) -> ProbeResult:
    why = dead(inv, host)
    if why:
        return ProbeResult(host, False, None, why)
    started = time.monotonic()
    rc, out, err = run(inv, host, command or [PROBE], timeout=timeout)
    left = timeout - (time.monotonic() - started)
    if rc == 255 and not err.startswith(NO_ANSWER) and left >= 1:
        # SSH itself failed before the timeout: a shared connection that broke (its master
        # gives up on a server silent for ServerAlive's 3 s: an sshd starved on a loaded
        # machine) or an sshd that turned the connection away. The host answered on its
        # port a moment ago: ask once more on a new connection, unless it is now gone, in
        # what is left of the timeout (a frozen host costs no more than a silent one).
        forget_connection(inv, host)
        why = dead(inv, host)
        if why:
            return ProbeResult(host, False, None, why)
        rc, out, err = run(inv, host, command or [PROBE],
                           timeout=max(1.0, timeout - (time.monotonic() - started)))
    if rc == 0:
        try:
            return ProbeResult(host, True, json.loads(out))
        except ValueError:
            return ProbeResult(host, False, None, f"probe printed no JSON: {out[:200]}")
    if rc == 255:
        return ProbeResult(host, False, None, f"unreachable over SSH: {err.strip()[:200]}")
    if "No such file" in err or rc == 127 or "command not found" in err:
        return ProbeResult(host, True, None, "not provisioned (no drctl probe on the host)")
    return ProbeResult(host, True, None, f"probe failed (exit {rc}): {err.strip()[:200]}")


def probe_all(inv: Inventory, hosts: list[str],
              commands: dict[str, list[str]] | None = None,
              command_timeout: float = 6) -> dict[str, ProbeResult]:
    """Probe hosts in parallel: drctl's node probe (6 s at most), or the command given for
    a host (COMMAND_TIMEOUT)."""
    commands = commands or {}
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(
            lambda h: probe(inv, h, commands.get(h),
                            command_timeout if h in commands else 6), hosts), strict=True))


def probe_each(inv: Inventory, jobs: list[tuple[str, list[str]]]) -> list[ProbeResult]:
    """Probe in parallel, one (host, command) job each; a host may appear in several
    (a repository host asked about its own repository and an object store's)."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: probe(inv, job[0], job[1]), jobs))


def node_json(inv: Inventory, host: str, args: list[str],
               timeout: float = 60) -> dict[str, Any]:
    """One drctl-node command on HOST; its JSON answer, or {"ok": False, ...} saying why
    there is none ("unreachable" when SSH could not reach it)."""
    rc, out, err = run(inv, host, [NODE_COMMAND, *args], timeout=timeout)
    try:
        data = json.loads(out.splitlines()[-1]) if out else {}
    except ValueError:
        data = {}
    if rc == 255 and not data:
        return {"ok": False, "host": host, "unreachable": True,
                "error": (err.splitlines() or ["no answer"])[-1][:200]}
    if not data:
        return {"ok": False, "host": host, "error": (err or out or f"exit {rc}")[-300:]}
    return data
