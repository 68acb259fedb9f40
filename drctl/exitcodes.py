"""Every exit code drctl uses, defined once.

README.md's "Exit codes" table is generated from this module's docstrings
(tests/unit/test_exitcodes.py keeps the two in step).
"""

import itertools
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Success: the operation finished and its checks passed."""
    FAILED = 1
    """A playbook task failed on a reachable host (details in the output)."""
    USAGE = 2
    """Bad command line: unknown option, missing argument (click's own code)."""
    INVALID_INVENTORY = 3
    """The inventory failed validation; nothing remote was attempted."""
    UNREACHABLE = 4
    """At least one host could not be reached over SSH."""
    TIMEOUT = 5
    """The playbook run hit drctl's idle or job timeout and was stopped."""
    CANCELED = 6
    """The run was interrupted (Ctrl-C / SIGTERM) and stopped."""
    UNHEALTHY = 7
    """`drctl status`: at least one cluster invariant does not hold."""
    REFUSED = 8
    """A safety gate or the operator said no; nothing was changed."""
    LOCKED = 9
    """Another drctl operation holds the cluster lock."""
    ENVIRONMENT = 10
    """The control machine lacks something (docker, debootstrap, a file)."""
    VAULT = 11
    """The vault password does not decrypt the inventory's vault; nothing remote was tried."""
    NAME_NOT_MOVED = 12
    """The database moved but the service's name did not (`drctl dns publish` retries)."""
    INTERNAL = 70
    """A bug in drctl: please report it with the output."""


def describe() -> list[tuple[int, str, str]]:
    """(code, NAME, meaning) for every exit code, in order."""
    doc: dict[str, str] = {}
    import ast
    import inspect

    cls = ast.parse(inspect.getsource(ExitCode)).body[0]
    assert isinstance(cls, ast.ClassDef)
    for node, nxt in itertools.pairwise(cls.body):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
            doc[node.targets[0].id] = str(nxt.value.value).strip()
    return [(int(c), c.name, doc.get(c.name, "")) for c in ExitCode]
