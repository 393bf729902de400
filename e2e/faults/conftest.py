"""Fixtures for the fault-matrix tests. The testbed must be up (`scripts/testbed up`);
$EKS_REAPER_TESTBED picks the state dir as everywhere else; `env` and `kube` come from
testbed.pytest_plugin."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from testbed.workload import delete_namespace

from . import faultlib


@pytest.fixture(scope="session")
def reaper_bin() -> Path:
    """The binary under test, built from this tree first (see faultlib.build_reaper)."""
    try:
        path = faultlib.build_reaper()
    except RuntimeError as e:
        pytest.fail(str(e))
    if not path.exists():
        pytest.fail(f"no eks-reaper binary at {path}")
    return path


@pytest.fixture
def namespace(kube, request, reaper_bin) -> str:
    """A fresh namespace named after the test; deleted afterwards (the namespace
    controller removes what is left in it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"faults-{slug}-{secrets.token_hex(2)}"
    kube.ensure_namespace(name)
    yield name
    delete_namespace(kube, name)
