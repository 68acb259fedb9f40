"""After the primary was killed and failover.yml ran: mol-fo-pg2 is the writable primary."""

from drctl.rules import sql

TIMELINE = f"select {sql.TIMELINE}"
LAST_FAILOVER = "select node || ' ' || timeline from drctl_failover_log order by at desc limit 1"
APP_WRITE = ("create table if not exists fo_app_probe (at timestamptz default now()); "
             "insert into fo_app_probe default values; "
             "select pg_is_in_recovery()::text || ' ' || count(*) from fo_app_probe")


def test_old_primary_is_down(local, names):
    running = local.check_output(f"docker inspect -f '{{{{.State.Running}}}}' {names['pg1']}")
    assert running == "false"


def test_new_primary_is_out_of_recovery_on_a_new_timeline(pg2, psql):
    assert pg2.service("postgresql@15-main").is_running
    assert psql(pg2, "select pg_is_in_recovery()") == "f"
    assert int(psql(pg2, TIMELINE)) >= 2
    assert not pg2.file("/etc/drctl/fenced").exists


def test_failover_recorded_its_proof_write(pg2, psql):
    row = psql(pg2, LAST_FAILOVER)
    assert row == f"mol-fo-pg2 {psql(pg2, TIMELINE)}"


def test_new_primary_holds_the_vip(pg2, names, eventually):
    assert eventually(lambda: names["vip"] in pg2.interface("eth0").addresses)
    assert eventually(lambda: pg2.file("/run/drctl/vrrp-state").content_string.startswith("MASTER"))


def test_new_primary_accepts_a_write(pg2, psql, names):
    table, note = names["probe_table"], names["probe_note"]
    out = psql(pg2, f"create table if not exists {table} (id int primary key, note text); "
                    f"insert into {table} values (1, '{note}') on conflict (id) do nothing; "
                    f"select note from {table} where id = 1")
    assert out.splitlines()[-1] == note


def test_application_writes_through_the_vip(pg2, app_psql, eventually):
    out = eventually(lambda: app_psql(pg2, APP_WRITE))
    assert out.splitlines()[-1].startswith("false ")
