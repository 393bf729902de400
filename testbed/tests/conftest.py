"""Fixtures for the testbed's self-tests against the running testbed (`scripts/testbed up`
first).

`env` (env.json as a dict) and `kube` (the admin `Kube` client) come from
testbed.pytest_plugin; `api` is the apiserver URL; `admin` a requests session as
system:masters; `namespace` a fresh namespace where pods can be created at once;
`as_identity` makes a session that authenticates with a fresh EKS token for `reaper` or
`norbac`.
Unit tests that need no testbed simply do not use these fixtures.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from testbed.kube import Kube
from testbed.throttle import admin_session
from testbed.tokens import token_for


@pytest.fixture(scope="session")
def api(env) -> str:
    return env["TESTBED_APISERVER"]


@pytest.fixture
def namespace(kube: Kube) -> str:
    name = f"t-{secrets.token_hex(4)}"
    kube.ensure_namespace(name)
    kube.wait_for_pod_admission(name)
    yield name
    kube.delete("v1", "namespaces", name, missing_ok=True)


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
