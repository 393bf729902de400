"""The eks-reaper ValidatingAdmissionPolicy on the testbed: is it in force right now?

A policy and its binding reach the apiserver's policy cache a moment after they are
stored (or removed), so "kubectl apply returned" does not mean "deletions are checked".
The only honest check is a deletion: a server dry-run DELETE (`dryRun=All`: it goes
through admission but changes nothing) of a Pending pod, sent by the reaper identity. The
policy refuses it with its own message; without the policy RBAC lets it through (200).

Used by the supervisor at `up` and by bench/run.py when it switches the policy off and on.
"""

from __future__ import annotations

import time

import requests

from .fargate.kubelet import KUBELET

POLICY = "eks-reaper-guard"
POLICY_FILE = "infra/rbac/eks-reaper-admission-policy.yaml"
# What the apiserver puts before a ValidatingAdmissionPolicy's message (itself after
# `pods "NAME" is forbidden: ` when the validation's reason is Forbidden), and how ours starts.
DENIED_PREFIX = f"ValidatingAdmissionPolicy '{POLICY}' with binding '{POLICY}' denied request: "
GUARD_TEXT = "eks-reaper guard: refused to delete "
PROBE_POD = "eks-reaper-policy-probe"
# Left alone by the Fargate stand-in's kubelet: unbound, Pending for good.
_KUBELET_OFF = {KUBELET: "none"}


def probe_pod_body(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": PROBE_POD, "namespace": namespace, "annotations": _KUBELET_OFF},
            "spec": {"containers": [{"name": "c", "image": "probe"}]}}


def create_probe_pod(admin: requests.Session, apiserver: str, namespace: str) -> str:
    """Creates the Pending probe pod (the namespace's default ServiceAccount must exist);
    returns its URL."""
    url = f"{apiserver}/api/v1/namespaces/{namespace}/pods"
    r = admin.post(url, json=probe_pod_body(namespace), timeout=10)
    if r.status_code not in (201, 409):
        raise RuntimeError(f"policy probe pod: {r.status_code} {r.text}")
    return f"{url}/{PROBE_POD}"


def delete_probe_pod(admin: requests.Session, pod_url: str) -> None:
    admin.delete(pod_url, json={"gracePeriodSeconds": 0}, timeout=10)


def denied_by_policy(reaper: requests.Session, pod_url: str) -> tuple[bool, int, str]:
    """(whether the policy refused a dry-run delete of the probe pod, HTTP status,
    the answer's message)."""
    r = reaper.delete(pod_url, params={"dryRun": "All"}, timeout=10)
    msg = r.json().get("message", "") if r.status_code >= 400 else ""
    return (r.status_code == 403 and DENIED_PREFIX + GUARD_TEXT in msg), r.status_code, msg


def wait_enforced(reaper: requests.Session, pod_url: str, enforced: bool,
                  timeout: float = 60.0) -> tuple[float, list[int]]:
    """Polls until the policy is (`enforced`) or is no longer (not `enforced`) in force.
    Returns (seconds waited, statuses seen). Without the policy the probe must get 200:
    any other answer (RBAC, a broken policy) is not "off" either."""
    t0 = time.monotonic()
    seen: list[int] = []
    last = ""
    while True:
        try:
            denied, status, last = denied_by_policy(reaper, pod_url)
            seen.append(status)
            if (denied if enforced else status == 200):
                return time.monotonic() - t0, seen
        except (requests.RequestException, ValueError):  # connection trouble, non-JSON body
            seen.append(-1)
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"admission policy not {'in force' if enforced else 'removed'} "
                               f"after {timeout}s; probe statuses {seen[-10:]}, last message {last!r}")
        time.sleep(0.2)
