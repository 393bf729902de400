"""The eks-reaper ValidatingAdmissionPolicy (infra/rbac/eks-reaper-admission-policy.yaml),
enforced by the real kube-apiserver of the running testbed (`scripts/testbed up` applies it
and waits until it is in force).

Deletions are sent as the reaper identity (EKS token -> group `eks-reaper`), which RBAC
allows to delete any Job or Pod: a refusal here can only come from admission. Each refusal
is checked for the status code (403, the policy's `reason: Forbidden`), for the apiserver's
"ValidatingAdmissionPolicy 'eks-reaper-guard'" prefix and the policy's own text, and for
the object still being there. Every test works in a fresh namespace of its own (the
protected-namespace tests create uniquely named objects there and remove them as admin).
"""

from __future__ import annotations

import secrets
import time

import pytest

from testbed.admission import DENIED_PREFIX, GUARD_TEXT, POLICY
from testbed.fargate.kubelet import KUBELET, RUN_SECONDS
from testbed.fargate.nodes import EC2_NODE
from testbed.kube import Kube, now_rfc3339, resource_path
from testbed.workload import (BULK_MANAGER, finished_job_status, job_manifest, pod_manifest,
                              terminated_pod_status)

PROTECTED = ["kube-system", "kube-public", "kube-node-lease"]


@pytest.fixture
def reaper(as_identity):
    return as_identity("reaper")


@pytest.fixture
def protected_cleanup(kube):
    """(api_version, plural, name, namespace) tuples to delete as admin afterwards."""
    created: list[tuple[str, str, str, str]] = []
    yield created
    for api_version, plural, name, ns in created:
        kube.delete(api_version, plural, name, ns, propagation_policy="Background",
                    grace_period_seconds=0, missing_ok=True)


# ---- fixtures: objects in a known state --------------------------------------------------

def finished_pod(kube: Kube, namespace: str, succeeded: bool = True) -> dict:
    """A bare pod on the EC2-like node whose status (Succeeded/Failed) is written here; the
    Fargate stand-in's kubelet is told to leave it alone."""
    name = f"done-{secrets.token_hex(3)}"
    pod = kube.create("v1", "pods", pod_manifest(name, namespace, node=EC2_NODE,
                                                 annotations={KUBELET: "none"}),
                      namespace=namespace)
    status = terminated_pod_status(pod, succeeded, now_rfc3339(-120), now_rfc3339(-60))
    pod = kube.patch_status("v1", "pods", name, {"status": status}, namespace,
                            patch_type="application/strategic-merge-patch+json")
    assert pod["status"]["phase"] == ("Succeeded" if succeeded else "Failed")
    return pod


def pending_pod(kube: Kube, namespace: str) -> dict:
    """Unbound and left alone by the stand-in: Pending for good."""
    pod = kube.create("v1", "pods", pod_manifest(f"pending-{secrets.token_hex(3)}", namespace,
                                                 annotations={KUBELET: "none"}),
                      namespace=namespace)
    assert pod["status"]["phase"] == "Pending"
    return pod


def running_pod(kube: Kube, namespace: str) -> dict:
    """Run by the stand-in's kubelet until deleted; returned once it is Running."""
    name = f"running-{secrets.token_hex(3)}"
    kube.create("v1", "pods", pod_manifest(name, namespace, command=["sleep", "infinity"],
                                           annotations={RUN_SECONDS: "-1"}), namespace=namespace)
    deadline = time.monotonic() + 60
    while True:
        pod = kube.get("v1", "pods", name, namespace)
        if pod.get("status", {}).get("phase") == "Running":
            return pod
        assert time.monotonic() < deadline, f"pod {name} not Running after 60 s: {pod.get('status')}"
        time.sleep(0.2)


def bulk_job(kube: Kube, namespace: str) -> dict:
    """A Job the built-in job controller keeps off (spec.managedBy): no pods, no status."""
    body = job_manifest(f"job-{secrets.token_hex(3)}", namespace, run_seconds=0,
                        managed_by=BULK_MANAGER)
    return kube.create("batch/v1", "jobs", body, namespace=namespace)


def finished_job(kube: Kube, namespace: str, succeeded: bool = True) -> dict:
    job = bulk_job(kube, namespace)
    status = finished_job_status(succeeded, now_rfc3339(-120), now_rfc3339(-60))
    job = kube.patch_status("batch/v1", "jobs", job["metadata"]["name"], {"status": status},
                            namespace)
    want = "Complete" if succeeded else "Failed"
    assert any(c["type"] == want and c["status"] == "True" for c in job["status"]["conditions"])
    return job


# ---- sending the delete ------------------------------------------------------------------

def delete(session, api: str, obj: dict, plural: str, dry_run: bool = False):
    md = obj["metadata"]
    api_version = obj["apiVersion"]
    url = api + resource_path(api_version, plural, md["namespace"], md["name"])
    opts = {"apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"uid": md["uid"]}}
    if plural == "jobs":
        opts["propagationPolicy"] = "Background"
    if dry_run:
        opts["dryRun"] = ["All"]
    return session.delete(url, json=opts, timeout=15)


def assert_denied_by_policy(resp, kube: Kube, obj: dict, plural: str, why: str) -> None:
    md = obj["metadata"]
    body = resp.json()
    assert resp.status_code == 403, (resp.status_code, body)
    assert body.get("reason") == "Forbidden", body
    msg = body.get("message", "")
    assert "cannot delete resource" not in msg, msg  # that is RBAC's wording
    # The apiserver's "forbidden" wrapper names the group-qualified resource (jobs.batch).
    qualified = "jobs.batch" if plural == "jobs" else plural
    expected = (f'{qualified} "{md["name"]}" is forbidden: {DENIED_PREFIX}{GUARD_TEXT}{plural} '
                f"{md['namespace']}/{md['name']}: {why}")
    assert msg.startswith(expected), (msg, expected)
    still = kube.get_or_none(obj["apiVersion"], plural, md["name"], md["namespace"])
    assert still is not None and still["metadata"]["uid"] == md["uid"]
    assert not still["metadata"].get("deletionTimestamp"), still["metadata"]


def assert_deleted(resp, kube: Kube, obj: dict, plural: str) -> None:
    md = obj["metadata"]
    assert resp.status_code == 200, (resp.status_code, resp.text)
    deadline = time.monotonic() + 30
    while (cur := kube.get_or_none(obj["apiVersion"], plural, md["name"], md["namespace"])) \
            is not None and cur["metadata"]["uid"] == md["uid"] \
            and not cur["metadata"].get("deletionTimestamp"):
        assert time.monotonic() < deadline, f"{plural} {md['name']} not being deleted after 30 s"
        time.sleep(0.2)


# ---- the policy is there, as shipped -----------------------------------------------------

def test_policy_and_binding_are_applied_as_shipped(kube):
    policy = kube.get("admissionregistration.k8s.io/v1", "validatingadmissionpolicies", POLICY)
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert [c["name"] for c in policy["spec"]["matchConditions"]] == ["sent-by-eks-reaper"]
    binding = kube.get("admissionregistration.k8s.io/v1",
                       "validatingadmissionpolicybindings", POLICY)
    assert binding["spec"]["policyName"] == POLICY
    assert binding["spec"]["validationActions"] == ["Deny"]


# ---- refused: the reaper identity, objects that are not finished --------------------------

def test_reaper_cannot_delete_a_running_pod(kube, reaper, api, namespace):
    pod = running_pod(kube, namespace)
    resp = delete(reaper, api, pod, "pods")
    assert_denied_by_policy(resp, kube, pod, "pods", "the pod has not finished (phase Running,")


def test_reaper_cannot_delete_a_pending_pod(kube, reaper, api, namespace):
    pod = pending_pod(kube, namespace)
    resp = delete(reaper, api, pod, "pods")
    assert_denied_by_policy(resp, kube, pod, "pods", "the pod has not finished (phase Pending,")


def test_server_dry_run_delete_is_refused_too(kube, reaper, api, namespace):
    pod = pending_pod(kube, namespace)
    resp = delete(reaper, api, pod, "pods", dry_run=True)
    assert_denied_by_policy(resp, kube, pod, "pods", "the pod has not finished (phase Pending,")
    done = finished_pod(kube, namespace)
    resp = delete(reaper, api, done, "pods", dry_run=True)
    assert resp.status_code == 200, resp.text
    assert kube.get_or_none("v1", "pods", done["metadata"]["name"], namespace) is not None


def test_reaper_cannot_delete_an_unfinished_job(kube, reaper, api, namespace):
    job = bulk_job(kube, namespace)
    resp = delete(reaper, api, job, "jobs")
    assert_denied_by_policy(resp, kube, job, "jobs",
                            "the Job has not finished (no Complete=True or Failed=True condition)")


def test_reaper_cannot_delete_a_job_with_only_the_interim_condition(kube, reaper, api, namespace):
    """FailureTarget=True is what the job controller writes before Failed=True, while the
    Job's pods are still terminating: not finished."""
    job = bulk_job(kube, namespace)
    t = now_rfc3339(-30)
    job = kube.patch_status("batch/v1", "jobs", job["metadata"]["name"], {"status": {
        "startTime": now_rfc3339(-60), "active": 0, "failed": 1,
        "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                        "message": "interim", "lastProbeTime": t, "lastTransitionTime": t}]}},
        namespace)
    assert [c["type"] for c in job["status"]["conditions"]] == ["FailureTarget"]
    resp = delete(reaper, api, job, "jobs")
    assert_denied_by_policy(resp, kube, job, "jobs",
                            "the Job has not finished (no Complete=True or Failed=True condition)")


# ---- refused: protected namespaces, even for finished objects -----------------------------

def test_reaper_cannot_delete_a_finished_pod_in_kube_system(kube, reaper, api, namespace,
                                                             protected_cleanup):
    kube.wait_for_pod_admission("kube-system")
    pod = finished_pod(kube, "kube-system")
    protected_cleanup.append(("v1", "pods", pod["metadata"]["name"], "kube-system"))
    resp = delete(reaper, api, pod, "pods")
    assert_denied_by_policy(resp, kube, pod, "pods", "namespace kube-system is protected")
    # The same kind of pod in an ordinary namespace goes: only the namespace refused it.
    ok = finished_pod(kube, namespace)
    assert_deleted(delete(reaper, api, ok, "pods"), kube, ok, "pods")


@pytest.mark.parametrize("protected", PROTECTED)
def test_reaper_cannot_delete_a_finished_job_in_a_protected_namespace(
        kube, reaper, api, namespace, protected_cleanup, protected):
    job = finished_job(kube, protected)
    protected_cleanup.append(("batch/v1", "jobs", job["metadata"]["name"], protected))
    resp = delete(reaper, api, job, "jobs")
    assert_denied_by_policy(resp, kube, job, "jobs", f"namespace {protected} is protected")
    ok = finished_job(kube, namespace)
    assert_deleted(delete(reaper, api, ok, "jobs"), kube, ok, "jobs")


# ---- allowed: finished objects in ordinary namespaces; other identities ------------------

@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeded", "failed"])
def test_reaper_deletes_a_finished_pod(kube, reaper, api, namespace, succeeded):
    pod = finished_pod(kube, namespace, succeeded)
    assert_deleted(delete(reaper, api, pod, "pods"), kube, pod, "pods")


@pytest.mark.parametrize("succeeded", [True, False], ids=["complete", "failed"])
def test_reaper_deletes_a_finished_job(kube, reaper, api, namespace, succeeded):
    job = finished_job(kube, namespace, succeeded)
    assert_deleted(delete(reaper, api, job, "jobs"), kube, job, "jobs")


def test_admin_deleting_a_running_pod_is_not_affected(kube, admin, api, namespace):
    pod = running_pod(kube, namespace)
    assert_deleted(delete(admin, api, pod, "pods"), kube, pod, "pods")


def test_admin_deleting_an_unfinished_job_in_kube_system_is_not_affected(
        kube, admin, api, namespace, protected_cleanup):
    job = bulk_job(kube, "kube-system")
    protected_cleanup.append(("batch/v1", "jobs", job["metadata"]["name"], "kube-system"))
    assert_deleted(delete(admin, api, job, "jobs"), kube, job, "jobs")


def test_rbac_denial_reads_differently(as_identity, kube, api, namespace):
    """The identity without RBAC gets RBAC's 403, which the policy-denial checks above
    would reject: they cannot be passed by an RBAC refusal."""
    pod = pending_pod(kube, namespace)
    resp = delete(as_identity("norbac"), api, pod, "pods")
    assert resp.status_code == 403
    msg = resp.json()["message"]
    assert "cannot delete resource" in msg and POLICY not in msg, msg
