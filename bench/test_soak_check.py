"""The soak's invariant checker on planted histories: each kind of failure the soak must
report is caught, and a clean history passes. No testbed: `scripts/soak --self-test`
(or `pytest bench/test_soak_check.py`), well under a second."""

from __future__ import annotations

import datetime as dt

from bench.soak_check import CLASS_LABEL, Checker, Retentions, RunRecord

R = Retentions(succeeded=15.0, failed=100.0, bare=60.0, fargate_floor=1.0, engine_grace=5.0,
               ttl_annotation=40.0)
T0 = 1_800_000_000.0


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str, cls: str = "plain", *, finished: float | None = None, failed: bool = False,
        ns: str = "soak-ec2", cronjob: str | None = None) -> dict:
    meta = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": {CLASS_LABEL: cls}}
    if cronjob:
        meta["ownerReferences"] = [{"kind": "CronJob", "uid": cronjob, "controller": True}]
    conds = []
    if finished is not None:
        conds = [{"type": "Failed" if failed else "Complete", "status": "True",
                  "lastTransitionTime": iso(finished)}]
    return {"metadata": meta, "status": {"conditions": conds}}


def pod(name: str, cls: str = "bare", *, phase: str = "Running", finished: float | None = None,
        owner_job: str | None = None, fargate: bool = False) -> dict:
    labels = {CLASS_LABEL: cls}
    if fargate:
        labels["eks.amazonaws.com/fargate-profile"] = "p"
    meta = {"name": name, "namespace": "soak-ec2", "uid": f"uid-{name}", "labels": labels}
    if owner_job:
        meta["ownerReferences"] = [{"kind": "Job", "uid": f"uid-{owner_job}", "controller": True}]
    status: dict = {"phase": phase}
    if finished is not None:
        status["containerStatuses"] = [{"state": {"terminated": {"finishedAt": iso(finished)}}}]
    return {"metadata": meta, "status": status}


def run(name: str, t0: float, *, jobs: int = 0, pods: int = 0, logged=(), seen: int = 0,
        errors: dict | None = None, t1: float | None = None, metrics: int | None = 1,
        aws_up: bool = True) -> RunRecord:
    cluster = {"status": "ok", "jobs": {"deleted": jobs, "seen": seen},
               "pods": {"deleted": pods}, "errors": errors or {}, "listingComplete": False}
    return RunRecord(name, t0, t1 if t1 is not None else t0 + 1, 30.0,
                     {"clusters": [cluster]}, False, list(logged), aws_up=aws_up,
                     subnet_metrics=metrics)


def checker() -> Checker:
    return Checker(R, out_of_scope=set())


def test_a_clean_history_passes():
    c = checker()
    c.observe("job", "ADDED", job("a"), T0)
    c.observe("job", "MODIFIED", job("a", finished=T0 + 10), T0 + 10)
    c.observe("pod", "ADDED", pod("a-x", "plain", owner_job="a"), T0)
    c.observe("pod", "MODIFIED", pod("a-x", "plain", phase="Succeeded", finished=T0 + 9,
                                     owner_job="a"), T0 + 9)
    c.observe("job", "DELETED", job("a", finished=T0 + 10), T0 + 26)
    c.observe("pod", "DELETED", pod("a-x", "plain", phase="Succeeded", finished=T0 + 9,
                                    owner_job="a"), T0 + 27)
    c.run(run("run 1", T0 + 25, jobs=1, logged=[("job", "soak-ec2", "a")]))
    v = c.finish()
    assert (v["wrongDeletions"], v["untruthfulReports"], v["runsOverDeadline"],
            v["ipMetricsGaps"]) == (0, 0, 0, 0), (c.wrong, c.untruthful)


def test_a_planted_wrong_deletion_of_a_kept_job_is_caught():
    c = checker()
    c.observe("job", "ADDED", job("k", "keep", finished=T0), T0)
    c.observe("job", "DELETED", job("k", "keep", finished=T0), T0 + 1000)
    c.run(run("run 1", T0 + 999, jobs=1, logged=[("job", "soak-ec2", "k")]))
    assert c.finish()["wrongDeletions"] == 1 and "never deleted" in c.wrong[0]


def test_a_job_deleted_inside_its_retention_or_unfinished_is_caught():
    c = checker()
    c.observe("job", "ADDED", job("early", finished=T0), T0)
    c.observe("job", "DELETED", job("early", finished=T0), T0 + 14)
    c.observe("job", "ADDED", job("active"), T0)
    c.observe("job", "DELETED", job("active"), T0 + 500)
    c.observe("job", "ADDED", job("failed", finished=T0, failed=True), T0)
    c.observe("job", "DELETED", job("failed", finished=T0, failed=True), T0 + 50)
    assert c.finish()["wrongDeletions"] == 3, c.wrong


def test_a_running_pod_and_a_job_pod_deleted_before_its_job_are_caught():
    c = checker()
    c.observe("pod", "ADDED", pod("run"), T0)
    c.observe("pod", "MODIFIED", {**pod("run"), "metadata": {
        **pod("run")["metadata"], "deletionTimestamp": iso(T0 + 5)}}, T0 + 5)
    c.observe("job", "ADDED", job("j"), T0)
    c.observe("pod", "ADDED", pod("j-x", "plain", phase="Succeeded", finished=T0,
                                  owner_job="j"), T0)
    c.observe("pod", "DELETED", pod("j-x", "plain", phase="Succeeded", finished=T0,
                                    owner_job="j"), T0 + 100)
    assert c.finish()["wrongDeletions"] == 2, c.wrong


def test_the_garbage_collectors_cascade_and_a_fargate_pod_past_the_floor_pass():
    c = checker()
    c.observe("job", "ADDED", job("j", finished=T0), T0)
    c.observe("pod", "ADDED", pod("j-x", "plain", phase="Succeeded", finished=T0,
                                  owner_job="j"), T0)
    # the pod's DELETED may arrive before the Job's on the other watch
    c.observe("pod", "DELETED", pod("j-x", "plain", phase="Succeeded", finished=T0,
                                    owner_job="j"), T0 + 20)
    c.observe("job", "DELETED", job("j", finished=T0), T0 + 21)
    c.observe("job", "ADDED", job("f"), T0)
    c.observe("pod", "ADDED", pod("f-x", "plain", phase="Failed", finished=T0,
                                  owner_job="f", fargate=True), T0)
    c.observe("pod", "DELETED", pod("f-x", "plain", phase="Failed", finished=T0,
                                    owner_job="f", fargate=True), T0 + 2)
    c.run(run("run 1", T0 + 1, jobs=1, pods=1,
              logged=[("job", "soak-ec2", "j"), ("pod", "soak-ec2", "f-x")]))
    assert c.finish()["wrongDeletions"] == 0, c.wrong


def test_the_newest_failed_job_of_a_cronjob_is_protected_by_keep_last():
    c = checker()
    c.observe("job", "ADDED", job("old", "cron", finished=T0, failed=True, cronjob="cj"), T0)
    c.observe("job", "ADDED", job("new", "cron", finished=T0 + 1, failed=True, cronjob="cj"),
              T0 + 1)
    c.observe("job", "DELETED", job("new", "cron", finished=T0 + 1, failed=True, cronjob="cj"),
              T0 + 200)
    assert c.finish()["wrongDeletions"] == 1 and "keep-last" in c.wrong[0]


def test_a_deletion_seen_only_as_a_relists_skeleton_is_judged_on_the_last_state():
    c = checker()
    c.observe("pod", "ADDED", pod("p"), T0)
    skeleton = {"metadata": pod("p")["metadata"]}  # no status: the informer's synthesis
    c.observe("pod", "DELETED", skeleton, T0 + 500)
    assert c.finish()["wrongDeletions"] == 1 and "phase Running" in c.wrong[0]


def test_untruthful_reports_are_caught():
    c = checker()
    c.observe("job", "ADDED", job("a", finished=T0), T0)
    c.observe("job", "ADDED", job("b", finished=T0), T0)
    c.observe("job", "DELETED", job("b", finished=T0), T0 + 100)
    # logs a deletion that never happened, and counts two where it logged one
    c.run(run("run 1", T0 + 99, jobs=2, logged=[("job", "soak-ec2", "a")]))
    c.finish()
    assert len(c.untruthful) == 2, c.untruthful  # run 1, and b deleted by no run's account
    assert "was not" in c.untruthful[0] and "logged 1" in c.untruthful[0]


def test_a_deletion_no_run_claims_is_excused_only_by_an_unsure_outcome():
    def history(errors):
        c = checker()
        c.observe("job", "ADDED", job("a", finished=T0), T0)
        c.observe("job", "DELETED", job("a", finished=T0), T0 + 100)
        c.run(run("run 1", T0 + 99, errors=errors))
        return c.finish()
    assert history({})["untruthfulReports"] == 1
    assert history({"unreachable": 1})["untruthfulReports"] == 0


def test_listing_fewer_jobs_than_existed_throughout_is_caught():
    c = checker()
    for n in "abc":
        c.observe("job", "ADDED", job(n), T0)
    rec = run("run 1", T0 + 10, seen=2)
    rec.report["clusters"][0]["listingComplete"] = True
    c.run(rec)
    c.finish()
    assert len(c.untruthful) == 1 and "saw 2 jobs; 3 existed" in c.untruthful[0]


def test_a_run_over_its_deadline_and_a_metrics_gap_are_caught():
    c = checker()
    c.run(run("slow", T0, t1=T0 + 32))
    c.run(run("gap", T0 + 40, metrics=0))
    c.run(run("ec2 down", T0 + 50, metrics=0, aws_up=False))
    v = c.finish()
    assert v["runsOverDeadline"] == 1 and v["ipMetricsGaps"] == 1, (c.over_deadline,
                                                                     c.metric_gaps)
