"""Fixtures shared by the failover scenario's testinfra checks (one directory per stage).

The helpers are fixtures rather than imports: each stage's directory is collected on its
own, and conftest.py is the one module pytest loads for all of them.
"""

import os
import time
from pathlib import Path

import pytest
import testinfra

PG1 = "mol-fo-pg1"
PG2 = "mol-fo-pg2"
VIP = "172.29.55.100"
CA = "/etc/postgresql-common/drctl-tls/ca.crt"


def _node(name):
    inv = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inv}")


def _psql(host, sql, db="postgres"):
    """psql as the postgres superuser on the node's own socket."""
    return host.check_output(f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} "
                             f"-c \"{sql}\"")


def _app_psql(host, sql):
    """psql from HOST as the application role through the VIP, TLS verified by the CA."""
    secret = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secret-app").read_text().split()[0]
    conninfo = (f"host={VIP} dbname=app user=app sslmode=verify-full sslrootcert={CA} "
                "connect_timeout=5")
    return host.check_output(f"PGPASSWORD='{secret}' psql -XAtq -v ON_ERROR_STOP=1 "
                             f"'{conninfo}' -c \"{sql}\"")


def _vip_holders(hosts):
    return [name for name, host in hosts.items()
            if any(a == VIP for a in host.interface("eth0").addresses)]


def _eventually(check, timeout=180, interval=2):
    """check()'s first truthy result, retried while it is falsy or fails (a busy 2-core CI).

    After the timeout the last failure is raised, or the last falsy result returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (AssertionError, RuntimeError):
            if time.monotonic() > deadline:
                raise
        else:
            if result or time.monotonic() > deadline:
                return result
        time.sleep(interval)


@pytest.fixture(scope="session")
def names():
    return {"pg1": PG1, "pg2": PG2, "vip": VIP,
            # Written by the failed-over check; must survive the failback and switch-back.
            "probe_table": "molecule_fo_probe",
            "probe_note": "written on mol-fo-pg2 after the failover"}


@pytest.fixture(scope="session")
def pg1():
    return _node(PG1)


@pytest.fixture(scope="session")
def pg2():
    return _node(PG2)


@pytest.fixture(scope="session")
def nodes(pg1, pg2):
    return {PG1: pg1, PG2: pg2}


@pytest.fixture(scope="session")
def local():
    return testinfra.get_host("local://")


@pytest.fixture(scope="session")
def psql():
    return _psql


@pytest.fixture(scope="session")
def app_psql():
    return _app_psql


@pytest.fixture(scope="session")
def vip_holders():
    return _vip_holders


@pytest.fixture(scope="session")
def eventually():
    return _eventually
