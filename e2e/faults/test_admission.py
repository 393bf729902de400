"""Deletions refused by admission, not by RBAC: a policy engine protecting some objects.

A ValidatingAdmissionPolicy, scoped to the test's namespace and the reaper's group, refuses
DELETE of Jobs and pods labelled `faults.eks-reaper/protected`. With `reason: Forbidden`
the apiserver answers 403, as RBAC does; without a reason it answers 422 `Invalid`. The
reaper must tell either from missing RBAC by the message, count it as `admissionDenied`
with the first message, go on with the other objects, and not fail the cluster: a
permanently protected object must not turn every run into a failed one.
"""

from __future__ import annotations

import pytest

from . import faultlib as fl
from .faultlib import (ADMISSION, PROTECTED_LABEL, assert_counts_match,
                       assert_nothing_wrong_deleted, guard_policy, wait_until_in_force)


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
