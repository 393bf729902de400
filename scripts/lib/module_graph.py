"""Fails when the top-level modules of src/ depend on each other in a cycle.

src/lib.rs says the modules form layers, each using only the ones below it. This reads
every non-test Rust file under src/, collects the top-level modules it names (`crate::x`
paths, including `use crate::{x, y}` groups, and doc links, which describe a dependency as
much as a `use` does; plain `//` comments and `#[cfg(test)]` modules are skipped), and
prints each strongly connected component of more than one module with the files behind
its edges.

    python3 scripts/lib/module_graph.py [SRC]        exit 1 on a cycle
    python3 scripts/lib/module_graph.py --edges      print the graph
    python3 scripts/lib/module_graph.py --self-test  shows it finds a planted cycle
"""

import re
import sys
from pathlib import Path

from rust_tree import is_test_file, src_from_argv

USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def strip_comments(text: str) -> str:
    """Removes plain `//` comments and `/* */` blocks; doc comments (`///`, `//!`) stay."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"(?<!/)//(?![/!]).*$", "", line) for line in text.splitlines())


def strip_test_modules(text: str) -> str:
    """Removes every `#[cfg(test)]` item that is a braced module."""
    out, i = [], 0
    for match in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if match.start() < i:
            continue
        out.append(text[i : match.start()])
        depth, j = 1, match.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def top_module(rel: Path) -> str:
    return rel.parts[0].removesuffix(".rs")


def graph(src: Path) -> dict[tuple[str, str], set[str]]:
    """(from, to) → the files that make the edge."""
    modules = {top_module(p.relative_to(src)) for p in src.iterdir()} - {"lib", "main"}
    edges: dict[tuple[str, str], set[str]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if is_test_file(rel) or rel.name in ("lib.rs", "main.rs"):
            continue
        code = strip_test_modules(strip_comments(path.read_text()))
        names = set(PATH.findall(code))
        for group in USE_GROUP.findall(code):
            names |= {item.strip().split("::")[0] for item in group.split(",")}
        here = top_module(rel)
        for name in names & modules - {here}:
            edges.setdefault((here, name), set()).add(str(rel))
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def self_test() -> int:
    """Plants a three-module cycle (one edge a doc link, one in a `use` group) beside an
    edge from a test module, and checks exactly the cycle is found."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "b").mkdir()
        (src / "a.rs").write_text("use crate::{b::x, d};\n// crate::c in a comment\n")
        (src / "b" / "mod.rs").write_text("/// See [`crate::c::y`].\npub fn x() {}\n")
        (src / "c.rs").write_text("fn y() { crate::a::z() }\n#[cfg(test)]\nmod tests { use crate::d; }\n")
        (src / "d.rs").write_text("fn d() {}\n")
        found = cycles(graph(src))
    if found != [["a", "b", "c"]]:
        print(f"self-test: expected the cycle a b c, found {found}", file=sys.stderr)
        return 1
    print("module graph self-test: the planted cycle a -> b -> c -> a is found")
    return 0


def main() -> int:
    if "--self-test" in sys.argv:
        return self_test()
    edges = graph(src_from_argv())
    if "--edges" in sys.argv:
        for (a, b), files in sorted(edges.items()):
            print(f"{a} -> {b}  ({', '.join(sorted(files))})")
    found = cycles(edges)
    for component in found:
        members = set(component)
        print(f"module cycle: {' '.join(component)}", file=sys.stderr)
        for (a, b), files in sorted(edges.items()):
            if a in members and b in members:
                print(f"  {a} -> {b}: {', '.join(sorted(files))}", file=sys.stderr)
    if not found:
        print(f"module graph: {len(edges)} edges between top-level modules, no cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
