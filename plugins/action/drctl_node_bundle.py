"""Action drctl_node_bundle: one zip archive of the drctl.node and drctl.rules packages.

The task `drctl_node_bundle: {source: SOURCE, installed_as: PATH}` builds, on the control
machine, a zip of SOURCE/__init__.py, SOURCE/node/*.py and SOURCE/rules/*.py (SOURCE is
the `drctl` package directory) and returns its path (`path`) for a copy task; it touches
no host. (An action, not a lookup: a role in a collection finds its collection's actions
by their short name, its lookups only by their full name.) The archive is byte-for-byte
the same for the same sources (sorted entries, fixed times and modes), so copying it is
idempotent, and Python imports the packages straight from it (zipimport). One file to
copy instead of one per module: a provision spends one task on it, not one per file.

Beside each module the archive holds its bytecode (NAME.pyc, hash-based and checked
against the source beside it), compiled by the control machine's Python in a fresh
interpreter with a fixed hash seed, so that the bytes stay the same from one build to the
next: zipimport never writes bytecode, and compiling the rules core and the steps anew
cost every drctl-node call more than it spent otherwise (about 50 ms of a node's CPU
a call). A node whose Python has another bytecode version (magic number) ignores the
.pyc entries and compiles the sources, as before. With INSTALLED_AS (the archive's path on
the node), tracebacks name the module where it runs, as zipimport's own compile does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import marshal
import os
import subprocess
import sys
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


# Run by this Python with a fixed hash seed, isolated, without site: reads a marshalled
# list of (file name, source) from stdin, writes the marshalled list of their code objects'
# marshalled bytes. A fresh interpreter doing the same work gives the same bytes (sets of
# constants are ordered by the hash seed; references by what the interpreter holds).
_COMPILER = (
    "import marshal, sys\n"
    "items = marshal.loads(sys.stdin.buffer.read())\n"
    "sys.stdout.buffer.write(marshal.dumps([marshal.dumps(compile(src, name, 'exec',"
    " dont_inherit=True)) for name, src in items]))\n")


def compiled(items: list[tuple[str, bytes]]) -> list[bytes]:
    """The .pyc contents for (file name, source) ITEMS: hash-based, checked (PEP 552)."""
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", _COMPILER],
                          input=marshal.dumps(items), capture_output=True, check=False,
                          env={"PYTHONHASHSEED": "0"}, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("compiling the node programs failed: "
                           + proc.stderr.decode(errors="replace")[-2000:])
    codes = marshal.loads(proc.stdout)
    return [importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little")
            + importlib.util.source_hash(src) + code
            for (_, src), code in zip(items, codes, strict=True)]


def build(root: Path, installed_as: str = "") -> bytes:
    """The archive: every module's source, and beside it its bytecode (NAME.pyc).
    INSTALLED_AS: the archive's path where it is imported from (in tracebacks)."""
    files = [(name, path.read_bytes()) for name, path in sources(root)]
    prefix = f"{installed_as.rstrip('/')}/" if installed_as else ""
    pycs = compiled([(prefix + name, data) for name, data in files])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for (name, data), pyc in zip(files, pycs, strict=True):
            for entry, content in ((name, data), (name[:-len(".py")] + ".pyc", pyc)):
                info = zipfile.ZipInfo(entry, FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content)
    return buffer.getvalue()


def bundle_path(root: Path, installed_as: str = "") -> Path:
    """Build the archive (once per content, this Python and INSTALLED_AS) in a private
    cache; its path."""
    key = hashlib.sha256(f"{sys.version}\0{importlib.util.MAGIC_NUMBER!r}\0"
                         f"{installed_as}\0".encode())
    for name, path in sources(root):
        key.update(f"{name}\0{path.stat().st_size}\0".encode())
        key.update(path.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"drctl-node-bundle-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    target = cache / f"{key.hexdigest()[:24]}.zip"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(build(root, installed_as))
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
        installed_as = str(self._task.args.get("installed_as") or "")
        try:
            path = bundle_path(root, installed_as)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            return {**result, "failed": True, "msg": f"building the node programs' archive "
                    f"failed: {exc}"}
        return {**result, "changed": False, "path": str(path)}
