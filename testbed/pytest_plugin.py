"""Pytest fixtures shared by every suite that talks to a running testbed (`testbed/tests`,
`e2e/faults`, `e2e/deploy`); registered once by the repository's root conftest.py.

`env` is the running testbed's env.json as a dict; a test that asks for it fails, with the
command to run, when the testbed is not up. `kube` is the admin `Kube` client (one per
session: it reconnects after an apiserver restart).
"""

from __future__ import annotations

import pytest

from testbed.kube import Kube
from testbed.state import STATE, load_env, trust_only_the_testbed_ca

trust_only_the_testbed_ca()


@pytest.fixture(scope="session")
def env() -> dict:
    loaded = load_env()
    if loaded is None:
        pytest.fail(f"testbed is not up (no {STATE}/ready): run scripts/testbed up")
    return loaded


@pytest.fixture(scope="session")
def kube(env) -> Kube:
    k = Kube.from_kubeconfig(env["KUBECONFIG"])
    yield k
    k.close()
