"""The reaper's API Priority and Fairness level on the testbed
(`infra/rbac/eks-reaper-flowcontrol.yaml`, applied at `up`): which FlowSchema and priority
level the apiserver put a request in, read from the response headers the APF filter sets
(`X-Kubernetes-PF-FlowSchema-UID`, `X-Kubernetes-PF-PriorityLevel-UID`), and a wait until
the apiserver classifies the reaper's requests into its own level (the APF configuration
controller picks a new FlowSchema up a moment after it is stored)."""

from __future__ import annotations

import time

import requests

FLOWCONTROL_FILE = "infra/rbac/eks-reaper-flowcontrol.yaml"
NAME = "eks-reaper"
_API = "/apis/flowcontrol.apiserver.k8s.io/v1"


def uids(admin: requests.Session, apiserver: str) -> tuple[str, str]:
    """(FlowSchema UID, PriorityLevelConfiguration UID) of the reaper's level."""
    def uid(kind: str) -> str:
        r = admin.get(f"{apiserver}{_API}/{kind}/{NAME}", timeout=10)
        r.raise_for_status()
        return r.json()["metadata"]["uid"]
    return uid("flowschemas"), uid("prioritylevelconfigurations")


def classified(session: requests.Session, apiserver: str) -> tuple[str, str]:
    """(FlowSchema UID, priority level UID) the apiserver used for one list request made
    with `session`."""
    r = session.get(f"{apiserver}/apis/batch/v1/jobs", params={"limit": 1}, timeout=10)
    return (r.headers.get("X-Kubernetes-PF-FlowSchema-UID", ""),
            r.headers.get("X-Kubernetes-PF-PriorityLevel-UID", ""))


def wait_classified(admin: requests.Session, reaper: requests.Session, apiserver: str,
                    timeout: float = 60.0) -> float:
    """Waits until the reaper's requests land in its own FlowSchema and level; returns the
    seconds waited."""
    want = uids(admin, apiserver)
    t0 = time.monotonic()
    seen: tuple[str, str] = ("", "")
    while time.monotonic() - t0 < timeout:
        seen = classified(reaper, apiserver)
        if seen == want:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError(f"reaper requests not in the {NAME} priority level after {timeout:.0f}s "
                       f"(want {want}, classified as {seen})")
