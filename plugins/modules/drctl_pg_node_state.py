#!/usr/bin/python
"""Ansible module: what one PostgreSQL node is, read in one step (pg_topology's facts)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: drctl_pg_node_state
short_description: What a PostgreSQL node is now - initialised, standby, fresh, fenced, writable
description:
  - Reads, in one module run, the facts pg_topology decides the primary from - whether the
    data directory is initialised (PG_VERSION), holds standby.signal or the marker of a
    never-used cluster, whether the node is fenced, and whether a running server is in
    recovery (asked over the local socket as the postgres user).
  - Changes nothing; the same facts as four stat tasks and a psql task, at a fifth of the cost.
options:
  data_dir:
    description: The cluster's data directory.
    type: path
    required: true
  fence_file:
    description: The fence marker drctl writes on a node that must not run as a primary.
    type: path
    required: true
  fresh_marker:
    description: File name, in the data directory, of the marker of a never-used cluster.
    type: str
    default: drctl_fresh_cluster
  psql:
    description: The psql binary to ask the running server with.
    type: path
    required: true
  port:
    description: The server's port.
    type: int
    default: 5432
  os_user:
    description: The OS user psql runs as (peer authentication over the socket).
    type: str
    default: postgres
author: drctl
"""

RETURN = r"""
state:
  description: >-
    initialised, running, writable, standby_signal, fresh, fenced (booleans); running is
    true when psql got an answer, writable when that answer is "not in recovery".
  returned: always
  type: dict
"""

import os  # noqa: E402
from collections.abc import Callable  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def node_state(data_dir: str, fence_file: str, fresh_marker: str,
               ask_in_recovery: Callable[[], str | None]) -> dict[str, bool]:
    """The node's facts; ask_in_recovery returns the server's pg_is_in_recovery() ("t"/"f")
    or None when no server answers. A server is asked only in an initialised directory."""
    initialised = os.path.exists(os.path.join(data_dir, "PG_VERSION"))
    answer = ask_in_recovery() if initialised else None
    return {
        "initialised": initialised,
        "running": answer is not None,
        "writable": answer == "f",
        "standby_signal": os.path.exists(os.path.join(data_dir, "standby.signal")),
        "fresh": os.path.exists(os.path.join(data_dir, fresh_marker)),
        "fenced": os.path.exists(fence_file),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "data_dir": {"type": "path", "required": True},
            "fence_file": {"type": "path", "required": True},
            "fresh_marker": {"type": "str", "default": "drctl_fresh_cluster"},
            "psql": {"type": "path", "required": True},
            "port": {"type": "int", "default": 5432},
            "os_user": {"type": "str", "default": "postgres"},
        },
        supports_check_mode=True,
    )
    p = module.params

    def ask() -> str | None:
        rc, out, _ = module.run_command(
            ["runuser", "-u", p["os_user"], "--", p["psql"], "-XAtq", "-p", str(p["port"]),
             "-d", "postgres", "-c", "select pg_is_in_recovery()"])
        return out.strip() if rc == 0 and out.strip() in ("t", "f") else None

    module.exit_json(changed=False, state=node_state(p["data_dir"], p["fence_file"],
                                                     p["fresh_marker"], ask))


if __name__ == "__main__":
    main()
