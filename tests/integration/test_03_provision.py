"""drctl provision: a primary, a standby streaming over TLS with scram, the VIP on the primary."""

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from drctl_lab.hosts import lab_address, lab_secrets, psql, sh, vip_connect, vip_holders, wait_for
from tests.integration.conftest import (
    ROOT,
    ansible_playbook,
    drctl,
    drctl_json,
    scrape,
    scrape_text,
    series,
)


@pytest.fixture(scope="module")
def provisioned(clean_cluster):
    """What the provision that made the lab's snapshot reported (from bare hosts on a
    fresh lab), with the lab restored to that snapshot."""
    return clean_cluster


def test_provision_succeeds(provisioned):
    assert provisioned["status"] == "successful"
    assert provisioned["failures"] == []
    if provisioned["from_bare"]:  # as on a fresh lab (CI); else code changes provisioned on top
        assert provisioned["changed"] > 0


def test_every_node_serves_drctl_view_to_prometheus(provisioned):
    """node_exporter on each node serves what `drctl status` sees: one primary holding the
    VIP, a streaming standby, archiving, and the newest backup's age (with a backup host)."""
    healthy_since = time.time()  # the fixture left a healthy cluster: metrics written from
    # now on must say so (the timer writes every 15 s; a restored lab starts with old ones)

    def both() -> tuple[dict, dict] | None:
        pg1, pg2 = scrape("pg1"), scrape("pg2")
        fresh = all((series(m, "drctl_metrics_timestamp_seconds") or 0) > healthy_since
                    for m in (pg1, pg2))
        return (pg1, pg2) if fresh else None

    pg1, pg2 = wait_for("drctl's metrics on pg1 and pg2 written after the check began", both,
                        timeout=60, interval=1)
    assert series(pg1, "drctl_pg_primary", cluster="lab", node="pg1") == 1
    assert series(pg1, "drctl_vip_held") == 1 and series(pg2, "drctl_vip_held") == 0
    assert series(pg2, "drctl_pg_primary", node="pg2") == 0
    assert series(pg2, "drctl_standby_streaming") == 1
    assert series(pg1, "drctl_replication_lag_bytes", standby="pg2") is not None
    assert series(pg1, "drctl_archive_failed_total") is not None
    assert series(pg1, "drctl_backup_info_ok") == 1
    text = scrape_text("pg1")
    drctl_only = "".join(ln + "\n" for ln in text.splitlines() if "drctl_" in ln)
    lint = subprocess.run([str(Path(sys.executable).parent / "promtool"), "check", "metrics"],
                          input=drctl_only, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_status_is_healthy_with_the_documented_json(provisioned):
    code, report = drctl_json("status")
    assert code == 0, report["problems"]
    assert report["healthy"] is True and report["problems"] == []
    assert report["primary"] == "pg1"
    assert report["vip_holders"] == ["pg1"]
    nodes = {n["host"]: n for n in report["nodes"]}
    assert set(nodes) == {"pg1", "pg2"}
    for key in ("host", "role", "timeline", "lsn", "lag_bytes", "vip"):
        assert all(key in n for n in nodes.values())
    assert nodes["pg1"]["role"] == "primary" and nodes["pg1"]["vip"] is True
    assert nodes["pg2"]["role"] == "standby" and nodes["pg2"]["vip"] is False
    assert nodes["pg2"]["streaming"] is True and nodes["pg2"]["replication_ssl"] is True
    assert nodes["pg2"]["lag_bytes"] is not None
    assert nodes["pg1"]["vrrp_state"] == "MASTER" and nodes["pg2"]["vrrp_state"] == "FAULT"
    assert [s["slot_name"] for s in nodes["pg1"]["slots"]] == ["pg2"]


def test_pretty_status_names_the_primary(provisioned):
    proc = drctl("status")
    assert proc.returncode == 0
    assert "healthy" in proc.stdout and "pg1" in proc.stdout


def test_row_written_through_the_vip_reaches_the_standby(provisioned):
    marker = str(uuid.uuid4())
    with vip_connect() as conn:
        info = conn.execute("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
                            ).fetchone()
        assert info[0] is True, "the VIP connection must use TLS"
        conn.execute("create table if not exists app.probe (id text primary key, at timestamptz"
                     " default now())")
        conn.execute("insert into app.probe (id) values (%s)", (marker,))
        conn.commit()
    # until pg2 has replayed the table's creation too, the query fails: not an answer yet
    wait_for("the row on pg2", lambda: psql("pg2", f"select count(*) from app.probe where "
                                                   f"id = '{marker}'", db="app",
                                            check=False) == "1")


def test_standby_refuses_writes(provisioned):
    out = sh("pg2", "runuser -u postgres -- psql -XAtq -d app -c "
                    "\"create table app.nope (x int)\" 2>&1", check=False)
    assert "read-only transaction" in out


def assert_no_secret_in(text: str) -> None:
    for name, secret in lab_secrets().items():
        assert not secret or secret not in text, f"{name} is printed"


def test_pg_hba_is_least_privilege(provisioned):
    for host in ("pg1", "pg2"):
        assert sh(host, f"stat -c '%a %U:%G' {HBA}") == "640 postgres:postgres"
        lines = [ln.split() for ln in sh(host, "cat /etc/postgresql/15/main/pg_hba.conf")
                 .splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        network = [ln for ln in lines if ln[0] != "local"]
        assert network, "no network access at all?"
        assert all(ln[0] == "hostssl" for ln in network), network
        # every network login is scram over TLS, but the watcher's: its certificate, from
        # the backup host only, to the postgres database, mapped to its own role
        watcher = [ln for ln in network if ln[2] == "drctl_watch"]
        assert watcher == [["hostssl", "postgres", "drctl_watch", lab_address("backup1") + "/32",
                            "cert", "map=drctl_watch"]], watcher
        assert all(ln[-1] == "scram-sha-256" for ln in network if ln not in watcher), network
        ident = sh(host, "grep -v '^#' /etc/postgresql/15/main/pg_ident.conf").split()
        assert ident == ["drctl_watch", "backup1", "drctl_watch"], ident
        assert not any("trust" in ln for ln in lines)
        replication = [ln for ln in network if ln[1] == "replication"]
        assert replication and all(ln[3].endswith("/32") for ln in replication)
        assert all(ln[1] != "all" for ln in network), "no network line may open every database"


def test_passwords_are_scram_and_replication_uses_pgpass(provisioned):
    kinds = psql("pg1", "select distinct left(rolpassword, 14) from pg_authid "
                        "where rolpassword is not null")
    assert kinds.splitlines() == ["SCRAM-SHA-256$"]
    conf = sh("pg2", "cat /etc/postgresql/15/main/conf.d/90-drctl-standby.conf")
    assert "password" not in conf and "sslmode=verify-full" in conf
    assert sh("pg2", "stat -c '%a %U' /var/lib/postgresql/.pgpass") == "600 postgres"


def test_settings_for_later_rewind_and_bounded_slots(provisioned):
    assert psql("pg1", "show wal_log_hints") == "on"
    assert psql("pg1", "show data_checksums") == "on"
    assert psql("pg1", "show max_slot_wal_keep_size") == "1GB"


HBA = "/etc/postgresql/15/main/pg_hba.conf"


def provision_json(*args: str) -> tuple[dict, str]:
    """(result, everything printed) of `drctl provision ARGS --format json`."""
    proc = drctl("provision", *args, "--format", "json", timeout=1200)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, result["failures"]
    return result, proc.stdout + proc.stderr


def changed_by_host(result: dict) -> dict[str, int]:
    return {h: s.get("changed", 0) for h, s in result["stats"].items()}


def recap_changed(printed: str) -> dict[str, int]:
    """host -> changed, from the recap the people's output ends with."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^ +(\S+) +ok=\d+ changed=(\d+) ", printed,
                                                re.MULTILINE)}


def test_check_mode_reports_drift_without_fixing_it(provisioned):
    sh("pg2", f"echo '# drift' >> {HBA}")
    result, printed = provision_json("--check")
    changed = changed_by_host(result)
    assert changed["pg1"] == changed["backup1"] == changed["app1"] == changed["app3"] == 0, \
        result["changes"]
    # the drift, and only the drift: everything else on the standby is as provision left
    # it (idempotence on the full lab, the standby with its repository host included)
    assert {c["task"] for c in result["changes"] if c["host"] == "pg2"} == {
        "Configure client authentication (least privilege)", "Reload PostgreSQL"}, \
        result["changes"]
    assert sh("pg2", f"tail -1 {HBA}") == "# drift", "check mode must not change anything"
    assert_no_secret_in(printed)


def test_standby_holding_another_cluster_is_not_wiped(provisioned):
    """Continues from the drift above. A real run stops at its gate, before any host
    changes (the drift stays), because pg2's data directory holds someone else's cluster;
    --force-reclone replaces it, repairs the drift and changes nothing on any other host
    (idempotence on the full lab: molecule proves it on a pair of nodes)."""
    # Replace pg2's data with an unrelated (stopped) cluster: someone's data we must not lose.
    controldata = ("runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_controldata "
                   "/var/lib/postgresql/15/main | grep 'system identifier'")
    sh("pg2", "systemctl stop postgresql@15-main && "
              "mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.replica && "
              "install -d -o postgres -g postgres -m 700 /var/lib/postgresql/15/main && "
              "runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "
              "/var/lib/postgresql/15/main >/dev/null")
    foreign = sh("pg2", controldata)
    proc = drctl("provision", timeout=1200)  # the people's output, this time
    assert proc.returncode == 1
    assert re.search(r"pg2: .*holds a different cluster", proc.stderr), proc.stderr
    assert "Nothing was changed on any host" in proc.stderr and "--force-reclone" in proc.stderr
    assert_no_secret_in(proc.stdout + proc.stderr)
    assert sh("pg2", controldata) == foreign, "the foreign cluster must be left as it was"
    assert sh("pg2", f"tail -1 {HBA}") == "# drift", "the refusal changed nothing"
    assert vip_holders() == ["pg1"]

    # the people's output of a whole successful run: its recap, and not one secret in it
    proc = drctl("provision", "--force-reclone", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    assert_no_secret_in(proc.stdout + proc.stderr)
    changed = recap_changed(proc.stdout)
    assert set(changed) == {"pg1", "pg2", "backup1", "app1", "app3"}, proc.stdout[-2000:]
    assert changed["pg1"] == changed["backup1"] == changed["app1"] == changed["app3"] == 0, \
        proc.stdout[-2000:]
    assert changed["pg2"] > 0
    assert sh("pg2", controldata) != foreign
    assert "# drift" not in sh("pg2", f"cat {HBA}"), "the drift is repaired"
    sh("pg2", "rm -rf /var/lib/postgresql/15/main.replica")
    code, report = drctl_json("status")
    assert code == 0, report["problems"]
    assert psql("pg2", "select pg_is_in_recovery()") == "t"


def test_provision_refuses_to_decide_the_primary_without_every_node(provisioned):
    """`ansible-playbook --limit` (AWX's "limit" field) leaving a PostgreSQL node out: the
    run stops before anything changes, naming the missing node (a fenced old primary run
    alone must never be taken for the primary)."""
    play = ansible_playbook("provision.yml", "--limit", "pg1:backup1")
    assert play.returncode != 0, play.stdout[-3000:]
    assert "pg2 not in this run" in play.stdout, play.stdout[-3000:]
    assert re.search(r"pg1 +: ok=\d+ +changed=0 .*failed=1", play.stdout), play.stdout[-1500:]
    assert "TASK [postgresql" not in play.stdout
    assert vip_holders() == ["pg1"]


def test_provision_refuses_a_ca_the_nodes_do_not_trust(provisioned, tmp_path):
    """A control machine without the cluster's CA (an AWX job's fresh working directory,
    a new laptop) must not mint a new one over a running cluster: the run stops before any
    key or certificate is made, naming the nodes that trust the real CA."""
    elsewhere = tmp_path / "ca-elsewhere"
    before = sh("pg1", "sha256sum /etc/postgresql-common/drctl-tls/ca.crt")
    play = ansible_playbook("provision.yml", "-e", f"drctl_tls_ca_dir={elsewhere}")
    assert play.returncode != 0, play.stdout[-3000:]
    assert "already trust a cluster CA" in play.stdout, play.stdout[-3000:]
    # refused at the gate, before any host installs a package
    assert "PLAY [Packages" not in play.stdout, play.stdout[-3000:]
    # the refusal names the nodes that trust the real CA
    assert re.search(r"(pg1, pg2|pg2, pg1) already trust a cluster CA", play.stdout), \
        play.stdout[-3000:]
    assert not (elsewhere / "ca.key").exists(), "a new CA key was generated"
    assert sh("pg1", "sha256sum /etc/postgresql-common/drctl-tls/ca.crt") == before
    assert vip_holders() == ["pg1"]

    # the same with a CA of its own: the nodes trust another one, so nothing is signed
    other = tmp_path / "ca-other"
    other.mkdir()
    sh_local = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(other / "ca.key"), "-out", str(other / "ca.crt"),
                "-days", "2", "-subj", "/CN=not the cluster CA"]
    subprocess.run(sh_local, check=True, capture_output=True)
    play = ansible_playbook("provision.yml", "-e", f"drctl_tls_ca_dir={other}")
    assert play.returncode != 0, play.stdout[-3000:]
    assert "trust a different CA" in play.stdout, play.stdout[-3000:]
    assert "PLAY [Packages" not in play.stdout, play.stdout[-3000:]
    assert sh("pg1", "sha256sum /etc/postgresql-common/drctl-tls/ca.crt") == before
    assert psql("pg2", "select status from pg_stat_wal_receiver") == "streaming"


def test_secrets_never_reach_artifacts(provisioned):
    secrets = [v for v in lab_secrets().values() if v]
    state = ROOT / ".drctl"
    for path in state.rglob("*"):
        if path.is_file() and path.suffix not in (".crt", ".key"):
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a vault secret is written in {path}"
