"""What the checks over src/ (module_graph.py, code_shape.py) share: which directory they
read and which files are tests."""

import sys
from pathlib import Path


def src_from_argv() -> Path:
    """The first argument that is not an option, else the repository's src/."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    return Path(args[0] if args else Path(__file__).resolve().parents[2] / "src")


def is_test_file(rel: Path) -> bool:
    """A file under a `tests` directory, or a `tests.rs` / `testing.rs` module."""
    return "tests" in rel.parts[:-1] or rel.stem in ("tests", "testing")
