"""A re-run of provision changes nothing, also where a host has several peers: a list built
with Ansible's `difference` filter comes back in a set's order, which changes from one run
to the next (string hashes are salted per process), so a file written from it is rewritten
on every run. Seen with dc1's second app host: the files' peers and authorized senders
changed at each provision. Peer lists keep the inventory's order (`reject('equalto', ...)`).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_peer_list_is_built_with_difference():
    found = []
    for path in sorted([*(ROOT / "roles").rglob("*"), *(ROOT / "playbooks").rglob("*")]):
        if not path.is_file() or path.suffix not in (".yml", ".j2"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"difference\(\[inventory_hostname\]\)", line):
                found.append(f"{path.relative_to(ROOT)}:{n}")
    assert found == [], found
