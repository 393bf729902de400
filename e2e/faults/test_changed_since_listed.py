"""An object changed between the reaper's list and its DELETE: someone opts a Job out
(`eks-reaper/keep: "true"`) after the run has judged it due. The DELETE carries the listed
`resourceVersion` as a precondition, so the API server refuses it (409) and the Job stays;
the next run sees the annotation and keeps it for that reason.

Deterministic: the reaper is paused (SIGSTOP) right after its Job list, while the Jobs are
deleted one at a time in list order, and the last one is annotated before it resumes."""

from __future__ import annotations

from . import faultlib as fl
from .faultlib import KEEP_ANNOTATION, paused


def test_job_opted_out_after_listing_is_not_deleted(env, kube, namespace):
    # GIVEN 200 due Jobs, deleted one at a time
    s = fl.seed(kube, namespace, due_jobs=200, due_pods=0, keep=False)
    last = max(s.due_jobs)  # listed, and so deleted, last
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--concurrency", "1")
    p = fl.start_cli(env, args)
    # WHEN, once the run has listed (and judged) the Jobs, the last one is opted out
    with paused(p, after="listing complete"):
        fl.require(kube.get_or_none("batch/v1", "jobs", last, namespace) is not None,
                   f"{last} was deleted before the run could be paused")
        kube.patch("batch/v1", "jobs", last,
                   {"metadata": {"annotations": {KEEP_ANNOTATION: "true"}}}, namespace)
    run = fl.finish_cli(p)
    # THEN the stale DELETE is refused: the Job is still there, counted as a conflict
    assert run.rc == 0, run.describe()
    c = run.cluster
    job = kube.get_or_none("batch/v1", "jobs", last, namespace)
    fl.safe(job is not None and job["metadata"]["uid"] == s.due_jobs[last],
            f"{last} was deleted after it was opted out: {c}")
    assert c["conflicts"] == 1 and c["errors"] == {}, c
    assert c["jobs"]["deleted"] == len(s.due_jobs) - 1, c
    assert fl.find_logs(run.logs, "changed since listed", "INFO")
    # AND the next run keeps it for its annotation
    again = fl.run_cli(env, args)
    assert again.rc == 0, again.describe()
    assert again.cluster["jobs"]["deleted"] == 0, again.cluster
    assert again.cluster["jobs"]["keptByReason"].get("optedOut") == 1, again.cluster
    assert kube.get_or_none("batch/v1", "jobs", last, namespace) is not None
