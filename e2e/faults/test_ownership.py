"""Whose objects these are, on the real apiserver: a Job kept with `eks-reaper/keep` keeps
its pods (the Jobs pass tells the pod passes), a controller the policy does not understand
keeps its pods until it is handed over with `--prune-owners`.

The pods are Evicted (due under the bare-pod retention whoever owns them) or finished with
a non-Job controller, so only the ownership rules decide.
"""

from __future__ import annotations

from testbed.fargate.kubelet import KUBELET
from testbed.fargate.nodes import EC2_NODE
from testbed.kube import Kube, now_rfc3339
from testbed.workload import pod_manifest

from . import faultlib as fl
from .faultlib import KEEP_ANNOTATION, TWO_DAYS

JOB_ID_LABEL = "faults.eks-reaper/owned"


def owned_pod(kube: Kube, ns: str, name: str, owner: dict, *, evicted: bool) -> str:
    """A pod controlled by `owner` (an object's apiVersion/kind/metadata) that finished two
    days ago, Evicted or Failed; returns its uid."""
    pod = kube.create("v1", "pods", pod_manifest(
        name, ns, node=EC2_NODE, owner=owner, labels={JOB_ID_LABEL: "true"},
        annotations={KUBELET: "none"}), namespace=ns)
    at = now_rfc3339(-TWO_DAYS)
    status = {"phase": "Failed", "startTime": at,
              "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": at}]}
    if evicted:
        status |= {"reason": "Evicted", "message": "The node was low on resource: memory."}
    kube.patch_status("v1", "pods", name, {"status": status}, ns)
    return pod["metadata"]["uid"]


def present(kube: Kube, ns: str) -> set[str]:
    return {p["metadata"]["name"] for p in kube.list("v1", "pods", ns,
                                                     label_selector=JOB_ID_LABEL)
            if not p["metadata"].get("deletionTimestamp")}


def test_a_kept_job_keeps_its_pods_and_foreign_controllers_keep_theirs(env, kube, namespace):
    # GIVEN two failed Jobs inside their 24 h retention, one of them opted out
    kube.wait_for_pod_admission(namespace)
    kept = fl._job(kube, namespace, "kept", finished_ago=600.0,
                   annotations={KEEP_ANNOTATION: "yes"}, succeeded=False)
    plain = fl._job(kube, namespace, "plain", finished_ago=600.0, succeeded=False)
    for j in (kept, plain):
        j.setdefault("apiVersion", "batch/v1")
        j.setdefault("kind", "Job")
    # AND an Evicted pod of each, past the bare-pod retention
    owned_pod(kube, namespace, "evicted-of-kept", kept, evicted=True)
    owned_pod(kube, namespace, "evicted-of-plain", plain, evicted=True)
    # AND a finished pod controlled by a ConfigMap: a controller the policy does not know
    cm = kube.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "controller"}}, namespace)
    cm.setdefault("apiVersion", "v1")
    cm.setdefault("kind", "ConfigMap")
    owned_pod(kube, namespace, "of-configmap", cm, evicted=False)

    # WHEN the reaper runs
    first = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace))

    # THEN only the Evicted pod of the plain Job goes
    assert first.rc == 0, first.describe()
    fl.safe(present(kube, namespace) == {"evicted-of-kept", "of-configmap"},
            f"left {present(kube, namespace)}: {first.cluster}")
    pods = first.cluster["pods"]
    assert pods["deletedByReason"] == {"evictedPastTtl": 1}, pods
    assert pods["keptByReason"].get("jobOptedOut") == 1, pods
    assert pods["keptByReason"].get("ownedByController") == 1, pods
    assert pods["keptByOwner"] == {"core/ConfigMap": 1}, pods
    jobs = first.cluster["jobs"]
    assert jobs["keptByReason"] == {"optedOut": 1, "withinRetention": 1}, jobs

    # WHEN the ConfigMap's pods are handed over
    second = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace,
                                         "--prune-owners", "core/ConfigMap"))

    # THEN its pod goes under the bare-pod retention; the kept Job's pod still stays
    assert second.rc == 0, second.describe()
    fl.safe(present(kube, namespace) == {"evicted-of-kept"},
            f"left {present(kube, namespace)}: {second.cluster}")
    assert second.cluster["pods"]["deletedByReason"] == {"barePodPastTtl": 1}, second.cluster
