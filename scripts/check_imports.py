#!/usr/bin/env python3
"""Check the imports between the project's packages: no cycles, every lazy import explained.

Reads the source of `islands/`, `launcher/` and `migration_pool/` with `ast` (nothing is
imported, so it runs without torch) and builds the graph of imports between their modules,
both module-level and function-level ones: a function-level import still closes a cycle once
the function runs. Imports under `if TYPE_CHECKING:` are left out (they never run).

It prints
- every import cycle (each strongly connected component, with one cycle through it), and
- every function-level import (of any module) that has no one-line reason: a comment
  `# lazy: <reason>` on the import's line or on the line just above it. docs/DESIGN.md
  ("Layers") says when a lazy import is allowed: the torch-free launcher and records, or a
  start-up cost the command pays for nothing.

Exit status 1 if there is a cycle (and, with --strict, if a lazy import has no reason), else 0.
Given files or folders, it reports only their lazy imports and the cycles through them (the
graph is still the whole project's).

    python3 scripts/check_imports.py                 # the whole project
    python3 scripts/check_imports.py launcher islands/cli.py --strict
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("islands", "launcher", "migration_pool")
LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class Import:
    """One import statement: where it is, what it names, whether it sits in a function."""

    path: Path
    line: int
    targets: tuple[str, ...]  # absolute module names it may load
    in_function: bool
    explained: bool
    text: str


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _explained(lines: list[str], node: ast.stmt) -> bool:
    """A `# lazy:` comment on the statement's lines or on the line just above."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    near = lines[first: last + 1] + ([lines[first - 1]] if first > 0 else [])
    return any(LAZY_MARK in line for line in near)


def imports_of(path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import statement in `path`, with the project modules (or other names) it loads."""
    source = path.read_text()
    lines = source.splitlines()
    here = module_name(path)
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit_stmt(sub, in_function)
                continue
            visit_stmt(child, in_function)

    def visit_stmt(child: ast.AST, in_function: bool) -> None:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            if isinstance(child, ast.Import):
                targets = tuple(alias.name for alias in child.names)
            else:
                base = _resolve(child, here, is_package)
                # `from pkg import sub` loads pkg.sub when sub is a module, else pkg itself
                targets = tuple(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                                for a in child.names)
            found.append(Import(path, child.lineno, tuple(dict.fromkeys(targets)), in_function,
                                _explained(lines, child), ast.get_source_segment(source, child) or ""))
            return
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        visit(child, inner)

    visit(ast.parse(source, str(path)), False)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1 or v in graph.get(v, ()):
                out.append(sorted(part))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def one_cycle(graph: dict[str, set[str]], part: list[str]) -> list[str]:
    """A shortest cycle through the first module of a component (breadth-first)."""
    start, members = part[0], set(part)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ()) & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*",
                        help="files or folders to report on: their lazy imports and the cycles through them "
                             "(default: every module)")
    parser.add_argument("--strict", action="store_true", help="exit 1 also for a lazy import without a reason")
    args = parser.parse_args(argv)

    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    lazy: list[Import] = []
    for name, path in modules.items():
        for imp in imports_of(path, modules):
            graph[name].update(t for t in imp.targets if t in modules and t != name)
            if imp.in_function and not imp.explained:
                lazy.append(imp)

    wanted = [(ROOT / p).resolve() for p in args.paths]

    def chosen(path: Path) -> bool:
        return not wanted or any(path == w or w in path.parents for w in wanted)

    lazy = [i for i in lazy if chosen(i.path)]
    cycles = [part for part in strongly_connected(graph) if any(chosen(modules[m]) for m in part)]
    for part in cycles:
        print(f"cycle ({len(part)} modules): {' -> '.join(one_cycle(graph, part))}")
        if len(part) > 2:
            print(f"  component: {', '.join(part)}")
    for imp in lazy:
        print(f"lazy import without '{LAZY_MARK} <reason>': "
              f"{imp.path.relative_to(ROOT)}:{imp.line}: {' '.join(imp.text.split())}")
    print(f"{len(modules)} modules, {sum(map(len, graph.values()))} internal edges, "
          f"{len(cycles)} cycle(s), {len(lazy)} unexplained lazy import(s)")
    return 1 if cycles or (args.strict and lazy) else 0


if __name__ == "__main__":
    sys.exit(main())
