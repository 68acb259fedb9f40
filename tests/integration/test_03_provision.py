"""drctl provision: a primary, a standby streaming over TLS with scram, the VIP on the primary."""

import re
import uuid

import pytest

from tests.integration.conftest import (
    ROOT,
    drctl,
    drctl_json,
    lab_address,
    lab_secrets,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)


@pytest.fixture(scope="module")
def provisioned():
    code, result = drctl_json("provision", timeout=1200)
    assert code == 0, result["failures"]
    return result


def test_provision_succeeds(provisioned):
    assert provisioned["status"] == "successful"
    assert provisioned["failures"] == []


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
    wait_for("the row on pg2", lambda: psql("pg2", f"select count(*) from app.probe where "
                                                   f"id = '{marker}'", db="app") == "1")


def test_standby_refuses_writes(provisioned):
    out = sh("pg2", "runuser -u postgres -- psql -XAtq -d app -c "
                    "\"create table app.nope (x int)\" 2>&1", check=False)
    assert "read-only transaction" in out


def test_second_provision_changes_nothing(provisioned):
    code, result = drctl_json("provision", timeout=1200)
    assert code == 0, result["failures"]
    assert result["changed"] == 0, {h: s for h, s in result["stats"].items() if s.get("changed")}


def test_pg_hba_is_least_privilege(provisioned):
    for host in ("pg1", "pg2"):
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


def test_secrets_never_reach_artifacts_or_output(provisioned):
    secrets = [v for v in lab_secrets().values() if v]
    state = ROOT / ".drctl"
    for path in state.rglob("*"):
        if path.is_file() and path.suffix not in (".crt", ".key"):
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a vault secret is written in {path}"
    out = drctl("provision", "--check")
    for secret in secrets:
        assert secret not in out.stdout + out.stderr


def test_check_mode_reports_drift_without_fixing_it(provisioned):
    hba = "/etc/postgresql/15/main/pg_hba.conf"
    sh("pg2", f"echo '# drift' >> {hba}")
    code, result = drctl_json("provision", "--check", timeout=1200)
    assert code == 0, result["failures"]
    assert result["stats"]["pg2"].get("changed", 0) >= 1
    assert sh("pg2", f"tail -1 {hba}") == "# drift", "check mode must not change anything"
    code, result = drctl_json("provision", timeout=1200)
    assert code == 0
    assert "# drift" not in sh("pg2", f"cat {hba}")


def test_standby_holding_another_cluster_is_not_wiped(provisioned):
    # Replace pg2's data with an unrelated (stopped) cluster: someone's data we must not lose.
    controldata = ("runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_controldata "
                   "/var/lib/postgresql/15/main | grep 'system identifier'")
    sh("pg2", "systemctl stop postgresql@15-main && "
              "mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.replica && "
              "install -d -o postgres -g postgres -m 700 /var/lib/postgresql/15/main && "
              "runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "
              "/var/lib/postgresql/15/main >/dev/null")
    foreign = sh("pg2", controldata)
    proc = drctl("provision", timeout=1200)
    assert proc.returncode == 1
    assert re.search(r"pg2: .*holds a different cluster", proc.stderr), proc.stderr
    assert "--force-reclone" in proc.stderr
    assert sh("pg2", controldata) == foreign, "the foreign cluster must be left as it was"
    assert vip_holders() == ["pg1"]

    code, result = drctl_json("provision", "--force-reclone", timeout=1200)
    assert code == 0, result["failures"]
    assert sh("pg2", controldata) != foreign
    sh("pg2", "rm -rf /var/lib/postgresql/15/main.replica")
    code, report = drctl_json("status")
    assert code == 0, report["problems"]
    assert psql("pg2", "select pg_is_in_recovery()") == "t"
