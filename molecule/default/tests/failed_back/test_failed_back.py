"""After failback.yml and the switch back: the original topology is back and healthy."""

import json

import pytest

from drctl.rules import sql

TIMELINE = f"select {sql.TIMELINE}"
RECEIVER = "select status || ' ' || sender_host || ' ' || received_tli from pg_stat_wal_receiver"
SENDERS = ("select r.application_name || ' ' || r.state || ' ' || s.ssl "
           "from pg_stat_replication r join pg_stat_ssl s using (pid)")
NEW_WRITE = ("create table if not exists fo_back_probe (id serial, at timestamptz default now()); "
             "insert into fo_back_probe default values returning id")


@pytest.mark.parametrize("name", ["mol-fo-pg1", "mol-fo-pg2"])
def test_services_run_and_nothing_is_fenced(name, nodes, psql):
    host = nodes[name]
    for unit in ("postgresql@15-main", "keepalived", "drctl-guard"):
        assert host.service(unit).is_running, unit
    assert host.service("postgresql@15-main").is_enabled
    assert psql(host, "show ssl") == "on"
    assert not host.file("/etc/drctl/fenced").exists


def test_original_primary_is_primary_again(pg1, psql):
    assert psql(pg1, "select pg_is_in_recovery()") == "f"
    # timeline 1 at provision, 2 after the failover, 3 after the switch back
    assert int(psql(pg1, TIMELINE)) >= 3
    # as provision leaves a primary: the switchover removed the settings it followed pg2 with
    assert not pg1.file("/etc/postgresql/15/main/conf.d/90-drctl-standby.conf").exists


def test_diverged_data_is_kept_only_when_there_were_commits_to_keep(pg1):
    """failback keeps a copy of the old primary's data directory when it committed past
    the fork point (or that could not be told), and only its WAL otherwise, removed once
    it rejoined: every copy left says why it was kept, and no WAL copy is left behind."""
    copies = pg1.check_output("ls -d /var/lib/postgresql/15/main.diverged-* 2>/dev/null "
                              "|| true").split()
    for copy in copies:
        meta = json.loads(pg1.check_output(f"cat {copy}/drctl-diverged.json"))
        d = meta["divergence"]
        assert not d["known"] or d["commits"] >= 1, meta
    assert pg1.check_output("ls -d /var/lib/postgresql/15/main.rewind-wal-* 2>/dev/null "
                            "|| true") == ""


def test_standby_streams_over_tls_from_the_original_primary(pg1, pg2, psql, eventually):
    assert psql(pg2, "select pg_is_in_recovery()") == "t"
    expected = f"streaming 172.29.55.11 {psql(pg1, TIMELINE)}"
    assert eventually(lambda: psql(pg2, RECEIVER) == expected), psql(pg2, RECEIVER)
    row = eventually(lambda: psql(pg1, SENDERS))
    assert row == "mol_fo_pg2 streaming true"


def test_vip_is_on_the_original_primary_only(nodes, vip_holders, eventually):
    assert eventually(lambda: vip_holders(nodes) == ["mol-fo-pg1"]), vip_holders(nodes)


def test_row_written_after_the_failover_exists_on_both(nodes, psql, names, eventually):
    sql = f"select note from {names['probe_table']} where id = 1"
    for name, host in nodes.items():
        assert eventually(lambda h=host: psql(h, sql) == names["probe_note"]), name


def test_new_writes_replicate_to_the_standby(pg1, pg2, psql, eventually):
    marker = psql(pg1, NEW_WRITE)
    sql = f"select count(*) from fo_back_probe where id = {marker.splitlines()[-1]}"
    assert eventually(lambda: psql(pg2, sql) == "1")


def test_application_reaches_the_original_primary_through_the_vip(pg2, app_psql, eventually):
    assert eventually(lambda: app_psql(pg2, "select pg_is_in_recovery()") == "f")
