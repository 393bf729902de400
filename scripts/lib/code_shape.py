"""Fails when a non-test file of src/ is over 600 lines, or a function over 80 lines has
no reason for its length in its doc comment (a line containing "Long on purpose").

    python3 scripts/lib/code_shape.py [SRC]
    python3 scripts/lib/code_shape.py --self-test
"""

import re
import sys
import tempfile
from pathlib import Path

from rust_tree import is_test_file, src_from_argv

MAX_FILE = 600
MAX_FN = 80
REASON = "Long on purpose"
FN = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)")


def non_test_lines(path: Path) -> list[str]:
    """The file's lines up to its `#[cfg(test)] mod tests`, if it has one."""
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines[:-1]):
        if line.startswith("#[cfg(test)]") and lines[i + 1].startswith("mod tests"):
            return lines[:i]
    return lines


def long_functions(lines: list[str]):
    """(name, first line, length) of each function over MAX_FN lines with no reason."""
    for i, line in enumerate(lines):
        match = FN.match(line)
        if not match or line.rstrip().endswith(";"):
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            depth += lines[j].count("{") - lines[j].count("}")
            opened = opened or "{" in lines[j]
            if opened and depth <= 0:
                break
            j += 1
        length = j - i + 1
        doc = []
        k = i - 1
        while k >= 0 and lines[k].strip().startswith(("///", "#[")):
            doc.append(lines[k])
            k -= 1
        if length > MAX_FN and not any(REASON in d for d in doc):
            yield match.group(5), i + 1, length


def problems(src: Path) -> list[str]:
    out = []
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if is_test_file(rel):
            continue
        lines = non_test_lines(path)
        if len(lines) > MAX_FILE:
            out.append(f"{rel}: {len(lines)} lines outside its tests (over {MAX_FILE})")
        for name, line, length in long_functions(lines):
            out.append(
                f"{rel}:{line}: fn {name} is {length} lines (over {MAX_FN}); split it, "
                f'or say why in its doc comment ("{REASON}: ...")'
            )
    return out


def self_test() -> int:
    body = "    let x = 1;\n" * (MAX_FN + 5)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "a.rs").write_text(f"/// Short doc.\nfn long() {{\n{body}}}\n")
        (src / "b.rs").write_text(f"/// {REASON}: a table.\nfn long() {{\n{body}}}\n")
        (src / "c.rs").write_text("fn f() {}\n" * (MAX_FILE + 1))
        found = problems(src)
    if len(found) != 2 or not found[0].startswith("a.rs:2") or not found[1].startswith("c.rs:"):
        print(f"code shape self-test: expected a.rs's fn and c.rs's length, got {found}")
        return 1
    print("code shape self-test: a long function without a reason and a long file are found")
    return 0


def main() -> int:
    if "--self-test" in sys.argv:
        return self_test()
    found = problems(src_from_argv())
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"code shape: no file over {MAX_FILE} lines, no unexplained fn over {MAX_FN}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
