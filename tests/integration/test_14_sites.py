"""Two sites: dc1 (pg1, pg2, backup1, app1 and app3 behind dc1's application VIP) and dc2
(pg3, backup2, app2) on their own networks, joined by a routed WAN link that the lab cuts
and restores (`drctl lab wan cut|restore`), with the DNS server of the service's name
(dns1) and the cloud repository's object store (s3) on the WAN side. backup1 holds
pgBackRest's repo1, backup2 repo2, the object store repo3 (backed up into by backup1)."""

import base64
import contextlib
import hashlib
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from drctl.exitcodes import ExitCode
from drctl.paths import state_dir
from drctl.workload import AppProbe
from drctl_lab import lab as labmod
from drctl_lab.hosts import (
    INVENTORY,
    lab_address,
    power_off,
    power_on,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from tests.integration.conftest import ansible_playbook, drctl_json, healthy_with, holds_for
from tests.integration.pictures import png

pytestmark = [pytest.mark.lab_sites(2), pytest.mark.usefixtures("fresh_cluster")]


def dc2_vip() -> str:
    return yaml.safe_load((INVENTORY.parent / "group_vars" / "dc2" / "main.yml").read_text()
                          )["drctl_vip"].split("/")[0]


def write_marker(table: str, vip: str | None = None) -> int:
    """A row written (and committed) through a site's VIP (dc1's by default); its value."""
    marker = time.time_ns()
    with vip_connect(vip) as conn:
        conn.execute(f"create table if not exists app.{table} (x bigint)")
        conn.execute(f"insert into app.{table} values (%s)", (marker,))
        conn.commit()
    return marker


DC1_HOSTS = ("pg1", "pg2", "backup1", "app1", "app3")


def app_vip(site: str) -> str:
    """SITE's application VIP (dc1's in group_vars/all, dc2's in its group)."""
    path = INVENTORY.parent / "group_vars" / ("all" if site == "dc1" else site) / "main.yml"
    return yaml.safe_load(path.read_text())["drctl_app_vip"].split("/")[0]


def where(host: str) -> str:
    """An app host's address, or for 'dc1'/'dc2' that site's application VIP."""
    return app_vip(host) if host in ("dc1", "dc2") else lab_address(host)


def name_points_to() -> list[str]:
    """Where the service's name points now, as its DNS server answers."""
    from drctl import dnsupdate

    main = yaml.safe_load((INVENTORY.parent / "group_vars" / "all" / "main.yml").read_text())
    settings = dnsupdate.NameSettings.from_options(main)
    assert settings is not None, "the two-site lab manages the service's name"
    found, _ttl, error = dnsupdate.lookup(settings)
    assert not error, error
    return found


def app(host: str) -> AppProbe:
    """A browser-like client of the demo application on HOST (or a site's VIP)."""
    return AppProbe(f"http://{where(host)}:8080")


class Browser:
    """A logged-in user of one site's application (cookies, CSRF), for the pictures."""

    def __init__(self, host: str, user: str, password: str):
        self.base = f"http://{where(host)}:8080"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, body = self.call("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', body.decode()).group(1)
        status, body = self.call("/login", urllib.parse.urlencode(
            {"csrf": token, "username": user, "password": password}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and f'id="username">{user}<'.encode() in body, (status, body)

    def call(self, path: str, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=20) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def upload(self, picture: bytes) -> bytes:
        """Upload PICTURE from the profile page's form; the profile page shown after."""
        _, page = self.call("/profile")
        token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1)
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
                ).encode() + token + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"picture\"; "
            f"filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + picture + (
            f"\r\n--{boundary}--\r\n").encode()
        status, shown = self.call("/profile/picture", body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert status == 200 and b'id="picture"' in shown, (status, shown[:500])
        return shown

    def picture(self) -> bytes | None:
        status, data = self.call("/profile/picture")
        return data if status == 200 else None


def copy_on(host: str, user: str) -> str:
    """The checksum of USER's picture in HOST's copy of the application's files ('')."""
    return sh(host, f"sha256sum /var/lib/drctl-demo-app/files/{user}.picture 2>/dev/null "
                    "| cut -d' ' -f1", check=False)


def has_row(host: str, table: str, marker: int) -> bool:
    out = psql(host, f"select count(*) from app.{table} where x = {marker}", db="app",
               check=False)
    return out == "1"


def node(status: dict, host: str) -> dict:
    return next(n for n in status["nodes"] if n["host"] == host)


@pytest.fixture
def wan_restored():
    """Whatever a test does to the WAN link, the next one starts with it up."""
    yield
    labmod.wan_restore()


@pytest.mark.leaves_cluster_as_found
def test_three_nodes_over_two_sites_each_site_with_its_vip_the_remote_standby_async():
    code, st = drctl_json("status")
    assert code == 0 and st["healthy"], st["problems"]
    assert {n["host"]: n["site"] for n in st["nodes"]} == {"pg1": "dc1", "pg2": "dc1",
                                                           "pg3": "dc2"}
    assert st["sites"]["dc1"]["vip_holders"] == ["pg1"]
    assert st["sites"]["dc2"] == {"vip": dc2_vip(), "nodes": ["pg3"], "vip_holders": [],
                                  "primary": None}
    pg3 = node(st, "pg3")
    assert pg3["streaming"] and pg3["sync_state"] == "async" and pg3["replication_ssl"]
    # pg3 reaches pg1 across the WAN router with its own address (no translation), in its
    # own slot
    assert psql("pg1", "select client_addr from pg_stat_replication "
                       "where application_name = 'pg3'") == lab_address("pg3")
    assert psql("pg1", "select active from pg_replication_slots where slot_name = 'pg3'") == "t"
    # nobody holds dc2's VIP while the primary is in dc1; dc2's keepalived peers with no
    # node of dc1
    assert dc2_vip() not in sh("pg3", "ip -o addr show dev eth0")
    conf = sh("pg3", "cat /etc/keepalived/keepalived.conf")
    assert dc2_vip() in conf and lab_address("pg1") not in conf
    # what is written through dc1's VIP reaches dc2
    marker = write_marker("site_marks")
    wait_for("the row on pg3", lambda: has_row("pg3", "site_marks", marker), timeout=30)


def scratch_sql(host: str, sql: str, name: str = "restore", port: int = 5490) -> str:
    """SQL in the scratch instance NAME a restore started on the repository host HOST."""
    return sh(host, f"runuser -u pgbackrest -- psql -XAtq -h /var/lib/pgbackrest-scratch/"
                    f"{name} -p {port} -U postgres -d app -c \"{sql}\"")


@pytest.mark.leaves_cluster_as_found
def test_every_repository_holds_backups_and_wal_that_restore():
    """WAL is archived to every repository: dc2's (repo2) and the object store on the WAN
    side (repo3, SeaweedFS's S3 gateway over TLS, backed up into by backup1). In each, a
    restore from that repository alone holds a row written before the backup and one
    written after it (its WAL came from there); the object store's backup is also verified
    by `drctl verify-backup --repo 3` (repo1's by test_08's; repo2's would repeat them).
    Status lists the object store as an s3 repository, and its secret appears in no
    output. (One test, not two: the set-up of each repository costs more than its
    proof.)"""
    refused_with_a_wrong_secret_or_ca()
    outputs = prove_repository(2, "backup2", "posix", "backup2", "repo_marks", verify=False)
    outputs += prove_repository(3, "backup1", "s3", "cloud", "cloud_marks")
    code, st = drctl_json("status")
    assert code == ExitCode.OK, st["problems"]
    assert [(r["repo"], r["host"], r["type"]) for r in st["backup"]["repos"]] == [
        (1, "backup1", "posix"), (2, "backup2", "posix"), (3, "backup1", "s3")], st
    assert not any(r["behind"] or not r["reachable"] for r in st["backup"]["repos"]), st
    # the object store's key and secret: in the vault and the hosts' files, nowhere else
    lib = labmod._vault_lib((labmod.lab_dir() / "vault-pass").read_text().strip())
    vault = yaml.safe_load(lib.decrypt(
        (INVENTORY.parent / "group_vars" / "all" / "vault.yml").read_bytes()))
    secret = vault["vault_s3_secret_key"]
    assert secret not in " ".join(str(x) for x in [*outputs, st])
    artifacts = [f for d in ("runner", "journal") for f in (state_dir() / d).rglob("*")
                 if f.is_file()]
    assert artifacts and not [f for f in artifacts if secret.encode() in f.read_bytes()]


def refused_with_a_wrong_secret_or_ca() -> None:
    """Provision's gate on the object stores (run alone; the lab's own key, secret and CA
    passed it in the provision this lab was built with): a wrong secret, a CA that does
    not sign the store's certificate, or a place in the bucket that holds another cluster's
    stanza stops the run naming repo3, before pgBackRest's configuration changes."""
    conf = sh("pg1", "sha256sum /etc/pgbackrest.conf")
    gate = "../tests/integration/playbooks/s3_gate.yml"
    cloud = yaml.safe_load((INVENTORY.parent / "group_vars" / "all" / "main.yml").read_text()
                           )["pgbackrest_s3_repos"]
    for change, said in (({"secret": "not-the-secret-0123456789abcdef"}, "403"),
                         ({"ca_file": "/etc/ssl/certs/ca-certificates.crt"}, "certificate")):
        wrong = json.dumps({"pgbackrest_s3_repos": [{**cloud[0], **change}]})
        play = ansible_playbook(gate, "-e", wrong, timeout=120)
        assert play.returncode != 0, play.stdout[-3000:]
        assert "repo3 (object store cloud: bucket drctl-lab at s3:9000) refused pg1" in \
            play.stdout and said in play.stdout, play.stdout[-3000:]
        assert "not-the-secret" not in play.stdout
    # a place in the bucket that holds another cluster's stanza of this cluster's name
    # (another cluster named alike, sharing the bucket): pgBackRest on pg1 writes one there
    # from a cluster initdb'd for the purpose (its own system identifier)
    foreign = "/drctl-test-foreign"
    sh("pg1", "rm -rf /tmp/foreign && install -d -o postgres -g postgres -m 700 /tmp/foreign"
              " && runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D /tmp/foreign"
              " >/dev/null && { echo '[global]'; grep '^repo3-' /etc/pgbackrest.conf"
              f" | sed -e 's/^repo3-/repo1-/' -e 's|^repo1-path=.*|repo1-path={foreign}|';"
              " echo 'lock-path=/tmp/foreign-lock'; echo 'log-level-file=off'; }"
              " > /root/foreign.conf && chmod 600 /root/foreign.conf && pgbackrest"
              " --config=/root/foreign.conf --stanza=lab --pg1-path=/tmp/foreign --no-online"
              " stanza-create")
    try:
        play = ansible_playbook(gate, "-e", json.dumps(
            {"pgbackrest_s3_repos": [{**cloud[0], "path": foreign}]}), timeout=120)
        assert play.returncode != 0, play.stdout[-3000:]
        assert "repo3 (object store cloud: bucket drctl-lab at s3:9000) already holds stanza " \
            "lab of another cluster" in play.stdout, play.stdout[-3000:]
    finally:
        sh("pg1", "pgbackrest --config=/root/foreign.conf --stanza=lab stop && pgbackrest"
                  " --config=/root/foreign.conf --stanza=lab --pg1-path=/tmp/foreign"
                  " stanza-delete --force; rm -rf"
                  " /tmp/foreign /tmp/foreign-lock /root/foreign.conf", check=False)
    assert sh("pg1", "sha256sum /etc/pgbackrest.conf") == conf


def prove_repository(repo: int, host: str, kind: str, name: str, table: str,
                     verify: bool = True) -> list[dict]:
    """A full backup into REPO (through HOST), with VERIFY verified by `drctl
    verify-backup` (a restore that finds a row written before it); then a restore from
    REPO alone, on HOST, that finds that row and one written after the backup. What drctl
    answered, for the secret check."""
    before = write_marker(table)
    code, b = drctl_json("backup", "--repo", str(repo), "--type", "full", timeout=600)
    assert code == ExitCode.OK, b
    assert (b["repo"], b["repo_host"], b["type"], b["name"]) == (repo, host, kind, name), b
    assert b["backup"]["type"] == "full"
    v: dict = {}
    if verify:
        code, v = drctl_json("verify-backup", "--repo", str(repo), "--database", "app",
                             "--sql", f"select count(*) = 1 from app.{table} where x = {before}",
                             timeout=600)
        assert code == ExitCode.OK and v["ok"] and v["repo_host"] == host, v
    after = write_marker(table)
    segment = psql("pg1", "select pg_walfile_name(pg_switch_wal())")
    wait_for(f"{segment} in repo{repo}", lambda: (drctl_json(
        "backups", "--repo", str(repo))[1].get("archive", {}).get("last_segment") or ""
        ) >= segment, timeout=120, interval=2)
    code, listing = drctl_json("backups", "--repo", str(repo))
    assert code == ExitCode.OK and (listing["repo_host"], listing["type"]) == (host, kind)
    assert b["backup"]["label"] in [x["label"] for x in listing["backups"]]
    code, r = drctl_json("restore", "--repo", str(repo), "--latest", "--replace",
                         timeout=600)
    try:
        assert code == ExitCode.OK and (r["host"], r["repo"]) == (host, repo), r
        assert scratch_sql(host, f"select count(*) from app.{table} where x in "
                                 f"({before}, {after})") == "2"
    finally:
        drctl_json("restore", "--repo", str(repo), "--drop", timeout=300)
    return [b, v, listing, r]


@pytest.mark.leaves_cluster_as_found
def test_a_cut_wan_link_promotes_nothing_and_status_reports_the_remote_standby(wan_restored):
    assert labmod.wan_cut()["wan"] == "cut"
    # commits do not wait for the remote site
    marker = write_marker("site_marks")
    psql("pg1", "select pg_switch_wal()")  # a segment to archive across the cut
    wait_for("status to report pg3 not streaming", lambda: any(
        p.startswith("pg3 is not streaming") for p in drctl_json("status")[1]["problems"]),
        timeout=90, interval=2)

    def repo2_behind() -> bool:
        """repo1 (dc1) and the object store on the WAN side (repo3, which dc1 still
        reaches) received the segment, repo2 (dc2) did not, and status says it is repo2
        that holds archiving back (PostgreSQL waits for every repository)."""
        st = drctl_json("status")[1]
        repos = st["backup"]["repos"]
        return (not repos[0]["behind"] and repos[1]["behind"] and not repos[2]["behind"]
                and any(p.startswith("WAL archiving") and "repo2 (backup2) is behind" in p
                        for p in st["problems"]))

    wait_for("status to name repo2 behind", repo2_behind, timeout=150, interval=3)
    holds_for("no promotion anywhere while the WAN is cut", lambda: (
        psql("pg3", "select pg_is_in_recovery()") == "t" and vip_holders() == ["pg1"]
        and dc2_vip() not in sh("pg3", "ip -o addr show dev eth0")), 5)
    assert not has_row("pg3", "site_marks", marker)
    assert labmod.wan_restore()["wan"] == "up"
    wait_for("pg3 to catch up", lambda: has_row("pg3", "site_marks", marker), timeout=90,
             interval=1)
    healthy_with("pg1", timeout=90)


def test_failover_with_two_standbys_promotes_the_local_one_and_the_remote_one_follows(
        wan_restored):
    """pg3 (dc2) is behind when pg1 loses power: drctl failover promotes pg2 (dc1, the
    most WAL), then re-points pg3 at pg2, which streams what pg3 missed on the new
    timeline; nothing acknowledged is lost."""
    before = write_marker("site_marks")
    wait_for("the first row on pg3", lambda: has_row("pg3", "site_marks", before), timeout=30)
    labmod.wan_cut()
    missed = write_marker("site_marks")
    wait_for("the second row on pg2", lambda: has_row("pg2", "site_marks", missed), timeout=30)
    power_off("pg1")
    labmod.wan_restore()
    code, report = drctl_json("failover", "--yes", timeout=600)
    assert code == ExitCode.OK, report
    st = report["status"]
    assert st["primary"] == "pg2" and st["vip_holders"] == ["pg2"], st
    followed = [e for e in report["journal"] if e["step"] == "followed"]
    assert [(e["host"], e["result"]) for e in followed] == [("pg3", "ok")], report["journal"]
    pg3 = node(st, "pg3")
    assert pg3["streaming"] and pg3["upstream"] == lab_address("pg2"), pg3
    assert pg3["timeline"] == node(st, "pg2")["timeline"] == 2
    wait_for("the row pg3 missed, from pg2", lambda: has_row("pg3", "site_marks", missed),
             timeout=30)
    after = write_marker("site_marks")  # through dc1's VIP, now on pg2
    assert has_row("pg2", "site_marks", after)
    wait_for("the new primary's row on pg3", lambda: has_row("pg3", "site_marks", after),
             timeout=30)


def test_a_standby_that_cannot_follow_the_new_primary_fails_the_failover_by_name():
    """pg3 cannot reach pg2 (a firewall on pg3): pg2 is promoted and serves, and the
    failover still exits non-zero naming pg3 and why, instead of calling it a success."""
    sh("pg3", f"iptables -I OUTPUT -d {lab_address('pg2')} -p tcp --dport 5432 -j REJECT")
    power_off("pg1")
    code, report = drctl_json("failover", "--yes", timeout=600)
    assert code == ExitCode.FAILED, report
    assert report["status"]["primary"] == "pg2" and report["status"]["vip_holders"] == ["pg2"]
    [followed] = [e for e in report["journal"] if e["step"] == "followed"]
    assert followed["host"] == "pg3" and followed["result"] == "failed", followed
    assert any(p.startswith("pg3 is not streaming") for p in report["status"]["problems"])


@contextlib.contextmanager
def tsig_secret(secret: str):
    """The lab vault's TSIG secret replaced by SECRET (the DNS server keeps the real one),
    put back afterwards."""
    vault_file = INVENTORY.parent / "group_vars" / "all" / "vault.yml"
    lib = labmod._vault_lib((labmod.lab_dir() / "vault-pass").read_text().strip())
    original = vault_file.read_bytes()
    values = yaml.safe_load(lib.decrypt(original))
    values["vault_dns_tsig_secret"] = secret
    vault_file.write_bytes(lib.encrypt(("---\n" + yaml.safe_dump(values)).encode()))
    try:
        yield
    finally:
        vault_file.write_bytes(original)


@pytest.mark.leaves_cluster_as_found
def test_a_planned_switchover_to_the_remote_site_and_back_loses_nothing():
    """The primary moves to dc2 (a site maintenance, a real DR test) and back: dc1's nodes
    follow pg3 without a re-clone, writes go through dc2's VIP meanwhile, and every row is
    everywhere at the end. The first move is made with a wrong TSIG key: the database moves,
    the name does not, and drctl says so (exit 12, where the name points, the retry); once
    the key is right, `drctl dns publish` moves it; the way back moves it home itself."""
    before = write_marker("site_marks")
    code, plan = drctl_json("switchover", "--to", "pg3", "--plan")
    assert code == 0 and any(n.startswith("the primary moves from site dc1 to site dc2: "
                                          f"clients must reach dc2's VIP ({dc2_vip()})")
                             for n in plan["notes"]), plan
    wrong = base64.b64encode(b"not the key the DNS server holds!").decode()
    with tsig_secret(wrong):
        code, report = drctl_json("switchover", "--to", "pg3", "--yes", timeout=600)
        assert code == ExitCode.NAME_NOT_MOVED, report
        said = report["_stderr"]
        assert "was NOT moved: the DNS update failed" in said, said
        assert "refused the TSIG key" in said and "drctl dns publish" in said
        assert f"still points to {app_vip('dc1')}" in said
        name = report["service_name"]
        assert (name["moved"], name["step"], name["points_to"], name["want"]) == (
            False, "the DNS update", [app_vip("dc1")], app_vip("dc2")), name
        # the database moved all the same: pg3 is the primary
        assert report["status"]["primary"] == "pg3", report["status"]
        assert any(e["step"] == "name-not-moved" for e in report["journal"])
        assert name_points_to() == [app_vip("dc1")]
        code, st = drctl_json("status")
        assert code == ExitCode.UNHEALTHY and st["service"]["site"] == "dc1"
        assert any(f"not to {app_vip('dc2')}, the address of the serving site dc2" in p
                   for p in st["problems"]), st["problems"]
    code, published = drctl_json("dns", "publish")
    assert code == ExitCode.OK, published
    assert published["service_name"]["address"] == app_vip("dc2")
    assert name_points_to() == [app_vip("dc2")]
    st = report["status"]
    assert st["primary"] == "pg3" and st["vip_holders"] == ["pg3"], st
    assert st["sites"]["dc2"]["vip_holders"] == ["pg3"] and st["sites"]["dc1"]["vip_holders"] == []
    for host in ("pg1", "pg2"):
        n = node(st, host)
        assert n["streaming"] and n["upstream"] == lab_address("pg3"), n
    remote = write_marker("site_marks", dc2_vip())
    assert has_row("pg3", "site_marks", remote)
    wait_for("dc2's row on pg1", lambda: has_row("pg1", "site_marks", remote), timeout=30)
    # the way back as an Ansible or AWX user runs it, without drctl: the playbook moves
    # the name home itself (includes/service-name.yml)
    play = ansible_playbook("switchover.yml", "-e", "target=pg1", timeout=600)
    assert play.returncode == 0, play.stdout[-3000:]
    assert play.stdout.count("TASK [Publish the service's name") == 1, play.stdout[-3000:]
    step = play.stdout.split("TASK [Publish the service's name")[-1]
    step = re.split(r"\n(?:TASK|PLAY) \[", step)[0]
    assert "changed: [pg" in step, play.stdout[-3000:]
    assert name_points_to() == [app_vip("dc1")]
    assert vip_holders() == ["pg1"]
    healthy_with("pg1", timeout=90)
    for marker in (before, remote):
        for host in ("pg1", "pg2", "pg3"):
            wait_for(f"row {marker} on {host}", lambda h=host, m=marker: has_row(
                h, "site_marks", m), timeout=30)


@pytest.mark.leaves_cluster_as_found
def test_site_failover_when_dc1_is_gone_then_dc1_fails_back_and_the_primary_comes_home():
    """All of dc1 loses power. drctl failover --site dc2 refuses while nobody can tell
    what pg3 lacks (dc1's watcher went with the site: unknown is not zero), then with the
    operator's consent promotes pg3, which serves writes through dc2's VIP. dc1 returns:
    pg1 fences itself, failback rejoins both of dc1's nodes as standbys of pg3, and a
    switchover brings the primary home; every row that reached pg3 is everywhere."""
    kept = write_marker("site_marks")
    assert name_points_to() == [app_vip("dc1")], "provision published the name for dc1"
    user, password = f"site_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    assert app("dc1").register(user, password), "a user registers at dc1's app"
    wait_for("the row on pg3", lambda: has_row("pg3", "site_marks", kept), timeout=30)
    wait_for(f"{user} on pg3", lambda: psql("pg3", f"select count(*) from app.users where "
                                                   f"username = '{user}'", db="app") == "1",
             timeout=30)
    # the user's picture, a file on the disk of the app host that holds dc1's application
    # VIP, reaches dc2 by the timer's copy
    picture = png(user)
    Browser("dc1", user, password).upload(picture)
    digest = hashlib.sha256(picture).hexdigest()
    wait_for("the serving app host's copy of the picture at app2 and backup1", lambda: copy_on(
        "app2", user) == digest and sh("backup1", f"sha256sum /var/lib/drctl-app-files/"
                                                  f"{user}.picture", check=False).startswith(
        digest), timeout=60, interval=1)
    code, st = drctl_json("status")
    copies = {f["host"]: f for f in st["files"]}
    holder = next(v["holders"][0] for v in st["app_vips"] if v["site"] == "dc1")
    assert copies[holder]["sender"] and copies["app2"]["copied_from"] == holder, copies
    assert [h for h, f in copies.items() if f["sender"]] == [holder], "one sender"
    assert copies["app2"]["age_s"] < 60 and copies["backup1"]["age_s"] < 60, copies
    power_off(*DC1_HOSTS)
    try:
        code, refused = drctl_json("failover", "--site", "dc2", "--yes", timeout=600)
        assert code == ExitCode.REFUSED, refused
        assert "unknown is not zero" in refused["_stderr"], refused["_stderr"]
        # dc2's own watcher lost pg1 too, but from across the WAN: that is no proof
        assert "backup2 is in site dc2, not in pg1's site dc1" in refused["_stderr"]
        code, report = drctl_json("failover", "--site", "dc2", "--allow-data-loss", "--yes",
                                  timeout=600)
        assert code == ExitCode.OK, report
        st = report["status"]
        assert st["primary"] == "pg3" and st["vip_holders"] == ["pg3"], st
        assert st["sites"]["dc2"]["vip_holders"] == ["pg3"]
        assert report["data_loss"]["accepted"] and report["data_loss"]["verdict"] == "unknown"
        # the service's name moved to dc2's application, a step of its own in the journal
        assert report["service_name"]["moved"] is True, report["service_name"]
        assert report["service_name"]["address"] == app_vip("dc2")
        assert any(e["step"] == "name-moved" for e in report["journal"])
        assert name_points_to() == [app_vip("dc2")]
        remote = write_marker("site_marks", dc2_vip())
        assert has_row("pg3", "site_marks", remote) and has_row("pg3", "site_marks", kept)
        # dc2's application serves through the name: the user from before the loss logs
        # in, a new one joins
        at_dc2 = AppProbe(f"http://{name_points_to()[0]}:8080")
        assert at_dc2.login(user, password), at_dc2.results
        newcomer, newcomer_password = f"dc2_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        assert at_dc2.register(newcomer, newcomer_password), at_dc2.results
        # the picture uploaded at dc1 is there at dc2; a new one uploaded at dc2 is kept
        assert Browser("app2", user, password).picture() == picture
        later = png(newcomer)
        Browser("app2", newcomer, newcomer_password).upload(later)
    finally:
        for host in DC1_HOSTS:
            power_on(host)
    wait_for("pg1 to fence itself (pg3 is on a newer timeline)",
             lambda: sh("pg1", "test -e /etc/drctl/fenced && echo yes", check=False) == "yes",
             timeout=120, interval=2)
    assert vip_holders() == [] and psql("pg3", "select pg_is_in_recovery()") == "f"
    for host in ("pg1", "pg2"):
        code, report = drctl_json("failback", "--node", host, "--yes", timeout=900)
        assert code == ExitCode.OK, report
    # dc2 serves, so app2 sends: the switchover home sends what was uploaded at dc2 to
    # dc1's app hosts itself, before the handover (not at the copy's next minute)
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == ExitCode.OK, report
    sent = [e for e in report["journal"] if e["step"] == "files-sent"]
    assert [e["host"] for e in sent] == ["app2"], report["journal"]
    assert [e["step"] for e in report["journal"]].index("files-sent") < \
        [e["step"] for e in report["journal"]].index("promoted"), report["journal"]
    for host in ("app1", "app3"):
        assert copy_on(host, newcomer) == hashlib.sha256(later).hexdigest(), host
    assert report["service_name"]["address"] == app_vip("dc1"), "the name comes home too"
    assert name_points_to() == [app_vip("dc1")]
    healthy_with("pg1", timeout=120)
    assert Browser("dc1", newcomer, newcomer_password).picture() == later
    assert Browser("dc1", user, password).picture() == picture
    for host in ("pg1", "pg2", "pg3"):
        for marker in (kept, remote):
            wait_for(f"row {marker} on {host}", lambda h=host, m=marker: has_row(
                h, "site_marks", m), timeout=30)


@pytest.mark.leaves_cluster_as_found
def test_the_site_drill_loses_dc1_serves_from_dc2_and_comes_home():
    """`drctl drill --scenario site-failback-cycle`: refused without consent to lose data;
    with it, dc1 loses power under a write and app load, dc2 takes over, dc1 comes back
    and the primary goes home. The report shows both sites and every acknowledged write
    accounted for."""
    code, refused = drctl_json("drill", "--scenario", "site-failback-cycle", "--yes")
    assert code == ExitCode.REFUSED and refused["exit_name"] == "REFUSED"
    assert "asynchronously" in refused["error"] and "--allow-data-loss" in refused["hint"]
    code, report = drctl_json("drill", "--scenario", "site-failback-cycle", "--duration", "10",
                              "--rate", "50", "--app-rate", "1", "--allow-data-loss", "--yes",
                              timeout=1200)
    # dc1 replicates to pg3 asynchronously: a write acknowledged in the last instant
    # before the cut may not have reached it. The operator consented to what the rules
    # stated (dc2's watcher cannot vouch for dc1's end: unknown, or a loss it saw): the
    # drill judges the loss against that statement and shows both
    lost = report["sql"]["lost"]
    assert (code, report["ok"]) == (ExitCode.OK, True), report.get("error")
    judged = report["data_loss"]
    assert judged["stated"]["verdict"] in ("unknown", "loss"), judged
    assert judged["stated"]["accepted"] and judged["within"] and judged["lost"] == lost
    assert report["error"] is None and lost <= 5 and (lost == 0) == (report["rpo_s"] == 0.0)
    sites = report["sites"]
    assert sites["dc1"]["role"] == "lost" and sites["dc2"]["role"] == "took over"
    assert sites["dc1"]["primary_before"] and sites["dc1"]["primary_after"]
    commands = [o["command"] for o in report["operations"]]
    assert commands == ["drctl failover --site dc2 --allow-data-loss",
                        "drctl failback --site dc1 --switch-back"], commands
    # the workload reached dc2's primary through dc2's VIP while dc1 was dark
    labels = [e["label"] for e in report["events"]]
    assert any("site dc1 loses power" in x for x in labels), labels
    dark = next(e["t"] for e in report["events"] if "loses power" in e["label"])
    back = next(e["t"] for e in report["events"] if "is back" in e["label"])
    acked = report["series"]["writes"]
    bin_s = report["series"]["bin_s"]
    assert sum(acked[int(dark / bin_s) + 1:int(back / bin_s)]) > 0, "no write while dc1 dark"
    # users knew only the service's name: they followed it to dc2 and back
    assert report["app"]["urls"] == ["http://app.lab.drctl.test:8080"], report["app"]["urls"]
    assert app_vip("dc2") in [m["address"] for m in report["app"]["name_moves"]]
    assert app_vip("dc2") in report["app"]["served_by"], report["app"]
    assert any("the name resolves to" in x for x in labels), labels
    assert report["app"]["registrations_missing"] == []
    healthy_with("pg1", timeout=120)


DC2_HOSTS = ("pg3", "backup2", "app2")


def test_with_both_sites_lost_the_cluster_is_rebuilt_in_the_cloud_from_the_object_store():
    """The third kind of disaster recovery (issue #33): neither site survives. A full
    backup went into the object store (repo3) and a row was committed and archived after
    it. While pg1 still answers as a primary, `drctl rebuild` refuses (it would make a
    second one). The cloud-restore drill (refused without consent) then powers off every
    host of dc1 and dc2 under a write load and rebuilds on cloud1 (on the WAN side,
    provisioned with PostgreSQL and pgBackRest pointed at the object store only): it
    restores repo3's backup, replays its WAL and promotes itself; both rows are there,
    every write the drill saw acknowledged is there or was acknowledged after the last
    commit replayed (what the store lacked), cloud1 takes the drill's writes, and the
    report states the recovery point and time. When dc1 comes back, its old primary
    fences itself on the rebuild's timeline in the store, status calls the old cluster
    superseded, and no failover promotes its standby."""
    before = write_marker("cloud_rebuild")
    code, b = drctl_json("backup", "--repo", "3", "--type", "full", timeout=600)
    assert code == ExitCode.OK, b
    after = write_marker("cloud_rebuild")
    timeline = int(psql("pg1", "select timeline_id from pg_control_checkpoint()"))
    segment = psql("pg1", "select pg_walfile_name(pg_switch_wal())")
    wait_for(f"{segment} in repo3", lambda: (drctl_json("backups", "--repo", "3")[1].get(
        "archive", {}).get("last_segment") or "") >= segment, timeout=120, interval=2)
    code, refused = drctl_json("rebuild", "--on", "cloud1", "--repo", "3", "--yes",
                               "--allow-data-loss", timeout=300)
    assert code == ExitCode.REFUSED and refused["result"] == "refused", refused
    assert any(g["gate"] == "no primary answers" and not g["ok"] and "pg1" in g["detail"]
               for g in refused["gates"]), refused
    assert sh("cloud1", "systemctl is-active postgresql@15-main", check=False) != "active"
    drill = ("drill", "--scenario", "cloud-restore", "--duration", "10", "--rate", "20",
             "--yes")
    code, refused = drctl_json(*drill, timeout=120)
    assert code == ExitCode.REFUSED and "object store" in refused.get("error", ""), refused
    assert vip_holders() == ["pg1"]  # refused before anything
    code, report = drctl_json(*drill, "--allow-data-loss", timeout=900)
    assert code == ExitCode.OK, report
    assert report["ok"] and report["data_loss"]["within"], report["data_loss"]
    rebuilt = report["rebuild"]
    assert (rebuilt["on"], rebuilt["repo"]) == ("cloud1", 3), rebuilt
    assert rebuilt["timeline"] > timeline and rebuilt["last_replayed_commit"], rebuilt
    assert [o["command"] for o in report["operations"]] == [
        "drctl rebuild --on cloud1 --repo 3 --allow-data-loss"], report["operations"]
    assert psql("cloud1", "select pg_is_in_recovery()") == "f"
    assert psql("cloud1", f"select count(*) from app.cloud_rebuild where x in ({before}, "
                          f"{after})", db="app") == "2"
    # what the report counts is what cloud1 holds: the drill's acknowledged writes less
    # those it lost (and at most the attempts whose answer never came), some of them taken
    # by cloud1 itself after its recovery point
    sql = report["sql"]
    since = f"at >= '{report['started_at']}'"

    def rows() -> int:
        return int(psql("cloud1", f"select count(*) from app.drill_writes where {since}",
                        db="app"))
    kept = rows()
    assert sql["acknowledged"] - sql["lost"] <= kept <= \
        sql["acknowledged"] - sql["lost"] + sql["errors"], (kept, sql)
    assert int(psql("cloud1", "select count(*) from app.drill_writes where at > "
                              f"'{rebuilt['last_replayed_commit']}'", db="app")) > 0
    print(f"cloud-restore drill: rebuilt on cloud1 from repo3 {rebuilt['recovery_s']} s "
          f"after the power cut (the rebuild {rebuilt['rebuild_rto_s']} s); last commit "
          f"replayed {rebuilt['last_replayed_commit']}, {rebuilt['rpo_behind_newest_ack_s']} s "
          f"before the newest acknowledged write; {sql['lost']} of {sql['acknowledged']} "
          f"acknowledged writes lost: {report['data_loss']['sentence']}")
    # dc1's power returns (or the partition that looked like the loss of both sites
    # heals): pg1 would start as the primary its standby confirms, but the object store
    # holds the rebuild's newer timeline, and pg1 fences itself on it: the old site never
    # takes a write beside the rebuilt primary
    for host in ("pg2", "pg1"):  # its standby first, up to confirm it
        power_on(host)
    wait_for("pg1 to fence itself (repo3 holds the rebuild's timeline)",
             lambda: "repo3" in sh("pg1", "cat /etc/drctl/fenced", check=False),
             timeout=120, interval=2)
    reason = json.loads(sh("pg1", "cat /etc/drctl/fenced"))["reason"]
    assert f"timeline {rebuilt['timeline']}, newer than this node's" in reason, reason
    assert sh("pg1", "systemctl is-active postgresql@15-main", check=False) != "active"
    assert vip_holders() == []
    # status says the old cluster is superseded, and no failover promotes its standby
    # beside the rebuilt primary, not even with consent to lose data
    code, st = drctl_json("status")
    assert st["problems"][0].startswith("SUPERSEDED: repository repo3's archive holds "
                                        f"timeline {rebuilt['timeline']}"), st["problems"]
    assert [(c["host"], c["role"], c["timeline"]) for c in st["cloud"]] == [
        ("cloud1", "primary", rebuilt["timeline"])], st["cloud"]
    code, refused = drctl_json("failover", "--allow-data-loss", "--yes", timeout=300)
    assert code == ExitCode.REFUSED, refused
    assert [g["gate"] for g in refused["gates"] if not g["ok"]] == [
        "no newer timeline in the archive"], refused
    assert psql("pg2", "select pg_is_in_recovery()") == "t"
    assert rows() == kept  # cloud1 keeps what it took
