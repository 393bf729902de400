"""AWS faults: EKS DescribeCluster failing, the cluster not ACTIVE, a CA that is not PEM,
EC2 unreachable, CloudWatch unreachable.

The testbed's moto runs inside the supervisor and cannot be changed from here, so the
cases that need a cluster in another state get a second moto (ThreadedMotoServer, in this
process) whose cluster `etl` points at the real testbed apiserver with the real CA: if the
reaper ignored the fault it would reach the cluster and delete — the test would see it.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path

import pytest

from testbed.aws import client, start_moto
from testbed.ports import free_port

from . import faultlib as fl
from .faultlib import (assert_counts_match, assert_nothing_deleted, assert_nothing_wrong_deleted,
                       closed_port_url)


# ---- a second moto with a cluster we can put in any state ---------------------------------

@pytest.fixture(scope="module")
def own_moto(env):
    from moto.eks.models import eks_backends

    port = free_port()
    srv = start_moto(port)
    url = f"http://127.0.0.1:{port}"
    eks = client("eks", url, region=env["AWS_REGION"])
    eks.create_cluster(name=env["TESTBED_CLUSTER"], version="1.37",
                       roleArn=f"arn:aws:iam::{env['TESTBED_ACCOUNT_ID']}:role/eks-cluster",
                       resourcesVpcConfig={"subnetIds": []})
    cluster = eks_backends[env["TESTBED_ACCOUNT_ID"]][env["AWS_REGION"]].clusters[
        env["TESTBED_CLUSTER"]]
    ca = base64.b64encode(Path(env["TESTBED_CA_FILE"]).read_bytes()).decode()

    def configure(status: str = "ACTIVE", ca_data: str | None = None) -> None:
        cluster.status = status
        cluster.endpoint = env["TESTBED_APISERVER"]
        cluster.certificate_authority = {"data": ca if ca_data is None else ca_data}

    configure()
    yield url, configure
    srv.stop()


def test_own_moto_cluster_is_a_working_copy_of_the_testbed_cluster(env, kube, namespace,
                                                                   own_moto):
    """Control for the cases below: ACTIVE with the real endpoint and CA, the reaper
    prunes through the second moto exactly as through the testbed's."""
    url, configure = own_moto
    configure()
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_EKS": url})
    assert run.rc == 0, run.describe()
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(run.cluster, o)
    assert o.due_left == 0


@pytest.mark.parametrize("status", ["CREATING", "UPDATING", "FAILED"])
def test_cluster_not_active_is_skipped_and_left_untouched(env, kube, namespace, own_moto,
                                                          status):
    """A cluster that is not ACTIVE (e.g. UPDATING during a version upgrade) is reported as
    skipped, with its status, and not touched. It is not an invocation failure (the
    product's documented choice: nothing went wrong, the cluster was not ready)."""
    url, configure = own_moto
    configure(status=status)
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_EKS": url})
    assert_nothing_deleted(kube, s)
    assert run.rc == 0, run.describe()
    c = run.cluster
    assert c["status"] == "skipped" and c["errorKind"] == "NotActive", c
    assert status in c["error"], c
    assert c["requests"] == 0, "no Kubernetes request to a cluster that is not ACTIVE"
    warn = fl.find_logs(run.logs, "not ACTIVE", "WARN")
    assert warn and warn[0]["fields"].get("status") == status, run.describe()


def test_ca_that_is_not_pem_fails_the_cluster_naming_the_field(env, kube, namespace, own_moto):
    url, configure = own_moto
    configure(ca_data=base64.b64encode(b"this is not a certificate").decode())
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_EKS": url})
    assert_nothing_deleted(kube, s)
    assert run.rc == 1, run.describe()
    c = run.cluster
    assert c["status"] == "failed" and c["errorKind"] == "ClusterData", c
    assert "certificateAuthority.data" in c["error"] and "PEM" in c["error"], c
    assert fl.find_logs(run.logs, "cannot connect to the cluster", "WARN"), run.describe()
    # Through the Lambda entry point the invocation fails, with an errorType saying why.
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": namespace,
                            "AWS_ENDPOINT_URL_EKS": url}) as fn:
        inv = fn.invoke({})
    assert inv.failed and inv.json["errorType"] == "ClusterFailed.ClusterData", inv.body
    assert "certificateAuthority.data" in inv.json["errorMessage"]
    assert_nothing_deleted(kube, s)


def test_ca_that_is_not_pem_error_quotes_the_value(env, kube, namespace, own_moto):
    url, configure = own_moto
    bad = base64.b64encode(b"this is not a certificate").decode()
    configure(ca_data=bad)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_EKS": url})
    fl.safe(run.rc == 1, run.describe())
    assert bad[:16] in run.cluster["error"], run.cluster["error"]


def test_describe_cluster_unreachable_fails_the_invocation(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    eks_down = {"AWS_ENDPOINT_URL_EKS": closed_port_url()}
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace), eks_down)
    assert_nothing_deleted(kube, s)
    assert run.rc == 1, run.describe()
    c = run.cluster
    assert c["status"] == "failed" and c["errorKind"] == "DescribeClusterFailed", c
    assert "DescribeCluster" in c["error"]
    warn = fl.find_logs(run.logs, "cannot connect to the cluster", "WARN")
    assert warn and "DescribeCluster" in warn[0]["fields"]["error"], run.describe()
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": namespace, **eks_down}) as fn:
        inv = fn.invoke({})
    assert inv.failed and inv.json["errorType"] == "ClusterFailed.DescribeClusterFailed", inv.body
    assert_nothing_deleted(kube, s)


def test_one_failing_cluster_does_not_stop_the_others(env, kube, namespace):
    """Two clusters in one run: the unknown one fails, `etl` is still pruned in full; the
    run signals failure because one cluster could not be processed at all."""
    s = fl.seed(kube, namespace, due_jobs=10, due_pods=2)
    run = fl.run_cli(env, ["run", "--cluster", f"no-such-cluster,{env['TESTBED_CLUSTER']}",
                           "--namespaces", namespace, "--output", "json"])
    assert run.rc == 1, run.describe()
    by_name = {c["cluster"]: c for c in run.report["clusters"]}
    assert by_name["no-such-cluster"]["status"] == "failed"
    good = by_name[env["TESTBED_CLUSTER"]]
    assert good["status"] == "ok", good
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(good, o)
    assert o.due_left == 0


# ---- EC2 and CloudWatch down: pruning goes on -------------------------------------------------

def metrics_in(env: dict, namespace: str) -> set[str]:
    """Metric names moto's CloudWatch holds in `namespace` (query protocol, straight to
    moto: the CBOR bridge is only for the product's SDK)."""
    cw = client("cloudwatch", env["TESTBED_MOTO_URL"], region=env["AWS_REGION"])
    return {m["MetricName"] for m in cw.list_metrics(Namespace=namespace)["Metrics"]}


def test_ec2_unreachable_still_prunes(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=10, due_pods=2)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_EC2": closed_port_url()})
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(run.cluster, o)
    assert run.rc == 0, run.describe()
    assert run.cluster["status"] == "ok"
    assert o.due_left == 0, "every due object deleted although EC2 is down"


def metric_values(env: dict, namespace: str, name: str) -> list[float]:
    """Every value of `name` moto's CloudWatch holds in `namespace` (one run: one value)."""
    cw = client("cloudwatch", env["TESTBED_MOTO_URL"], region=env["AWS_REGION"])
    now = dt.datetime.now(dt.timezone.utc)
    out = cw.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=fl.cluster_dimensions(env),
        StartTime=now - dt.timedelta(minutes=15), EndTime=now + dt.timedelta(minutes=5),
        Period=60, Statistics=["Minimum", "Maximum"])
    return sorted(p["Minimum"] for p in out["Datapoints"])


def test_ec2_unreachable_is_logged_and_subnet_metrics_are_missing(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    metrics_ns = f"EKSReaperFaults/{uuid.uuid4().hex[:8]}"
    # Every metric, so that the subnet ones would show if they were published.
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace,
                                      "--metrics-namespace", metrics_ns, "--metrics-detail", "full"),
                     {"AWS_ENDPOINT_URL_EC2": closed_port_url()})
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(run.cluster, o)
    fl.safe(run.rc == 0, run.describe())
    warn = fl.find_logs(run.logs, "subnet", "WARN")
    assert warn and "DescribeSubnets" in warn[0]["fields"].get("error", ""), run.tail()
    assert run.cluster.get("subnets") is None, run.cluster.get("subnets")
    assert "DescribeSubnets" in (run.cluster.get("subnetsError") or ""), run.cluster
    published = metrics_in(env, metrics_ns)
    assert "JobsDeleted" in published, f"pruning metrics must still be published: {published}"
    assert not published & {"SubnetAvailableIps", "ClusterAvailableIps",
                            "MinSubnetAvailableIps", "MinSubnetFreePercent"}, published
    # the IP alarms' health figure says the subnets were not read: 0, not missing
    assert metric_values(env, metrics_ns, "SubnetsRead") == [0.0], published


def test_cloudwatch_unreachable_still_prunes(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=10, due_pods=2)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_CLOUDWATCH": closed_port_url()})
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(run.cluster, o)
    assert run.rc == 0, run.describe()
    assert o.due_left == 0


def test_cloudwatch_unreachable_is_reported_in_the_report(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=5, due_pods=1)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace),
                     {"AWS_ENDPOINT_URL_CLOUDWATCH": closed_port_url()})
    o = assert_nothing_wrong_deleted(kube, s)
    assert_counts_match(run.cluster, o)
    fl.safe(run.rc == 0, f"a metrics failure must not fail the run:\n{run.describe()}")
    metrics = run.report.get("metrics")
    assert metrics and metrics.get("error") and metrics.get("failed", 0) > 0, metrics
    assert metrics.get("sink") == "cloudwatch" and "PutMetricData" in metrics["error"], metrics
    assert fl.find_logs(run.logs, "metrics not published", "WARN"), run.tail()
    # A metrics outage is not an invocation failure either.
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": env["TESTBED_CLUSTER"],
                            "REAPER_NAMESPACES": namespace,
                            "AWS_ENDPOINT_URL_CLOUDWATCH": closed_port_url()}) as fn:
        inv = fn.invoke({})
    assert not inv.failed and inv.json["metrics"]["error"], inv.body[:1500]
