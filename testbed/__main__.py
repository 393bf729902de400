"""`python -m testbed run --state DIR --bin-dir DIR --root REPO` (see supervisor.py)."""

import sys

from testbed.supervisor import run

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        sys.exit("usage: python -m testbed run --state DIR --bin-dir DIR --root REPO")
    sys.exit(run(sys.argv[2:]))
