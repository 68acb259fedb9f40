"""pgBackRest's configuration files as the pgbackrest role renders them (Jinja with the
template module's settings: trim_blocks, no kept trailing newline), with an object-store
repository: every option on a line of its own, the secret exactly as given."""

from __future__ import annotations

from pathlib import Path

import jinja2

from drctl.rules import repos

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "pgbackrest" / "templates"
SECRET = "Zx9" * 13 + "q"
CLOUD = {"name": "cloud", "endpoint": "s3", "port": 9000, "bucket": "drctl-lab",
         "key": "AKIAEXAMPLE", "secret": SECRET}


def render(name: str, host: str, **overrides: object) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             trim_blocks=True, keep_trailing_newline=False,
                             undefined=jinja2.StrictUndefined)
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in (
        "1", "true", "yes", "y", "on")  # Ansible's
    hosts = ["backup1", "backup2"]
    every = [r.as_dict() for r in repos.numbered(hosts, [CLOUD])]
    variables: dict[str, object] = {
        "ansible_managed": "Ansible managed", "inventory_hostname": host,
        "pgbackrest_repos": hosts, "pgbackrest_s3_repos": [CLOUD],
        "pgbackrest_all_repos": every,
        "pgbackrest_served_repos": [r for r in every if r["host"] == host],
        "pgbackrest_repo_index": hosts.index(host) + 1 if host in hosts else 1,
        "pgbackrest_stanza": "lab", "pgbackrest_tls_dir": "/etc/tls", "pgbackrest_tls_port": 8432,
        "pgbackrest_archive_async": True, "pgbackrest_spool_path": "/var/spool/pgbackrest",
        "pgbackrest_archive_push_queue_max": "4GiB", "pgbackrest_compress_type": "zst",
        "pgbackrest_archive_timeout": 60, "pgbackrest_io_timeout": 60,
        "pgbackrest_process_max": 2, "pgbackrest_pg_path": "/var/lib/postgresql/15/main",
        "pgbackrest_pg_port": 5432, "pgbackrest_pg_socket": "/var/run/postgresql",
        "pgbackrest_repo_path": "/var/lib/pgbackrest", "pgbackrest_retention_full": 2,
        "pgbackrest_retention_diff": 6, "pgbackrest_pg_nodes": ["pg1", "pg2"],
        **overrides}
    return env.get_template(name).render(variables)


def options(text: str) -> dict[str, list[str]]:
    """option -> its values, from KEY=VALUE lines (sections and comments aside)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not an option line: {line!r}"
        out.setdefault(key, []).append(value)
    return out


def test_every_node_archives_to_the_object_store_as_repo3():
    opts = options(render("pgbackrest-node.conf.j2", "pg1"))
    assert opts["repo1-host"] == ["backup1"] and opts["repo2-host"] == ["backup2"]
    assert opts["repo3-type"] == ["s3"] and opts["repo3-s3-endpoint"] == ["s3"]
    assert opts["repo3-storage-port"] == ["9000"] and opts["repo3-s3-uri-style"] == ["path"]
    assert opts["repo3-path"] == ["/lab"] and opts["repo3-storage-ca-file"] == ["/etc/tls/ca.crt"]
    assert opts["repo3-s3-key-secret"] == [SECRET], "the secret must end its line"
    assert opts["archive-async"] == ["y"]


def test_the_backup_host_of_the_object_store_holds_it_beside_its_own_repository():
    opts = options(render("pgbackrest-repo.conf.j2", "backup1"))
    assert opts["repo1-path"] == ["/var/lib/pgbackrest"]
    assert opts["repo3-type"] == ["s3"] and opts["repo3-s3-key-secret"] == [SECRET]
    assert opts["repo3-retention-full"] == ["2"] and opts["repo3-retention-diff"] == ["6"]
    # the other repository host backs up into its own repository only
    other = options(render("pgbackrest-repo.conf.j2", "backup2"))
    assert other["repo2-path"] == ["/var/lib/pgbackrest"]
    assert not [k for k in other if k.startswith("repo3-")]
