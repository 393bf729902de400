"""The workload generator, checked against the running testbed (`scripts/testbed up`)."""

from __future__ import annotations

import time

from testbed.aws import client
from testbed.fargate.nodes import EC2_NODE
from testbed.kube import parse_rfc3339
from testbed.workload import (BULK_MANAGER, RUN_LABEL, bulk_finished, job_finished, retained,
                              stream, wait_jobs_finished)


def test_bulk_jobs_are_finished_in_the_past_and_left_alone_by_the_job_controller(kube, namespace):
    # Each Job is stamped 7200 s before the instant it is created: between these two.
    before = time.time()
    res = bulk_finished(kube, count=40, namespace=namespace, fail_ratio=0.25, age_seconds=7200,
                        age_jitter_seconds=0, duration_seconds=60, seed=1)
    assert (res.jobs, res.failed, res.errors) == (40, 0, [])
    snapshot = {j["metadata"]["name"]: j for j in kube.list("batch/v1", "jobs", namespace)}
    assert len(snapshot) == 40

    # The job controller would have started a pod for each within a second or two, and
    # would have rewritten the status; give it time to misbehave.
    time.sleep(4)
    after = time.time()
    assert list(kube.list("v1", "pods", namespace)) == []
    kinds = {"Complete": 0, "Failed": 0}
    for job in kube.list("batch/v1", "jobs", namespace):
        old = snapshot[job["metadata"]["name"]]
        assert job["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
        assert job["spec"]["managedBy"] == BULK_MANAGER
        kind = job_finished(job)
        kinds[kind] += 1
        conds = {c["type"]: c for c in job["status"]["conditions"]}
        finished = parse_rfc3339(conds[kind]["lastTransitionTime"])
        assert before - 7201 <= finished <= after - 7199, (before, finished, after)
        assert parse_rfc3339(job["status"]["startTime"]) == finished - 60
        if kind == "Complete":
            assert "SuccessCriteriaMet" in conds
            assert job["status"]["completionTime"] == conds["Complete"]["lastTransitionTime"]
        else:
            assert "FailureTarget" in conds and "completionTime" not in job["status"]
    assert kinds["Complete"] > 0 and kinds["Failed"] > 0


def test_bulk_direct_pods_are_finished_owned_by_their_job_and_stay(kube, namespace):
    res = bulk_finished(kube, count=10, namespace=namespace, fail_ratio=0.5, pods="direct", seed=2)
    assert (res.jobs, res.pods, res.failed) == (10, 10, 0)
    jobs = {j["metadata"]["uid"]: j for j in kube.list("batch/v1", "jobs", namespace)}
    time.sleep(3)  # neither the stand-in nor PodGC may touch them
    pods = list(kube.list("v1", "pods", namespace))
    assert len(pods) == 10
    for pod in pods:
        [owner] = pod["metadata"]["ownerReferences"]
        assert owner["controller"] is True and owner["kind"] == "Job"
        job = jobs[owner["uid"]]
        want = "Succeeded" if job_finished(job) == "Complete" else "Failed"
        assert pod["status"]["phase"] == want
        assert pod["spec"]["nodeName"] == EC2_NODE


def test_bulk_jobs_deleted_with_background_policy_take_their_pods(kube, namespace):
    bulk_finished(kube, count=5, namespace=namespace, pods="direct")
    for job in kube.list("batch/v1", "jobs", namespace):
        kube.delete("batch/v1", "jobs", job["metadata"]["name"], namespace,
                    propagation_policy="Background", uid=job["metadata"]["uid"])
    deadline = time.monotonic() + 30
    while list(kube.list("v1", "pods", namespace)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(kube.list("v1", "pods", namespace)) == []


def test_retained_jobs_finished_recently(kube, namespace):
    retained(kube, count=3, namespace=namespace, age_seconds=30)
    for job in kube.list("batch/v1", "jobs", namespace):
        cond = next(c for c in job["status"]["conditions"] if c["type"] in ("Complete", "Failed"))
        assert 25 <= time.time() - parse_rfc3339(cond["lastTransitionTime"]) <= 45


def test_stream_jobs_run_through_the_real_job_controller_with_the_chosen_mix(kube, namespace):
    created = stream(kube, count=8, rate=20, namespace=namespace, fail_ratio=0.5, run_seconds=1,
                     seed=7)
    want = {c.name: "Failed" if c.exit_code else "Complete" for c in created}
    assert set(want.values()) == {"Complete", "Failed"}  # the seed gives a mix
    run = kube.get("batch/v1", "jobs", created[0].name, namespace)["metadata"]["labels"][RUN_LABEL]
    done = wait_jobs_finished(kube, namespace, f"{RUN_LABEL}={run}", len(want), timeout=60)
    assert done == want


def test_stream_with_name_reuse_replaces_the_earlier_job(kube, namespace):
    created = stream(kube, count=4, rate=20, namespace=namespace, reuse_names=2, run_seconds=0.5)
    assert len({c.name for c in created}) == 2
    assert len({c.uid for c in created}) == 4
    live = {j["metadata"]["name"]: j["metadata"]["uid"]
            for j in kube.list("batch/v1", "jobs", namespace)}
    assert live == {c.name: c.uid for c in created[2:]}


def test_ttl_controller_acts_on_bulk_jobs_exactly_when_the_testbed_runs_it(kube, env, namespace):
    # The TTL-after-finished controller runs only with EKS_REAPER_TESTBED_TTL_CONTROLLER=1
    # (the benchmarks); without it, Jobs with ttlSecondsAfterFinished: 0 must stay, or the
    # other tests would see a second cleaner.
    running = "ttl-after-finished" in env.get("TESTBED_CONTROLLERS", "")
    bulk_finished(kube, count=5, namespace=namespace, ttl_seconds_after_finished=0)
    deadline = time.monotonic() + (30 if running else 5)
    while list(kube.list("batch/v1", "jobs", namespace)) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = len(list(kube.list("batch/v1", "jobs", namespace)))
    assert left == (0 if running else 5), (running, left)


def test_bulk_run_pods_are_finished_by_the_stand_in_and_fargate_ones_hold_an_ip(kube, env):
    ec2 = client("ec2", env["TESTBED_MOTO_URL"], region=env["AWS_REGION"])
    subnets = env["TESTBED_FARGATE_SUBNETS"].split(",")

    def free():
        return sum(s["AvailableIpAddressCount"]
                   for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"])

    ns = env["TESTBED_FARGATE_NAMESPACE"]
    before = free()
    res = bulk_finished(kube, count=3, namespace=ns, fail_ratio=0.0, pods="run",
                        prefix="bulkrun")
    sel = f"{RUN_LABEL}={res.run_id}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pods = list(kube.list("v1", "pods", ns, label_selector=sel))
            if len(pods) == 3 and all(p["status"].get("phase") == "Succeeded" for p in pods):
                break
            time.sleep(0.5)
        assert [p["status"]["phase"] for p in pods] == ["Succeeded"] * 3
        assert all(p["spec"]["nodeName"].startswith("fargate-ip-") for p in pods)
        # The point of Fargate pods in fixtures: finished, yet each still holds its IP.
        assert free() == before - 3
    finally:
        kube.delete_collection("batch/v1", "jobs", ns, label_selector=sel,
                               propagation_policy="Background")
        deadline = time.monotonic() + 60
        while list(kube.list("v1", "pods", ns, label_selector=sel)) and \
                time.monotonic() < deadline:
            time.sleep(0.5)


def test_running_jobs_and_pods_keep_running(kube, namespace):
    from testbed.workload import running_jobs, running_pods

    running_jobs(kube, count=3, namespace=namespace)
    running_pods(kube, count=3, namespace=namespace)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        phases = [p["status"].get("phase") for p in kube.list("v1", "pods", namespace)]
        if phases.count("Running") == 6:
            break
        time.sleep(0.5)
    time.sleep(3)  # run-seconds -1: they must still be running
    phases = [p["status"].get("phase") for p in kube.list("v1", "pods", namespace)]
    assert phases == ["Running"] * 6
    assert all(job_finished(j) is None for j in kube.list("batch/v1", "jobs", namespace))
