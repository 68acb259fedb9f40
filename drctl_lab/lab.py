"""The local lab: Debian 12 containers with systemd, reached over SSH like real servers.

`up()` is idempotent: it installs and starts what it needs (Debian's docker.io and
debootstrap, dockerd), builds the image once (debootstrap + docker import, cached by
the recipe's hash), starts the containers on a dedicated network with fixed
addresses, and writes inventories/lab/ with a generated vault. A second `up()`
changes nothing; containers left "Exited" by a machine restart are started again.

The lab has one site (dc1, the home site) or two: `up(sites=2)` adds dc2, a second
docker network with its own hosts, joined to dc1 by a WAN router container that
forwards between the two subnets without address translation; `wan_cut()` makes it
drop that traffic silently, `wan_restore()` ends the cut.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.paths import lab_dir, lab_inventory_dir, state_dir

# DRCTL_LAB_NAME lets two labs live side by side (a CI clone next to a developer's lab).
NETWORK = os.environ.get("DRCTL_LAB_NAME", "drctl-lab")
LABEL = "drctl.lab"
PREFIX = NETWORK + "-"
RECIPE = Path(__file__).parent / "build-rootfs.sh"
DOCKER_SOCK = "/var/run/docker.sock"
# The sites, in order: dc1 is the home site (a lab of one site is dc1 alone, on NETWORK
# and DRCTL_LAB_SUBNET); dc2 the disaster-recovery site, on its own network.
SITES = ("dc1", "dc2")
# site -> (name, last octet in the site's subnet, inventory group); a host is one line
SITE_HOSTS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "dc1": (
        ("pg1", 11, "pg_primary"),
        ("pg2", 12, "pg_standby"),
        ("backup1", 13, "backup"),
        ("app1", 14, "app"),
        ("app3", 15, "app"),  # dc1's second app host: its application VIP has a spare
    ),
    "dc2": (
        ("pg3", 11, "pg_standby"),
        ("backup2", 13, "backup"),
        ("app2", 14, "app"),
    ),
}
HOSTS = SITE_HOSTS["dc1"]
# A lab of several sites also has a WAN side, outside both sites: the DNS server of the
# service's name lives there, as a provider's would, so losing a site does not take the
# name with it. Its network is reached through the WAN router like another site's.
WAN_SIDE = "wan"
# The cloud repository's object store lives there too: a copy of the backups and the WAL
# that neither site's loss takes with it (pgbackrest_s3_repos, role object_store).
# And a host at the cloud location, where the cluster can be rebuilt from the object
# store alone when neither site survives (group cloud, `drctl rebuild`).
WAN_HOSTS: tuple[tuple[str, int, str], ...] = (("dns1", 53, "dns"),
                                               ("s3", 80, "object_store"),
                                               ("cloud1", 60, "cloud"))
# The lab's object store: its bucket and its port (SeaweedFS's S3 gateway, TLS)
LAB_S3_BUCKET = "drctl-lab"
LAB_S3_PORT = 9000
WAN_THIRD_OCTET_OFFSET = 32
# The service's name in the lab's zone (.test is reserved for testing, RFC 2606) and its
# TTL: short, so that a drill's client follows a moved name within seconds.
LAB_ZONE = "lab.drctl.test."
LAB_NAME = "app.lab.drctl.test."
LAB_DNS_TTL = 5
VIP_OCTET = 100
APP_VIP_OCTET = 101  # each site's application VIP (drctl_app_vip)
# The WAN router between the sites: a container of the lab image on both networks at
# this last octet, forwarding (no NAT) between them. Not an inventory host.
ROUTER = "wan"
ROUTER_OCTET = 254
ROUTER_RUN_ARGS = (
    "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
    "--sysctl", "net.ipv4.ip_forward=1",
    "--stop-signal", "SIGKILL",  # nothing in it to shut down cleanly
)
# dc2's subnet unless DRCTL_LAB_DC2_SUBNET says otherwise: dc1's, third octet + 16
DC2_THIRD_OCTET_OFFSET = 16
WAN_CUT_COMMENT = "drctl-lab-wan-cut"
RUN_ARGS = (
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
    "--cap-add", "NET_BROADCAST",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=private", "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--stop-signal", "SIGRTMIN+3",
)
# Secrets the lab's vault holds; each generated once and kept across `lab up`.
VAULT_SECRETS: dict[str, int] = {
    "vault_pg_replication_password": 32,
    "vault_pg_rewind_password": 32,
    "vault_pg_app_password": 32,
    "vault_keepalived_auth_pass": 8,  # VRRP PASS authentication uses at most 8 characters
    "vault_demo_app_secret_key": 40,
    "vault_pg_repmgr_password": 32,
    "vault_dns_tsig_secret": 44,  # base64 (44 characters of this alphabet decode)
    "vault_s3_access_key": 20,  # the object store's access key and its secret
    "vault_s3_secret_key": 40,
}

# Timeouts the lab sets shorter than production, so that its tests do not wait out
# minutes-long product timeouts. Production keeps the defaults the README recommends
# (pgBackRest io-timeout 60 s, a 120 s archiving stall, PostgreSQL's 60 s WAL timeouts).
LAB_TIMEOUTS: dict[str, object] = {
    "pgbackrest_io_timeout": 10,
    "drctl_archive_stall_s": 30,
    "drctl_node_start_confirm_wait_s": 5,
    # the application's files reach the other site every 30 s (production: every minute):
    # every run logs in to each peer twice, a third of an idle lab's CPU at 10 s
    # (bench/lab_idle.py); the one test that waits for a copy allows a minute
    "app_files_interval": "30s",
    "postgresql_extra_settings": {"wal_receiver_timeout": "15s", "wal_sender_timeout": "15s"},
}

Say = Callable[[str], None]


@dataclass
class LabHost:
    name: str
    address: str
    group: str
    site: str = "dc1"

    @property
    def container(self) -> str:
        return PREFIX + self.name


def subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(os.environ.get("DRCTL_LAB_SUBNET", "172.29.53.0/24"))


def dc2_subnet() -> ipaddress.IPv4Network:
    """$DRCTL_LAB_DC2_SUBNET, else dc1's subnet with its third octet + 16
    (172.29.53.0/24 -> 172.29.69.0/24); never one that overlaps dc1's."""
    first = subnet()
    env = os.environ.get("DRCTL_LAB_DC2_SUBNET")
    try:
        if env:
            net = ipaddress.IPv4Network(env)
        else:
            net = ipaddress.IPv4Network(
                (int(first.network_address) + DC2_THIRD_OCTET_OFFSET * 256, first.prefixlen))
    except ValueError as exc:
        what = (f"DRCTL_LAB_DC2_SUBNET={env!r} is not a subnet" if env else
                f"dc1's subnet {first} plus 16 in its third octet is no subnet for dc2")
        raise DrctlError(f"{what} ({exc})", ExitCode.USAGE,
                         hint="set DRCTL_LAB_DC2_SUBNET, e.g. 172.29.69.0/24") from exc
    if net.overlaps(first):
        raise DrctlError(f"dc2's subnet {net} overlaps dc1's {first}", ExitCode.USAGE,
                         hint="set DRCTL_LAB_DC2_SUBNET to a subnet of its own")
    return net


def wan_subnet() -> ipaddress.IPv4Network:
    """$DRCTL_LAB_WAN_SUBNET, else dc1's subnet with its third octet + 32."""
    env = os.environ.get("DRCTL_LAB_WAN_SUBNET")
    first = subnet()
    try:
        net = ipaddress.IPv4Network(env) if env else ipaddress.IPv4Network(
            (int(first.network_address) + WAN_THIRD_OCTET_OFFSET * 256, first.prefixlen))
    except ValueError as exc:
        raise DrctlError(f"no subnet for the lab's WAN side ({exc})", ExitCode.USAGE,
                         hint="set DRCTL_LAB_WAN_SUBNET, e.g. 172.29.85.0/24") from exc
    if net.overlaps(first) or net.overlaps(dc2_subnet()):
        raise DrctlError(f"the WAN side's subnet {net} overlaps a site's", ExitCode.USAGE,
                         hint="set DRCTL_LAB_WAN_SUBNET to a subnet of its own")
    return net


def site_subnet(site: str) -> ipaddress.IPv4Network:
    if site == WAN_SIDE:
        return wan_subnet()
    return subnet() if site == "dc1" else dc2_subnet()


def networks(count: int | None = None) -> list[str]:
    """The lab's networks by site: its sites, and the WAN side when it has several."""
    count = site_count() if count is None else count
    return [*SITES[:count], *([WAN_SIDE] if count > 1 else [])]


def site_network(site: str) -> str:
    """The docker network of SITE: dc1's keeps the lab's name (as with one site)."""
    return NETWORK if site == "dc1" else f"{NETWORK}-{site}"


def _sites_file() -> Path:
    return lab_dir() / f"sites-{NETWORK}"


def site_count() -> int:
    """How many sites the lab has: what `lab up` last recorded, else $DRCTL_LAB_SITES,
    else 1."""
    try:
        text = _sites_file().read_text().strip()
    except OSError:
        text = ""
    return _check_sites(text or os.environ.get("DRCTL_LAB_SITES") or 1)


def _check_sites(value: object) -> int:
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if not 1 <= count <= len(SITES):
        raise DrctlError(f"the lab has 1 or {len(SITES)} sites, not {value!r}", ExitCode.USAGE)
    return count


def wanted_sites(requested: int | None) -> int:
    """The number of sites `lab up` builds: REQUESTED, else $DRCTL_LAB_SITES, else what
    the lab was last brought up with, else 1."""
    if requested is not None:
        return _check_sites(requested)
    env = os.environ.get("DRCTL_LAB_SITES")
    return _check_sites(env) if env else site_count()


def _record_sites(count: int) -> None:
    path = _sites_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_if_changed(path, f"{count}\n")


# A one-site lab without its application tier (DRCTL_LAB_APP=0 when `lab up` runs): pg1,
# pg2 and backup1, no app host and no application VIP. make test's lane b runs so until
# test_14: test_11 never touches the application, and its hosts were about a third of the
# lane's provision, restores and idle load. A lab of two sites always has the tier (`lab
# up --sites 2` adds dc1's app hosts as new hosts, as it adds dc2's). What `lab up` chose
# is recorded beside the sites, so every later verb sees the same hosts.
APP_ENV = "DRCTL_LAB_APP"


def _app_file() -> Path:
    return lab_dir() / f"app-{NETWORK}"


def _falsy(text: str) -> bool:
    return text.strip().lower() in ("0", "no", "false")


def wanted_app_tier(sites: int) -> bool:
    """Whether `lab up` builds the application tier: always with two sites, else as
    $DRCTL_LAB_APP says, else as the lab was last brought up, else yes."""
    env = os.environ.get(APP_ENV, "").strip()
    return sites > 1 or (not _falsy(env) if env else app_tier())


def app_tier() -> bool:
    """Whether the lab has its application tier, as `lab up` last recorded it (with none
    recorded: as $DRCTL_LAB_APP asks, by default yes)."""
    try:
        text = _app_file().read_text().strip()
    except OSError:
        text = ""
    return not _falsy(text or os.environ.get(APP_ENV, "") or "1")


def _record_app_tier(wanted: bool) -> None:
    path = _app_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_if_changed(path, f"{int(wanted)}\n")


def lab_hosts(sites: int | None = None) -> list[LabHost]:
    """The inventory hosts of the lab's first SITES sites (default: site_count()), without
    the app hosts in a one-site lab recorded without its application tier."""
    count = site_count() if sites is None else _check_sites(sites)
    with_app = count > 1 or app_tier()
    hosts = []
    for site in SITES[:count]:
        net = site_subnet(site)
        hosts += [LabHost(n, str(net.network_address + o), g, site)
                  for n, o, g in SITE_HOSTS[site] if with_app or g != "app"]
    if count > 1:
        net = wan_subnet()
        hosts += [LabHost(n, str(net.network_address + o), g, WAN_SIDE)
                  for n, o, g in WAN_HOSTS]
    return hosts


def vip() -> str:
    net = subnet()
    return f"{net.network_address + VIP_OCTET}/{net.prefixlen}"


def site_vip(site: str) -> str:
    net = site_subnet(site)
    return f"{net.network_address + VIP_OCTET}/{net.prefixlen}"


def site_app_vip(site: str) -> str:
    net = site_subnet(site)
    return f"{net.network_address + APP_VIP_OCTET}/{net.prefixlen}"


def router_container() -> str:
    return PREFIX + ROUTER


def router_address(site: str) -> str:
    """The WAN router's address in SITE's subnet."""
    return str(site_subnet(site).network_address + ROUTER_OCTET)


def site_routes(site: str, sites: int | None = None) -> list[str]:
    """`ip route` arguments a container of SITE needs: every other site's subnet via the
    router's address in SITE (its default route stays docker's bridge)."""
    count = site_count() if sites is None else _check_sites(sites)
    if count < 2:
        return []
    return [f"{site_subnet(other)} via {router_address(site)}"
            for other in networks(count) if other != site]


def _run(cmd: list[str], *, check: bool = True, input: str | None = None,
         capture: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, input=input, text=True, capture_output=capture,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise DrctlError(f"{cmd[0]} is not installed", ExitCode.ENVIRONMENT) from exc
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout or "").strip()
        raise DrctlError(f"`{' '.join(cmd[:4])} ...` failed: {err}", ExitCode.ENVIRONMENT)
    return proc


def docker(*args: str, check: bool = True, input: str | None = None,
           timeout: float | None = 600) -> subprocess.CompletedProcess:
    return _run(["docker", *args], check=check, input=input, timeout=timeout)


# Debian 12's docker (20.10.24) can deadlock its network controller when two containers
# of one network leave it at the same moment (moby/moby#46661, fixed in 20.10.27): one
# container's clean-up holds the network's lock and waits for the controller's while the
# controller's watch loop, deleting the other's endpoint, holds the controller's and waits
# for the network's; from then on every network operation of the daemon hangs (a
# fresh-clone `make test`, 2026-12-06: a restore's `docker rm -f` of five containers at
# once, then `docker network inspect` stuck for 600 s in both lanes; dockerd's goroutine
# dump, SIGUSR1, showed exactly those two). So the lab's containers leave their networks
# one at a time: each removal or power cut is finished (the exit handled, the network
# released) before the next begins.

def remove_one_at_a_time(names: list[str], check: bool = True) -> None:
    """`docker rm -f` each of NAMES in turn (rm -f kills, waits for the exit, removes)."""
    for name in names:
        docker("rm", "-f", name, check=check)


def kill_one_at_a_time(names: list[str]) -> None:
    """Cut the power of each of NAMES in turn: `docker kill`, then `docker wait` until
    the daemon has handled its exit, before the next."""
    for name in names:
        docker("kill", name)
        docker("wait", name, check=False)


# ---------------------------------------------------------------- engine

def _apt_install(packages: list[str], say: Say) -> None:
    if os.geteuid() != 0:
        raise DrctlError(f"{' '.join(packages)} missing and drctl is not root",
                         ExitCode.ENVIRONMENT, hint=f"apt-get install {' '.join(packages)}")
    say(f"installing {' '.join(packages)} (Debian packages)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DrctlError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}",
                             ExitCode.ENVIRONMENT)


def _engine_answers() -> bool:
    proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                          capture_output=True, text=True, check=False, timeout=20)
    return proc.returncode == 0


# Every lab container's systemd, journald, logind and dbus hold inotify instances (5-8 a
# container, measured), all counted against root on this machine, whose kernel allows 128
# by default: about 20 containers. The next container's systemd then stalls at boot,
# every job waiting and none running ("systemd says 'initializing'"): seen with a
# two-site lab and a one-site lab side by side (18 containers) plus one more lab.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
LAB_INOTIFY_INSTANCES = 1024


def ensure_inotify_instances(say: Say, path: Path = INOTIFY_INSTANCES,
                             wanted: int = LAB_INOTIFY_INSTANCES) -> None:
    """Raise the kernel's limit of inotify instances per user to WANTED when it is lower
    (until the next reboot), saying so; an error naming the setting when it cannot."""
    try:
        current = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return  # not Linux's procfs: nothing known to raise
    if current >= wanted:
        return
    try:
        path.write_text(f"{wanted}\n")
    except OSError as exc:
        raise DrctlError(
            f"fs.inotify.max_user_instances is {current}: about {current // 6} lab containers "
            f"can boot, and the lab needs more ({exc.strerror or exc})", ExitCode.ENVIRONMENT,
            hint=f"as root: sysctl -w fs.inotify.max_user_instances={wanted}") from exc
    say(f"raised fs.inotify.max_user_instances from {current} to {wanted} until the next "
        "reboot: each lab container's systemd holds its own, and past the limit a "
        "container stalls at boot")


def ensure_engine(say: Say) -> None:
    """docker CLI + engine + debootstrap present and the engine answering, and the
    kernel's inotify limit high enough for the lab's containers."""
    ensure_inotify_instances(say)
    missing = [pkg for tool, pkg in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"),
                                     ("ssh", "openssh-client"), ("iptables", "iptables"))
               if not shutil.which(tool)]
    if missing:
        _apt_install(missing, say)
    if not shutil.which("docker"):
        raise DrctlError("no docker CLI after installing docker.io", ExitCode.ENVIRONMENT)
    if _engine_answers():
        return
    say("starting dockerd (no engine was running)")
    log = lab_dir() / "dockerd.log"
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(["dockerd"], stdout=fh, stderr=fh, start_new_session=True)
    (lab_dir() / "dockerd.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(DOCKER_SOCK) and _engine_answers():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise DrctlError(f"dockerd did not come up; see {log}", ExitCode.ENVIRONMENT)


# ---------------------------------------------------------------- image

def base_tag() -> str:
    """The lab image of bare Debian hosts, named by its recipe."""
    digest = hashlib.sha256(RECIPE.read_bytes()).hexdigest()[:12]
    return f"drctl-lab:{digest}"


# A warm lab (DRCTL_LAB_WARM=1): the hosts start from the bare image with the packages
# provision installs already installed, as from a golden image; configuration, users,
# clusters and services are still provision's. `make test`'s second lane runs warm: its
# modules need a provisioned lab, not a provision from bare hosts (lane a's test_03 proves
# that one; molecule's scenario starts warm too), and installing the packages is most of
# a provision from bare hosts. The packages are the ones build-rootfs.sh fetches, with
# apt's recommends as the roles install them (node_exporter without, as drctl_metrics
# does). Services a bare host would not run until its role starts them stay disabled
# (pgbouncer, the only one whose package starts it on every host); every role enables
# what it runs: pgbouncer and BIND (named) are the packages that start themselves.
# The second site's hosts and the WAN side's (dns1, s3) start warm too: BIND, rsync and
# curl were 20 s of test_14's two-site provision when they were installed there.
WARM_ENV = "DRCTL_LAB_WARM"
WARM_SCRIPT = """set -eu
export DEBIAN_FRONTEND=noninteractive
mkdir -p /etc/postgresql-common
echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
apt-get -qq -y install postgresql-15 postgresql-client-15 postgresql-client postgresql-15-repmgr \\
    keepalived pgbackrest python3-psycopg2 python3-psycopg python3-flask python3-argon2 \\
    gunicorn ssl-cert acl pgbouncer python3-cryptography rsync openssh-client curl \\
    bind9 bind9-dnsutils >/dev/null
apt-get -qq -y install --no-install-recommends prometheus-node-exporter >/dev/null
systemctl disable pgbouncer named >/dev/null 2>&1
"""


def warm() -> bool:
    return os.environ.get(WARM_ENV, "").strip().lower() not in ("", "0", "no", "false")


def image_tag() -> str:
    """The image this lab's hosts start from: the bare one, or its warm variant."""
    if not warm():
        return base_tag()
    digest = hashlib.sha256(WARM_SCRIPT.encode()).hexdigest()[:6]
    return f"{base_tag()}-warm-{digest}"


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def ensure_image(say: Say) -> tuple[str, bool]:
    """Return (tag, built_now)."""
    base, built = ensure_base_image(say)
    tag = image_tag()
    if tag == base or image_exists(tag):
        return tag, built
    say(f"building the warm lab image {tag}: provision's packages installed (once)")
    builder = f"{PREFIX}warm-build"
    docker("rm", "-f", builder, check=False)
    try:
        proc = docker("run", "--name", builder, base, "/bin/sh", "-c", WARM_SCRIPT,
                      check=False, timeout=1200)
        if proc.returncode != 0:
            raise DrctlError(f"building the warm lab image failed:\n{proc.stderr[-2000:]}",
                             ExitCode.ENVIRONMENT)
        docker("commit", "--change", 'CMD ["/sbin/init"]', builder, tag, timeout=600)
    finally:
        docker("rm", "-f", builder, check=False)
    return tag, True


def ensure_base_image(say: Say) -> tuple[str, bool]:
    """Return (tag, built_now) of the bare image."""
    tag = base_tag()
    if image_exists(tag):
        return tag, False
    say(f"building lab image {tag} with debootstrap (once; about 2 minutes)")
    workdir = Path(tempfile.mkdtemp(prefix="drctl-rootfs-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    try:
        proc = subprocess.run(["sh", str(RECIPE), str(rootfs)], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise DrctlError(f"building the lab root filesystem failed:\n{proc.stderr[-2000:]}",
                             ExitCode.ENVIRONMENT)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "--change", 'CMD ["/sbin/init"]',
                              "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                             check=False)
        tar.wait()
        if imp.returncode != 0:
            raise DrctlError(f"docker import failed: {imp.stderr}", ExitCode.ENVIRONMENT)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return tag, True


# ---------------------------------------------------------------- network and containers

def ensure_network(say: Say, site: str = "dc1") -> None:
    want = str(site_subnet(site))
    name = site_network(site)
    proc = docker("network", "inspect", name, check=False)
    if proc.returncode == 0:
        info = json.loads(proc.stdout)[0]
        have = [c.get("Subnet") for c in (info.get("IPAM", {}).get("Config") or [])]
        if want in have:
            return
        say(f"recreating network {name} ({have} -> {want})")
        remove_containers(say)
        docker("network", "rm", name)
    clash = overlapping_networks(ipaddress.IPv4Network(want), name)
    if clash:
        other, subnet_text = clash[0]
        raise DrctlError(
            f"cannot create network {name} ({want}): docker network {other} already uses "
            f"{subnet_text}", ExitCode.ENVIRONMENT,
            hint=(f"another lab left it (remove it with `DRCTL_LAB_NAME={other} drctl lab down` "
                  "if nothing uses it), or give this lab another subnet with DRCTL_LAB_SUBNET"
                  if other.startswith("drctl") else
                  "give this lab another subnet with DRCTL_LAB_SUBNET"))
    docker("network", "create", "--subnet", want, "--label", f"{LABEL}={NETWORK}", name)


def overlapping_networks(want: ipaddress.IPv4Network, name: str) -> list[tuple[str, str]]:
    """(network, subnet) of every other docker network whose subnet overlaps WANT: docker
    refuses the new one ("Pool overlaps"), and the operator needs to know which it is."""
    names = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    others = [n for n in names if n != name]
    if not others:
        return []
    found = []
    for info in json.loads(docker("network", "inspect", *others).stdout or "[]"):
        for cfg in info.get("IPAM", {}).get("Config") or []:
            try:
                net = ipaddress.ip_network(cfg.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if net.version == 4 and net.overlaps(want):
                found.append((str(info.get("Name")), str(net)))
    return found


def _remove_network(name: str) -> bool:
    if docker("network", "inspect", name, check=False).returncode != 0:
        return False
    docker("network", "rm", name)
    return True


def _inspect(name: str) -> dict | None:
    proc = docker("container", "inspect", name, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def _state_of(info: dict) -> tuple[str, str]:
    labels = info["Config"].get("Labels") or {}
    return info["State"]["Status"], labels.get(BASE_LABEL) or info["Config"]["Image"]


def _container_state(name: str) -> tuple[str, str] | None:
    """(status, lab image) of a container, or None. A container started from a snapshot
    counts as running the lab image the snapshot was taken from."""
    info = _inspect(name)
    return _state_of(info) if info else None


def _host_names(host: LabHost) -> set[str]:
    """The --add-host entries HOST's container needs: every other lab host."""
    return {f"{h.name}:{h.address}" for h in lab_hosts() if h.name != host.name}


def ensure_container(host: LabHost, tag: str, fresh: bool, say: Say) -> str:
    """Return what was done: reused | started | created."""
    info = _inspect(host.container)
    state = _state_of(info) if info else None
    # docker fixes a container's names (--add-host) when it creates it: one that lacks a
    # lab host's name (made before the lab had a second site) is made again
    missing = (_host_names(host) - set(info["HostConfig"].get("ExtraHosts") or [])
               if info else set())
    if missing and state and not fresh and state[1] == tag:
        say(f"{host.name}: recreating its container, which does not resolve "
            f"{', '.join(sorted(n.split(':')[0] for n in missing))}")
    if state and (fresh or state[1] != tag or missing):
        remove_one_at_a_time([host.container])
        state = None
    if state and state[0] == "running":
        return "reused"
    if state:
        docker("start", host.container)
        return "started"
    _run_container(host, tag)
    return "created"


def _run_container(host: LabHost, image: str, copy_up: tuple[str, ...] = ()) -> None:
    # The lab's stand-in for DNS: every container resolves the others' inventory names
    # (pgBackRest verifies TLS peers by DNS name), and docker keeps these across restarts.
    names = [f"--add-host={h.name}:{h.address}" for h in lab_hosts() if h.name != host.name]
    if copy_up:
        start = ["--entrypoint", "/bin/sh", image, "-c", COPY_UP_SCRIPT, "copy-up", *copy_up]
    else:
        start = [image, "/sbin/init"]
    docker("run", "-d", "--name", host.container, "--hostname", host.name,
           "--network", site_network(host.site), "--ip", host.address,
           "--label", f"{LABEL}={NETWORK}", *names, *RUN_ARGS, *start)


# ---------------------------------------------------------------- the WAN between the sites

def ensure_router(tag: str, fresh: bool, say: Say) -> str:
    """The WAN router on every site's network; return reused | started | created."""
    name = router_container()
    state = _container_state(name)
    if state and (fresh or state[1] != tag or not _router_attached(name)):
        remove_one_at_a_time([name])
        state = None
    if state and state[0] == "running":
        return "reused"
    if state:
        docker("start", name)
        return "started"
    _run_router(tag)
    say(f"{ROUTER}: router created at "
        + ", ".join(router_address(s) for s in networks()))
    return "created"


def _router_attached(name: str) -> bool:
    """True when the router sits on every site's network at its address there."""
    proc = docker("container", "inspect", name, check=False)
    if proc.returncode != 0:
        return False
    nets = json.loads(proc.stdout)[0].get("NetworkSettings", {}).get("Networks") or {}
    for site in networks():
        cfg = nets.get(site_network(site)) or {}
        want = router_address(site)
        have = {cfg.get("IPAddress"), (cfg.get("IPAMConfig") or {}).get("IPv4Address")}
        if want not in have:
            return False
    return True


def _run_router(image: str) -> None:
    """Create the router on dc1's network, connect it to the others, then start it:
    docker attaches every network at each start. PID 1 only sleeps: forwarding is the
    kernel's (ip_forward=1 in its own network namespace), a cut is an iptables rule."""
    name = router_container()
    names = [f"--add-host={h.name}:{h.address}" for h in lab_hosts()]
    docker("create", "--name", name, "--hostname", ROUTER,
           "--network", site_network("dc1"), "--ip", router_address("dc1"),
           "--label", f"{LABEL}={NETWORK}", *names, *ROUTER_RUN_ARGS,
           "--entrypoint", "/bin/sleep", image, "infinity")
    for site in networks()[1:]:
        docker("network", "connect", "--ip", router_address(site), site_network(site), name)
    docker("start", name)


# Each container of a lab of several sites routes the other sites' subnets through the
# router. `up` writes the routes to ROUTES_FILE and a oneshot unit that applies them at
# every boot, before the network is up for anything else: they live in the container's
# own layer, so they outlast `docker kill` + `docker start` and are part of a snapshot.
ROUTES_FILE = "/etc/drctl-lab/routes"
ROUTES_UNIT = "drctl-lab-routes.service"
ROUTES_COMMAND = "/usr/local/sbin/drctl-lab-routes"
_ROUTES_COMMAND_TEXT = f"""#!/bin/sh
# Written by `drctl lab up`: routes to the lab's other sites through its WAN router,
# one `ip route` destination per line of {ROUTES_FILE}.
rc=0
while read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    ip route replace $line || rc=1
done < {ROUTES_FILE}
exit $rc
"""
_ROUTES_UNIT_TEXT = f"""[Unit]
Description=drctl lab: routes to the other sites through the WAN router
DefaultDependencies=no
Before=network.target ssh.service shutdown.target
Conflicts=shutdown.target
ConditionPathExists={ROUTES_FILE}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={ROUTES_COMMAND}

[Install]
WantedBy=multi-user.target
"""


def routes_install_script(routes: list[str]) -> str:
    """The shell script `up` runs in a container to install ROUTES and apply them; when
    the files are there already (a second `up`, a restored snapshot) it only applies them."""
    body = "".join(f"{r}\n" for r in routes)
    link = f"/etc/systemd/system/multi-user.target.wants/{ROUTES_UNIT}"
    files = ((ROUTES_COMMAND, _ROUTES_COMMAND_TEXT),
             (f"/etc/systemd/system/{ROUTES_UNIT}", _ROUTES_UNIT_TEXT), (ROUTES_FILE, body))
    return (
        "set -e\nchanged=\n"
        f"mkdir -p {os.path.dirname(ROUTES_FILE)} {os.path.dirname(link)}\n"
        + "".join(f"cat > {path}.new <<'DRCTL_EOF'\n{text}DRCTL_EOF\n"
                  f"if cmp -s {path}.new {path}; then rm {path}.new; "
                  f"else mv {path}.new {path}; changed=1; fi\n" for path, text in files)
        + f"chmod 0755 {ROUTES_COMMAND}\n"
        f"[ -L {link} ] || {{ ln -sf ../{ROUTES_UNIT} {link}; changed=1; }}\n"
        f'if [ -n "$changed" ]; then systemctl daemon-reload; systemctl restart {ROUTES_UNIT}; '
        f"else {ROUTES_COMMAND}; fi\n")


ROUTES_REMOVE_SCRIPT = (
    f"[ -f {ROUTES_FILE} ] || exit 0\n"
    f"while read -r line; do [ -n \"$line\" ] && ip route del $line; done < {ROUTES_FILE}\n"
    f"rm -f {ROUTES_FILE}\n"
    f"systemctl stop {ROUTES_UNIT} 2>/dev/null\n"
    "exit 0\n")


def install_routes(host: LabHost, sites: int | None = None) -> list[str]:
    """Install and apply the routes HOST's container needs; return them."""
    routes = site_routes(host.site, sites)
    if routes:
        docker("exec", host.container, "sh", "-c", routes_install_script(routes))
    return routes


def _remove_routes(host: LabHost) -> None:
    docker("exec", host.container, "sh", "-c", ROUTES_REMOVE_SCRIPT, check=False)


def _remove_sites_beyond(count: int, say: Say) -> bool:
    """Remove the containers and networks of the sites past the first COUNT, and the
    router when one site is left (a lab brought up again with fewer sites); True if
    anything was there."""
    names = [PREFIX + n for site in SITES[count:] for n, _o, _g in SITE_HOSTS[site]]
    names += [router_container()] + [PREFIX + n for n, _o, _g in WAN_HOSTS] \
        if count < 2 else []
    there = [n for n in names if _container_state(n) is not None]
    if there:
        remove_one_at_a_time(there)
    gone = [site_network(site) for site in
            [*SITES[count:], *([WAN_SIDE] if count < 2 else [])]
            if _remove_network(site_network(site))]
    if there or gone:
        say(f"removed {', '.join(there + gone)} (the lab has {count} site(s) now)")
    return bool(there or gone)


def _remove_app_tier(say: Say) -> bool:
    """Remove dc1's app hosts (a one-site lab brought up again without its application
    tier); True if any was there."""
    there = [PREFIX + n for n, _o, g in SITE_HOSTS["dc1"]
             if g == "app" and _container_state(PREFIX + n) is not None]
    if there:
        remove_one_at_a_time(there)
        say(f"removed {', '.join(there)} (the lab has no application tier now)")
    return bool(there)


def _require_wan() -> str:
    if site_count() < 2:
        raise DrctlError("the lab has one site: there is no WAN link to cut or restore",
                         ExitCode.USAGE, hint="drctl lab up --sites 2")
    name = router_container()
    state = _container_state(name)
    if state is None or state[0] != "running":
        raise DrctlError(f"the lab's WAN router {name} is "
                         f"{state[0] if state else 'absent'}", ExitCode.ENVIRONMENT,
                         hint="drctl lab up")
    return name


def _wan_lines(name: str) -> list[list[str]]:
    """The router's cut rules as `iptables -S` prints them, each without its "-A"."""
    proc = docker("exec", name, "iptables", "-w", "-S", "FORWARD")
    return [shlex.split(line)[1:] for line in proc.stdout.splitlines()
            if WAN_CUT_COMMENT in line and line.startswith("-A ")]


def _wan_rules(name: str) -> int:
    return len(_wan_lines(name))


def _wan_cut_specs() -> list[list[str]]:
    """The cut: every packet between dc1's and dc2's subnets, both ways. The WAN side (the
    service name's DNS server, the cloud repository's object store) stays reachable from
    each site, as a provider's services stay reachable over each site's own internet
    access when the link between the sites is lost."""
    one, two = str(site_subnet("dc1")), str(site_subnet("dc2"))
    return [["FORWARD", "-s", a, "-d", b, "-m", "comment", "--comment", WAN_CUT_COMMENT,
             "-j", "DROP"] for a, b in ((one, two), (two, one))]


def wan_state() -> str:
    """"cut" when the router drops the traffic between the sites, else "up"."""
    return "cut" if _wan_rules(_require_wan()) else "up"


def wan_cut() -> dict:
    """Make the router silently drop every packet it forwards between the two sites (a
    lost WAN link: no reject, no reset; established connections stall). Idempotent."""
    name = _require_wan()
    present = _wan_lines(name)
    missing = [spec for spec in _wan_cut_specs() if spec not in present]
    for spec in missing:
        docker("exec", name, "iptables", "-w", "-I", spec[0], "1", *spec[1:])
    return _wan_report(name, bool(missing))


def wan_restore() -> dict:
    """Remove the cut (every rule of it, an older drctl's too); idempotent."""
    name = _require_wan()
    rules = _wan_lines(name)
    for spec in rules:
        docker("exec", name, "iptables", "-w", "-D", *spec)
    return _wan_report(name, bool(rules))


def wan_status() -> dict:
    name = _require_wan()
    return _wan_report(name, False)


def _wan_report(name: str, changed: bool) -> dict:
    return {"wan": "cut" if _wan_rules(name) else "up", "changed": changed, "router": name,
            "sites": {s: {"subnet": str(site_subnet(s)), "router": router_address(s)}
                      for s in networks()}}


# A container started from a snapshot has its data in the image's lower layer, where
# overlayfs refuses to rename a directory (EXDEV): PostgreSQL renames a replication slot's
# directory to drop it, failback renames a data directory to set it aside. So, before
# systemd starts, the directories that see such renames are copied into the container's
# own layer (well under a second for the lab's data); then init takes over as PID 1.
SNAPSHOT_COPY_UP = ("/var/lib/postgresql", "/var/lib/pgbackrest")
COPY_UP_SCRIPT = (
    'set -e; for d in "$@"; do [ -d "$d" ] || continue; rm -rf "$d.copy-up"; '
    'cp -a "$d" "$d.copy-up"; rm -rf "$d"; mv "$d.copy-up" "$d"; done; exec /sbin/init')


def remove_containers(say: Say) -> list[str]:
    proc = docker("ps", "-aq", "--filter", f"label={LABEL}={NETWORK}", check=False)
    ids = proc.stdout.split()
    if ids:
        remove_one_at_a_time(ids)
    return ids


# ---------------------------------------------------------------- commands in a host

@dataclass(frozen=True)
class _Init:
    """A running container's init as this machine sees it."""
    cid: str
    pid: int
    started: str  # /proc/PID/stat's start time: a PID the kernel gave to another process
    env: tuple[str, ...]  # what `docker exec` gives a command: the container's environment


_INITS: dict[str, _Init] = {}


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _frozen(cid: str) -> bool | None:
    """Whether `docker pause` froze the container (cgroup v1 or v2); None: cannot tell."""
    for state, thawed in ((f"/sys/fs/cgroup/freezer/docker/{cid}/freezer.state", "THAWED"),
                          (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cgroup.freeze",
                           "0")):
        try:
            return Path(state).read_text().strip() != thawed
        except OSError:
            continue
    return None


def _init(container: str) -> _Init | str:
    """The container's init (cached while it runs), or why a command cannot run there."""
    known = _INITS.get(container)
    if known is None or _start_time(known.pid) != known.started:
        out = subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", container],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return out.stderr.strip() or f"no container {container}"
        cid, pid = out.stdout.split()
        started = _start_time(int(pid)) if pid != "0" else None
        if started is None:
            return f"container {container} is not running"
        env = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        known = _Init(cid, int(pid), started, tuple(e for e in env if e))
        _INITS[container] = known
    return known


def container_run(container: str, argv: list[str], timeout: float = 120
                  ) -> subprocess.CompletedProcess:
    """ARGV inside CONTAINER as root, as `docker exec` runs it (its namespaces, root and
    environment; refused in a stopped or paused container), by nsenter: `docker exec`
    costs about 55 ms of CPU a call in the docker daemons and client, nsenter about 3,
    and the suite is CPU-bound. Where the cgroup's freezer cannot be read, docker exec."""
    init = _init(container)
    if isinstance(init, str):
        return subprocess.CompletedProcess(argv, 1, "", f"Error response from daemon: {init}")
    frozen = _frozen(init.cid)
    if frozen is None:
        return subprocess.run(["docker", "exec", container, *argv], capture_output=True,
                              text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    if frozen:
        return subprocess.CompletedProcess(argv, 1, "", f"Error response from daemon: "
                                                        f"container {container} is paused")
    return subprocess.run(["nsenter", "-t", str(init.pid), "-a", "--", "env", "-i",
                           *init.env, *argv],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def _wait_booted(host: LabHost, timeout: float = 60) -> None:
    # asked by nsenter (container_run), not `docker exec`: a restore asks each host a
    # dozen times, and the suite restores the lab dozens of times
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = container_run(host.container, ["systemctl", "is-system-running"], timeout=20)
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            proc = container_run(host.container, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
            if proc.returncode == 0:
                return
        time.sleep(0.5)
    raise DrctlError(f"lab host {host.name} did not boot (systemd says '{state}')",
                     ExitCode.ENVIRONMENT,
                     hint=f"docker logs {host.container}; `systemctl list-jobs` in it all "
                          "waiting, none running: fs.inotify.max_user_instances is too low "
                          "for the containers on this machine")


def _boot_and_authorize(hosts: list[LabHost], pubkey: str) -> bool:
    """Wait until every host has booted, install the lab key on each, and write their host
    keys to known_hosts; True if known_hosts changed."""
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(_wait_booted, hosts))
        known_lines = list(pool.map(lambda h: _authorize(h, pubkey), hosts))
    return _write_if_changed(lab_dir() / "known_hosts", "".join(known_lines))


def _authorize(host: LabHost, pubkey: str) -> str:
    """Install the lab key for the `ansible` user; return the host's known_hosts line."""
    script = ("install -d -m 0700 -o ansible -g ansible /home/ansible/.ssh && "
              "cat > /home/ansible/.ssh/authorized_keys && "
              "chown ansible:ansible /home/ansible/.ssh/authorized_keys && "
              "chmod 0600 /home/ansible/.ssh/authorized_keys")
    key = docker("exec", "-i", host.container, "sh", "-c",
                 f"{script} && cat /etc/ssh/ssh_host_ed25519_key.pub", input=pubkey).stdout
    kind, blob = key.split()[:2]
    return f"{host.address} {kind} {blob}\n"


# ---------------------------------------------------------------- keys, vault, inventory

def ensure_ssh_key() -> Path:
    key = lab_dir() / "id_ed25519"
    lab_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drctl-lab", "-f", str(key)])
    return key


def _vault_lib(password: str):
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.encode()))])


def ensure_vault(inv_dir: Path) -> bool:
    """Generate the lab vault password and secrets; keep existing ones. True if written."""
    pw_file = lab_dir() / "vault-pass"
    if not pw_file.exists():
        pw_file.write_text(secrets.token_urlsafe(32) + "\n")
        pw_file.chmod(0o600)
    vault = _vault_lib(pw_file.read_text().strip())
    path = inv_dir / "group_vars" / "all" / "vault.yml"
    current: dict[str, str] = {}
    if path.exists():
        try:
            current = yaml.safe_load(vault.decrypt(path.read_bytes())) or {}
        except Exception:  # wrong password (the key was regenerated): start over
            current = {}
    wanted = dict(current)
    for name, length in VAULT_SECRETS.items():
        if not wanted.get(name):
            alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
            wanted[name] = "".join(secrets.choice(alphabet) for _ in range(length))
    if wanted == current and path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "---\n" + yaml.safe_dump(wanted, default_flow_style=False)
    path.write_bytes(vault.encrypt(text.encode()))
    path.chmod(0o600)
    return True


def render_inventory(hosts: list[LabHost], key: Path) -> dict[str, str]:
    """File name -> content for inventories/lab (the vault aside).

    With hosts in several sites, each host names its site (`drctl_location`) and every
    site but dc1 is a group whose variables (group_vars/SITE/main.yml) give its VIP and
    isolation check address; group_vars/all describes dc1, the home site, as with one
    site, except that the application networks are every site's (whichever site the
    primary is in, the applications of both reach it)."""
    sites = [s for s in SITES if any(h.site == s for h in hosts)]
    several = len(sites) > 1
    groups: dict[str, dict] = {}
    for h in hosts:
        hostvars: dict[str, str] = {"ansible_host": h.address}
        if several and h.site != WAN_SIDE:  # the WAN side is no site
            hostvars["drctl_location"] = h.site
        groups.setdefault(h.group, {"hosts": {}})["hosts"][h.name] = hostvars
    site_vars: dict[str, str] = {}
    for site in sites[1:]:
        groups[site] = {"hosts": {h.name: {} for h in hosts if h.site == site}}
        net = site_subnet(site)
        values = {
            "drctl_vip": site_vip(site),
            "drctl_app_vip": site_app_vip(site),
            "drctl_isolation_check_address": str(net.network_address + 1),
        }
        site_vars[f"group_vars/{site}/main.yml"] = (
            f"---\n# Generated by `drctl lab up`: the lab's site {site}, on its own network "
            f"(docker network {site_network(site)}).\n"
            "# group_vars/all describes dc1, the home site.\n"
            + yaml.safe_dump(values, sort_keys=False))
    if any(h.group == "cloud" for h in hosts):
        # the cloud location's clients (the drill's writer, an application redeployed
        # there) reach a rebuilt primary from the WAN side; the sites' nodes keep theirs
        site_vars["group_vars/cloud/main.yml"] = (
            "---\n# Generated by `drctl lab up`: the cloud location (group cloud), on the "
            "WAN side.\n# Its clients connect from the WAN side's network as well as the "
            "sites'.\n" + yaml.safe_dump({"drctl_app_networks": [
                str(site_subnet(site)) for site in sites] + [str(wan_subnet())]},
                sort_keys=False))
    hosts_yml = ("---\n# Generated by `drctl lab up`; `drctl lab down` removes it.\n"
                 + yaml.safe_dump({"all": {"children": groups}}, sort_keys=False))
    known = lab_dir() / "known_hosts"
    main = {
        "drctl_cluster_name": "lab",
        "drctl_lab_containers": PREFIX,
        "drctl_vip": vip(),
        **({"drctl_app_vip": site_app_vip("dc1")}
           if any(h.group == "app" and h.site == "dc1" for h in hosts) else {}),
        "drctl_vip_interface": "eth0",
        "drctl_app_networks": [str(site_subnet(site)) for site in sites],
        "drctl_isolation_check_address": str(subnet().network_address + 1),
        **({"drctl_dns_name": LAB_NAME, "drctl_dns_zone": LAB_ZONE,
            "drctl_dns_server": next(h.address for h in hosts if h.group == "dns"),
            "drctl_dns_ttl": LAB_DNS_TTL} if any(h.group == "dns" for h in hosts) else {}),
        **({"pgbackrest_s3_repos": [{
                "name": "cloud", "endpoint": next(h.name for h in hosts
                                                  if h.group == "object_store"),
                "port": LAB_S3_PORT, "bucket": LAB_S3_BUCKET, "region": "us-east-1",
                "uri_style": "path", "key": "{{ vault_s3_access_key }}",
                "secret": "{{ vault_s3_secret_key }}"}],
            "object_store_port": LAB_S3_PORT,
            "object_store_buckets": [LAB_S3_BUCKET],
            "object_store_access_keys": [{"name": "drctl", "key": "{{ vault_s3_access_key }}",
                                          "secret": "{{ vault_s3_secret_key }}"}]}
           if any(h.group == "object_store" for h in hosts) else {}),
        # the lab's CA lives with the lab's other state (created by the first provision)
        "drctl_tls_ca_dir": str(state_dir() / "ca" / "lab"),
        "ansible_user": "ansible",
        "ansible_become": True,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={known} "
                                    "-o StrictHostKeyChecking=yes -o ConnectTimeout=5 "
                                    "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"),
        # docker writes every container's /etc/hosts itself (from --add-host, again at every
        # start and restore): the names resolve already, and a block added to it would be
        # gone after each restart
        "pgbackrest_manage_etc_hosts": False,
        # the lab replicates asynchronously (a standby's loss never stalls its writes) and
        # consents, as a lab, to automatic failover losing the commits of the primary's
        # last moments; its tests of that loss set synchronous replication themselves
        "drctl_auto_accept_async_loss": True,
        **LAB_TIMEOUTS,
    }
    main_yml = ("---\n# Generated by `drctl lab up`: cluster options for the lab "
                "(documented in inventories/example/group_vars/all/main.yml).\n"
                "# pgbackrest_manage_etc_hosts is false: docker's --add-host names the hosts.\n"
                "# drctl_auto_accept_async_loss is true: a lab's consent that automatic\n"
                "# failover may lose the commits of the primary's last moments.\n"
                "# The last options shorten timeouts the tests wait out (a dead repository,\n"
                "# a silently broken stream); production keeps the roles' defaults.\n"
                + yaml.safe_dump(main, sort_keys=False))
    return {"hosts.yml": hosts_yml, "group_vars/all/main.yml": main_yml, **site_vars}


def _write_if_changed(path: Path, content: str) -> bool:
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return True


# ---------------------------------------------------------------- verbs

@dataclass
class UpResult:
    image: str
    image_built: bool
    hosts: dict[str, str]  # name -> reused/started/created (the WAN router too)
    inventory: str
    changed: bool
    seconds: float
    sites: int = 1

    def as_dict(self) -> dict:
        return self.__dict__


def up(say: Say, fresh: bool = False, sites: int | None = None) -> UpResult:
    """Bring the lab up with SITES sites (see wanted_sites() for the default)."""
    start = time.monotonic()
    count = wanted_sites(sites)
    dc2 = dc2_subnet() if count > 1 else None  # a bad DRCTL_LAB_DC2_SUBNET fails first
    ensure_engine(say)
    tag, built = ensure_image(say)
    had = site_count()
    had_app = app_tier()
    _record_sites(count)  # from here on lab_hosts() and every other verb see COUNT sites
    _record_app_tier(wanted_app_tier(count))  # and the application tier or not
    removed = _remove_sites_beyond(count, say)
    if had_app and not app_tier():
        removed |= _remove_app_tier(say)
    for site in networks(count):
        ensure_network(say, site)
    hosts = lab_hosts()
    key = ensure_ssh_key()
    pubkey = (key.with_suffix(".pub")).read_text()
    if fresh:
        drop_snapshots(say)  # they hold the old hosts' state; fresh means bare
    actions: dict[str, str] = {}
    if dc2 is not None:
        actions[ROUTER] = ensure_router(tag, fresh, say)
    for h in hosts:
        actions[h.name] = ensure_container(h, tag, fresh, say)
        if actions[h.name] != "reused":
            say(f"{h.name}: container {actions[h.name]} at {h.address}")
    known_changed = _boot_and_authorize(hosts, pubkey)
    if count > 1:
        _install_routes_everywhere(hosts)
    elif had > 1:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(_remove_routes, hosts))
    if fresh:
        _prune_untagged()
    inv_dir = lab_inventory_dir()
    changed = (built or known_changed or removed or had != count or had_app != app_tier()
               or any(a != "reused" for a in actions.values()))
    files = render_inventory(hosts, key)
    for rel, content in files.items():
        changed |= _write_if_changed(inv_dir / rel, content)
    for site in (*SITES[1:], "cloud"):  # a site (or the cloud) the lab no longer has
        if f"group_vars/{site}/main.yml" not in files and (inv_dir / "group_vars" / site).exists():
            shutil.rmtree(inv_dir / "group_vars" / site)
            changed = True
    changed |= ensure_vault(inv_dir)
    return UpResult(tag, built, actions, str(inv_dir / "hosts.yml"), changed,
                    round(time.monotonic() - start, 1), count)


def _install_routes_everywhere(hosts: list[LabHost]) -> None:
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(install_routes, hosts))


def down(say: Say, purge_image: bool = False) -> dict:
    removed = []
    networks = []
    if shutil.which("docker") and _engine_answers():
        removed = remove_containers(say)  # the WAN router too: it bears the lab's label
        drop_snapshots(say)  # after the containers: their images can go too
        networks = [site_network(s) for s in reversed([*SITES, WAN_SIDE])
                    if _remove_network(site_network(s))]
        if purge_image:
            docker("rmi", "-f", image_tag(), check=False)
    shutil.rmtree(lab_inventory_dir(), ignore_errors=True)
    for name in ("id_ed25519", "id_ed25519.pub", "known_hosts", "vault-pass",
                 _sites_file().name, _app_file().name):
        (lab_dir() / name).unlink(missing_ok=True)
    return {"containers_removed": len(removed), "inventory_removed": True,
            "networks_removed": networks}


def ssh_answers(address: str, timeout: float = 5) -> bool:
    """True when the host's sshd accepts the lab key and runs a command."""
    key = lab_dir() / "id_ed25519"
    cmd = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}",
           "-o", f"UserKnownHostsFile={lab_dir() / 'known_hosts'}",
           "-o", "StrictHostKeyChecking=yes", f"ansible@{address}", "true"]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout + 5,
                              check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def status() -> list[dict]:
    """One row per inventory host; with several sites each row names its site, and a last
    row (group "router", "ssh" None: it runs no sshd) describes the WAN router."""
    engine = shutil.which("docker") is not None and _engine_answers()
    count = site_count()
    rows = []
    for h in lab_hosts():
        state = _container_state(h.container) if engine else None
        rows.append({"host": h.name, "address": h.address, "group": h.group,
                     "container": state[0] if state else "absent", "ssh": False})
        if count > 1:
            rows[-1]["site"] = h.site
    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        answers = pool.map(lambda r: r["container"] == "running" and ssh_answers(r["address"]),
                           rows)
        for row, ok in zip(rows, answers, strict=True):
            row["ssh"] = ok
    if count > 1:
        state = _container_state(router_container()) if engine else None
        running = state is not None and state[0] == "running"
        rows.append({"host": ROUTER,
                     "address": ",".join(router_address(s) for s in networks(count)),
                     "group": "router", "site": "wan",
                     "container": state[0] if state else "absent", "ssh": None,
                     "wan": ("cut" if _wan_rules(router_container()) else "up")
                            if running else "down"})
    return rows


# ---------------------------------------------------------------- snapshots

SNAPSHOT_REPO = "drctl-lab-snapshot"
SNAPSHOT_LABEL = "drctl.lab.snapshot"
BASE_LABEL = "drctl.lab.base"
META_LABEL = "drctl.lab.meta"
_SNAPSHOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


def _snapshot_image(host: LabHost, name: str) -> str:
    return f"{SNAPSHOT_REPO}:{NETWORK}.{name}.{host.name}"


def _check_snapshot_name(name: str) -> None:
    if not _SNAPSHOT_NAME.match(name):
        raise DrctlError(f"snapshot name {name!r}: use 1 to 40 of a-z 0-9 _ . - "
                         "(starting with a letter or digit)", ExitCode.USAGE)


PAUSE_ATTEMPTS = 6


def pause(container: str, say: Say | None = None, *, attempts: int = PAUSE_ATTEMPTS) -> None:
    """`docker pause CONTAINER`, tried again when the kernel could not freeze it.

    runc gives up ("unable to freeze") when the container's processes keep escaping the
    cgroup freezer, as they do on a loaded machine (a fork, a process in uninterruptible
    I/O); runc's maintainers leave the retry to the caller (opencontainers/runc#4388).
    Each failed attempt leaves the container running, so trying again is safe; the waits
    grow 1, 2, 4, 8, 16 s. Any other error, or the last attempt's, is raised."""
    for attempt in range(1, attempts + 1):
        proc = docker("pause", container, check=False)
        if proc.returncode == 0:
            return
        err = (proc.stderr or proc.stdout or "").strip()
        if "unable to freeze" not in err or attempt == attempts:
            raise DrctlError(f"cannot pause {container}: {err}", ExitCode.ENVIRONMENT)
        wait = 2.0 ** (attempt - 1)
        if say:
            say(f"{container} could not be frozen (attempt {attempt}); "
                f"trying again in {wait:.0f} s")
        time.sleep(wait)


def _running(host: LabHost) -> bool:
    state = _container_state(host.container)
    return state is not None and state[0] == "running"


def snapshot(name: str, say: Say, meta: dict | None = None) -> dict:
    """Commit every lab container to an image, all frozen at the same instant.

    The containers are paused together (the watcher's host first, so that it never sees
    a frozen primary), committed without pausing again, then resumed in reverse order:
    the images hold one consistent cut of the whole lab, as a power cut of every host at
    once would leave it. PostgreSQL recovers from it as from any crash. The WAN router of a
    lab of two sites holds no state and is not part of it (a restore makes a new one).
    """
    _check_snapshot_name(name)
    start = time.monotonic()
    hosts = lab_hosts()
    down = [h.name for h in hosts if not _running(h)]
    if down:
        raise DrctlError(f"cannot snapshot the lab: {', '.join(down)} not running",
                         ExitCode.ENVIRONMENT, hint="drctl lab up")
    tag = image_tag()
    changes = [f"LABEL {SNAPSHOT_LABEL}={name}", f"LABEL {BASE_LABEL}={tag}",
               f"LABEL {META_LABEL}={_encode_meta(meta or {})}",
               f"LABEL drctl.lab.created={int(time.time())}"]
    order = sorted(hosts, key=lambda h: h.group not in ("backup", "app"))
    paused: list[LabHost] = []
    try:
        for h in order:
            pause(h.container, say)
            paused.append(h)
        for h in hosts:
            args = ["commit", "--pause=false"]
            for change in changes:
                args += ["--change", change]
            docker(*args, h.container, _snapshot_image(h, name), timeout=600)
    finally:
        for h in reversed(paused):
            docker("unpause", h.container, check=False)
    say(f"snapshot {name!r} taken of {len(hosts)} hosts")
    return {"name": name, "hosts": [h.name for h in hosts], "meta": meta or {},
            "seconds": round(time.monotonic() - start, 1)}


def _snapshot_refs() -> list[str]:
    """repository:tag of this lab's snapshot images (a snapshot taken again leaves its
    previous image untagged: that one is no snapshot any more)."""
    proc = docker("images", "--filter", f"label={SNAPSHOT_LABEL}", "--filter",
                  f"label={LABEL}={NETWORK}", "--filter", "dangling=false",
                  "--format", "{{.Repository}}:{{.Tag}}", check=False)
    return [ref for ref in proc.stdout.split() if "<none>" not in ref]


def _encode_meta(meta: dict) -> str:
    """JSON in a LABEL value: base64 keeps docker's LABEL syntax out of its way."""
    return base64.urlsafe_b64encode(json.dumps(meta, sort_keys=True).encode()).decode()


def _decode_meta(text: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def snapshots() -> list[dict]:
    """The lab's snapshots: name, hosts, when, meta, and whether the lab image still fits."""
    found: dict[str, dict] = {}
    tag = image_tag()
    refs = _snapshot_refs()
    infos = json.loads(docker("image", "inspect", *refs).stdout) if refs else []
    for ref, info in zip(refs, infos, strict=True):
        labels = info.get("Config", {}).get("Labels") or {}
        name = labels.get(SNAPSHOT_LABEL, "")
        snap = found.setdefault(name, {
            "name": name, "hosts": [], "created": int(labels.get("drctl.lab.created", 0)),
            "meta": _decode_meta(labels.get(META_LABEL) or ""),
            "current_image": labels.get(BASE_LABEL) == tag})
        snap["hosts"].append(ref.rsplit(".", 1)[-1])
    wanted = {h.name for h in lab_hosts()}
    for snap in found.values():
        snap["complete"] = set(snap["hosts"]) == wanted
        snap["hosts"].sort()
    return sorted(found.values(), key=lambda s: s["created"])


def restore(name: str, say: Say, partial: bool = False) -> dict:
    """Replace every lab container by one started from snapshot NAME (same names and
    addresses); return once each has booted and accepts the lab key over SSH. PARTIAL:
    a snapshot of fewer hosts (a one-site lab's, in a two-site lab) replaces the hosts it
    holds and makes every other host bare again (from the lab image), as when its site
    was just added: a host left as it was could hold a cluster ahead of the restored one."""
    _check_snapshot_name(name)
    start = time.monotonic()
    ensure_engine(say)
    snap = next((s for s in snapshots() if s["name"] == name), None)
    if partial and snap is not None and not set(snap["hosts"]) <= {h.name for h in lab_hosts()}:
        raise DrctlError(f"snapshot {name!r} holds hosts this lab does not have "
                         f"({', '.join(snap['hosts'])})", ExitCode.USAGE)
    if snap is not None and not snap["complete"] and not partial:
        count = site_count()
        raise DrctlError(f"snapshot {name!r} holds {', '.join(snap['hosts'])}; the lab "
                         f"({count} site{'s' if count > 1 else ''}) has "
                         f"{', '.join(sorted(h.name for h in lab_hosts()))}", ExitCode.USAGE,
                         hint="bring the lab up with the sites it had (drctl lab up --sites N), "
                              "or take the snapshot again")
    if snap is None:
        raise DrctlError(f"no complete lab snapshot named {name!r}", ExitCode.USAGE,
                         hint="drctl lab snapshots lists them; drctl lab snapshot NAME takes one")
    if not snap["current_image"]:
        raise DrctlError(f"snapshot {name!r} was taken from an older lab image",
                         ExitCode.ENVIRONMENT, hint="take it again after drctl lab up")
    count = site_count()
    for site in networks(count):
        ensure_network(say, site)
    hosts = [h for h in lab_hosts() if h.name in snap["hosts"]]
    bare = [h for h in lab_hosts() if h.name not in snap["hosts"]]
    # the old containers removed one at a time (remove_one_at_a_time: never side by side),
    # then the new ones created side by side: one after the other cost a third of a second
    # each, and a container joining its network does not meet the daemon's deadlock
    gone = [h.container for h in hosts + bare] + ([router_container()] if count > 1 else [])
    remove_one_at_a_time(gone, check=False)
    _forget_ssh_masters()
    image = ensure_image(say)[0] if bare or count > 1 else ""  # the router's, bare hosts'
    if count > 1:  # a new router: the WAN is up again after a restore
        _run_router(image)
    starts = [(h, _snapshot_image(h, name), SNAPSHOT_COPY_UP) for h in hosts] + \
        [(h, image, ()) for h in bare]
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        list(pool.map(lambda start: _run_container(*start), starts))
    # every host's key stays in known_hosts (after a partial restore too)
    _boot_and_authorize(lab_hosts(), ensure_ssh_key().with_suffix(".pub").read_text())
    if count > 1:  # the snapshot holds them already; this also heals an older one
        _install_routes_everywhere(hosts + bare)
    _prune_untagged()
    say(f"lab restored from snapshot {name!r}")
    return {"name": name, "hosts": [h.name for h in hosts], "bare": [h.name for h in bare],
            "seconds": round(time.monotonic() - start, 1)}


def drop_snapshots(say: Say) -> list[str]:
    """Remove every snapshot of this lab (they hold its keys and certificates)."""
    refs = _snapshot_refs()
    if refs:
        docker("rmi", "-f", *refs, check=False)
        say(f"removed {len(refs)} snapshot images")
    _prune_untagged()
    return refs


def _prune_untagged() -> None:
    """Remove this lab's snapshot images that lost their tag (taken again, or dropped)
    and that no container runs any more."""
    docker("image", "prune", "-f", "--filter", f"label={LABEL}={NETWORK}", check=False)


def _forget_ssh_masters() -> None:
    """Close drctl's SSH connection masters: their peers are gone with the old containers."""
    from drctl.paths import ssh_control_dir

    for sock in ssh_control_dir().glob("*"):
        if sock.is_socket():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"],
                           capture_output=True, timeout=10, check=False)
