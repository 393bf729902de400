"""Deletions refused by admission, not by RBAC: a policy engine protecting some objects.

A ValidatingAdmissionPolicy, scoped to the test's namespace and the reaper's group, refuses
DELETE of Jobs and pods labelled `faults.eks-reaper/protected`. With `reason: Forbidden`
the apiserver answers 403, as RBAC does; without a reason it answers 422 `Invalid`. The
reaper must tell either from missing RBAC by the message, count it as `admissionDenied`
with the first message, go on with the other objects, and not fail the cluster: a
permanently protected object must not turn every run into a failed one.
"""

from __future__ import annotations

import secrets

import pytest

from testbed.kube import ApiError, Kube
from testbed.tokens import token_for

from . import faultlib as fl
from .faultlib import assert_counts_match, assert_nothing_wrong_deleted

ADMISSION = "admissionregistration.k8s.io/v1"
PROTECTED_LABEL = "faults.eks-reaper/protected"


def guard_policy(kube: Kube, env: dict, namespace: str, reason: str | None) -> str:
    """Creates the policy and its binding; returns their name."""
    name = f"faults-guard-{secrets.token_hex(3)}"
    validation = {
        "expression": f"!has(oldObject.metadata.labels) || "
                      f"!('{PROTECTED_LABEL}' in oldObject.metadata.labels)",
        "message": "protected by the faults guard",
    }
    if reason:
        validation["reason"] = reason
    kube.create(ADMISSION, "validatingadmissionpolicies", {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["DELETE"],
                 "resources": ["jobs"]},
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"],
                 "resources": ["pods"]},
            ]},
            "matchConditions": [{
                "name": "reaper-only",
                "expression": f"'{env['TESTBED_REAPER_GROUP']}' in request.userInfo.groups",
            }],
            "validations": [validation],
        }})
    kube.create(ADMISSION, "validatingadmissionpolicybindings", {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": namespace}}},
        }})
    return name


def wait_until_in_force(env: dict, kube: Kube, namespace: str, policy: str,
                        status: int) -> None:
    """The apiserver loads new policies asynchronously: probe with a server-side dry-run
    DELETE, as the reaper, of a protected pod that just finished (so no other policy
    refuses it, and the reaper keeps it: it is inside its retention) until `policy`
    refuses it."""
    probe = "guard-probe"
    fl._bare_pod(kube, namespace, probe, phase="Succeeded", labels={PROTECTED_LABEL: "true"})
    reaper = Kube(env["TESTBED_APISERVER"], ca=env["TESTBED_CA_FILE"], token=token_for(env))
    path = f"/api/v1/namespaces/{namespace}/pods/{probe}"
    seen: list[int] = []

    def refused() -> bool:
        try:
            # With a body, DELETE reads its options (dryRun included) from the body alone.
            reaper.request("DELETE", path, body={"apiVersion": "v1", "kind": "DeleteOptions",
                                                 "dryRun": ["All"]})
            seen.append(200)
            return False
        except ApiError as e:
            seen.append(e.status)
            return e.status == status and f"'{policy}'" in e.message

    try:
        fl.wait_until(refused, 30, 0.25, "the admission policy in force")
    except TimeoutError as e:
        raise fl.ScenarioNotReached(f"policy never refused the probe: {seen[:3]}...{seen[-3:]}") from e
    finally:
        reaper.close()


@pytest.mark.parametrize("reason,status", [("Forbidden", 403), (None, 422)])
def test_admission_denial_is_counted_apart_from_rbac_and_does_not_fail_the_cluster(
        env, kube, namespace, reason, status):
    # GIVEN due Jobs and bare pods, three of them protected by an admission policy that
    # answers `status` to the reaper
    s = fl.seed(kube, namespace, due_jobs=8, due_pods=3)
    protected_jobs = sorted(s.due_jobs)[:2]
    protected_pods = sorted(s.due_pods)[:1]
    label = {"metadata": {"labels": {PROTECTED_LABEL: "true"}}}
    for name in protected_jobs:
        kube.patch("batch/v1", "jobs", name, label, namespace)
    for name in protected_pods:
        kube.patch("v1", "pods", name, label, namespace)
    policy = guard_policy(kube, env, namespace, reason)
    try:
        wait_until_in_force(env, kube, namespace, policy, status)

        # WHEN the reaper runs
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace))
    finally:
        fl.delete_quietly(kube, ADMISSION, "validatingadmissionpolicybindings", policy)
        fl.delete_quietly(kube, ADMISSION, "validatingadmissionpolicies", policy)

    # THEN the protected objects stay, everything else due is gone, nothing wrong deleted
    o = assert_nothing_wrong_deleted(kube, s)
    left_jobs = sorted(n for n, uid in s.due_jobs.items() if uid in o.jobs)
    left_pods = sorted(n for n, uid in s.due_pods.items() if uid in o.pods)
    fl.safe(left_jobs == protected_jobs and left_pods == protected_pods,
            f"left {left_jobs} {left_pods}, protected {protected_jobs} {protected_pods}")
    c = run.cluster
    assert_counts_match(c, o)
    # AND the refusals are admission denials, with the policy's message, not RBAC's
    assert c["errors"] == {"admissionDenied": 3}, c["errors"]
    sample = c["errorSamples"]["admissionDenied"]
    assert policy in sample and "protected by the faults guard" in sample, sample
    # AND the run is not failed for it: no heartbeat alarm for a protected object
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    refused = fl.find_logs(run.logs, "delete refused", "WARN")
    assert len(refused) == 3, run.tail()
    assert {e["fields"].get("status") for e in refused} == {status}, refused
    assert {e["fields"].get("refusal") for e in refused} == {"admissionDenied"}, refused
