"""Action drctl_node_bundle: one zip archive of the drctl.node and drctl.rules packages.

The task `drctl_node_bundle: {source: SOURCE}` builds, on the control machine, a zip of
SOURCE/__init__.py, SOURCE/node/*.py and SOURCE/rules/*.py (SOURCE is the `drctl` package
directory) and returns its path (`path`) for a copy task; it touches no host. (An action,
not a lookup: a role in a collection finds its collection's actions by their short name,
its lookups only by their full name.) The archive is byte-for-byte the same for the same
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
from typing import Any

from ansible.plugins.action import ActionBase

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


def bundle_path(root: Path) -> Path:
    """Build the archive (once per content) in a private cache; its path."""
    data = build(root)
    cache = Path(tempfile.gettempdir()) / f"drctl-node-bundle-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    target = cache / f"{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(target)
    return target


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        source = self._task.args.get("source")
        if not source:
            return {**result, "failed": True, "msg": "drctl_node_bundle needs source: the "
                    "drctl package directory"}
        root = Path(str(source)).resolve()
        if not (root / "node" / "cli.py").is_file():
            return {**result, "failed": True,
                    "msg": f"{root} does not hold the drctl.node package"}
        return {**result, "changed": False, "path": str(bundle_path(root))}
