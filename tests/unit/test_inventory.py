"""Inventory validation: every bad case gets a clear message, before anything remote."""

import copy
from pathlib import Path

import pytest

from drctl import inventory
from drctl.exitcodes import ExitCode
from tests.unit.conftest import GOOD_HOSTS, GOOD_VARS

ROOT = Path(__file__).resolve().parents[2]


def problems_of(path) -> list[str]:
    with pytest.raises(inventory.InventoryError) as exc:
        inventory.load(path)
    assert exc.value.exit_code == ExitCode.INVALID_INVENTORY
    return exc.value.problems


def test_good_inventory_loads(make_inventory):
    inv = inventory.load(make_inventory())
    assert inv.primary.name == "pg1"
    assert [h.name for h in inv.group("pg_standby")] == ["pg2"]
    assert str(inv.vip.ip) == "10.9.0.100"
    assert inv.hostvars("pg1")["drctl_vip_interface"] == "eth0"


def test_example_inventory_is_valid_offline():
    inv = inventory.load(ROOT / "inventories" / "example" / "hosts.yml")
    assert inv.primary.name == "db1"
    assert inv.cluster["drctl_cluster_name"] == "prod"


def test_two_site_example_inventory_is_valid_offline():
    inv = inventory.load(ROOT / "inventories" / "example" / "two-sites.yml")
    assert inv.sites == {"dc1": {"vip": "198.51.100.100/24", "nodes": ["db1", "db2"]},
                         "dc2": {"vip": "203.0.113.100/24", "nodes": ["db3"]}}


def test_missing_file_says_how_to_get_one(tmp_path):
    problems = problems_of(tmp_path / "nope.yml")
    assert "no such file" in problems[0] and "drctl lab up" in problems[0]


def test_malformed_yaml_names_file_and_line(make_inventory):
    path = make_inventory(raw="all:\n  children:\n    pg_primary: [unclosed\n")
    (problem,) = problems_of(path)
    assert f"{path}:4" in problem or f"{path}:3" in problem
    assert "malformed YAML" in problem


def test_malformed_group_vars_named(make_inventory, tmp_path):
    path = make_inventory()
    (tmp_path / "group_vars" / "all" / "extra.yml").write_text("drctl_vip: [1,\n")
    problems = problems_of(path)
    assert any("extra.yml:" in p and "malformed YAML" in p for p in problems)


def test_missing_group(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    del hosts["all"]["children"]["pg_standby"]
    problems = problems_of(make_inventory(hosts=hosts))
    assert any("missing group 'pg_standby'" in p for p in problems)


def test_two_primaries(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["pg_primary"]["hosts"]["pg3"] = {"ansible_host": "10.9.0.15"}
    problems = problems_of(make_inventory(hosts=hosts))
    assert any("exactly one host" in p and "pg1, pg3" in p for p in problems)


def test_host_in_primary_and_standby(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["pg_standby"]["hosts"]["pg1"] = {"ansible_host": "10.9.0.11"}
    problems = problems_of(make_inventory(hosts=hosts))
    assert any("'pg1' is in both pg_primary and pg_standby" in p for p in problems)


def test_duplicate_address(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["app"]["hosts"]["app1"]["ansible_host"] = "10.9.0.12"
    problems = problems_of(make_inventory(hosts=hosts))
    assert any("have the same address 10.9.0.12" in p and "'pg2'" in p and "'app1'" in p
               for p in problems)


@pytest.mark.parametrize(
    ("vip", "expected"),
    [
        ("10.9.0.300/24", "not a valid address"),
        ("not-an-ip/24", "not a valid address"),
        ("10.9.0.100", "needs a prefix length"),
        ("10.8.0.100/24", "outside host 'pg1''s subnet"),
        ("10.9.0.11/24", "equals the address of host 'pg1'"),
    ],
)
def test_bad_vip(make_inventory, vip, expected):
    problems = problems_of(make_inventory(all_vars={**GOOD_VARS, "drctl_vip": vip}))
    assert any(expected in p for p in problems), problems


def test_missing_vip(make_inventory):
    problems = problems_of(make_inventory(all_vars={"drctl_vip_interface": "eth0"}))
    assert any("missing option 'drctl_vip'" in p for p in problems)


def test_a_missing_ca_directory_is_refused_before_anything_runs(make_inventory):
    without = {k: v for k, v in GOOD_VARS.items() if k != "drctl_tls_ca_dir"}
    problems = problems_of(make_inventory(all_vars=without))
    assert any("missing option 'drctl_tls_ca_dir'" in p for p in problems), problems


def test_unknown_cluster_option_suggests_the_right_one(make_inventory):
    problems = problems_of(make_inventory(all_vars={**GOOD_VARS, "drctl_synchronus": True}))
    assert any("unknown option 'drctl_synchronus'" in p and "drctl_synchronous" in p
               for p in problems)


def test_unknown_role_option(make_inventory):
    problems = problems_of(make_inventory(all_vars={**GOOD_VARS, "postgresql_max_conections": 5}))
    assert any("unknown option 'postgresql_max_conections'" in p
               and "postgresql_max_connections" in p for p in problems)


def test_known_role_option_and_foreign_variables_pass(make_inventory):
    inv = inventory.load(make_inventory(all_vars={
        **GOOD_VARS, "postgresql_max_connections": 50, "ntp_servers": ["a"],
        "ansible_user": "deploy"}))
    assert inv.cluster["postgresql_max_connections"] == 50


def test_every_problem_reported_at_once(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["app"]["hosts"]["app1"]["ansible_host"] = "10.9.0.12"
    problems = problems_of(make_inventory(
        hosts=hosts, all_vars={**GOOD_VARS, "drctl_vip": "10.9.0.12/24", "drctl_bogus": 1}))
    assert len(problems) == 3


def test_vaulted_group_vars_are_skipped(make_inventory, tmp_path):
    path = make_inventory()
    (tmp_path / "group_vars" / "all" / "vault.yml").write_text(
        "$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    assert inventory.load(path).primary.name == "pg1"


def test_inline_vault_tag_is_accepted(make_inventory):
    raw = ("all:\n  vars:\n    secret: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n"
           "  children:\n    pg_primary:\n      hosts:\n        pg1: {ansible_host: 10.9.0.11}\n"
           "    pg_standby:\n      hosts:\n        pg2: {ansible_host: 10.9.0.12}\n")
    assert inventory.load(make_inventory(raw=raw)).primary.name == "pg1"


# ------------------------------------------------------------------ sites


def two_sites(dc2_vars: dict | None = None, pg3: dict | None = None) -> dict:
    """The two-site shape: pg3 at dc2, which a group `dc2` gives its own VIP."""
    hosts = copy.deepcopy(GOOD_HOSTS)
    children = hosts["all"]["children"]
    for group in children.values():
        for hvars in group["hosts"].values():
            hvars["drctl_location"] = "dc1"
    children["pg_standby"]["hosts"]["pg3"] = pg3 or {"ansible_host": "10.9.16.11",
                                                     "drctl_location": "dc2"}
    children["dc2"] = {"hosts": {"pg3": None},
                       "vars": dc2_vars if dc2_vars is not None else
                       {"drctl_vip": "10.9.16.100/24"}}
    return hosts


def test_each_site_has_its_own_vip_checked_against_its_own_hosts(make_inventory):
    inv = inventory.load(make_inventory(hosts=two_sites()))
    assert inv.site("pg1") == "dc1" and inv.site("pg3") == "dc2"
    assert inv.sites == {"dc1": {"vip": "10.9.0.100/24", "nodes": ["pg1", "pg2"]},
                         "dc2": {"vip": "10.9.16.100/24", "nodes": ["pg3"]}}
    assert str(inv.vip.ip) == "10.9.0.100"  # the cluster's own: the home site's


def test_a_remote_host_without_its_sites_vip_is_refused_naming_the_site(make_inventory):
    problems = problems_of(make_inventory(hosts=two_sites(dc2_vars={})))
    assert problems == ["drctl_vip 10.9.0.100/24 is used by sites 'dc1' and 'dc2': each "
                        "site needs its own",
                        "drctl_vip 10.9.0.100/24 (site 'dc2') is outside host 'pg3''s subnet "
                        "(10.9.16.11 is not in 10.9.0.0/24)"]


def test_two_sites_sharing_a_vip_or_one_site_with_two_are_refused(make_inventory):
    hosts = two_sites(dc2_vars={"drctl_vip": "10.9.0.100/24"},
                      pg3={"ansible_host": "10.9.0.21", "drctl_location": "dc2"})
    problems = problems_of(make_inventory(hosts=hosts))
    assert problems == ["drctl_vip 10.9.0.100/24 is used by sites 'dc1' and 'dc2': each "
                        "site needs its own"]
    hosts = two_sites(pg3={"ansible_host": "10.9.16.11", "drctl_location": "dc1"})
    problems = problems_of(make_inventory(hosts=hosts))
    [problem] = [p for p in problems if p.startswith("site 'dc1' has more than one")]
    assert "10.9.0.100/24 for pg1, pg2" in problem and "10.9.16.100/24 for pg3" in problem


def test_with_two_sites_every_backup_and_app_host_names_its_site(make_inventory):
    """The rules weigh a watcher (a backup host) by its site: one with no site would be
    weighed as if it were somewhere it is not."""
    hosts = two_sites()
    children = hosts["all"]["children"]
    del children["backup"]["hosts"]["backup1"]["drctl_location"]
    children["app"]["hosts"]["app1"]["drctl_location"] = "dc9"
    assert problems_of(make_inventory(hosts=hosts)) == [
        "backup host 'backup1' needs drctl_location, one of the sites dc1, dc2 (it has None)",
        "app host 'app1' needs drctl_location, one of the sites dc1, dc2 (it has 'dc9')"]


def test_without_locations_there_is_one_site(make_inventory):
    inv = inventory.load(make_inventory())
    assert inv.sites == {"default": {"vip": "10.9.0.100/24", "nodes": ["pg1", "pg2"]}}


def test_a_role_default_is_read_from_the_role_not_written_again(make_inventory) -> None:
    """Python reads a role's default where the role keeps it (inventory.role_value), and
    no module reads an option with a literal fallback of its own (`get(...) or 8080`)."""
    import re

    from drctl import inventory as inv_mod
    from drctl.paths import project_dir
    from tests.unit.conftest import GOOD_VARS

    inv = inv_mod.load(make_inventory(all_vars=GOOD_VARS))
    assert inv_mod.role_value(inv, "demo_app", "demo_app_port") == 8080
    inv = inv_mod.load(make_inventory(all_vars={**GOOD_VARS, "demo_app_port": 8181}))
    assert inv_mod.role_value(inv, "demo_app", "demo_app_port") == 8181
    fallback = re.compile(r"""\.get\(["'](drctl|demo_app|postgresql|pg|pgbackrest)_\w+["']\)"""
                          r"""\s*or\s*(\d|["'][^"']+["'])""")
    root = project_dir()
    found = [f"{path.relative_to(root)}: {m.group(0)}"
             for path in [*(root / "drctl").rglob("*.py"), *(root / "plugins").rglob("*.py")]
             for m in fallback.finditer(path.read_text())]
    assert found == []
