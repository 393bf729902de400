"""Overlapping invocations: a CLI run and a Lambda invocation prune the same namespace at
the same time. Both list everything and race to delete the same objects; the uid and
resourceVersion preconditions and 404/409 handling must keep the outcome exact: no errors
beyond handled 404/409, every object deleted by exactly one run, and the two reports adding
up to what happened."""

from __future__ import annotations

import time

from . import faultlib as fl
from .faultlib import assert_nothing_wrong_deleted


def due_seen(c: dict) -> int:
    """Due objects the run listed: seen minus kept, per its own report."""
    return (c["jobs"]["seen"] - sum(c["jobs"]["keptByReason"].values())
            + c["pods"]["seen"] - sum(c["pods"]["keptByReason"].values()))


def outcomes(c: dict) -> int:
    return (c["jobs"]["deleted"] + c["pods"]["deleted"] + c["alreadyGone"] + c["conflicts"]
            + c["backlog"] + sum(c["errors"].values()))


def test_two_runs_at_once_delete_each_object_once(env, kube, namespace):
    # GIVEN 300 due Jobs and 150 due bare pods (finished pods are where two DELETEs can
    # both be answered 200: the API server's graceful path)
    s = fl.seed(kube, namespace, due_jobs=300, due_pods=150)
    due = len(s.due_jobs) + len(s.due_pods)
    settings = {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"], "REAPER_NAMESPACES": namespace,
                "REAPER_CONCURRENCY": "4"}
    # WHEN a Lambda invocation and a CLI run prune them at the same time
    with fl.LambdaRie(env, settings) as fn:
        t0 = time.monotonic()
        lam = fl.Background(lambda: (fn.invoke({}), time.monotonic()))
        cli = fl.run_cli(env, ["run", "--output", "json"], settings)
        cli_end = time.monotonic()
        inv, lam_end = lam.join_result()
    fl.safe(not inv.failed, f"Lambda invocation failed: {inv.body[:1500]}")
    a, b = cli.cluster, inv.json["clusters"][0]
    fl.require(a["alreadyGone"] + a["conflicts"] + b["alreadyGone"] + b["conflicts"] > 0,
               f"the runs did not overlap (cli {cli_end - t0:.1f}s, lambda "
               f"{lam_end - t0:.1f}s): {a} {b}")
    # THEN both succeed with no errors but the handled 404/409
    assert cli.rc == 0, cli.describe()
    assert a["errors"] == {} and b["errors"] == {}, (a["errors"], b["errors"])
    # every due object is gone, nothing else is, and each was counted as deleted by exactly
    # one run: the resourceVersion precondition turns the race the API server would answer
    # with two 200s (graceful path for pods: set deletionTimestamp, then delete) into a 409.
    o = assert_nothing_wrong_deleted(kube, s)
    assert o.due_left == 0
    deleted = (a["jobs"]["deleted"] + a["pods"]["deleted"]
               + b["jobs"]["deleted"] + b["pods"]["deleted"])
    fl.safe(deleted == due, f"{deleted} deletions reported by the two runs for {due} objects")
    # and each report accounts for every due object it listed exactly once
    for c in (a, b):
        fl.safe(outcomes(c) == due_seen(c), f"outcomes {outcomes(c)} != due seen "
                                            f"{due_seen(c)}: {c}")
