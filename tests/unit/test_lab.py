"""The lab's pieces that need no docker: its inventory, its shortened timeouts, snapshot names."""

from pathlib import Path

import pytest
import yaml

from drctl.errors import DrctlError
from drctl.options import CLUSTER_OPTIONS
from drctl_lab import lab

ROOT = Path(__file__).resolve().parents[2]


def role_default(role: str, name: str):
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())[name]


def test_production_keeps_the_timeouts_the_readme_recommends():
    """The lab shortens these; the roles' defaults (what production gets) do not."""
    assert role_default("pgbackrest", "pgbackrest_io_timeout") == 60
    assert role_default("postgresql", "postgresql_extra_settings") == {}
    assert role_default("drctl_node", "drctl_node_start_confirm_wait_s") == 15
    stall = next(o for o in CLUSTER_OPTIONS if o.name == "drctl_archive_stall_s")
    assert stall.default == 120
    readme = (ROOT / "README.md").read_text()
    assert "drctl_archive_stall_s" in readme and "io-timeout" in readme


def test_lab_inventory_shortens_only_the_documented_timeouts(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "lab_dir", lambda: tmp_path)
    files = lab.render_inventory(lab.lab_hosts(), tmp_path / "id_ed25519")
    main = yaml.safe_load(files["group_vars/all/main.yml"])
    assert set(lab.LAB_TIMEOUTS) == {"pgbackrest_io_timeout", "drctl_archive_stall_s",
                                     "postgresql_extra_settings",
                                     "drctl_node_start_confirm_wait_s", "app_files_interval"}
    for name, value in lab.LAB_TIMEOUTS.items():
        assert main[name] == value
    assert main["pgbackrest_io_timeout"] < 60 and main["drctl_archive_stall_s"] < 120
    assert main["drctl_node_start_confirm_wait_s"] < 15
    assert main["app_files_interval"] == "30s"  # production: a minute
    assert role_default("app_files", "app_files_interval") == "1min"
    # docker names the hosts in every container's /etc/hosts (and rewrites it at each start)
    assert main["pgbackrest_manage_etc_hosts"] is False
    assert role_default("pgbackrest", "pgbackrest_manage_etc_hosts") is True
    assert "production keeps the roles' defaults" in files["group_vars/all/main.yml"]


@pytest.mark.parametrize("name", ["provisioned", "auto-armed", "a.b_c-1"])
def test_snapshot_names_that_make_docker_tags(name):
    lab._check_snapshot_name(name)
    host = lab.lab_hosts()[0]
    tag = lab._snapshot_image(host, name).split(":", 1)[1]
    assert len(tag) <= 128 and tag.endswith("." + host.name)


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "has space", "x" * 41, "a/b", "a:b"])
def test_snapshot_names_refused(name):
    with pytest.raises(DrctlError):
        lab._check_snapshot_name(name)


def test_snapshot_meta_survives_a_docker_label():
    meta = {"inputs": "abc", "failures": [], "note": "with spaces, commas = and \"quotes\""}
    text = lab._encode_meta(meta)
    assert " " not in text and "=" not in text.rstrip("=") and '"' not in text
    assert lab._decode_meta(text) == meta
    assert lab._decode_meta("not base64 json") == {}


def _fake_docker(monkeypatch, replies: list[tuple[int, str]]) -> list[tuple[str, ...]]:
    """docker() answering from REPLIES in turn; returns the calls it saw. No sleeping."""
    import subprocess

    calls: list[tuple[str, ...]] = []

    def docker(*args: str, check: bool = True, **_kw) -> subprocess.CompletedProcess:
        calls.append(args)
        code, err = replies.pop(0)
        return subprocess.CompletedProcess(["docker", *args], code, "", err)

    monkeypatch.setattr(lab, "docker", docker)
    monkeypatch.setattr(lab.time, "sleep", lambda _s: None)
    return calls


FREEZE_FAILED = ("Error response from daemon: Cannot pause container x: "
                 "OCI runtime pause failed: unable to freeze: unknown")


def test_pause_tries_again_when_the_freezer_gives_up(monkeypatch):
    calls = _fake_docker(monkeypatch, [(1, FREEZE_FAILED), (1, FREEZE_FAILED), (0, "")])
    said: list[str] = []
    lab.pause("drctl-lab-backup1", said.append)
    assert calls == [("pause", "drctl-lab-backup1")] * 3
    assert len(said) == 2 and "attempt 2" in said[1]


def test_pause_gives_up_after_its_attempts_naming_the_error(monkeypatch):
    calls = _fake_docker(monkeypatch, [(1, FREEZE_FAILED)] * 3)
    with pytest.raises(DrctlError, match=r"cannot pause drctl-lab-pg1: .*unable to freeze"):
        lab.pause("drctl-lab-pg1", attempts=3)
    assert len(calls) == 3


def test_pause_does_not_retry_other_errors(monkeypatch):
    calls = _fake_docker(monkeypatch, [(1, "Error: No such container: drctl-lab-pg9")])
    with pytest.raises(DrctlError, match="No such container"):
        lab.pause("drctl-lab-pg9")
    assert len(calls) == 1


def _packages(text: str, after: str, until: str) -> set[str]:
    """The package names between AFTER and UNTIL (shell words, continuation lines)."""
    part = text[text.index(after) + len(after):]
    part = part[:part.index(until)]
    return {w for w in part.replace("\\\n", " ").split() if not w.startswith("-")}


def test_a_warm_lab_installs_what_the_bare_image_fetches_and_has_its_own_tag(monkeypatch):
    recipe = lab.RECIPE.read_text()
    fetched = _packages(recipe, "--download-only install", ">/dev/null")
    first = _packages(lab.WARM_SCRIPT, "-y install", ">/dev/null")
    rest = lab.WARM_SCRIPT[lab.WARM_SCRIPT.index("prometheus-node-exporter") - 60:]
    second = _packages(rest, "--no-install-recommends", ">/dev/null")
    assert first | second == fetched and second == {"prometheus-node-exporter"}
    # what drctl_metrics installs without recommends
    assert role_default("drctl_metrics", "drctl_metrics_exporter_packages") == sorted(second)
    monkeypatch.delenv(lab.WARM_ENV, raising=False)
    bare = lab.image_tag()
    assert bare == lab.base_tag() and not lab.warm()
    monkeypatch.setenv(lab.WARM_ENV, "1")
    assert lab.warm() and lab.image_tag().startswith(bare + "-warm-")
    monkeypatch.setenv(lab.WARM_ENV, "0")
    assert lab.image_tag() == bare


def test_every_package_a_role_installs_is_fetched_into_the_lab_image():
    """A role's *_packages default that the lab image neither holds nor fetched would be
    downloaded on every provision (BIND on the DNS host was 20 s of test_14's set-up)."""
    fetched = _packages(lab.RECIPE.read_text(), "--download-only install", ">/dev/null")
    wanted: dict[str, str] = {}
    for defaults in sorted((ROOT / "roles").glob("*/defaults/main.yml")):
        for name, value in (yaml.safe_load(defaults.read_text()) or {}).items():
            if name.endswith("_packages") and isinstance(value, list):
                for package in value:
                    wanted[str(package).replace("{{ postgresql_version }}", "15")] = name
    assert len(wanted) > 15
    included = _packages(lab.RECIPE.read_text(), "--include=", " ").pop().split(",")
    missing = {p: name for p, name in wanted.items() if p not in fetched | set(included)}
    assert not missing, missing


def test_healthy_means_one_writable_primary_that_alone_holds_the_vip() -> None:
    from drctl_lab.hosts import healthy

    good = {"primary": "pg1", "vip_holders": ["pg1"]}
    assert healthy(0, good) and healthy(0, good, "pg1")
    assert not healthy(0, good, "pg2")
    assert not healthy(2, good)
    assert not healthy(0, {"primary": None, "vip_holders": []})
    assert not healthy(0, {"primary": "pg1", "vip_holders": ["pg1", "pg2"]})
    assert not healthy(0, {"primary": "pg1", "vip_holders": []})


def test_a_json_answer_keeps_what_a_failed_call_said() -> None:
    import subprocess

    from drctl_lab.hosts import json_answer

    ok = subprocess.CompletedProcess([], 0, stdout='{"a": 1}', stderr="noise")
    assert json_answer(ok) == {"a": 1}
    failed = subprocess.CompletedProcess([], 3, stdout='{"a": 1}', stderr="why")
    assert json_answer(failed) == {"_stderr": "why", "a": 1}
    listing = subprocess.CompletedProcess([], 0, stdout="[1, 2]", stderr="")
    assert json_answer(listing) == [1, 2]  # as printed: `drctl ping` prints a list
    failed_listing = subprocess.CompletedProcess([], 1, stdout="[1]", stderr="why")
    assert json_answer(failed_listing) == [1]
    with pytest.raises(ValueError):
        json_answer(subprocess.CompletedProcess([], 1, stdout="", stderr="boom"))


def test_the_inotify_limit_is_raised_for_the_labs_containers(tmp_path: Path) -> None:
    """Each container's systemd holds inotify instances, all root's: past the kernel's
    default of 128 the next container stalls at boot, so the lab raises the limit, says
    so, and leaves a higher one alone."""
    limit = tmp_path / "max_user_instances"
    said: list[str] = []
    limit.write_text("128\n")
    lab.ensure_inotify_instances(said.append, path=limit, wanted=1024)
    assert limit.read_text() == "1024\n"
    assert said and "from 128 to 1024" in said[0]
    limit.write_text("4096\n")
    lab.ensure_inotify_instances(said.append, path=limit, wanted=1024)
    assert limit.read_text() == "4096\n" and len(said) == 1
    lab.ensure_inotify_instances(said.append, path=tmp_path / "absent", wanted=1024)
    assert len(said) == 1  # no such setting here: nothing to raise


def test_an_inotify_limit_that_cannot_be_raised_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the lab's usual root (a container without the right, a kernel that
    refuses): the error names the setting and the command that raises it."""
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")

    def refused(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "write_text", refused)
    with pytest.raises(DrctlError) as err:
        lab.ensure_inotify_instances(lambda s: None, path=limit, wanted=1024)
    assert "fs.inotify.max_user_instances is 128" in str(err.value)
    assert "Permission denied" in str(err.value)
    assert "sysctl -w fs.inotify.max_user_instances=1024" in (err.value.hint or "")
