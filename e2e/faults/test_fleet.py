"""A fleet end to end: 204 EKS clusters over 3 member accounts x 2 Regions (the same names
in every account; `testbed/fleet.py`), each an endpoint of the fleet proxy in front of the
one real apiserver. The real binary under the Lambda RIE discovers them by tag through the
member roles and plans one SQS FIFO message per cluster; testbed/esm.py delivers a few, two
of them clusters of one name in two accounts with a backlog each; every deletion is traced
to the cluster whose endpoint sent it, and a third cluster of that name, with a backlog of
its own and not delivered, is not touched."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading

import pytest

from testbed import fleet
from testbed.esm import EventSourceMapping
from testbed.fleet import FleetCluster
from testbed.fleet_proxy import CLUSTER_LABEL
from testbed.workload import RUN_LABEL, bulk_finished, new_run_id

from . import faultlib as fl

FLEET = fleet.layout(per_place=34, shared=10)
TWIN_A = FleetCluster("111111111111", "us-east-1", "shared-00")
TWIN_B = FleetCluster("222222222222", "us-east-1", "shared-00")
#: Same name again, seeded and never delivered: nothing of it may be deleted.
TWIN_IDLE = FleetCluster("333333333333", "us-east-1", "shared-00")
OTHER = FleetCluster("222222222222", "eu-west-1", "a2-020")
DELIVERED = (TWIN_A, TWIN_B, OTHER)
DUE = 12


@pytest.fixture(scope="module")
def the_fleet(env, reaper_bin):
    with fleet.Fleet(env, FLEET) as f:
        yield f


def seed(kube, ns: str, c: FleetCluster) -> tuple[set[str], set[str]]:
    """`DUE` Jobs of `c` finished two days ago and two finished a minute ago (kept under
    the default 15-minute retention); returns (due uids, kept uids)."""
    uids = []
    for age, count in ((2 * 86400, DUE), (60, 2)):
        run = new_run_id()
        r = bulk_finished(kube, count=count, namespace=ns, run_id=run, fail_ratio=0.0,
                          age_seconds=age, age_jitter_seconds=0, extra_labels=fleet.labels(c))
        fl.require(r.failed == 0, f"seeding failed: {r.errors}")
        uids.append({j["metadata"]["uid"] for j in
                     kube.list("batch/v1", "jobs", ns, label_selector=f"{RUN_LABEL}={run}")})
    return uids[0], uids[1]


class Deletions(threading.Thread):
    """An independent watch of the fleet's Jobs in `ns`: uid -> cluster label of every Job
    the apiserver reports deleted."""

    def __init__(self, kube, ns: str):
        super().__init__(daemon=True)
        self.kube, self.ns = kube, ns
        self.stop = threading.Event()
        self.seen: dict[str, str] = {}
        _, self.rv = kube.list_all("batch/v1", "jobs", ns, label_selector=CLUSTER_LABEL)

    def run(self) -> None:
        for typ, obj in self.kube.watch("batch/v1", "jobs", self.ns, resource_version=self.rv,
                                        label_selector=CLUSTER_LABEL, timeout_seconds=30,
                                        stop=self.stop):
            if typ == "DELETED":
                meta = obj["metadata"]
                self.seen[meta["uid"]] = meta["labels"][CLUSTER_LABEL]


def uids(kube, ns: str) -> set[str]:
    return {j["metadata"]["uid"] for j in kube.list("batch/v1", "jobs", ns)}


def receive_all(sqs, url: str) -> dict[str, list[dict]]:
    """Every message on the queue, taken in flight for 10 minutes: group -> messages."""
    groups: dict[str, list[dict]] = {}
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                  WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
        if not got:
            return groups
        for m in got:
            groups.setdefault(m["Attributes"]["MessageGroupId"], []).append(m)


def test_a_fleet_is_planned_one_message_per_cluster_and_each_run_prunes_its_own_only(
        the_fleet, env, kube, namespace):
    f = the_fleet
    # GIVEN backlogs of three delivered clusters and of an idle twin, in one namespace
    seeded = {c.key: seed(kube, namespace, c) for c in (*DELIVERED, TWIN_IDLE)}
    watch = Deletions(kube, namespace)
    watch.start()
    sqs = f.client("sqs")
    url = sqs.create_queue(QueueName=f"fleet-{secrets.token_hex(3)}.fifo", Attributes={
        "FifoQueue": "true", "VisibilityTimeout": "60"})["QueueUrl"]
    metrics_ns = f"EKSReaperFleet/{secrets.token_hex(4)}"
    settings = {"REAPER_CLUSTER_TAG": "=".join(fleet.TAG),
                "REAPER_DISCOVERY_REGIONS": ",".join(fleet.REGIONS),
                "REAPER_DISCOVERY_ACCOUNTS": ",".join(fleet.ACCOUNTS),
                "REAPER_QUEUE_URL": url, "REAPER_METRICS_NAMESPACE": metrics_ns}
    with fl.LambdaRie(f.aws_env(), settings) as fn:
        # WHEN the schedule invokes the function
        plan = fn.invoke({}, timeout=300)
        assert not plan.failed and plan.json["status"] == "ok", plan.body[-3000:]
        # THEN every tagged cluster, and no untagged one, is one message in its own group
        expected = {c.identity for c in FLEET}
        assert len(expected) == 204
        assert sorted(plan.json["enqueued"]) == sorted(expected), plan.body[-3000:]
        groups = receive_all(sqs, url)
        assert set(groups) == expected
        assert all(len(ms) == 1 for ms in groups.values())
        for group, (m,) in groups.items():
            account, region, name = group.split("/")
            assert json.loads(m["Body"])["cluster"]["name"] == name
            assert json.loads(m["Body"])["cluster"]["region"] == region
        # AND planning deleted nothing
        everything = set().union(*(due | kept for due, kept in seeded.values()))
        assert everything <= uids(kube, namespace)
        assert f.deleted() == []

        # WHEN the mapping delivers three of them (their messages visible again)
        for c in DELIVERED:
            sqs.change_message_visibility(QueueUrl=url, VisibilityTimeout=0,
                                          ReceiptHandle=groups[c.identity][0]["ReceiptHandle"])
        esm = EventSourceMapping(sqs, url, lambda e: fn.invoke(e, timeout=300).json)
        deliveries = esm.drain()

    # THEN each ran its one cluster, in its own account, and deleted its own backlog
    assert sorted(d.records[0]["attributes"]["MessageGroupId"] for d in deliveries) == sorted(
        c.identity for c in DELIVERED)
    for d in deliveries:
        assert d.answer["batchItemFailures"] == [] and d.kept == [], d.answer
        (report,) = d.answer["reports"]
        (c,) = report["clusters"]
        group = d.records[0]["attributes"]["MessageGroupId"]
        assert f"{c['account']}/{c['region']}/{c['cluster']}" == group, c
        assert c["status"] == "ok" and c["jobs"]["deleted"] == DUE, c
        assert c["subnets"]["totalAvailable"] == 502, c["subnets"]

    # AND every deletion went through the endpoint of the cluster that owns the object
    fl.wait_until(lambda: len(watch.seen) >= DUE * len(DELIVERED), 60,
                  what="the watch sees every deletion")
    watch.stop.set()
    by_uid = {d["uid"]: d for d in f.deleted()}
    assert all(d["status"] == 200 for d in by_uid.values()), f.deleted()
    assert set(by_uid) == set(watch.seen), (f.deleted(), watch.seen)
    for uid, label in watch.seen.items():
        assert by_uid[uid]["key"] == label, (uid, by_uid[uid], label)
    for c in DELIVERED:
        due, kept = seeded[c.key]
        assert {u for u, lbl in watch.seen.items() if lbl == c.key} == due, c
    # AND nothing else: the idle twin's backlog and every kept Job are all there
    left = uids(kube, namespace)
    assert seeded[TWIN_IDLE.key][0] | seeded[TWIN_IDLE.key][1] <= left
    assert all(seeded[c.key][1] <= left for c in DELIVERED)

    # AND the two clusters of one name have a metric series each, keyed by their account
    cw = f.client("cloudwatch")
    listed = cw.list_metrics(Namespace=metrics_ns, MetricName="ObjectsDeleted")["Metrics"]
    series = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed]
    accounts = sorted(d["Account"] for d in series if d.get("ClusterName") == TWIN_A.name)
    assert accounts == [TWIN_A.account, TWIN_B.account], series
    now = dt.datetime.now(dt.timezone.utc)
    for c in (TWIN_A, TWIN_B):
        def points(metric: str) -> list[float]:
            return [p["Sum"] for p in cw.get_metric_statistics(
                Namespace=metrics_ns, MetricName=metric, Period=60, Statistics=["Sum"],
                StartTime=now - dt.timedelta(minutes=30), EndTime=now + dt.timedelta(minutes=5),
                Dimensions=[{"Name": "ClusterName", "Value": c.name},
                            {"Name": "Region", "Value": c.region},
                            {"Name": "Account", "Value": c.account}])["Datapoints"]]

        assert points("ObjectsDeleted") == [float(DUE)], c
        assert points("SubnetsRead") == [1.0], c
