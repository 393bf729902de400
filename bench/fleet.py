"""Fleet benchmark: one invocation for the whole fleet against fan-out on SQS.

A fleet of `--per-place` x 3 accounts x 2 Regions clusters (`testbed/fleet.py`, the fleet
proxy as a process of its own) each gets a backlog of `--backlog` Jobs finished two days ago,
sized so that one invocation of `--run-time` seconds cannot delete them all. Then, per mode,
on a fresh backlog in a namespace of the mode's own (`REAPER_NAMESPACES`):

- `one`: the binary under the Lambda RIE, no queue, every cluster discovered by tag and
  pruned `REAPER_CLUSTER_CONCURRENCY` (4) at a time inside one invocation of
  `AWS_LAMBDA_FUNCTION_TIMEOUT` = `--run-time` (`REAPER_DEADLINE_MARGIN` 5 s);
- `fanout-P`: the planner invocation enqueues one FIFO message per cluster (moto SQS); P
  Lambda RIE instances, each fed by its own `testbed/esm.py` poller thread, run one cluster
  per invocation of the same timeout until the queue is empty (P parallel consumers: the
  mapping's maximum concurrency).

Per mode: clusters fully pruned (no Job of theirs left), clusters whose run published
`SubnetsRead` = 1 (their IP metrics exist), Jobs deleted, wall time (from the first
invocation to the last answer). One JSON line per mode in `--out`; a Markdown table on
stdout. Everything runs on one machine: client, proxy, moto, apiserver and etcd share its
cores.

    scripts/testbed up && source "$EKS_REAPER_TESTBED/env.sh"
    python bench/fleet.py --per-place 2 --backlog 400 --run-time 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.faults import faultlib as fl  # noqa: E402
from testbed import fleet  # noqa: E402
from testbed.esm import EventSourceMapping  # noqa: E402
from testbed.kube import Kube  # noqa: E402
from testbed.state import load_env  # noqa: E402
from testbed.workload import bulk_finished, delete_namespace  # noqa: E402


def log(msg: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def seed(kube: Kube, ns: str, clusters: list[fleet.FleetCluster], backlog: int) -> float:
    """`backlog` due Jobs per cluster in `ns`; returns Jobs/s."""
    t0 = time.monotonic()
    for c in clusters:
        r = bulk_finished(kube, count=backlog, namespace=ns, fail_ratio=0.0,
                          extra_labels=fleet.labels(c), prefix=c.name)
        if r.failed:
            raise SystemExit(f"seeding {c.identity} failed: {r.errors[:3]}")
    return len(clusters) * backlog / (time.monotonic() - t0)


def left(kube: Kube, ns: str, c: fleet.FleetCluster) -> int:
    # remainingItemCount is not given for a list with a label selector: count them all.
    return sum(1 for _ in kube.list("batch/v1", "jobs", ns,
                                    label_selector=f"{fleet.fleet_proxy.CLUSTER_LABEL}={c.key}"))


def subnets_read(f: fleet.Fleet, metrics_ns: str, c: fleet.FleetCluster) -> bool:
    now = dt.datetime.now(dt.timezone.utc)
    points = f.client("cloudwatch").get_metric_statistics(
        Namespace=metrics_ns, MetricName="SubnetsRead", Period=60, Statistics=["Maximum"],
        StartTime=now - dt.timedelta(minutes=30), EndTime=now + dt.timedelta(minutes=5),
        Dimensions=[{"Name": "ClusterName", "Value": c.name},
                    {"Name": "Region", "Value": c.region},
                    {"Name": "Account", "Value": c.account}])["Datapoints"]
    return any(p["Maximum"] == 1.0 for p in points)


#: The default 30 s margin is sized for 15-minute invocations; scaled to a 30-s one, 5 s.
DEADLINE_MARGIN = "5s"


def settings(ns: str, metrics_ns: str, queue_url: str | None) -> dict[str, str]:
    out = {"REAPER_DEADLINE_MARGIN": DEADLINE_MARGIN,"REAPER_CLUSTER_TAG": "=".join(fleet.TAG),
           "REAPER_DISCOVERY_REGIONS": ",".join(fleet.REGIONS),
           "REAPER_DISCOVERY_ACCOUNTS": ",".join(fleet.ACCOUNTS),
           "REAPER_NAMESPACES": ns, "REAPER_METRICS_NAMESPACE": metrics_ns,
           "REAPER_CLUSTER_CONCURRENCY": "4"}
    if queue_url:
        out["REAPER_QUEUE_URL"] = queue_url
    return out


def run_one(f: fleet.Fleet, ns: str, metrics_ns: str, run_time: int) -> dict:
    with fl.LambdaRie(f.aws_env(), settings(ns, metrics_ns, None), timeout_seconds=run_time) as fn:
        t0 = time.monotonic()
        answer = fn.invoke({}, timeout=run_time + 120)
        wall = time.monotonic() - t0
        # A run with clusters it could not process is a function error (its `errorType`
        # names the kind): the report is then in the summary log line.
        report = answer.json if not answer.failed else fl.summary_report(fn.output())
    if not isinstance(report, dict):
        raise SystemExit(f"no report: {answer.body[-2000:]}")
    statuses = [c.get("status") for c in report.get("clusters", [])]
    return {"wallSeconds": round(wall, 1), "invocations": 1,
            "errorType": (answer.json or {}).get("errorType") if answer.failed else None,
            "statuses": {s: statuses.count(s) for s in set(statuses)}}


def run_fanout(f: fleet.Fleet, ns: str, metrics_ns: str, run_time: int, parallel: int) -> dict:
    sqs = f.client("sqs")
    url = sqs.create_queue(QueueName=f"bench-{secrets.token_hex(3)}.fifo", Attributes={
        "FifoQueue": "true", "VisibilityTimeout": str(run_time + 60)})["QueueUrl"]
    env = settings(ns, metrics_ns, url)
    ries = [fl.LambdaRie(f.aws_env(), env, timeout_seconds=run_time) for _ in range(parallel)]
    for r in ries:
        r.__enter__()
    statuses: list[str] = []
    lock = threading.Lock()
    try:
        t0 = time.monotonic()
        plan = ries[0].invoke({}, timeout=run_time + 120)
        if plan.failed or not isinstance(plan.json, dict):
            raise SystemExit(f"planner failed: {plan.body[-2000:]}\n{ries[0].output()[-3000:]}")

        def consume(rie: fl.LambdaRie) -> None:
            esm = EventSourceMapping(sqs, url, lambda e: rie.invoke(e, timeout=run_time + 120).json,
                                     visibility_timeout=run_time + 60)
            for d in esm.drain(limit=10_000):
                for rep in (d.answer or {}).get("reports", []):
                    with lock:
                        statuses.extend(c.get("status") for c in rep.get("clusters", []))

        threads = [threading.Thread(target=consume, args=(r,)) for r in ries]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    finally:
        for r in ries:
            r.__exit__()
    return {"wallSeconds": round(wall, 1), "invocations": 1 + len(statuses),
            "planned": len(plan.json.get("enqueued", [])),
            "statuses": {s: statuses.count(s) for s in set(statuses)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-place", type=int, default=2,
                    help="clusters per account and Region (x 3 accounts x 2 Regions)")
    ap.add_argument("--backlog", type=int, default=400, help="due Jobs per cluster")
    ap.add_argument("--run-time", type=int, default=30,
                    help="AWS_LAMBDA_FUNCTION_TIMEOUT of every invocation, seconds")
    ap.add_argument("--modes", default="one,fanout-1,fanout-2,fanout-4")
    ap.add_argument("--out", type=Path, default=Path("bench/results/fleet.jsonl"))
    a = ap.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    env = load_env()
    if env is None:
        raise SystemExit("testbed is not up: scripts/testbed up")
    kube = Kube.from_kubeconfig(env["KUBECONFIG"])
    clusters = fleet.layout(per_place=a.per_place, shared=1)
    rows = []
    with fleet.Fleet(env, clusters, proxy_process=True) as f:
        log(f"{len(clusters)} clusters registered; binary {fl.reaper_binary()}")
        for mode in a.modes.split(","):
            ns = f"fleet-bench-{mode}-{secrets.token_hex(2)}"
            metrics_ns = f"EKSReaperFleetBench/{secrets.token_hex(4)}"
            rate = seed(kube, ns, clusters, a.backlog)
            log(f"{mode}: seeded {len(clusters)} x {a.backlog} in {ns} at {rate:.0f} Jobs/s")
            time.sleep(5)  # let the controllers settle after seeding
            load = os.getloadavg()[0]
            if mode == "one":
                res = run_one(f, ns, metrics_ns, a.run_time)
            else:
                res = run_fanout(f, ns, metrics_ns, a.run_time, int(mode.split("-")[1]))
            remaining = {c.identity: left(kube, ns, c) for c in clusters}
            row = {"mode": mode, "clusters": len(clusters), "backlog": a.backlog,
                   "runTimeSeconds": a.run_time, **res,
                   "fullyPruned": sum(1 for n in remaining.values() if n == 0),
                   "subnetsRead": sum(1 for c in clusters if subnets_read(f, metrics_ns, c)),
                   "jobsDeleted": len(clusters) * a.backlog - sum(remaining.values()),
                   "loadBefore": round(load, 1), "seedJobsPerSecond": round(rate),
                   "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            log(json.dumps(row))
            rows.append(row)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            with a.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
            delete_namespace(kube, ns, wait=600)  # its leftovers must not load the next mode
    print("| Mode | Clusters fully pruned | Clusters with IP metrics (SubnetsRead=1) "
          "| Jobs deleted | Invocations | Wall time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        n = r["clusters"]
        print(f"| {r['mode']} | {r['fullyPruned']} / {n} | {r['subnetsRead']} / {n} "
              f"| {r['jobsDeleted']:,} / {n * r['backlog']:,} | {r['invocations']} "
              f"| {r['wallSeconds']} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
