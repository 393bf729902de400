"""429 storm: real API Priority and Fairness rejections for the reaper's user.

`throttle_user(shares=0)` puts user eks-reaper in its own priority level that runs one
request at a time and rejects the rest with 429 + Retry-After; with 200 deletions in
flight most requests are rejected. The reaper must back off (honour Retry-After, bounded
retries), never delete the wrong thing, and either finish or stop at its deadline with the
rest reported as backlog.
"""

from __future__ import annotations

from testbed.throttle import throttle_user

from . import faultlib as fl
from .faultlib import assert_counts_match, assert_nothing_wrong_deleted

STORM = ["--concurrency", "200"]


def test_429_storm_backs_off_and_completes(env, kube, namespace):
    # GIVEN 150 due Jobs (+3 bare pods) and the reaper's user throttled to one request at a time
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    due = len(s.due_jobs) + len(s.due_pods)
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=0):
        # WHEN it runs with 200 deletions in flight
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace, *STORM))
    c = run.cluster
    # The adaptive limit starts at one request and halves on the first 429s, so how many
    # 429s a storm yields depends on how the requests overlap on a busy machine: a few
    # are enough to reach the back-off path, which the limit's own count then shows.
    fl.require(c["throttled"] >= 3, f"no storm: only {c['throttled']} 429s\n{run.describe()}")
    assert c["concurrency"]["decreasesThrottled"] >= 1, c["concurrency"]
    # THEN every due object is deleted exactly once, nothing else, and the run succeeds
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(c, o)
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    assert o.due_left == 0 and c["errors"] == {} and c["backlog"] == 0, c
    # backed off instead of hammering: a few 429s per object, not thousands
    assert c["throttled"] <= 3 * due, c
    # 5 list pages (namespaces, jobs, unfinished Fargate pods' metadata, finished Fargate
    # pods, other finished pods), no hidden retries
    assert c["requests"] == due + 5 + c["throttled"], c
    # and the logs say so: the per-cluster line and the run summary count the 429s
    def throttled(e: dict) -> int:
        fields = e.get("fields") or {}
        return fields.get("throttled") or (fields.get("totals") or {}).get("throttled") or 0
    counted = [e for e in run.logs if throttled(e) > 0]
    assert {fl.log_message(e) for e in counted} >= {"cluster done", "eks-reaper run summary"}, \
        run.tail()


def test_429_storm_stops_at_the_lambda_deadline_with_backlog(env, kube, namespace):
    # GIVEN 2,000 due Jobs and the throttled user. One seat deletes a few hundred Jobs a
    # second on a quiet machine, so the work must outlast the 2.5 s the run has.
    s = fl.seed(kube, namespace, due_jobs=2000, due_pods=0)
    # WHEN the Lambda function (6 s timeout, 3.5 s margin) runs into the storm
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=0):
        with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                                "REAPER_NAMESPACES": namespace,
                                "REAPER_CONCURRENCY": "200",
                                # The storm is what this tests: with a latency target the
                                # drain may yield down to one request at a time, which APF
                                # can serve without a 429.
                                "REAPER_DRAIN_LATENCY_TARGET": "off",
                                "REAPER_DEADLINE_MARGIN": "3500ms"}, timeout_seconds=6) as fn:
            inv = fn.invoke({})
            output = fn.output()
    # THEN it reports before its timeout (a failed invocation still logs its report) ...
    report = inv.json if not inv.failed else fl.summary_report(output)
    fl.safe(isinstance(report, dict) and "clusters" in report,
            f"no report before the timeout: {inv.body[:1500]}\n{output[-3000:]}")
    c = report["clusters"][0]
    # ... and the report matches the apiserver, nothing wrong deleted
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(c, o, complete=False)
    fl.safe(c["jobs"]["deleted"] + c["alreadyGone"] + c["conflicts"] + c["backlog"]
            + sum(c["errors"].values()) <= len(s.due_jobs), f"counted twice: {c}")
    fl.require(c["throttled"] > 0 and o.due_left > 0,
               f"the deadline did not cut the storm short: {c}")
    # ... the invocation succeeds, and what is left is backlog, not errors
    assert not inv.failed, inv.body[:1000]
    assert c["status"] == "ok" and c["errors"] == {}, (c["status"], c["errors"])
    if c["listingComplete"]:
        assert c["backlog"] == o.due_left, (c["backlog"], o.due_left)
    else:
        assert 0 < c["backlog"] <= o.due_left, (c["backlog"], o.due_left)
