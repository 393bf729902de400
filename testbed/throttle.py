"""Throttle one Kubernetes user with real API Priority and Fairness objects.

    from testbed.throttle import throttle_user
    with throttle_user(env, "eks-reaper", shares=1) as t:   # env = env.json as a dict
        ...   # requests by user eks-reaper now run in priority level t.name
              # and get 429 + Retry-After when its seats are taken

It creates a PriorityLevelConfiguration (type Limited, `nominalConcurrencyShares=shares`,
lendable/borrowing 0, limitResponse Reject, or Queue when `queues` is given) and a
FlowSchema matching the user (all verbs, resources and non-resource URLs) with
`matchingPrecedence` 500, ahead of `global-default` (9900) and `catch-all` (10000); both
are deleted on exit. Seats of the level = ceil(server seats × shares / sum of shares), with
server seats = --max-requests-inflight + --max-mutating-requests-inflight (400 + 200 by
default; lower them at `up` with EKS_REAPER_TESTBED_MAX_REQUESTS_INFLIGHT /
_MAX_MUTATING_REQUESTS_INFLIGHT). `shares=1` gives 3 seats with the defaults; `shares=0`
gives none, which APF treats as "one request at a time" (it still admits a request when
nothing of that level is executing), so concurrent requests beyond the first get 429.
Sequential requests are never throttled: a 429 needs concurrency.

`t.matches(response)` tells whether a response was classified by this FlowSchema (the
apiserver sets `X-Kubernetes-PF-FlowSchema-UID` on every response).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import requests

APF = "/apis/flowcontrol.apiserver.k8s.io/v1"


def admin_session(env: dict) -> requests.Session:
    """A requests session authenticated as the testbed admin (system:masters)."""
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override .verify
    s.verify = env["TESTBED_CA_FILE"]
    s.cert = (env["TESTBED_ADMIN_CERT"], env["TESTBED_ADMIN_KEY"])
    return s


@dataclass
class Throttle:
    """Handle on the APF objects made by `throttle_user`."""

    env: dict
    name: str
    username: str
    flow_schema_uid: str = ""
    priority_level_uid: str = ""

    def matches(self, resp: requests.Response) -> bool:
        return resp.headers.get("X-Kubernetes-PF-FlowSchema-UID") == self.flow_schema_uid

    def delete(self) -> None:
        s, base = admin_session(self.env), self.env["TESTBED_APISERVER"] + APF
        for kind in ("flowschemas", "prioritylevelconfigurations"):
            r = s.delete(f"{base}/{kind}/{self.name}", timeout=10)
            if r.status_code not in (200, 202, 404):
                raise RuntimeError(f"delete {kind}/{self.name}: {r.status_code} {r.text}")

    def __enter__(self) -> "Throttle":
        return self

    def __exit__(self, *exc) -> None:
        self.delete()


def throttle_user(
    env: dict, username: str, *, shares: int = 1, queues: int | None = None,
    queue_length_limit: int = 5, hand_size: int = 1, name: str | None = None,
    wait: float = 30.0,
) -> Throttle:
    """Creates the PriorityLevelConfiguration + FlowSchema; use as a context manager.

    Waits (up to `wait` s) until the APF config controller has taken the FlowSchema in
    (its `Dangling` condition is False), so the throttle is in force on return.
    """
    name = name or f"testbed-throttle-{uuid.uuid4().hex[:8]}"
    s, base = admin_session(env), env["TESTBED_APISERVER"] + APF
    if queues:
        limit_response = {"type": "Queue", "queuing": {
            "queues": queues, "handSize": hand_size, "queueLengthLimit": queue_length_limit}}
    else:
        limit_response = {"type": "Reject"}
    plc = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "labels": {"eks-reaper.testbed/throttle": "true"}},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": shares, "lendablePercent": 0,
            "borrowingLimitPercent": 0, "limitResponse": limit_response}},
    }
    fs = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": name, "labels": {"eks-reaper.testbed/throttle": "true"}},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": 500,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "User", "user": {"name": username}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "namespaces": ["*"], "clusterScope": True}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            }],
        },
    }
    t = Throttle(env, name, username)
    r = s.post(f"{base}/prioritylevelconfigurations", json=plc, timeout=10)
    if r.status_code != 201:
        raise RuntimeError(f"create PriorityLevelConfiguration: {r.status_code} {r.text}")
    t.priority_level_uid = r.json()["metadata"]["uid"]
    r = s.post(f"{base}/flowschemas", json=fs, timeout=10)
    if r.status_code != 201:
        t.delete()
        raise RuntimeError(f"create FlowSchema: {r.status_code} {r.text}")
    t.flow_schema_uid = r.json()["metadata"]["uid"]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        got = s.get(f"{base}/flowschemas/{name}", timeout=10).json()
        conds = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        if conds.get("Dangling") == "False":
            return t
        time.sleep(0.2)
    t.delete()
    raise RuntimeError(f"FlowSchema {name} not picked up by APF within {wait}s")


def remove_all(env: dict) -> None:
    """Deletes every throttle left behind (label eks-reaper.testbed/throttle=true)."""
    s, base = admin_session(env), env["TESTBED_APISERVER"] + APF
    for kind in ("flowschemas", "prioritylevelconfigurations"):
        r = s.delete(f"{base}/{kind}", params={"labelSelector": "eks-reaper.testbed/throttle=true"},
                     timeout=10)
        r.raise_for_status()
