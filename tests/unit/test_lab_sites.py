"""The lab's second site, without docker: host table, subnets, inventory, routes, the WAN."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl_lab import lab

# the hosts a second site adds: dc2's, then the WAN side's
NEW_HOSTS = ("pg3", "backup2", "app2", "dns1", "s3", "cloud1")
DC1 = [("pg1", "172.29.53.11", "pg_primary"), ("pg2", "172.29.53.12", "pg_standby"),
       ("backup1", "172.29.53.13", "backup"), ("app1", "172.29.53.14", "app"),
       ("app3", "172.29.53.15", "app")]


@pytest.fixture(autouse=True)
def _lab(tmp_path, monkeypatch):
    """A lab with its default subnet, no recorded shape, state in tmp_path."""
    for var in ("DRCTL_LAB_SUBNET", "DRCTL_LAB_DC2_SUBNET", "DRCTL_LAB_SITES", "DRCTL_LAB_APP"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lab, "lab_dir", lambda: tmp_path / ".lab")
    monkeypatch.setattr(lab, "state_dir", lambda: tmp_path / ".drctl")


def _record(count: int) -> None:
    lab._record_sites(count)


def _rows(hosts):
    return [(h.name, h.address, h.group, h.site) for h in hosts]


# ---------------------------------------------------------------- host table and sites

def test_one_site_is_the_lab_of_today():
    assert lab.site_count() == 1
    assert _rows(lab.lab_hosts()) == [(*row, "dc1") for row in DC1]
    assert [h.container for h in lab.lab_hosts()] == [lab.PREFIX + n for n, *_ in DC1]
    assert lab.vip() == "172.29.53.100/24"
    assert lab.site_network("dc1") == lab.NETWORK
    assert lab.site_routes("dc1") == []


def test_two_sites_add_pg3_backup2_and_app2_in_dc2():
    _record(2)
    assert lab.site_count() == 2
    assert _rows(lab.lab_hosts()) == [*[(*row, "dc1") for row in DC1],
                                      ("pg3", "172.29.69.11", "pg_standby", "dc2"),
                                      ("backup2", "172.29.69.13", "backup", "dc2"),
                                      ("app2", "172.29.69.14", "app", "dc2"),
                                      ("dns1", "172.29.85.53", "dns", "wan"),
                                      ("s3", "172.29.85.80", "object_store", "wan"),
                                      ("cloud1", "172.29.85.60", "cloud", "wan")]
    assert lab.site_network("dc2") == lab.NETWORK + "-dc2"
    # the WAN side (the DNS server of the service's name) is on a network of its own
    assert lab.site_network("wan") == lab.NETWORK + "-wan"
    assert lab.router_address("wan") == "172.29.85.254"
    assert lab.networks() == ["dc1", "dc2", "wan"] and lab.networks(1) == ["dc1"]
    assert lab.site_vip("dc2") == "172.29.69.100/24"
    assert lab.router_container() == lab.PREFIX + "wan"
    assert lab.router_address("dc1") == "172.29.53.254"
    assert lab.router_address("dc2") == "172.29.69.254"
    # a host of dc2 more is one line of the table
    assert lab.SITE_HOSTS["dc2"] == (("pg3", 11, "pg_standby"), ("backup2", 13, "backup"),
                                     ("app2", 14, "app"))
    assert lab.SITE_HOSTS["dc1"] == lab.HOSTS


def test_lab_hosts_takes_an_explicit_count_over_the_record():
    _record(2)
    assert [h.name for h in lab.lab_hosts(1)] == [n for n, *_ in DC1]


def test_the_record_says_what_the_lab_is_and_the_environment_only_fills_in(monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_SITES", "2")
    assert lab.site_count() == 2  # no record: the environment
    _record(1)
    assert lab.site_count() == 1  # the lab as it was brought up


def test_up_chooses_option_then_environment_then_record_then_one(monkeypatch):
    assert lab.wanted_sites(None) == 1
    _record(2)
    assert lab.wanted_sites(None) == 2
    monkeypatch.setenv("DRCTL_LAB_SITES", "1")
    assert lab.wanted_sites(None) == 1
    assert lab.wanted_sites(2) == 2


def test_a_one_site_lab_without_its_application_tier_has_no_app_host_and_no_app_vip(
        tmp_path, monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_APP", "0")
    assert not lab.wanted_app_tier(1) and lab.wanted_app_tier(2)  # two sites always have it
    lab._record_app_tier(False)
    monkeypatch.delenv("DRCTL_LAB_APP")
    assert not lab.wanted_app_tier(1), "the lab as it was brought up, with no option"
    assert [h.name for h in lab.lab_hosts()] == ["pg1", "pg2", "backup1"]
    files = lab.render_inventory(lab.lab_hosts(), tmp_path / "id_ed25519")
    main = yaml.safe_load(files["group_vars/all/main.yml"])
    assert "drctl_app_vip" not in main and main["drctl_vip"] == lab.vip()
    assert "app" not in yaml.safe_load(files["hosts.yml"])["all"]["children"]
    # `lab up --sites 2` adds dc1's app hosts with dc2's
    _record(2)
    names = [h.name for h in lab.lab_hosts()]
    assert {"app1", "app3", "app2"} <= set(names)
    files = lab.render_inventory(lab.lab_hosts(), tmp_path / "id_ed25519")
    assert yaml.safe_load(files["group_vars/all/main.yml"])["drctl_app_vip"] == \
        lab.site_app_vip("dc1")


def test_the_application_tier_is_there_unless_asked_otherwise(monkeypatch):
    assert lab.app_tier() and lab.wanted_app_tier(1)
    monkeypatch.setenv("DRCTL_LAB_APP", "no")
    assert not lab.app_tier()  # nothing recorded: the environment
    lab._record_app_tier(True)
    assert lab.app_tier()  # the lab as it was brought up


@pytest.mark.parametrize("bad", [0, 3, "x"])
def test_a_count_of_sites_out_of_range_is_refused(bad, monkeypatch):
    with pytest.raises(DrctlError, match="1 or 2 sites"):
        lab.wanted_sites(bad)
    monkeypatch.setenv("DRCTL_LAB_SITES", str(bad))
    with pytest.raises(DrctlError):
        lab.wanted_sites(None)


def test_the_record_lives_in_the_lab_dir_under_the_labs_name(tmp_path):
    _record(2)
    assert (tmp_path / ".lab" / f"sites-{lab.NETWORK}").read_text() == "2\n"


# ---------------------------------------------------------------- dc2's subnet

@pytest.mark.parametrize(("dc1", "dc2"), [("172.29.53.0/24", "172.29.69.0/24"),
                                          ("172.29.62.0/24", "172.29.78.0/24"),
                                          ("10.1.200.0/24", "10.1.216.0/24")])
def test_dc2_subnet_defaults_to_the_third_octet_plus_16(dc1, dc2, monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_SUBNET", dc1)
    assert str(lab.dc2_subnet()) == dc2


def test_dc2_subnet_from_the_environment(monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_DC2_SUBNET", "172.30.9.0/24")
    assert str(lab.dc2_subnet()) == "172.30.9.0/24"
    _record(2)
    assert [h.address for h in lab.lab_hosts() if h.site == "dc2"] == [
        "172.30.9.11", "172.30.9.13", "172.30.9.14"]
    assert lab.site_routes("dc1") == ["172.30.9.0/24 via 172.29.53.254",
                                      "172.29.85.0/24 via 172.29.53.254"]


@pytest.mark.parametrize("value", ["172.29.53.128/25", "172.29.0.0/16", "not-a-subnet",
                                   "172.29.69.1/24"])
def test_a_dc2_subnet_that_overlaps_dc1_or_is_malformed_is_refused(value, monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_DC2_SUBNET", value)
    with pytest.raises(DrctlError, match=r"(?i)dc2"):
        lab.dc2_subnet()


def test_no_default_dc2_subnet_past_the_end_of_the_address_space(monkeypatch):
    monkeypatch.setenv("DRCTL_LAB_SUBNET", "255.255.250.0/24")
    with pytest.raises(DrctlError, match="no subnet for dc2") as err:
        lab.dc2_subnet()
    assert "DRCTL_LAB_DC2_SUBNET" in (err.value.hint or "")


# ---------------------------------------------------------------- inventory

def _expected_one_site(tmp_path: Path, key: Path) -> dict[str, str]:
    """The lab inventory exactly as it was before sites existed."""
    return {
        "hosts.yml": """\
---
# Generated by `drctl lab up`; `drctl lab down` removes it.
all:
  children:
    pg_primary:
      hosts:
        pg1:
          ansible_host: 172.29.53.11
    pg_standby:
      hosts:
        pg2:
          ansible_host: 172.29.53.12
    backup:
      hosts:
        backup1:
          ansible_host: 172.29.53.13
    app:
      hosts:
        app1:
          ansible_host: 172.29.53.14
        app3:
          ansible_host: 172.29.53.15
""",
        "group_vars/all/main.yml": f"""\
---
# Generated by `drctl lab up`: cluster options for the lab (documented in \
inventories/example/group_vars/all/main.yml).
# pgbackrest_manage_etc_hosts is false: docker's --add-host names the hosts.
# drctl_auto_accept_async_loss is true: a lab's consent that automatic
# failover may lose the commits of the primary's last moments.
# The last options shorten timeouts the tests wait out (a dead repository,
# a silently broken stream); production keeps the roles' defaults.
drctl_cluster_name: lab
drctl_lab_containers: drctl-lab-
drctl_vip: 172.29.53.100/24
drctl_app_vip: 172.29.53.101/24
drctl_vip_interface: eth0
drctl_app_networks:
- 172.29.53.0/24
drctl_isolation_check_address: 172.29.53.1
drctl_tls_ca_dir: {tmp_path}/.drctl/ca/lab
ansible_user: ansible
ansible_become: true
ansible_ssh_private_key_file: {key}
ansible_ssh_common_args: -o UserKnownHostsFile={tmp_path}/.lab/known_hosts
  -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3
pgbackrest_manage_etc_hosts: false
drctl_auto_accept_async_loss: true
pgbackrest_io_timeout: 10
drctl_archive_stall_s: 30
drctl_node_start_confirm_wait_s: 5
app_files_interval: 30s
postgresql_extra_settings:
  wal_receiver_timeout: 15s
  wal_sender_timeout: 15s
""",
    }


def test_one_site_inventory_is_byte_for_byte_as_before(tmp_path, monkeypatch):
    key = tmp_path / "k"  # a short path: yaml folds the long ssh options line as before
    monkeypatch.setattr(lab, "lab_dir", lambda: tmp_path / ".lab")
    # the default lab's container names, whatever DRCTL_LAB_NAME a developer's shell sets
    monkeypatch.setattr(lab, "PREFIX", "drctl-lab-")
    files = lab.render_inventory(lab.lab_hosts(), key)
    assert files == _expected_one_site(tmp_path, key)


# the object store of the WAN side: the cloud repository, its access key from the vault
S3_OPTIONS = """pgbackrest_s3_repos:
- name: cloud
  endpoint: s3
  port: 9000
  bucket: drctl-lab
  region: us-east-1
  uri_style: path
  key: '{{ vault_s3_access_key }}'
  secret: '{{ vault_s3_secret_key }}'
object_store_port: 9000
object_store_buckets:
- drctl-lab
object_store_access_keys:
- name: drctl
  key: '{{ vault_s3_access_key }}'
  secret: '{{ vault_s3_secret_key }}'
"""


def test_two_site_inventory(tmp_path):
    key = tmp_path / "k"
    one = lab.render_inventory(lab.lab_hosts(1), key)
    files = lab.render_inventory(lab.lab_hosts(2), key)
    assert set(files) == {"hosts.yml", "group_vars/all/main.yml", "group_vars/dc2/main.yml",
                          "group_vars/cloud/main.yml"}
    # the cloud location's clients come from the WAN side too (a rebuilt primary's pg_hba)
    assert yaml.safe_load(files["group_vars/cloud/main.yml"]) == {"drctl_app_networks": [
        "172.29.53.0/24", "172.29.69.0/24", "172.29.85.0/24"]}
    # the cluster-wide options describe dc1, the home site, as with one site, except that
    # the applications of both sites may reach the primary wherever it is
    # the applications of both sites may reach the primary wherever it is, and the
    # service's name is on the DNS server of the WAN side
    assert files["group_vars/all/main.yml"] == one["group_vars/all/main.yml"].replace(
        "- 172.29.53.0/24\n", "- 172.29.53.0/24\n- 172.29.69.0/24\n").replace(
        "drctl_isolation_check_address: 172.29.53.1\n",
        "drctl_isolation_check_address: 172.29.53.1\ndrctl_dns_name: app.lab.drctl.test.\n"
        "drctl_dns_zone: lab.drctl.test.\ndrctl_dns_server: 172.29.85.53\n"
        "drctl_dns_ttl: 5\n" + S3_OPTIONS)
    inv = yaml.safe_load(files["hosts.yml"])
    assert inv == {"all": {"children": {
        "pg_primary": {"hosts": {"pg1": {"ansible_host": "172.29.53.11",
                                         "drctl_location": "dc1"}}},
        "pg_standby": {"hosts": {"pg2": {"ansible_host": "172.29.53.12",
                                         "drctl_location": "dc1"},
                                 "pg3": {"ansible_host": "172.29.69.11",
                                         "drctl_location": "dc2"}}},
        "backup": {"hosts": {"backup1": {"ansible_host": "172.29.53.13",
                                         "drctl_location": "dc1"},
                             "backup2": {"ansible_host": "172.29.69.13",
                                         "drctl_location": "dc2"}}},
        "app": {"hosts": {"app1": {"ansible_host": "172.29.53.14", "drctl_location": "dc1"},
                          "app3": {"ansible_host": "172.29.53.15", "drctl_location": "dc1"},
                          "app2": {"ansible_host": "172.29.69.14", "drctl_location": "dc2"}}},
        "dc2": {"hosts": {"pg3": {}, "backup2": {}, "app2": {}}},
        "dns": {"hosts": {"dns1": {"ansible_host": "172.29.85.53"}}},
        "object_store": {"hosts": {"s3": {"ansible_host": "172.29.85.80"}}},
        "cloud": {"hosts": {"cloud1": {"ansible_host": "172.29.85.60"}}},
    }}}
    assert files["hosts.yml"].startswith(one["hosts.yml"].split("all:")[0])
    assert yaml.safe_load(files["group_vars/dc2/main.yml"]) == {
        "drctl_vip": "172.29.69.100/24",
        "drctl_app_vip": "172.29.69.101/24",
        "drctl_isolation_check_address": "172.29.69.1",
    }
    assert files["group_vars/dc2/main.yml"].startswith("---\n# Generated by `drctl lab up`")


# ---------------------------------------------------------------- routes

def test_each_site_routes_the_other_through_the_router():
    assert lab.site_routes("dc1", 2) == ["172.29.69.0/24 via 172.29.53.254",
                                         "172.29.85.0/24 via 172.29.53.254"]
    assert lab.site_routes("dc2", 2) == ["172.29.53.0/24 via 172.29.69.254",
                                         "172.29.85.0/24 via 172.29.69.254"]
    # the DNS server on the WAN side reaches both sites through the router
    assert lab.site_routes("wan", 2) == ["172.29.53.0/24 via 172.29.85.254",
                                         "172.29.69.0/24 via 172.29.85.254"]
    assert lab.site_routes("dc1", 1) == lab.site_routes("dc2", 1) == []


def test_routes_of_a_dc1_and_a_dc2_container(monkeypatch):
    _record(2)
    calls = _fake_docker(monkeypatch)
    by_name = {h.name: h for h in lab.lab_hosts()}
    assert lab.install_routes(by_name["pg1"])[0] == "172.29.69.0/24 via 172.29.53.254"
    assert lab.install_routes(by_name["pg3"])[0] == "172.29.53.0/24 via 172.29.69.254"
    assert [c[:5] for c in calls] == [("exec", lab.PREFIX + "pg1", "sh", "-c", calls[0][4]),
                                      ("exec", lab.PREFIX + "pg3", "sh", "-c", calls[1][4])]
    assert "\n172.29.69.0/24 via 172.29.53.254\n172.29.85.0/24 via 172.29.53.254\n" \
        "DRCTL_EOF\n" in calls[0][4]
    assert "\n172.29.53.0/24 via 172.29.69.254\n172.29.85.0/24 via 172.29.69.254\n" \
        "DRCTL_EOF\n" in calls[1][4]


def test_one_site_installs_no_routes(monkeypatch):
    calls = _fake_docker(monkeypatch)
    assert lab.install_routes(lab.lab_hosts()[0]) == []
    assert calls == []


def test_the_route_scripts_are_valid_shell():
    for script in (lab.routes_install_script(["10.0.2.0/24 via 10.0.1.254"]),
                   lab._ROUTES_COMMAND_TEXT, lab.ROUTES_REMOVE_SCRIPT):
        assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0
    unit = lab._ROUTES_UNIT_TEXT
    assert f"ExecStart={lab.ROUTES_COMMAND}" in unit and "WantedBy=multi-user.target" in unit
    assert f"ConditionPathExists={lab.ROUTES_FILE}" in unit


def test_the_route_command_applies_each_line_of_the_file(tmp_path):
    """Run the command the unit starts with a stand-in `ip` on PATH."""
    routes = tmp_path / "routes"
    routes.write_text("# comment\n\n10.0.2.0/24 via 10.0.1.254\n10.0.3.0/24 via 10.0.1.253\n")
    ip = tmp_path / "bin" / "ip"
    ip.parent.mkdir()
    ip.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/log\n')
    ip.chmod(0o755)
    command = tmp_path / "cmd"
    command.write_text(lab._ROUTES_COMMAND_TEXT.replace(lab.ROUTES_FILE, str(routes)))
    proc = subprocess.run(["sh", str(command)], env={"PATH": f"{ip.parent}:/usr/bin:/bin"},
                          check=False)
    assert proc.returncode == 0
    assert (tmp_path / "log").read_text() == ("route replace 10.0.2.0/24 via 10.0.1.254\n"
                                              "route replace 10.0.3.0/24 via 10.0.1.253\n")


# ---------------------------------------------------------------- containers

def _fake_docker(monkeypatch, reply=None) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []

    def docker(*args: str, check: bool = True, **_kw) -> subprocess.CompletedProcess:
        calls.append(args)
        code, out = reply(args) if reply else (0, "")
        return subprocess.CompletedProcess(["docker", *args], code, out, "")

    monkeypatch.setattr(lab, "docker", docker)
    return calls


def test_a_dc2_host_runs_on_dc2s_network_and_resolves_every_other_host(monkeypatch):
    _record(2)
    calls = _fake_docker(monkeypatch)
    pg3 = next(h for h in lab.lab_hosts() if h.name == "pg3")
    lab._run_container(pg3, "img")
    args = calls[0]
    assert args[args.index("--network") + 1] == lab.NETWORK + "-dc2"
    assert args[args.index("--ip") + 1] == "172.29.69.11"
    assert sorted(a for a in args if a.startswith("--add-host")) == sorted(
        [*(f"--add-host={n}:{a}" for n, a, _ in DC1), "--add-host=backup2:172.29.69.13",
         "--add-host=app2:172.29.69.14", "--add-host=dns1:172.29.85.53",
         "--add-host=s3:172.29.85.80", "--add-host=cloud1:172.29.85.60"])


def test_a_dc1_host_of_one_site_runs_as_before(monkeypatch):
    calls = _fake_docker(monkeypatch)
    pg1 = lab.lab_hosts()[0]
    lab._run_container(pg1, "img")
    args = calls[0]
    assert args[args.index("--network") + 1] == lab.NETWORK
    assert [a for a in args if a.startswith("--add-host")] == [
        "--add-host=pg2:172.29.53.12", "--add-host=backup1:172.29.53.13",
        "--add-host=app1:172.29.53.14", "--add-host=app3:172.29.53.15"]
    assert args[-2:] == ("img", "/sbin/init")


def test_a_container_that_does_not_resolve_a_new_host_is_made_again(monkeypatch):
    _record(2)
    pg1 = lab.lab_hosts()[0]
    old = {"Config": {"Labels": {}, "Image": "tag"}, "State": {"Status": "running"},
           "HostConfig": {"ExtraHosts": ["pg2:172.29.53.12", "backup1:172.29.53.13",
                                         "app1:172.29.53.14", "app3:172.29.53.15"]}}
    monkeypatch.setattr(lab, "_inspect", lambda _name: old)
    calls = _fake_docker(monkeypatch)
    said: list[str] = []
    assert lab.ensure_container(pg1, "tag", False, said.append) == "created"
    assert calls[0] == ("rm", "-f", pg1.container) and calls[1][0] == "run"
    assert "pg3" in said[0]
    # with every name there, it is reused
    old["HostConfig"]["ExtraHosts"] += ["pg3:172.29.69.11", "backup2:172.29.69.13",
                                        "app2:172.29.69.14", "dns1:172.29.85.53",
                                        "s3:172.29.85.80", "cloud1:172.29.85.60"]
    calls.clear()
    assert lab.ensure_container(pg1, "tag", False, said.append) == "reused"
    assert calls == []


def test_the_router_sits_on_both_networks_and_forwards(monkeypatch):
    _record(2)
    calls = _fake_docker(monkeypatch)
    lab._run_router("img")
    create, connect, connect_wan, start = calls
    assert create[0] == "create" and create[create.index("--name") + 1] == lab.router_container()
    assert create[create.index("--network") + 1] == lab.NETWORK
    assert create[create.index("--ip") + 1] == "172.29.53.254"
    assert "net.ipv4.ip_forward=1" in create and "NET_ADMIN" in create
    assert connect == ("network", "connect", "--ip", "172.29.69.254", lab.NETWORK + "-dc2",
                       lab.router_container())
    assert connect_wan == ("network", "connect", "--ip", "172.29.85.254", lab.NETWORK + "-wan",
                           lab.router_container())
    assert start == ("start", lab.router_container())


# ---------------------------------------------------------------- the WAN

@pytest.mark.parametrize("verb", [lab.wan_cut, lab.wan_restore, lab.wan_state])
def test_the_wan_of_a_lab_of_one_site_is_a_clear_error(verb, monkeypatch):
    calls = _fake_docker(monkeypatch)
    with pytest.raises(DrctlError, match="one site") as err:
        verb()
    assert "--sites 2" in (err.value.hint or "")
    assert calls == []


def _fake_router(monkeypatch, running: bool = True) -> list[list[str]]:
    """docker() standing in for the router's iptables: the FORWARD chain's rules."""
    rules: list[list[str]] = []

    def reply(args):
        if args[:2] == ("container", "inspect"):
            state = "running" if running else "exited"
            info = {"Config": {"Labels": {}, "Image": "x"}, "State": {"Status": state}}
            return 0, __import__("json").dumps([info])
        assert args[:4] == ("exec", lab.router_container(), "iptables", "-w")
        op = args[4]
        if op == "-S":
            return 0, "".join(f"-A {' '.join(r)}\n" for r in [["FORWARD"], *rules][1:]) or \
                "-P FORWARD ACCEPT\n"
        if op == "-I":
            rules.insert(0, [args[5], *args[7:]])
            return 0, ""
        if op == "-D":
            rules.remove(list(args[5:]))
            return 0, ""
        raise AssertionError(args)

    _record(2)
    _fake_docker(monkeypatch, reply)
    return rules


def test_wan_cut_drops_what_goes_between_the_sites_however_often_it_is_asked(monkeypatch):
    """Silent drops between dc1's and dc2's subnets, both ways; the WAN side (the DNS
    server, the object store) stays reachable from each site."""
    rules = _fake_router(monkeypatch)
    assert lab.wan_state() == "up"
    first = lab.wan_cut()
    assert first["wan"] == "cut" and first["changed"] is True
    assert lab.wan_cut()["changed"] is False
    drop = ["-m", "comment", "--comment", lab.WAN_CUT_COMMENT, "-j", "DROP"]
    assert sorted(rules) == sorted([
        ["FORWARD", "-s", "172.29.53.0/24", "-d", "172.29.69.0/24", *drop],
        ["FORWARD", "-s", "172.29.69.0/24", "-d", "172.29.53.0/24", *drop]])
    assert lab.wan_state() == "cut"
    restored = lab.wan_restore()
    assert restored["wan"] == "up" and restored["changed"] is True and rules == []
    assert lab.wan_restore()["changed"] is False
    # an older drctl's cut (everything forwarded) is removed as well
    rules.append(["FORWARD", *drop])
    assert lab.wan_state() == "cut" and lab.wan_restore()["changed"] is True and rules == []
    assert lab.wan_status()["sites"] == {
        "dc1": {"subnet": "172.29.53.0/24", "router": "172.29.53.254"},
        "dc2": {"subnet": "172.29.69.0/24", "router": "172.29.69.254"},
        "wan": {"subnet": "172.29.85.0/24", "router": "172.29.85.254"}}


def test_the_wan_needs_its_router_running(monkeypatch):
    _fake_router(monkeypatch, running=False)
    with pytest.raises(DrctlError, match=r"router .* is exited"):
        lab.wan_cut()


def test_a_subnet_another_lab_left_behind_is_named_with_what_to_do(monkeypatch):
    """An older lab's network holds the subnet (docker would only say "Pool overlaps"):
    lab up names it and how to remove it, and creates nothing."""
    def reply(args):
        if args[:2] == ("network", "inspect") and len(args) == 3 and args[2] == lab.NETWORK:
            return 1, ""
        if args[:2] == ("network", "ls"):
            return 0, f"bridge\ndrctl-lab-old\n{lab.NETWORK}\n"
        if args[:2] == ("network", "inspect"):
            return 0, json.dumps([
                {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}},
                {"Name": "drctl-lab-old", "IPAM": {"Config": [{"Subnet": "172.29.53.0/24"}]}}])
        return 0, ""

    calls = _fake_docker(monkeypatch, reply)
    with pytest.raises(DrctlError) as exc:
        lab.ensure_network(lambda m: None)
    assert "docker network drctl-lab-old already uses 172.29.53.0/24" in str(exc.value)
    assert "DRCTL_LAB_NAME=drctl-lab-old drctl lab down" in exc.value.hint
    assert exc.value.exit_code == ExitCode.ENVIRONMENT
    assert not any(c[:2] == ("network", "create") for c in calls)


def test_a_partial_restore_makes_the_hosts_it_does_not_hold_bare(monkeypatch, tmp_path):
    """A one-site snapshot restored in a two-site lab: dc1's hosts from the snapshot, dc2's
    made bare again (a pg3 left as it was could hold a cluster ahead of the restored pg1)."""
    _record(2)
    calls = _fake_docker(monkeypatch)
    snap = {"name": "provisioned", "hosts": [n for n, *_ in DC1], "complete": False,
            "current_image": True}
    monkeypatch.setattr(lab, "snapshots", lambda: [snap])
    monkeypatch.setattr(lab, "ensure_engine", lambda say: None)
    monkeypatch.setattr(lab, "ensure_network", lambda say, site: None)
    monkeypatch.setattr(lab, "ensure_image", lambda say: ("drctl-lab:tag", False))
    monkeypatch.setattr(lab, "_run_router", lambda image: None)
    monkeypatch.setattr(lab, "_forget_ssh_masters", lambda: None)
    monkeypatch.setattr(lab, "_boot_and_authorize", lambda hosts, key: None)
    (tmp_path / "k.pub").write_text("ssh-ed25519 AAAA")
    monkeypatch.setattr(lab, "ensure_ssh_key", lambda: tmp_path / "k")
    routed: list[str] = []
    monkeypatch.setattr(lab, "_install_routes_everywhere",
                        lambda hosts: routed.extend(h.name for h in hosts))
    monkeypatch.setattr(lab, "_prune_untagged", lambda: None)
    started: list[tuple[str, str]] = []
    monkeypatch.setattr(lab, "_run_container",
                        lambda h, image, copy_up=(): started.append((h.name, image)))
    result = lab.restore("provisioned", lambda m: None, partial=True)
    assert result["hosts"] == [n for n, *_ in DC1]
    assert result["bare"] == list(NEW_HOSTS)
    removals = [c[2:] for c in calls if c[:2] == ("rm", "-f")]
    # one container a call (docker 20.10's deadlock when two leave a network at once)
    assert all(len(names) == 1 for names in removals), removals
    removed = [name for names in removals for name in names]
    assert {lab.PREFIX + n for n in NEW_HOSTS} <= set(removed)
    assert {lab.PREFIX + n for n, *_ in DC1} <= set(removed)
    # every host's container created anew (side by side: in no particular order), dc2's
    # from the bare image, dc1's from the snapshot
    images = dict(started)
    assert len(started) == len(images) == len(DC1) + 6
    assert all(images[n] == "drctl-lab:tag" for n in NEW_HOSTS)
    assert all(images[n] != "drctl-lab:tag" for n, *_ in DC1)
    assert set(routed) == {n for n, *_ in DC1} | set(NEW_HOSTS)


def test_power_cuts_and_removals_leave_the_network_one_container_at_a_time(monkeypatch):
    """Debian 12's docker 20.10.24 deadlocks its network controller when two containers
    of one network exit side by side (moby/moby#46661): a kill is followed by a wait for
    that container's exit before the next kill, and a removal names one container."""
    calls = _fake_docker(monkeypatch)
    lab.kill_one_at_a_time(["a", "b", "c"])
    assert calls == [("kill", "a"), ("wait", "a"), ("kill", "b"), ("wait", "b"),
                     ("kill", "c"), ("wait", "c")]
    calls.clear()
    lab.remove_one_at_a_time(["a", "b"])
    assert calls == [("rm", "-f", "a"), ("rm", "-f", "b")]
