"""Fixtures for tests against the running testbed (`scripts/testbed up` first).

`env` is env.json as a dict; `admin` a requests session as system:masters; `kube` the
admin `Kube` client; `as_identity` makes a session that authenticates with a fresh EKS
token for `reaper` or `norbac`.
Unit tests that need no testbed simply do not use these fixtures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `import testbed` from tests/

from testbed.kube import Kube  # noqa: E402
from testbed.throttle import admin_session  # noqa: E402
from testbed.state import STATE, load_env, trust_only_the_testbed_ca  # noqa: E402
from testbed.tokens import token_for  # noqa: E402

trust_only_the_testbed_ca()


@pytest.fixture(scope="session")
def env() -> dict:
    loaded = load_env()
    if loaded is None:
        pytest.fail(f"testbed is not up (no {STATE}/ready): run scripts/testbed up")
    return loaded


@pytest.fixture(scope="session")
def api(env) -> str:
    return env["TESTBED_APISERVER"]


@pytest.fixture(scope="module")
def kube(env) -> Kube:
    k = Kube.from_kubeconfig(env["KUBECONFIG"])
    yield k
    k.close()


@pytest.fixture
def admin(env) -> requests.Session:
    return admin_session(env)


@pytest.fixture
def as_identity(env):
    """as_identity("reaper") -> requests.Session with `Authorization: Bearer k8s-aws-v1...`."""

    def make(identity: str = "reaper", token: str | None = None) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override .verify
        s.verify = env["TESTBED_CA_FILE"]
        s.headers["Authorization"] = f"Bearer {token or token_for(env, identity)}"
        return s

    return make
