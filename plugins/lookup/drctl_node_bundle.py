"""Lookup drctl_node_bundle: one zip archive of the drctl.node and drctl.rules packages.

`lookup('drctl_node_bundle', SOURCE)` builds, on the control machine, a zip of
SOURCE/__init__.py, SOURCE/node/*.py and SOURCE/rules/*.py (SOURCE is the `drctl` package
directory) and returns its path. The archive is byte-for-byte the same for the same
sources (sorted entries, fixed times and modes), so copying it is idempotent, and Python
imports the packages straight from it (zipimport). One file to copy instead of one per
module: a provision spends one task on it, not one per file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: drctl_node_bundle
short_description: a reproducible zip of drctl's node packages, built on the control machine
description:
  - Returns the path of a zip archive holding drctl/__init__.py, drctl/node/*.py and
    drctl/rules/*.py from the given source directory; the same sources give the same bytes.
options:
  _terms:
    description: The drctl package directory on the control machine.
    required: true
"""

PACKAGES = ("node", "rules")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def sources(root: Path) -> list[tuple[str, Path]]:
    """(name in the archive, file) for every module, sorted."""
    files = [("drctl/__init__.py", root / "__init__.py")]
    for package in PACKAGES:
        files += [(f"drctl/{package}/{path.name}", path)
                  for path in (root / package).glob("*.py")]
    return sorted(files)


def build(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sources(root):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1:
            raise AnsibleLookupError("drctl_node_bundle takes one term: the package directory")
        root = Path(str(terms[0])).resolve()
        if not (root / "node" / "cli.py").is_file():
            raise AnsibleLookupError(f"{root} does not hold the drctl.node package")
        data = build(root)
        cache = Path(tempfile.gettempdir()) / f"drctl-node-bundle-{os.getuid()}"
        cache.mkdir(mode=0o700, exist_ok=True)
        target = cache / f"{hashlib.sha256(data).hexdigest()[:16]}.zip"
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(target)
        return [str(target)]
