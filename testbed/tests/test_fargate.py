"""The Fargate stand-in, checked against the running testbed (`scripts/testbed up`).

Real job controller, garbage collector and PodGC; the stand-in plays webhook, scheduler and
kubelet; IPs come from moto's subnets. Tests in the Fargate namespace clean up by their
run label (the namespace is shared); the others use a fresh namespace each.
"""

from __future__ import annotations

import secrets
import time

import pytest

from testbed.aws import client
from testbed.fargate.kubelet import RUN_SECONDS
from testbed.fargate.nodes import COMPUTE_TYPE_LABEL, EC2_NODE
from testbed.fargate.profiles import FARGATE_SCHEDULER, PROFILE_LABEL
from testbed.fargate.standin import FargateStandIn
from testbed.workload import RUN_LABEL, job_finished, job_manifest, pod_manifest


@pytest.fixture(scope="module")
def ec2(env):
    return client("ec2", env["TESTBED_MOTO_URL"], region=env["AWS_REGION"])


@pytest.fixture
def fargate_run(kube, env):
    """(namespace, run label value) in the shared Fargate namespace; cleaned up by label."""
    ns, run = env["TESTBED_FARGATE_NAMESPACE"], secrets.token_hex(4)
    yield ns, run
    sel = f"{RUN_LABEL}={run}"
    kube.delete_collection("batch/v1", "jobs", ns, label_selector=sel,
                           propagation_policy="Background")
    kube.delete_collection("v1", "pods", ns, label_selector=sel)
    wait_for(lambda: not list(kube.list("v1", "pods", ns, label_selector=sel)), 60,
             "cleanup: pods of the run gone")


def wait_for(cond, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(interval)


def free_ips(ec2, subnets: list[str]) -> int:
    return sum(s["AvailableIpAddressCount"]
               for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"])


def settled_free_ips(kube, ec2, ns: str, subnets: list[str]) -> int:
    """Free IPs once every Fargate pod already gone (e.g. an earlier test's, still being
    cleaned up) has given its IP back: free == capacity - pods bound to fargate nodes."""
    subs = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    capacity = sum(2 ** (32 - int(s["CidrBlock"].split("/")[1])) - 5 for s in subs)

    def settled():
        holding = sum(1 for p in kube.list("v1", "pods", ns)
                      if (p["spec"].get("nodeName") or "").startswith("fargate-"))
        free = free_ips(ec2, subnets)
        return free if free == capacity - holding else None

    return wait_for(settled, 60, "IPs of deleted Fargate pods back in moto")


def pods_of(kube, ns, sel, phase=None):
    pods = list(kube.list("v1", "pods", ns, label_selector=sel))
    return [p for p in pods if phase is None or p["status"].get("phase") == phase]


def test_fargate_job_runs_to_complete_via_the_job_controller(kube, env, ec2, fargate_run):
    ns, run = fargate_run
    name = f"ok-{run}"
    kube.create("batch/v1", "jobs", job_manifest(name, ns, run_seconds=1, labels={RUN_LABEL: run}),
                namespace=ns)

    job = wait_for(lambda: (j := kube.get("batch/v1", "jobs", name, ns)) and job_finished(j) and j,
                   60, "job finished")
    assert job_finished(job) == "Complete"
    assert job["status"]["succeeded"] == 1
    [pod] = pods_of(kube, ns, f"job-name={name}")
    # The admission webhook made it a Fargate pod; the stand-in gave it its own node and IP.
    assert pod["spec"]["schedulerName"] == FARGATE_SCHEDULER
    assert pod["metadata"]["labels"][PROFILE_LABEL] == env["TESTBED_FARGATE_PROFILE"]
    assert pod["status"]["phase"] == "Succeeded"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    node = kube.get("v1", "nodes", pod["spec"]["nodeName"])
    assert node["metadata"]["name"].startswith("fargate-ip-")
    assert node["metadata"]["labels"][COMPUTE_TYPE_LABEL] == "fargate"
    [eni] = ec2.describe_network_interfaces(Filters=[
        {"Name": "addresses.private-ip-address", "Values": [pod["status"]["podIP"]]}
    ])["NetworkInterfaces"]
    assert eni["SubnetId"] in env["TESTBED_FARGATE_SUBNETS"].split(",")
    assert pod["metadata"]["uid"] in eni["Description"]


def test_failed_fargate_pod_fails_its_job(kube, fargate_run):
    ns, run = fargate_run
    name = f"bad-{run}"
    kube.create("batch/v1", "jobs", job_manifest(name, ns, run_seconds=1, exit_code=3,
                                                 labels={RUN_LABEL: run}), namespace=ns)
    job = wait_for(lambda: (j := kube.get("batch/v1", "jobs", name, ns)) and job_finished(j) and j,
                   60, "job finished")
    assert job_finished(job) == "Failed"
    [pod] = pods_of(kube, ns, f"job-name={name}")
    assert pod["status"]["phase"] == "Failed"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")


def test_ip_count_drops_per_running_pod_and_comes_back_after_background_delete(
        kube, env, ec2, fargate_run):
    ns, run = fargate_run
    subnets = env["TESTBED_FARGATE_SUBNETS"].split(",")
    before = settled_free_ips(kube, ec2, ns, subnets)
    names = [f"run-{run}-{i}" for i in range(3)]
    for n in names:
        kube.create("batch/v1", "jobs", job_manifest(n, ns, run_seconds=-1,
                                                     labels={RUN_LABEL: run}), namespace=ns)
    sel = f"{RUN_LABEL}={run}"
    running = wait_for(lambda: len(p := pods_of(kube, ns, sel, "Running")) == 3 and p, 60,
                       "3 pods running")
    nodes = {p["spec"]["nodeName"] for p in running}
    assert len(nodes) == 3 and all(n.startswith("fargate-ip-") for n in nodes)
    assert free_ips(ec2, subnets) == before - 3

    # WHEN the Jobs are deleted with propagationPolicy=Background
    for n in names:
        job = kube.get("batch/v1", "jobs", n, ns)
        kube.delete("batch/v1", "jobs", n, ns, propagation_policy="Background",
                    uid=job["metadata"]["uid"])

    # THEN the garbage collector deletes the pods, the stand-in (as kubelet) confirms, and
    # each pod's node and ENI go away.
    wait_for(lambda: not pods_of(kube, ns, sel), 60, "pods deleted by the garbage collector")
    wait_for(lambda: all(kube.get_or_none("v1", "nodes", n) is None for n in nodes), 30,
             "fargate nodes deleted")
    wait_for(lambda: free_ips(ec2, subnets) == before, 30, "IPs back in the subnets")


def test_job_deleted_without_policy_orphans_its_fargate_pod_and_its_ip(kube, env, ec2,
                                                                         fargate_run):
    ns, run = fargate_run
    subnets = env["TESTBED_FARGATE_SUBNETS"].split(",")
    before = free_ips(ec2, subnets)
    name = f"orphan-{run}"
    job = kube.create("batch/v1", "jobs", job_manifest(name, ns, run_seconds=1,
                                                       labels={RUN_LABEL: run}), namespace=ns)
    wait_for(lambda: job_finished(kube.get("batch/v1", "jobs", name, ns)), 60, "job finished")

    # WHEN the Job is deleted with no propagationPolicy (the batch/v1 default: orphan)
    kube.delete("batch/v1", "jobs", name, ns, uid=job["metadata"]["uid"])
    wait_for(lambda: kube.get_or_none("batch/v1", "jobs", name, ns) is None, 30, "job gone")

    # THEN the pod stays, no longer owned, and keeps its node and IP.
    def orphaned():
        pods = pods_of(kube, ns, f"job-name={name}")
        return pods if pods and not pods[0]["metadata"].get("ownerReferences") else None
    [pod] = wait_for(orphaned, 30, "ownerReference removed by the garbage collector")
    time.sleep(2)
    assert pods_of(kube, ns, f"job-name={name}")
    assert kube.get_or_none("v1", "nodes", pod["spec"]["nodeName"]) is not None
    assert free_ips(ec2, subnets) == before - 1
    # Deleting the finished pod itself frees the node and the IP.
    kube.delete("v1", "pods", pod["metadata"]["name"], ns, uid=pod["metadata"]["uid"])
    wait_for(lambda: free_ips(ec2, subnets) == before, 30, "IP back after pod delete")
    assert kube.get_or_none("v1", "nodes", pod["spec"]["nodeName"]) is None


def test_pods_outside_the_profile_run_on_the_ec2_node_without_an_eni(kube, env, ec2, namespace):
    subnets = env["TESTBED_FARGATE_SUBNETS"].split(",")
    before = free_ips(ec2, subnets)
    kube.create("batch/v1", "jobs", job_manifest("plain", namespace, run_seconds=1),
                namespace=namespace)
    job = wait_for(lambda: job_finished(j := kube.get("batch/v1", "jobs", "plain", namespace))
                   and j, 60, "job finished")
    assert job_finished(job) == "Complete"
    [pod] = pods_of(kube, namespace, "job-name=plain")
    assert pod["spec"]["schedulerName"] == "default-scheduler"
    assert PROFILE_LABEL not in pod["metadata"].get("labels", {})
    assert pod["spec"]["nodeName"] == EC2_NODE
    assert free_ips(ec2, subnets) == before


def test_running_pod_deleted_gracefully_is_killed_and_removed_by_the_kubelet(kube, namespace):
    pod = pod_manifest("svc", namespace, command=["sleep", "infinity"],
                       annotations={RUN_SECONDS: "-1"})
    pod["spec"]["terminationGracePeriodSeconds"] = 30
    kube.create("v1", "pods", pod, namespace=namespace)
    wait_for(lambda: kube.get("v1", "pods", "svc", namespace)["status"].get("phase") == "Running",
             30, "pod running")
    t0 = time.monotonic()
    kube.delete("v1", "pods", "svc", namespace)  # default grace period: 30 s
    wait_for(lambda: kube.get_or_none("v1", "pods", "svc", namespace) is None, 20,
             "pod removed by the stand-in kubelet")
    assert time.monotonic() - t0 < 20  # confirmed by the kubelet, not by waiting out the grace


def test_full_subnets_leave_the_next_fargate_pod_pending_until_an_ip_frees(kube, env, ec2,
                                                                           fargate_run):
    ns, run = fargate_run
    subnets = env["TESTBED_FARGATE_SUBNETS"].split(",")
    free = free_ips(ec2, subnets)
    assert 0 < free <= 64, "the Fargate subnets are meant to be small"
    sel = f"{RUN_LABEL}={run}"
    # GIVEN as many running Fargate pods as there are free addresses
    for i in range(free):
        kube.create("batch/v1", "jobs", job_manifest(f"fill-{run}-{i}", ns, run_seconds=-1,
                                                     labels={RUN_LABEL: run}), namespace=ns)
    wait_for(lambda: len(pods_of(kube, ns, sel, "Running")) == free, 90, f"{free} pods running")
    assert free_ips(ec2, subnets) == 0

    # WHEN one more Fargate Job starts, its pod cannot get an address
    kube.create("batch/v1", "jobs", job_manifest(f"extra-{run}", ns, run_seconds=-1,
                                                 labels={RUN_LABEL: run}), namespace=ns)

    def unschedulable():
        [pod] = pods_of(kube, ns, f"job-name=extra-{run}") or [None]
        conds = {c["type"]: c for c in (pod or {}).get("status", {}).get("conditions") or []}
        return pod if conds.get("PodScheduled", {}).get("reason") == "Unschedulable" else None
    pod = wait_for(unschedulable, 30, "extra pod marked Unschedulable")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    wait_for(lambda: any(e["reason"] == "FailedScheduling" for e in kube.list(
        "v1", "events", ns, field_selector=f"involvedObject.uid={pod['metadata']['uid']}")),
        10, "FailedScheduling event")

    # THEN deleting one running Job frees an address and the waiting pod gets it.
    victim = kube.get("batch/v1", "jobs", f"fill-{run}-0", ns)
    kube.delete("batch/v1", "jobs", f"fill-{run}-0", ns, propagation_policy="Background",
                uid=victim["metadata"]["uid"])
    wait_for(lambda: kube.get("v1", "pods", pod["metadata"]["name"], ns)["status"].get("phase")
             == "Running", 60, "waiting pod running once an IP came back")


def test_a_restarted_stand_in_recovers_its_allocations_from_moto(kube, env, fargate_run):
    ns, run = fargate_run
    for i in range(2):
        kube.create("batch/v1", "jobs", job_manifest(f"keep-{run}-{i}", ns, run_seconds=-1,
                                                     labels={RUN_LABEL: run}), namespace=ns)
    pods = wait_for(lambda: len(p := pods_of(kube, ns, f"{RUN_LABEL}={run}", "Running")) == 2
                    and p, 60, "2 pods running")
    # A second instance (not run: the testbed's own keeps serving) rebuilds its state from
    # moto alone, as the stand-in does when it starts.
    fresh = FargateStandIn.from_env(env, webhook=False, log=lambda _line: None)
    allocs = fresh.nodes.recover_allocations()
    for pod in pods:
        alloc = allocs[pod["metadata"]["uid"]]
        assert alloc["ip"] == pod["status"]["podIP"]
        assert alloc["node"] == pod["spec"]["nodeName"]
    fresh.kube.close()
