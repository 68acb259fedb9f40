"""The import graph of the drctl package: no loops (lazy imports inside functions count:
they are arrows too), and the lock and the journal print nothing themselves."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def graph(root: Path = ROOT, packages: tuple[str, ...] = ("drctl",)) -> dict[str, set[str]]:
    """Module -> the modules of PACKAGES (under ROOT) it imports, anywhere in its body."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    arrows: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.split(".")[0] in packages:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    arrows[name].add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                arrows[name] |= {a.name for a in node.names if a.name in modules}
    return {m: {t for t in ts if t in modules and t != m and t not in packages}
            for m, ts in arrows.items()}


def loops(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in arrows[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(arrows):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_loop():
    assert loops(graph()) == []
    assert loops(graph(packages=("drctl", "drctl_lab"))) == []


def test_the_loop_finder_finds_one():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_lock_and_the_journal_print_nothing_themselves():
    arrows = graph()
    for module in ("drctl.lock", "drctl.journal"):
        assert "drctl.output" not in arrows[module], module
    assert "drctl.lock" not in arrows["drctl.journal"], "the journal is handed the held lock"
