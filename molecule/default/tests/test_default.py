"""What a user would see after provisioning: checked inside each container with testinfra."""

import os

import pytest
import testinfra.utils.ansible_runner

HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
VIP = "172.29.54.100"


def psql(host, sql):
    return host.check_output(f"runuser -u postgres -- psql -XAtq -c \"{sql}\"")


@pytest.mark.parametrize("name", HOSTS)
def test_postgres_and_keepalived_run(name):
    host = testinfra.get_host(f"ansible://{name}?ansible_inventory="
                              f"{os.environ['MOLECULE_INVENTORY_FILE']}")
    assert host.service("postgresql@15-main").is_running
    assert host.service("postgresql@15-main").is_enabled
    assert host.service("keepalived").is_running
    assert psql(host, "show ssl") == "on"


def hosts():
    inv = os.environ["MOLECULE_INVENTORY_FILE"]
    return {n: testinfra.get_host(f"ansible://{n}?ansible_inventory={inv}") for n in HOSTS}


def test_standby_is_in_recovery_and_streams_over_tls():
    h = hosts()
    assert psql(h["mol-pg1"], "select pg_is_in_recovery()") == "f"
    assert psql(h["mol-pg2"], "select pg_is_in_recovery()") == "t"
    assert psql(h["mol-pg2"], "select status from pg_stat_wal_receiver") == "streaming"
    row = psql(h["mol-pg1"], "select r.application_name || ' ' || s.ssl from pg_stat_replication r "
                             "join pg_stat_ssl s using (pid)")
    assert row == "mol_pg2 true"


def test_vip_is_on_the_primary_only():
    h = hosts()
    holders = [n for n, host in h.items()
               if any(a == VIP for a in host.interface("eth0").addresses)]
    assert holders == ["mol-pg1"]


def test_no_trust_for_network_connections():
    for host in hosts().values():
        hba = host.file("/etc/postgresql/15/main/pg_hba.conf")
        assert hba.mode == 0o640
        for line in hba.content_string.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#") or fields[0] == "local":
                continue
            assert fields[0] == "hostssl" and fields[-1] == "scram-sha-256", line
