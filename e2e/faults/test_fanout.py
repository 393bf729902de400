"""Fan-out on SQS end to end: the real binary under the Lambda RIE plans the fleet onto a
FIFO queue in moto, testbed/esm.py plays the event source mapping and invokes the same
function per message, and the cluster is pruned; an alarm's emergency run and a message
the function cannot read go through the same queue."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from testbed import aws as tb_aws
from testbed.esm import EventSourceMapping, bodies

from . import faultlib as fl


def fifo_queue(env) -> tuple[object, str]:
    sqs = tb_aws.client("sqs", env["AWS_ENDPOINT_URL"], region=env["AWS_REGION"])
    name = f"eks-reaper-{secrets.token_hex(3)}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={
        "FifoQueue": "true", "VisibilityTimeout": "60"})["QueueUrl"]
    return sqs, url


def alarm_event(alarm: str, cluster: str) -> dict:
    return {
        "version": "0", "id": secrets.token_hex(8),
        "detail-type": "CloudWatch Alarm Contributor State Change",
        "source": "aws.cloudwatch", "account": "123456789012", "time": fl.now_rfc3339(0),
        "region": "us-east-1", "resources": [],
        "detail": {"alarmName": alarm, "state": {"value": "ALARM"},
                   "alarmContributor": {"id": "c1", "attributes": {"ClusterName": cluster}}},
    }


def test_the_planner_enqueues_one_run_per_cluster_and_each_message_prunes_it(env, kube,
                                                                             namespace):
    s = fl.seed(kube, namespace, due_jobs=8, due_pods=2)
    sqs, url = fifo_queue(env)
    cluster = env["TESTBED_CLUSTER"]
    settings = {"REAPER_CLUSTERS": cluster, "REAPER_NAMESPACES": namespace,
                "REAPER_QUEUE_URL": url}
    with fl.LambdaRie(env, settings) as fn:
        # WHEN the schedule invokes the function
        plan = fn.invoke({})
        assert not plan.failed, plan.body
        # THEN it only plans: one message for the cluster, in the cluster's own group
        own = f"self/{env['AWS_REGION']}/{cluster}"
        assert plan.json["status"] == "ok" and plan.json["enqueued"] == [own], plan.body
        fl.assert_nothing_deleted(kube, s)
        # AND a retried invocation with the same request id would enqueue nothing twice:
        # a second schedule slot is a new request id, so it enqueues again
        assert fn.invoke({}).json["enqueued"] == [own]

        esm = EventSourceMapping(sqs, url, lambda e: fn.invoke(e).json,
                                 region=env["AWS_REGION"])
        # WHEN the event source mapping delivers the queue, one message at a time
        deliveries = esm.drain()
        # THEN each message ran that one cluster, the FIFO group in order, and was deleted
        assert len(deliveries) == 2, [d.answer for d in deliveries]
        first = deliveries[0].answer
        assert first["batchItemFailures"] == [], first
        c = first["reports"][0]["clusters"][0]
        assert c["cluster"] == cluster and c["status"] == "ok", c
        for d in deliveries:
            assert d.kept == [] and len(d.deleted) == 1
            assert d.records[0]["attributes"]["MessageGroupId"] == own
        o = fl.assert_nothing_wrong_deleted(kube, s)
        assert o.due_left == 0, o
        assert bodies(deliveries)[0] == {"cluster": {"name": cluster,
                                                     "region": env["AWS_REGION"]},
                                         "dryRun": "off"}


def test_an_alarm_enqueues_an_emergency_run_of_its_cluster(env, kube, namespace):
    sqs, url = fifo_queue(env)
    cluster = env["TESTBED_CLUSTER"]
    settings = {"REAPER_CLUSTERS": cluster, "REAPER_NAMESPACES": namespace,
                "REAPER_QUEUE_URL": url}
    with fl.LambdaRie(env, settings) as fn:
        plan = fn.invoke(alarm_event("eks-reaper-subnet-free-percent-low", cluster))
        assert plan.json["emergency"] == "eks-reaper-subnet-free-percent-low", plan.body
        esm = EventSourceMapping(sqs, url, lambda e: fn.invoke(e).json,
                                 region=env["AWS_REGION"])
        deliveries = esm.drain()
    assert len(deliveries) == 1
    body = bodies(deliveries)[0]
    assert body["emergency"] == {"alarm": "eks-reaper-subnet-free-percent-low"}, body
    report = deliveries[0].answer["reports"][0]
    assert report["emergency"]["alarm"] == "eks-reaper-subnet-free-percent-low", report
    assert report["clusters"][0]["lowHeadroom"] is True, report


def test_a_message_the_function_cannot_read_stays_on_the_queue(env, namespace):
    sqs, url = fifo_queue(env)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"cluster": "etl"}),
                     MessageGroupId="broken", MessageDeduplicationId="broken-1")
    with fl.LambdaRie(env, {"REAPER_NAMESPACES": namespace, "REAPER_QUEUE_URL": url}) as fn:
        esm = EventSourceMapping(sqs, url, lambda e: fn.invoke(e).json,
                                 region=env["AWS_REGION"])
        d = esm.poll_once()
        logs = fl.parse_logs(fn.output())
    assert d is not None and d.kept == [d.records[0]["messageId"]], d
    assert d.answer["batchItemFailures"] == [{"itemIdentifier": d.records[0]["messageId"]}]
    assert fl.find_logs(logs, "queue message not understood", "ERROR"), fn.output()[-2000:]
    # It is in flight (invisible) until its visibility timeout, then delivered again.
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1", attrs


def test_the_planner_names_the_planned_clusters_that_published_no_run(env):
    """The plan reads which clusters it planned before the window (RunPlanned) published no
    run in it (RunSucceeded, any value): those are named in its report and log, and counted
    in ClustersNotReported for the clusters-not-reported alarm."""
    _, url = fifo_queue(env)
    region = env["AWS_REGION"]
    ns = f"EKSReaperFanout/{secrets.token_hex(4)}"
    cw = tb_aws.client("cloudwatch", env["TESTBED_MOTO_URL"], region=region)
    now = dt.datetime.now(dt.timezone.utc)

    def put(metric: str, cluster: str, seconds_ago: int, value: float = 1.0) -> None:
        cw.put_metric_data(Namespace=ns, MetricData=[{
            "MetricName": metric, "Value": value, "Unit": "Count",
            "Timestamp": now - dt.timedelta(seconds=seconds_ago),
            "Dimensions": fl.cluster_dimensions(env, cluster)}])

    # Names of this test's own: moto's GetMetricData ignores the namespace of a query with
    # dimensions, so another run's clusters of the same names would count here.
    tag = secrets.token_hex(3)
    reports, failed_run, silent, silent_since, new = (
        f"{c}-{tag}" for c in ("reports", "failed-run", "silent", "silent-since", "new"))
    # GIVEN a window of 5 one-minute runs; four clusters planned 7 minutes ago, before it
    for cluster in (reports, failed_run, silent, silent_since):
        put("RunPlanned", cluster, 420)
    put("RunSucceeded", reports, 60)
    put("RunSucceeded", failed_run, 60, value=0.0)  # a failed run still reports
    put("RunSucceeded", silent_since, 420)  # it reported before the window only
    settings = {"REAPER_CLUSTERS": ",".join([reports, failed_run, silent, silent_since, new]),
                "REAPER_QUEUE_URL": url, "REAPER_METRICS_NAMESPACE": ns,
                "REAPER_SCHEDULE_INTERVAL": "1m", "REAPER_NOT_REPORTED_RUNS": "5"}
    with fl.LambdaRie(env, settings) as fn:
        # WHEN the schedule invokes the planner
        plan = fn.invoke({})
        logs = fl.parse_logs(fn.output())
    # THEN it names exactly the two silent ones; `new` was not planned before the window
    assert plan.json["status"] == "ok" and len(plan.json["enqueued"]) == 5, plan.body
    named = [f"self/{region}/{silent}", f"self/{region}/{silent_since}"]
    assert plan.json["reporting"] == {"windowSeconds": 300, "notReported": named}, plan.body
    warn = fl.find_logs(logs, "clusters planned before the window", "WARN")
    assert warn and warn[0]["fields"]["clusters"] == ",".join(named), fn.output()[-2000:]

    def points(metric: str, dims: list[dict]) -> list[float]:
        out = cw.get_metric_statistics(
            Namespace=ns, MetricName=metric, Dimensions=dims, Period=60,
            StartTime=now - dt.timedelta(minutes=1), EndTime=now + dt.timedelta(minutes=5),
            Statistics=["Maximum"])
        return [p["Maximum"] for p in out["Datapoints"]]

    # AND it published the count for the alarm, one fleet-wide series
    assert points("ClustersNotReported", []) == [2.0]
    # AND this plan's RunPlanned for each cluster, the new one included
    for cluster in (reports, new):
        assert points("RunPlanned", fl.cluster_dimensions(env, cluster)) == [1.0], cluster
