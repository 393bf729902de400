"""A hung server: connections accepted, no answer, nothing reset.

The apiserver is frozen with SIGSTOP (`testbed.control.freeze_apiserver`, SIGCONT when the
block ends, whatever happens); an AWS endpoint is a TCP listener that accepts and never
answers. Each run is bounded (`--max-run-time 8s --deadline-margin 2s`): the report must
come out within the run time plus SLACK seconds (measured on the wall clock), with what was
done so far, the cluster `failed` with `errorKind: Timeout` and an error naming the call that
got no answer and how long it waited, and the metrics published (`RunSucceeded` 0, read
back from the testbed's CloudWatch).

"During listing" and "during deletions" are made deterministic as elsewhere: the reaper is
paused (SIGSTOP) at a known point, the apiserver frozen, the reaper resumed, so its next
request is the one that hangs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import cbor2
import requests

from testbed.cbor_bridge import PATH_PREFIX
from testbed.control import freeze_apiserver

from . import faultlib as fl
from .faultlib import assert_nothing_deleted, assert_nothing_wrong_deleted, hung_endpoint, paused

RUN_TIME = 8      # --max-run-time, seconds
MARGIN = 2        # --deadline-margin, seconds
SLACK = 1.5       # the report must be out by RUN_TIME + SLACK
WAITED = re.compile(r"no answer after (\d+\.\d) s, cut at ")


def bounded(run_time: int = RUN_TIME) -> list[str]:
    return ["--max-run-time", f"{run_time}s", "--deadline-margin", f"{MARGIN}s"]


def waited_seconds(error: str) -> float:
    m = WAITED.search(error)
    assert m, f"the error does not say how long the call waited: {error}"
    return float(m.group(1))


def assert_in_time(run: fl.Run, run_time: int = RUN_TIME) -> None:
    fl.safe(run.report is not None, f"no report:\n{run.describe()}")
    fl.safe(run.seconds <= run_time + SLACK,
            f"report after {run.seconds:.1f} s, run time {run_time} s:\n{run.describe()}")


def run_succeeded(env: dict, metrics_namespace: str, cluster: str) -> list[float]:
    """`RunSucceeded` values published in `metrics_namespace` for `cluster` over the last
    ten minutes (GetMetricStatistics through the testbed's CloudWatch endpoint)."""
    now = dt.datetime.now(dt.timezone.utc)
    body = cbor2.dumps({
        "Namespace": metrics_namespace, "MetricName": "RunSucceeded",
        "Dimensions": fl.cluster_dimensions(env, cluster),
        "StartTime": now - dt.timedelta(minutes=10), "EndTime": now + dt.timedelta(minutes=5),
        "Period": 60, "Statistics": ["Maximum", "SampleCount"],
    }, datetime_as_timestamp=True, indefinite_containers=True)
    day = now.strftime("%Y%m%d")
    r = requests.post(
        env["AWS_ENDPOINT_URL_CLOUDWATCH"] + PATH_PREFIX + "GetMetricStatistics", data=body,
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                 "Accept": "application/cbor",
                 "Authorization": f"AWS4-HMAC-SHA256 Credential={env['AWS_ACCESS_KEY_ID']}/"
                                  f"{day}/{env['AWS_REGION']}/monitoring/aws4_request, "
                                  "SignedHeaders=host;x-amz-date, Signature=0000"},
        timeout=10)
    assert r.status_code == 200, (r.status_code, r.content[:500])
    return [p["Maximum"] for p in cbor2.loads(r.content).get("Datapoints", [])]


def assert_published_failure(env: dict, run: fl.Run, metrics_namespace: str) -> None:
    """The metrics went out after the cut, with the heartbeat at 0 for the cluster."""
    m = run.report["metrics"]
    assert m["sink"] == "cloudwatch" and m["error"] is None and m["metrics"] > 0, m
    assert run_succeeded(env, metrics_namespace, env["TESTBED_CLUSTER"]) == [0.0]


def assert_truthful(kube, s: fl.Seed, c: dict) -> fl.Observed:
    """Nothing wrongly deleted; every deletion claimed happened; a DELETE cut in flight
    may have been applied (it is counted under errors.timedOut, never as deleted)."""
    o = assert_nothing_wrong_deleted(kube, s)
    gone_due = len(s.due_jobs) + len(s.due_pods) - o.due_left
    deleted = c["jobs"]["deleted"] + c["pods"]["deleted"]
    unsure = c["alreadyGone"] + c["errors"].get("timedOut", 0)
    fl.safe(deleted <= gone_due <= deleted + unsure,
            f"report claims {deleted} deletions (+{unsure} unsure), apiserver shows {gone_due}")
    return o


# ---- the apiserver ------------------------------------------------------------------------

def test_apiserver_hung_during_listing_fails_the_cluster_in_time(env, kube, namespace):
    # GIVEN a bounded run listing one Job per page
    s = fl.seed(kube, namespace, due_jobs=150, due_pods=3)
    metrics_ns = f"Faults/{namespace}"
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--page-size", "1",
                       "--concurrency", "1", *bounded())
    with contextlib.ExitStack() as frozen:
        p = fl.start_cli(env, args, {"REAPER_METRICS_NAMESPACE": metrics_ns})
        # WHEN the apiserver hangs mid-list: the reaper paused after its first deletion,
        # the apiserver frozen, the reaper resumed (its next list page and DELETE hang)
        with paused(p, after='"deleted"'):
            frozen.enter_context(freeze_apiserver(env))
        run = fl.finish_cli(p, timeout=60)
    # THEN the report is out in time, the cluster failed with Timeout naming the list call
    assert_in_time(run)
    c = run.cluster
    fl.safe("panicked" not in run.stderr, run.describe())
    fl.require(not c["listingComplete"], f"the listing ended before the freeze: {c}")
    assert run.rc == 1 and c["status"] == "failed" and c["errorKind"] == "Timeout", \
        run.describe()
    assert re.match(rf"listing jobs: GET /apis/batch/v1/namespaces/{namespace}/jobs: "
                    r"no answer after \d+\.\d s, cut at the run's deadline$", c["error"]), \
        c["error"]
    # it really waited for the hung server, up to the deadline (not a quick failure)
    assert waited_seconds(c["error"]) >= 3, c["error"]
    assert run.seconds >= RUN_TIME - MARGIN - 1, run.seconds
    warn = fl.find_logs(run.logs, "listing failed", "WARN")
    assert warn and warn[0]["fields"].get("errorKind") == "Timeout", run.tail()
    # AND what was done is reported truthfully, nothing wrongly deleted
    assert c["jobs"]["deleted"] >= 1, c
    assert set(c["errors"]) <= {"timedOut"}, c["errors"]
    o = assert_truthful(kube, s, c)
    fl.require(o.due_left > 0, "everything was deleted before the freeze")
    # AND the metrics went out: RunSucceeded 0
    assert_published_failure(env, run, metrics_ns)


def test_apiserver_hung_during_deletions_fails_the_cluster_in_time(env, kube, namespace):
    # GIVEN a bounded run deleting 100 due Jobs one at a time, listed in one page
    s = fl.seed(kube, namespace, due_jobs=100, due_pods=3)
    metrics_ns = f"Faults/{namespace}"
    args = fl.cli_args(env["TESTBED_CLUSTER"], namespace, "--concurrency", "1", *bounded())
    with contextlib.ExitStack() as frozen:
        p = fl.start_cli(env, args, {"REAPER_METRICS_NAMESPACE": metrics_ns})
        # WHEN the apiserver hangs once the Jobs are listed, during the deletions
        fl.wait_until(lambda: "listing complete" in fl.stderr_so_far(p) or p.poll() is not None,
                      30, 0.002, "the reaper to list the Jobs")
        with paused(p, after='"deleted"'):
            frozen.enter_context(freeze_apiserver(env))
        run = fl.finish_cli(p, timeout=60)
    # THEN the report is out in time, the cluster failed with Timeout naming the DELETE
    assert_in_time(run)
    c = run.cluster
    fl.safe("panicked" not in run.stderr, run.describe())
    fl.require(0 < c["jobs"]["deleted"] < len(s.due_jobs),
               f"the freeze did not land during the deletions: {c['jobs']}")
    assert run.rc == 1 and c["status"] == "failed" and c["errorKind"] == "Timeout", \
        run.describe()
    assert re.match(rf"DELETE /apis/batch/v1/namespaces/{namespace}/jobs/\S+: "
                    r"no answer after \d+\.\d s, cut at the run's deadline$", c["error"]), \
        c["error"]
    assert waited_seconds(c["error"]) >= 3, c["error"]
    assert run.seconds >= RUN_TIME - MARGIN - 1, run.seconds
    # the DELETE in flight is unsure (errors.timedOut), the rest is backlog; the pod passes
    # never listed, so every due Job and nothing else is accounted for, once
    assert c["errors"] == {"timedOut": 1}, c["errors"]
    assert c["backlog"] > 0 and not c["listingComplete"], c
    accounted = (c["jobs"]["deleted"] + c["alreadyGone"] + c["conflicts"] + c["backlog"]
                 + sum(c["errors"].values()))
    fl.safe(accounted == len(s.due_jobs), f"{len(s.due_jobs)} due Jobs, {accounted} outcomes")
    assert fl.find_logs(run.logs, "delete got no answer in time", "WARN"), run.tail()
    assert_truthful(kube, s, c)
    assert_published_failure(env, run, metrics_ns)
    # AND the next run, with the apiserver back, finishes the job
    second = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace))
    assert second.rc == 0 and second.cluster["errors"] == {}, second.describe()
    assert assert_nothing_wrong_deleted(kube, s).due_left == 0


# ---- AWS endpoints --------------------------------------------------------------------------

def test_eks_endpoint_hung_fails_the_cluster_in_time(env, kube, namespace):
    # GIVEN due objects and an EKS endpoint that never answers
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    metrics_ns = f"Faults/{namespace}"
    with hung_endpoint() as eks:
        # WHEN a bounded run describes the cluster
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace, *bounded()),
                         {"AWS_ENDPOINT_URL_EKS": eks.url,
                          "REAPER_METRICS_NAMESPACE": metrics_ns}, timeout=60)
    fl.require(eks.accepted > 0, f"the run never reached the hung endpoint:\n{run.describe()}")
    # THEN it reports in time: cluster failed, Timeout, naming DescribeCluster
    assert_in_time(run)
    c = run.cluster
    assert run.rc == 1 and c["status"] == "failed" and c["errorKind"] == "Timeout", \
        run.describe()
    assert re.match(r"eks:DescribeCluster: no answer after \d+\.\d s, cut at the run's "
                    r"deadline$", c["error"]), c["error"]
    assert waited_seconds(c["error"]) >= RUN_TIME - MARGIN - 1.5, c["error"]
    assert fl.find_logs(run.logs, "cannot connect to the cluster", "WARN"), run.tail()
    # nothing was touched, and the metrics still went out
    assert_nothing_deleted(kube, s)
    assert c["requests"] == 0, c
    assert_published_failure(env, run, metrics_ns)


def test_ec2_endpoint_hung_costs_the_headroom_read_not_the_pruning(env, kube, namespace):
    # GIVEN due objects and an EC2 endpoint that never answers
    s = fl.seed(kube, namespace, due_jobs=20, due_pods=3)
    run_time = 10
    with hung_endpoint() as ec2:
        # WHEN a bounded run reads the subnet headroom
        run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace,
                                          *bounded(run_time)),
                         {"AWS_ENDPOINT_URL_EC2": ec2.url}, timeout=60)
    fl.require(ec2.accepted > 0, f"the run never reached the hung endpoint:\n{run.describe()}")
    # THEN the headroom read gives up after its share of the time (half of what was left),
    # the pruning gets the rest and completes, in time
    assert_in_time(run, run_time)
    c = run.cluster
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    assert c["subnets"] is None and c["forecast"] is None, c
    assert re.match(r"ec2:DescribeSubnets: no answer after \d+\.\d s, cut at the headroom "
                    r"read's half of the time left$", c["subnetsError"]), c["subnetsError"]
    assert (run_time - MARGIN) / 2 - 1.5 <= waited_seconds(c["subnetsError"]) \
        <= (run_time - MARGIN) / 2, c["subnetsError"]
    assert fl.find_logs(run.logs, "subnet headroom not read", "WARN"), run.tail()
    o = assert_nothing_wrong_deleted(kube, s)
    fl.assert_counts_match(c, o)
    assert o.due_left == 0 and c["listingComplete"] and c["errors"] == {}, c
    assert run.report["metrics"]["error"] is None, run.report["metrics"]
