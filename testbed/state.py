"""Where a running testbed keeps its state, and reading it from a test process."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: The state dir of the testbed tests talk to (`scripts/testbed up` writes it).
STATE = Path(os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed"))


def load_env() -> dict | None:
    """env.json of the running testbed, or None when it is not up."""
    path = STATE / "env.json"
    if not (STATE / "ready").exists() or not path.exists():
        return None
    return json.loads(path.read_text())


def trust_only_the_testbed_ca() -> None:
    """requests lets these override a Session's `verify` (the testbed CA); test processes
    only talk to loopback services, so drop them for this process."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
