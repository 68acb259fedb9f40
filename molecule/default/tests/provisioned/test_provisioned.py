"""After converge: mol-fo-pg1 primary with the VIP, mol-fo-pg2 streaming from it over TLS."""

import pytest


@pytest.mark.parametrize("name", ["mol-fo-pg1", "mol-fo-pg2"])
def test_postgres_keepalived_and_guard_run(name, nodes, psql):
    host = nodes[name]
    for unit in ("postgresql@15-main", "keepalived", "drctl-guard"):
        assert host.service(unit).is_running, unit
        assert host.service(unit).is_enabled, unit
    assert psql(host, "show ssl") == "on"
    assert not host.file("/etc/drctl/fenced").exists


def test_standby_is_in_recovery_and_streams_over_tls(pg1, pg2, psql, eventually):
    assert psql(pg1, "select pg_is_in_recovery()") == "f"
    assert psql(pg2, "select pg_is_in_recovery()") == "t"
    assert eventually(lambda: psql(pg2, "select status from pg_stat_wal_receiver") == "streaming")
    row = psql(pg1, "select r.application_name || ' ' || s.ssl from pg_stat_replication r "
                    "join pg_stat_ssl s using (pid)")
    assert row == "mol_fo_pg2 true"


def test_vip_is_on_the_primary_only(nodes, vip_holders, eventually):
    assert eventually(lambda: vip_holders(nodes) == ["mol-fo-pg1"]), vip_holders(nodes)


def test_application_reaches_the_primary_through_the_vip(pg2, app_psql):
    assert app_psql(pg2, "select pg_is_in_recovery()") == "f"
