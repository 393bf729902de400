"""What one run costs the control plane: the `cost` step of bench/run.py.

For one run of a contender it measures

- the CPU seconds (utime + stime, `/proc/<pid>/stat`) of the testbed's kube-apiserver and
  etcd, and of kube-controller-manager (whose garbage collector deletes a drained Job's
  pods), before and after;
- the requests the apiserver counted (`apiserver_request_total`, all clients) and the
  response bytes it sent for LIST/GET (`apiserver_response_sizes_sum`), beside the
  client's own count (the report's `requests` and `bytesReceived`; the floor's `requests`).

Why `/metrics` for requests rather than an audit log or a counting proxy: it is what the
apiserver counts anyway, so reading it adds nothing to the CPU being measured (an audit
backend writes a line per request inside the apiserver, a proxy adds a TLS hop the reaper
would have to trust); the one drawback, that it counts every client, is measured: an idle
window of the same length before each run gives the background (controllers' leases and
status writes), and in a steady-state run no other client lists or deletes Jobs or Pods.

Scenarios, each contender side by side in the same invocation, the order alternating
between rounds:

  steady    nothing due: running Fargate pods (the Fargate profile's label and scheduler,
            bound to a `fargate-` node, status written here as the stand-in's kubelet
            would), running Jobs (one running Fargate pod each) and failed Jobs inside their
            retention (one finished EC2 pod each). Cluster-wide runs.
  backlog   N finished Jobs with one finished pod each, freshly seeded per contender; the
            window runs until the garbage collector has removed the pods. The raw floor
            (examples/raw_floor.rs) is a contender here.

CPU is reported gross (the window) and net (less the idle window's rate times the run's
wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import re
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from testbed import workload
from testbed.kube import Kube, now_rfc3339

JSON = dict[str, Any]
CLK_TCK = os.sysconf("SC_CLK_TCK")
FARGATE_PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"
# One node stands for the per-pod Fargate nodes: the pods only carry its name, and PodGC
# deletes pods bound to a node that does not exist.
FARGATE_NODE = "fargate-ip-10-0-250-1.ec2.internal"
PROCESSES = ("kube-apiserver", "etcd", "kube-controller-manager")


# ---- what is measured --------------------------------------------------------------------

def control_plane_pids(state: str) -> dict[str, int]:
    """The testbed's apiserver, etcd and controller-manager, found by their command line
    (the binary's name and this testbed's state dir)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0]:
            continue
        exe = os.path.basename(argv[0].decode(errors="replace"))
        if exe in PROCESSES and state.encode() in b" ".join(argv):
            found[exe] = int(entry.name)
    missing = [p for p in PROCESSES if p not in found]
    if missing:
        raise SystemExit(f"testbed processes not found under {state}: {missing}")
    return found


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """utime + stime of each process, in seconds."""
    out = {}
    for name, pid in pids.items():
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat
    return out


def snapshot(run: Any, kube: Kube, pids: dict[str, int]) -> JSON:
    return {"t": time.monotonic(), "cpu": cpu_seconds(pids), "metrics": run.metrics(kube)}


def window(before: JSON, after: JSON) -> JSON:
    """CPU per process, server-counted requests and LIST/GET bytes between two snapshots."""
    cpu = {k: round(after["cpu"][k] - before["cpu"][k], 2) for k in after["cpu"]}
    requests: dict[str, int] = {}
    sent: dict[str, int] = {}
    for key, value in after["metrics"].items():
        d = value - before["metrics"].get(key, 0.0)
        if d <= 0:
            continue
        name, labels = key
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if name == "apiserver_request_total":
            k = f"{lab['verb']} {lab.get('resource', '')}{'/' + lab['subresource'] if lab.get('subresource') else ''}"
            requests[k] = requests.get(k, 0) + int(d)
        elif name == "apiserver_response_sizes_sum" and lab.get("verb") in ("LIST", "GET"):
            k = f"{lab['verb']} {lab.get('resource', '')}"
            sent[k] = sent.get(k, 0) + int(d)
    return {"seconds": round(after["t"] - before["t"], 2), "cpu": cpu,
            "apiserverEtcdCpu": round(cpu["kube-apiserver"] + cpu["etcd"], 2),
            "requests": dict(sorted(requests.items())), "requestTotal": sum(requests.values()),
            "bytesSent": dict(sorted(sent.items())), "bytesSentTotal": sum(sent.values())}


def idle_rate(run: Any, kube: Kube, pids: dict[str, int], seconds: float) -> JSON:
    """The background over a quiet window: CPU seconds per second and requests per second."""
    before = snapshot(run, kube, pids)
    time.sleep(seconds)
    w = window(before, snapshot(run, kube, pids))
    return {"seconds": w["seconds"],
            "apiserverEtcdCpuPerSecond": round(w["apiserverEtcdCpu"] / w["seconds"], 4),
            "requestsPerSecond": round(w["requestTotal"] / w["seconds"], 2)}


def measured(w: JSON, idle: JSON) -> JSON:
    net = w["apiserverEtcdCpu"] - idle["apiserverEtcdCpuPerSecond"] * w["seconds"]
    return {**w, "idle": idle, "apiserverEtcdCpuNet": round(max(net, 0.0), 2)}


# ---- fixtures ----------------------------------------------------------------------------

def ensure_fargate_node(kube: Kube) -> None:
    if kube.get_or_none("v1", "nodes", FARGATE_NODE) is None:
        kube.create("v1", "nodes", {"metadata": {"name": FARGATE_NODE, "labels": {
            "eks.amazonaws.com/compute-type": "fargate"}}})


def running_fargate_pod(name: str, namespace: str, run_id: str, owner: JSON | None) -> JSON:
    labels = {FARGATE_PROFILE_LABEL: "fp-default", workload.RUN_LABEL: run_id,
              workload.KIND_LABEL: "running"}
    if owner:
        labels.update({"batch.kubernetes.io/controller-uid": owner["metadata"]["uid"],
                       "batch.kubernetes.io/job-name": owner["metadata"]["name"]})
    body = workload.pod_manifest(name, namespace, command=["sleep", "infinity"],
                                 node=FARGATE_NODE, labels=labels,
                                 annotations={workload.KUBELET: "none",
                                              "CapacityProvisioned": "0.25vCPU 0.5GB",
                                              "Logging": "LoggingEnabled"},
                                 owner=owner)
    body["spec"]["schedulerName"] = "fargate-scheduler"
    return body


def running_status(pod: JSON, ip: str) -> JSON:
    now = now_rfc3339()
    return {"phase": "Running", "startTime": now, "hostIP": ip, "hostIPs": [{"ip": ip}],
            "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady",
                                     "Ready")],
            "containerStatuses": [{
                "name": c["name"], "image": c["image"], "imageID": "", "ready": True,
                "started": True, "restartCount": 0,
                "containerID": f"containerd://{secrets.token_hex(32)}",
                "state": {"running": {"startedAt": now}}} for c in pod["spec"]["containers"]]}


def seed_steady(run: Any, kube: Kube, ns: str, jobs: int, bare_pods: int,
                retained: int) -> JSON:
    """`jobs` running Jobs with one running Fargate pod each, `bare_pods` running Fargate
    pods with no owner, `retained` failed Jobs (an hour ago) with one finished EC2 pod each;
    reused when the namespace already holds them."""
    have = run.count(kube, "v1", "pods", ns)
    want = jobs + bare_pods + retained
    if have >= want:
        return {"seed": "reused", "pods": have, "jobs": run.count(kube, "batch/v1", "jobs", ns)}
    kube.ensure_namespace(ns)
    kube.wait_for_pod_admission(ns)
    ensure_fargate_node(kube)
    run_id = workload.new_run_id()
    t0 = time.monotonic()

    def one(i: int) -> None:
        owner = None
        if i < jobs:
            body = workload.job_manifest(f"running-{run_id}-{i:05d}", ns, run_seconds=-1,
                                         labels={workload.RUN_LABEL: run_id},
                                         managed_by=workload.BULK_MANAGER)
            owner = kube.create("batch/v1", "jobs", body, namespace=ns)
            kube.patch_status("batch/v1", "jobs", owner["metadata"]["name"], {"status": {
                "startTime": now_rfc3339(), "active": 1, "ready": 1, "terminating": 0,
                "uncountedTerminatedPods": {}}}, ns)
        pod = kube.create("v1", "pods", running_fargate_pod(
            f"fargate-{run_id}-{i:05d}", ns, run_id, owner), namespace=ns)
        ip = f"10.1.{i // 250}.{i % 250 + 2}"
        kube.patch_status("v1", "pods", pod["metadata"]["name"],
                          {"status": running_status(pod, ip)}, ns,
                          patch_type="application/strategic-merge-patch+json")

    _, errors = kube.bulk(one, range(jobs + bare_pods), workers=32)
    if errors:
        raise SystemExit(f"seeding running Fargate pods failed: {errors[:3]}")
    res = run.seed(kube, ns, retained, "direct", age_seconds=3600, age_jitter_seconds=0,
                   fail_ratio=1.0, prefix="retained")
    return {"seed": "new", "runningJobs": jobs, "runningFargatePods": jobs + bare_pods,
            "retainedJobs": res["jobs"], "seedSeconds": round(time.monotonic() - t0, 1)}


def drop_steady(kube: Kube, ns: str) -> None:
    """The running pods have no kubelet to confirm a graceful deletion: deleted with grace 0
    first, or they would stay Terminating (and count as stuck in every later run)."""
    kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods", timeout=300,
                 body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
    kube.delete("v1", "namespaces", ns, missing_ok=True)


# ---- the step ----------------------------------------------------------------------------

def contender_binary(a: argparse.Namespace, run: Any, who: str) -> Path:
    return Path(a.baseline_bin) if who == "baseline" else run.REAPER_BIN


def one_run(a: argparse.Namespace, run: Any, env: JSON, kube: Kube, pids: dict[str, int],
            scenario: str, who: str, rep: int, namespace: str | None, fixture: JSON) -> None:
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    tag = f"{a.label}-{scenario}-{who}-{rep}"
    idle = idle_rate(run, kube, pids, a.idle_seconds)
    before = snapshot(run, kube, pids)
    if who == "floor":
        r = run.run_floor(env, logs, tag, namespace, a.concurrency)
    else:
        r = run.run_reaper(env, logs, tag, namespace, a.concurrency,
                           extra=shlex.split(a.reaper_args),
                           binary=contender_binary(a, run, who))
        report = json.loads((logs / f"{tag}.json").read_text() or "{}")
        c = (report.get("clusters") or [{}])[0]
        r["bytesReceived"] = c.get("bytesReceived")
        r["concurrency"] = c.get("concurrency")
    if scenario == "backlog":
        r["podsGoneAfterSeconds"] = run.wait_until_zero(kube, "v1", "pods", namespace, 1800)
    w = measured(window(before, snapshot(run, kube, pids)), idle)
    deleted = r.get("deleted") or 0
    row = {"step": "cost", "label": a.label, "scenario": scenario, "who": who, "rep": rep,
           **fixture, "client": {k: r.get(k) for k in (
               "rc", "wallSeconds", "cpuSeconds", "maxRssKB", "status", "requests",
               "bytesReceived", "throttled", "deleted", "jobsSeen", "podsSeen", "binary",
               "podsGoneAfterSeconds", "concurrency")},
           "reaperArgs": a.reaper_args,
           "server": w, "loadavg": run.loadavg()}
    if deleted:
        row["perDeletion"] = {
            "apiserverEtcdCpuMs": round(1000 * w["apiserverEtcdCpuNet"] / deleted, 3),
            "controllerManagerCpuMs": round(1000 * w["cpu"]["kube-controller-manager"]
                                            / deleted, 3),
            "serverRequests": round(w["requestTotal"] / deleted, 2)}
    run.record(Path(a.out), row)


def step_cost(a: argparse.Namespace, run: Any) -> None:
    env = run.load_env()
    kube = run.admin(env)
    state = os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed")
    pids = control_plane_pids(state)
    for path in (a.baseline_bin, run.REAPER_BIN):
        if not Path(path).is_file():
            raise SystemExit(f"no binary at {path}")
    scenarios = a.scenarios.split(",")
    if "steady" in scenarios:
        ns = f"bench-{a.label}-steady"
        fixture = seed_steady(run, kube, ns, a.running_jobs, a.running_pods - a.running_jobs,
                              a.retained_jobs)
        run.log(f"steady fixture: {fixture}")
        run.quiet(kube)
        for rep in range(1, a.repeats + 1):
            order = ["baseline", "current"] if rep % 2 else ["current", "baseline"]
            for who in order:
                one_run(a, run, env, kube, pids, "steady", who, rep, None, fixture)
        if not a.keep:
            drop_steady(kube, ns)
    if "backlog" in scenarios:
        contenders = ["baseline", "current", "floor"]
        for rep in range(1, a.backlog_repeats + 1):
            order = contenders if rep % 2 else contenders[::-1]
            for who in order:
                ns = f"bench-{a.label}-backlog-{who}-{rep}"
                fixture = run.seed(kube, ns, a.backlog, "direct")
                run.quiet(kube)
                one_run(a, run, env, kube, pids, "backlog", who, rep, ns, fixture)
                kube.delete("v1", "namespaces", ns, missing_ok=True)


def add_parser(sub: Any) -> None:
    c = sub.add_parser("cost", help="control-plane cost of one run, two builds side by side")
    c.add_argument("--label", default="cost")
    c.add_argument("--baseline-bin", required=True,
                   help="the previous build's release binary (e.g. built from a worktree of "
                        "main); the current one is BENCH_REAPER_BIN")
    c.add_argument("--scenarios", default="steady,backlog")
    c.add_argument("--running-pods", type=int, default=10000, help="running Fargate pods")
    c.add_argument("--running-jobs", type=int, default=5000,
                   help="running Jobs (each owns one of the running Fargate pods)")
    c.add_argument("--retained-jobs", type=int, default=2000)
    c.add_argument("--backlog", type=int, default=10000)
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--backlog-repeats", type=int, default=3)
    c.add_argument("--idle-seconds", type=float, default=5.0)
    c.add_argument("--concurrency", type=int, default=16)
    c.add_argument("--reaper-args", default="",
                   help="more flags for both reaper builds, e.g. '--drain-latency-target off' "
                        "to compare a drain with the raw loop at the same concurrency")
    c.add_argument("--keep", action="store_true", help="keep the steady-state fixture")


def summary(rows: list[JSON]) -> None:
    cost = [r for r in rows if r["step"] == "cost"]
    for label in sorted({r["label"] for r in cost}):
        for scenario in ("steady", "backlog"):
            group = [r for r in cost if r["label"] == label and r["scenario"] == scenario]
            if group:
                print_table(label, scenario, group)


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def print_table(label: str, scenario: str, group: list[JSON]) -> None:
    f = group[0]
    print(f"\n### cost {label}: {scenario} ({json.dumps({k: f[k] for k in f if k in ('runningJobs', 'runningFargatePods', 'retainedJobs', 'jobs', 'pods')})})\n")
    cols = [("apiserver+etcd CPU s (net)", lambda r: r["server"]["apiserverEtcdCpuNet"]),
            ("apiserver+etcd CPU s (gross)", lambda r: r["server"]["apiserverEtcdCpu"]),
            ("etcd CPU s", lambda r: r["server"]["cpu"]["etcd"]),
            ("controller-manager CPU s", lambda r: r["server"]["cpu"]["kube-controller-manager"]),
            ("requests (server, all clients)", lambda r: r["server"]["requestTotal"]),
            ("requests (client)", lambda r: r["client"]["requests"]),
            ("LIST+GET bytes sent (server)", lambda r: r["server"]["bytesSentTotal"]),
            ("bytes received (client)", lambda r: r["client"].get("bytesReceived")),
            ("wall s", lambda r: r["client"]["wallSeconds"]),
            ("deleted", lambda r: r["client"]["deleted"])]
    whos = [w for w in ("baseline", "current", "floor") if any(r["who"] == w for r in group)]
    print("| median of rounds | " + " | ".join(whos) + " | current ÷ baseline |")
    print("|---|" + "---|" * (len(whos) + 1))
    for name, get in cols:
        vals = {}
        for w in whos:
            xs = [get(r) for r in group if r["who"] == w and get(r) is not None]
            vals[w] = med(xs) if xs else None
        ratio = (round(vals["current"] / vals["baseline"], 3)
                 if vals.get("baseline") and vals.get("current") is not None else "")
        print(f"| {name} | " + " | ".join(str(vals[w]) for w in whos) + f" | {ratio} |")
    if scenario == "backlog":
        print("| apiserver+etcd CPU ms per deletion | " + " | ".join(
            str(med([r["perDeletion"]["apiserverEtcdCpuMs"] for r in group
                     if r["who"] == w and r.get("perDeletion")])) for w in whos) + " | |")
    rounds = sorted({r["rep"] for r in group})
    print(f"\nrounds: {len(rounds)}; per round, apiserver+etcd CPU s (net): " + "; ".join(
        f"{r['who']} {r['server']['apiserverEtcdCpuNet']}" for r in group))


# ---- list variants, one by one -----------------------------------------------------------

META = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
PROTOBUF = "application/vnd.kubernetes.protobuf"
FINISHED = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown"
UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed"
# name: (path, query, Accept, gzip). `big` lists ask for everything in one page (protobuf
# pages are not followed: their continue token is not parsed here).
LIST_VARIANTS = {
    "jobs json": ("/apis/batch/v1/jobs", {}, "application/json", False),
    "jobs json gzip": ("/apis/batch/v1/jobs", {}, "application/json", True),
    "jobs metadata": ("/apis/batch/v1/jobs", {}, META, False),
    "jobs json rv=0": ("/apis/batch/v1/jobs", {"resourceVersion": "0",
                                               "resourceVersionMatch": "NotOlderThan"},
                       "application/json", False),
    "jobs json big": ("/apis/batch/v1/jobs", {"limit": "1000000"}, "application/json", False),
    "jobs protobuf big": ("/apis/batch/v1/jobs", {"limit": "1000000"}, PROTOBUF, False),
    "fargate pods json": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL},
                          "application/json", False),
    "fargate pods json big": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL,
                                               "limit": "1000000"}, "application/json", False),
    "fargate pods protobuf big": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL,
                                                   "limit": "1000000"}, PROTOBUF, False),
    "fargate pods protobuf metadata big": ("/api/v1/pods", {
        "labelSelector": FARGATE_PROFILE_LABEL, "limit": "1000000"},
        PROTOBUF + ";as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", False),
    "fargate pods protobuf big gzip": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL,
                                                        "limit": "1000000"}, PROTOBUF, True),
    "jobs protobuf big gzip": ("/apis/batch/v1/jobs", {"limit": "1000000"}, PROTOBUF, True),
    "fargate finished json": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL,
                                               "fieldSelector": FINISHED},
                              "application/json", False),
    "fargate unfinished metadata": ("/api/v1/pods", {"labelSelector": FARGATE_PROFILE_LABEL,
                                                     "fieldSelector": UNFINISHED}, META, False),
    "fargate unfinished metadata gzip": ("/api/v1/pods", {
        "labelSelector": FARGATE_PROFILE_LABEL, "fieldSelector": UNFINISHED}, META, True),
    "other finished json": ("/api/v1/pods", {"labelSelector": "!" + FARGATE_PROFILE_LABEL,
                                             "fieldSelector": FINISHED},
                            "application/json", False),
    "other finished json gzip": ("/api/v1/pods", {
        "labelSelector": "!" + FARGATE_PROFILE_LABEL, "fieldSelector": FINISHED},
        "application/json", True),
}


def list_once(session: Any, api: str, variant: tuple, page_size: int) -> tuple[int, int, int]:
    """Every page of one list as the reaper's identity: (objects, bytes on the wire, pages)."""
    import gzip

    path, query, accept, compressed = variant
    headers = {"Accept": accept, "Accept-Encoding": "gzip" if compressed else "identity"}
    cont, objects, wire, pages = None, 0, 0, 0
    while True:
        params = {"limit": str(page_size), **query, **({"continue": cont} if cont else {})}
        r = session.get(api + path, params=params, headers=headers, timeout=300, stream=True)
        r.raise_for_status()
        raw = r.raw.read(decode_content=False)
        wire, pages = wire + len(raw), pages + 1
        if accept.startswith(PROTOBUF):
            return objects, wire, pages
        body = gzip.decompress(raw) if r.headers.get("Content-Encoding") == "gzip" else raw
        page = json.loads(body)
        objects += len(page.get("items") or [])
        cont = page["metadata"].get("continue")
        if not cont:
            return objects, wire, pages


def step_lists(a: argparse.Namespace, run: Any) -> None:
    """Each list variant on the fixture as it stands, --repeats rounds interleaved: the
    apiserver + etcd CPU of one full list and its bytes on the wire."""
    env = run.load_env()
    kube = run.admin(env)
    pids = control_plane_pids(os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed"))
    session = run.reaper_session(env)
    names = a.variants.split(",") if a.variants else list(LIST_VARIANTS)
    for rep in range(1, a.repeats + 1):
        for name in names:
            before = snapshot(run, kube, pids)
            objects, wire, pages = list_once(session, env["TESTBED_APISERVER"],
                                             LIST_VARIANTS[name], a.page_size)
            w = window(before, snapshot(run, kube, pids))
            run.record(Path(a.out), {"step": "cost-lists", "label": a.label, "variant": name,
                                     "rep": rep, "pageSize": a.page_size, "objects": objects,
                                     "wireBytes": wire, "pages": pages,
                                     "apiserverEtcdCpu": w["apiserverEtcdCpu"],
                                     "etcdCpu": w["cpu"]["etcd"], "seconds": w["seconds"]})


def add_lists_parser(sub: Any) -> None:
    c = sub.add_parser("cost-lists", help="apiserver cost of each list variant")
    c.add_argument("--label", default="cost-lists")
    c.add_argument("--variants", default="", help="comma list (default: all)")
    c.add_argument("--page-size", type=int, default=500)
    c.add_argument("--repeats", type=int, default=3)


def lists_summary(rows: list[JSON]) -> None:
    lists = [r for r in rows if r["step"] == "cost-lists"]
    for label in sorted({r["label"] for r in lists}):
        group = [r for r in lists if r["label"] == label]
        print(f"\n### {label}: one full list per variant (median of "
              f"{max(r['rep'] for r in group)} rounds)\n")
        print("| variant | objects | pages | bytes on the wire | apiserver+etcd CPU s |")
        print("|---|---|---|---|---|")
        for name in dict.fromkeys(r["variant"] for r in group):
            g = [r for r in group if r["variant"] == name]
            print(f"| {name} | {g[0]['objects'] if g[0]['pages'] > 1 or g[0]['objects'] or not name.count('protobuf') else '(not parsed)'} | {g[0]['pages']} | "
                  f"{g[0]['wireBytes']:,} | {med([r['apiserverEtcdCpu'] for r in g])} |")
