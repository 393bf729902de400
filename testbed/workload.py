"""Workload generator for the testbed: what a workflow engine does to an EKS cluster.

Library and CLI (`PYTHONPATH=. python -m testbed.workload --help` from the repository root):

- `stream()`: a Digdag-like stream of real batch/v1 Jobs (backoffLimit 0, restartPolicy
  Never) at a rate, with a success/failure mix, on Fargate (namespace `etl-fargate`, where
  the stand-in's admission webhook turns them into Fargate pods) or on the EC2-like node.
  The real job controller creates their pods; the Fargate stand-in runs them for
  `run_seconds` and exits them with the chosen code; the Jobs end Complete or Failed on
  their own. `reuse_names=N` draws names from a pool of N, deleting the previous Job of
  that name (Background, uid precondition) first, as engines that re-run a task do.
- `bulk_finished()`: up to 100,000 already-finished Jobs, written concurrently: create,
  then one `/status` write with startTime, SuccessCriteriaMet + Complete and
  completionTime (or FailureTarget + Failed), all `age_seconds` in the past. The Jobs carry
  `spec.managedBy: testbed.eks-reaper/bulk`, so the built-in job controller never starts
  pods for them (JobManagedBy, GA in 1.35). Optionally one finished Pod per Job, owned by
  it (`controller: true`), either written directly (`pods="direct"`: bound to the EC2
  node, status written here, the stand-in told to keep off) or run for real by the
  stand-in (`pods="run"`: zero run time, so Fargate pods really hold a node and an IP).
  Note: creationTimestamp is always "now" (the apiserver sets it); the past is in the
  status timestamps, which is what finish-time logic must use anyway.
- `retained()`: the same, finished only `age_seconds` ago (fixtures a pruner must keep).
- `running_jobs()` / `running_pods()`: Jobs and bare pods that run until deleted (the idle
  benchmark's "never touch this" population).

Every object carries `testbed.eks-reaper/run=<run id>` so a test can clean up by label.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import secrets
import sys
import threading
import time
from typing import Any

from .fargate.kubelet import EXIT_CODE, KUBELET, RUN_SECONDS
from .fargate.nodes import EC2_NODE
from .kube import ApiError, Kube, now_rfc3339

JSON = dict[str, Any]

BULK_MANAGER = "testbed.eks-reaper/bulk"
RUN_LABEL = "testbed.eks-reaper/run"
KIND_LABEL = "testbed.eks-reaper/workload"
FARGATE_NAMESPACE = "etl-fargate"
IMAGE = "busybox:1.36"


def new_run_id() -> str:
    return secrets.token_hex(3)


# ---- manifests ---------------------------------------------------------------------------

def job_manifest(name: str, namespace: str, *, run_seconds: float = 2.0, exit_code: int = 0,
                 labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None, managed_by: str | None = None,
                 ttl_seconds_after_finished: int | None = None,
                 backoff_limit: int = 0) -> JSON:
    """A batch/v1 Job as a workflow engine writes one; the pod template carries the
    stand-in's annotations (run-seconds, exit-code)."""
    labels = dict(labels or {})
    pod_ann = {RUN_SECONDS: str(run_seconds), EXIT_CODE: str(exit_code)}
    spec: JSON = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": pod_ann},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "task", "image": IMAGE,
                    "command": ["sh", "-c", f"sleep {run_seconds}; exit {exit_code}"],
                    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
                }],
            },
        },
    }
    if managed_by:
        spec["managedBy"] = managed_by
    if ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": dict(annotations or {})},
            "spec": spec}


def pod_manifest(name: str, namespace: str, *, command: list[str] | None = None,
                 node: str | None = None, labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None, owner: JSON | None = None) -> JSON:
    """A one-container pod with no controller, or controlled by `owner` (any object's
    apiVersion/kind/metadata). `node` binds it at creation, so nothing schedules it; the
    stand-in's annotations (RUN_SECONDS, KUBELET...) go in `annotations`."""
    spec: JSON = {"restartPolicy": "Never",
                  "containers": [{"name": "task", "image": IMAGE, "command": command or ["true"]}]}
    if node:
        spec["nodeName"] = node
    metadata: JSON = {"name": name, "namespace": namespace, "labels": dict(labels or {}),
                      "annotations": dict(annotations or {})}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                        "name": owner["metadata"]["name"],
                                        "uid": owner["metadata"]["uid"], "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def finished_job_status(succeeded: bool, start: str, finish: str) -> JSON:
    """Status of a Job that ran one pod from `start` to `finish` (1.31+ validation:
    interim condition first, completionTime only for success, counters consistent)."""
    if succeeded:
        reason, msg = "CompletionsReached", "Reached expected number of succeeded pods"
        conds = [("SuccessCriteriaMet", reason, msg), ("Complete", reason, msg)]
    else:
        reason, msg = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        conds = [("FailureTarget", reason, msg), ("Failed", reason, msg)]
    status: JSON = {
        "startTime": start, "active": 0, "ready": 0, "terminating": 0,
        "succeeded": 1 if succeeded else 0, "failed": 0 if succeeded else 1,
        "uncountedTerminatedPods": {},
        "conditions": [{"type": t, "status": "True", "reason": r, "message": m,
                        "lastProbeTime": finish, "lastTransitionTime": finish}
                       for t, r, m in conds],
    }
    if succeeded:
        status["completionTime"] = finish
    return status


def owned_pod_manifest(job: JSON, *, node: str | None, annotations: dict[str, str]) -> JSON:
    md = job["metadata"]
    tmpl = job["spec"]["template"]
    labels = dict(tmpl["metadata"].get("labels") or {})
    labels.update({"batch.kubernetes.io/controller-uid": md["uid"],
                   "batch.kubernetes.io/job-name": md["name"],
                   "controller-uid": md["uid"], "job-name": md["name"]})
    spec = json.loads(json.dumps(tmpl["spec"]))
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"],
                         "labels": labels, "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": md["name"], "uid": md["uid"],
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec}


def terminated_pod_status(pod: JSON, succeeded: bool, start: str, finish: str) -> JSON:
    code = 0 if succeeded else 1
    cs = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
           "started": False, "restartCount": 0,
           "containerID": f"containerd://{secrets.token_hex(32)}",
           "state": {"terminated": {"exitCode": code,
                                    "reason": "Completed" if succeeded else "Error",
                                    "startedAt": start, "finishedAt": finish}}}
          for c in pod["spec"]["containers"]]
    return {"phase": "Succeeded" if succeeded else "Failed", "startTime": start,
            "hostIP": "10.0.0.10", "hostIPs": [{"ip": "10.0.0.10"}],
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": start},
                {"type": "Initialized", "status": "True", "lastTransitionTime": start},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": finish},
                {"type": "Ready", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": finish}],
            "containerStatuses": cs}


# ---- stream ------------------------------------------------------------------------------

@dataclasses.dataclass
class Created:
    name: str
    namespace: str
    uid: str
    exit_code: int
    created_at: float


def stream(kube: Kube, *, count: int, rate: float = 5.0, namespace: str = "etl",
           fargate: bool = False, fail_ratio: float = 0.1, run_seconds: float = 2.0,
           reuse_names: int = 0, prefix: str = "etl", run_id: str | None = None,
           ttl_seconds_after_finished: int | None = None, seed: int | None = None,
           stop: threading.Event | None = None, log=None) -> list[Created]:
    """Create `count` Jobs at `rate` per second (paced, not bursty). Fargate Jobs go to
    FARGATE_NAMESPACE. Returns what was created, in order."""
    ns = FARGATE_NAMESPACE if fargate else namespace
    kube.ensure_namespace(ns)
    rng = random.Random(seed)
    run_id = run_id or new_run_id()
    labels = {RUN_LABEL: run_id, KIND_LABEL: "stream",
              "app.kubernetes.io/managed-by": "digdag"}
    out: list[Created] = []
    t0 = time.monotonic()
    for i in range(count):
        if stop and stop.is_set():
            break
        due = t0 + i / rate if rate > 0 else 0
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        code = 1 if rng.random() < fail_ratio else 0
        name = (f"{prefix}-{run_id}-task{i % reuse_names:03d}" if reuse_names
                else f"{prefix}-{run_id}-{i:05d}")
        body = job_manifest(name, ns, run_seconds=run_seconds, exit_code=code, labels=labels,
                            ttl_seconds_after_finished=ttl_seconds_after_finished)
        job = _create_replacing(kube, body) if reuse_names else \
            kube.create("batch/v1", "jobs", body, namespace=ns)
        out.append(Created(name, ns, job["metadata"]["uid"], code, time.time()))
        if log:
            log(f"job created {ns}/{name} exit_code={code}")
    return out


def _create_replacing(kube: Kube, body: JSON, wait: float = 60.0) -> JSON:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    deadline = time.monotonic() + wait
    while True:
        try:
            return kube.create("batch/v1", "jobs", body, namespace=ns)
        except ApiError as e:
            if not e.conflict or time.monotonic() > deadline:
                raise
        old = kube.get_or_none("batch/v1", "jobs", name, ns)
        if old and not old["metadata"].get("deletionTimestamp"):
            try:
                kube.delete("batch/v1", "jobs", name, ns, propagation_policy="Background",
                            uid=old["metadata"]["uid"])
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise
        time.sleep(0.2)


# ---- bulk --------------------------------------------------------------------------------

@dataclasses.dataclass
class BulkResult:
    jobs: int
    pods: int
    errors: list[str]  # the first 20
    failed: int
    seconds: float
    run_id: str
    namespace: str

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


def bulk_finished(kube: Kube, *, count: int, namespace: str = "bulk",
                  fail_ratio: float = 0.1, age_seconds: float = 2 * 86400,
                  age_jitter_seconds: float = 3600.0, duration_seconds: float = 30.0,
                  pods: str = "none", workers: int = 48, prefix: str = "bulk",
                  run_id: str | None = None, managed_by: str = BULK_MANAGER,
                  ttl_seconds_after_finished: int | None = None,
                  extra_labels: dict[str, str] | None = None, seed: int | None = None,
                  progress=None) -> BulkResult:
    """Write `count` finished Jobs (and optionally one finished Pod each, `pods` =
    "none" | "direct" | "run") finishing `age_seconds` (+ up to `age_jitter_seconds`) ago."""
    if pods not in ("none", "direct", "run"):
        raise ValueError(f"pods must be none, direct or run, not {pods!r}")
    kube.ensure_namespace(namespace)
    if pods != "none":
        kube.wait_for_pod_admission(namespace)
    run_id = run_id or new_run_id()
    rng = random.Random(seed)
    labels = {RUN_LABEL: run_id, KIND_LABEL: "bulk", **(extra_labels or {})}
    plan = [(i, rng.random() >= fail_ratio, age_seconds + rng.random() * age_jitter_seconds)
            for i in range(count)]
    counts = {"jobs": 0, "pods": 0}
    lock = threading.Lock()

    def one(item: tuple[int, bool, float]) -> None:
        i, ok, age = item
        name = f"{prefix}-{run_id}-{i:06d}"
        finish = now_rfc3339(-age)
        start = now_rfc3339(-age - duration_seconds)
        body = job_manifest(name, namespace, run_seconds=0, exit_code=0 if ok else 1,
                            labels=labels, managed_by=managed_by,
                            ttl_seconds_after_finished=ttl_seconds_after_finished)
        job = _retrying(lambda: _create_or_get(kube, "batch/v1", "jobs", body, namespace))
        _retrying(lambda: kube.patch_status(
            "batch/v1", "jobs", name, {"status": finished_job_status(ok, start, finish)},
            namespace))
        with lock:
            counts["jobs"] += 1
        if pods == "none":
            return
        ann = {RUN_SECONDS: "0", EXIT_CODE: "0" if ok else "1"}
        direct = pods == "direct"
        if direct:
            ann[KUBELET] = "none"
        pod_body = owned_pod_manifest(job, node=EC2_NODE if direct else None, annotations=ann)
        # A fixed name (instead of generateName) keeps a retried create from making two pods.
        pod_body["metadata"].pop("generateName")
        pod_body["metadata"]["name"] = f"{name}-{secrets.token_hex(3)[:5]}"
        pod = _retrying(lambda: _create_or_get(kube, "v1", "pods", pod_body, namespace))
        if direct:
            _retrying(lambda: kube.patch_status(
                "v1", "pods", pod["metadata"]["name"],
                {"status": terminated_pod_status(pod, ok, start, finish)}, namespace,
                patch_type="application/strategic-merge-patch+json"))
        with lock:
            counts["pods"] += 1

    errors: list[str] = []
    done = itertools.count(1)

    def on_result(item, _res, exc) -> None:
        n = next(done)
        if exc is not None and len(errors) < 20:
            errors.append(f"{item[0]}: {exc}")
        if progress and n % 1000 == 0:
            progress(n, count)

    t0 = time.monotonic()
    _, errs = kube.bulk(one, plan, workers=workers, on_result=on_result)
    seconds = time.monotonic() - t0
    return BulkResult(counts["jobs"], counts["pods"], errors, len(errs), seconds, run_id,
                      namespace)


def _create_or_get(kube: Kube, api_version: str, plural: str, body: JSON,
                   namespace: str) -> JSON:
    """Create; if a retried create finds the object already there, take that one."""
    try:
        return kube.create(api_version, plural, body, namespace=namespace)
    except ApiError as e:
        if not e.conflict:
            raise
        return kube.get(api_version, plural, body["metadata"]["name"], namespace)


def _retrying(call, attempts: int = 8):
    """Retry a call through connection errors and 5xx (an apiserver restart mid-seed)."""
    import requests

    for i in range(attempts):
        try:
            return call()
        except requests.RequestException:
            if i == attempts - 1:
                raise
        except ApiError as e:
            if e.status < 500 or i == attempts - 1:
                raise
        time.sleep(min(0.25 * 2 ** i, 5.0))


def retained(kube: Kube, *, count: int, namespace: str = "bulk", age_seconds: float = 60.0,
             **kw: Any) -> BulkResult:
    """Finished Jobs inside any sensible retention (finished `age_seconds` ago)."""
    kw.setdefault("age_jitter_seconds", 0.0)
    kw.setdefault("prefix", "retained")
    return bulk_finished(kube, count=count, namespace=namespace, age_seconds=age_seconds, **kw)


def running_jobs(kube: Kube, *, count: int, namespace: str = "etl", fargate: bool = False,
                 run_id: str | None = None, workers: int = 16) -> list[JSON]:
    """Jobs whose pods run until deleted (run the real job controller + stand-in)."""
    ns = FARGATE_NAMESPACE if fargate else namespace
    kube.ensure_namespace(ns)
    run_id = run_id or new_run_id()
    labels = {RUN_LABEL: run_id, KIND_LABEL: "running"}
    out: list[JSON] = []
    kube.bulk(lambda i: out.append(kube.create("batch/v1", "jobs", job_manifest(
        f"running-{run_id}-{i:05d}", ns, run_seconds=-1, labels=labels), namespace=ns)),
        range(count), workers=workers)
    return out


def running_pods(kube: Kube, *, count: int, namespace: str = "etl",
                 run_id: str | None = None, workers: int = 16) -> list[JSON]:
    """Bare pods (no owner) that run until deleted."""
    kube.ensure_namespace(namespace)
    kube.wait_for_pod_admission(namespace)
    run_id = run_id or new_run_id()
    out: list[JSON] = []

    def one(i: int) -> None:
        out.append(kube.create("v1", "pods", pod_manifest(
            f"running-{run_id}-{i:05d}", namespace, command=["sleep", "infinity"],
            labels={RUN_LABEL: run_id, KIND_LABEL: "running"},
            annotations={RUN_SECONDS: "-1"}), namespace=namespace))

    kube.bulk(one, range(count), workers=workers)
    return out


# ---- waiting and cleanup -----------------------------------------------------------------

def job_finished(job: JSON) -> str | None:
    """"Complete" / "Failed" when the Job has that terminal condition, else None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return c["type"]
    return None


def wait_jobs_finished(kube: Kube, namespace: str, label_selector: str, expected: int,
                       timeout: float = 120.0) -> dict[str, str]:
    """Poll until `expected` Jobs matching the selector are finished; name -> condition."""
    deadline = time.monotonic() + timeout
    while True:
        done = {j["metadata"]["name"]: c for j in kube.list(
            "batch/v1", "jobs", namespace, label_selector=label_selector)
            if (c := job_finished(j))}
        if len(done) >= expected or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


class PodStartClock:
    """Watches a namespace and records, per Job name, when its pod was first seen Running
    (local clock). Start it before `stream()`; `latencies(created)` then gives Job create
    -> pod Running for each Job: job controller + webhook + scheduling + kubelet."""

    def __init__(self, kube: Kube, namespace: str, label_selector: str | None = None):
        self.running: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kube, namespace, label_selector),
                                        daemon=True)
        self._thread.start()

    def _run(self, kube: Kube, namespace: str, sel: str | None) -> None:
        for typ, pod in kube.informer("v1", "pods", namespace, label_selector=sel,
                                      stop=self._stop):
            if typ in ("ADDED", "MODIFIED") and pod["status"].get("phase") in (
                    "Running", "Succeeded", "Failed"):
                job = (pod["metadata"].get("labels") or {}).get("job-name")
                if job:
                    self.running.setdefault(job, time.time())

    def latencies(self, created: list[Created], timeout: float = 60.0) -> list[float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(c.name in self.running for c in created):
            time.sleep(0.2)
        self._stop.set()
        return sorted(self.running[c.name] - c.created_at for c in created
                      if c.name in self.running)


def delete_namespace(kube: Kube, name: str, wait: float = 0.0) -> None:
    kube.delete("v1", "namespaces", name, missing_ok=True)
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        if kube.get_or_none("v1", "namespaces", name) is None:
            return
        time.sleep(0.5)


def cleanup_run(kube: Kube, namespace: str, run_id: str) -> None:
    """Delete a run's Jobs (Background) and any pods left with its label."""
    sel = f"{RUN_LABEL}={run_id}"
    kube.delete_collection("batch/v1", "jobs", namespace, label_selector=sel,
                           propagation_policy="Background")
    kube.delete_collection("v1", "pods", namespace, label_selector=sel)


# ---- CLI ---------------------------------------------------------------------------------

def kube_from_env() -> Kube:
    """Admin client from $EKS_REAPER_TESTBED/env.json (or $KUBECONFIG)."""
    state = os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed")
    path = os.path.join(state, "env.json")
    if os.path.exists(path):
        with open(path) as f:
            return Kube.from_kubeconfig(json.load(f)["KUBECONFIG"])
    return Kube.from_kubeconfig(os.environ["KUBECONFIG"])


def _age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.workload",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream", help="Digdag-like stream of real Jobs")
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--rate", type=float, default=2.0, help="jobs per second")
    s.add_argument("--namespace", default="etl")
    s.add_argument("--fargate", action="store_true", help=f"run in {FARGATE_NAMESPACE}")
    s.add_argument("--fail-ratio", type=float, default=0.1)
    s.add_argument("--seed", type=int, default=None, help="which Jobs fail, reproducibly")
    s.add_argument("--run-seconds", type=float, default=2.0)
    s.add_argument("--reuse-names", type=int, default=0, metavar="N")
    s.add_argument("--ttl", type=int, default=None, help="ttlSecondsAfterFinished")
    s.add_argument("--wait", action="store_true", help="wait until all have finished")
    s.add_argument("--latency", action="store_true",
                   help="report Job create -> pod Running latency (p50/p95/max)")
    b = sub.add_parser("bulk", help="already-finished Jobs (and pods), fast")
    b.add_argument("--count", type=int, default=1000)
    b.add_argument("--namespace", default="bulk")
    b.add_argument("--fail-ratio", type=float, default=0.1)
    b.add_argument("--age", default="2d", help="finished this long ago (s/m/h/d)")
    b.add_argument("--age-jitter", default="1h")
    b.add_argument("--pods", choices=["none", "direct", "run"], default="none")
    b.add_argument("--workers", type=int, default=48)
    b.add_argument("--ttl", type=int, default=None, help="ttlSecondsAfterFinished")
    b.add_argument("--retained", action="store_true", help="finished --age ago, no jitter")
    r = sub.add_parser("running", help="Jobs/pods that run until deleted")
    r.add_argument("--jobs", type=int, default=0)
    r.add_argument("--pods", type=int, default=0)
    r.add_argument("--namespace", default="etl")
    r.add_argument("--fargate", action="store_true")
    c = sub.add_parser("clean", help="delete a run's objects")
    c.add_argument("--namespace", required=True)
    c.add_argument("--run", required=True)
    a = ap.parse_args(argv)
    kube = kube_from_env()
    if a.cmd == "stream":
        run_id = new_run_id()
        clock = PodStartClock(kube, FARGATE_NAMESPACE if a.fargate else a.namespace,
                              f"{RUN_LABEL}={run_id}") if a.latency else None
        created = stream(kube, count=a.count, rate=a.rate, namespace=a.namespace,
                         fargate=a.fargate, fail_ratio=a.fail_ratio, run_seconds=a.run_seconds,
                         reuse_names=a.reuse_names, ttl_seconds_after_finished=a.ttl,
                         run_id=run_id, seed=a.seed, log=lambda m: print(m, file=sys.stderr))
        ns = created[0].namespace if created else a.namespace
        out: JSON = {"run": run_id, "namespace": ns, "created": len(created)}
        if a.wait:
            expected = len({c.name for c in created})
            done = wait_jobs_finished(kube, ns, f"{RUN_LABEL}={run_id}", expected,
                                      timeout=60 + a.run_seconds * 3 + a.count / max(a.rate, 0.1))
            out["finished"] = {k: sum(1 for v in done.values() if v == k)
                               for k in ("Complete", "Failed")}
        if clock:
            lat = clock.latencies(created)
            if lat:
                out["pod_start_seconds"] = {
                    "n": len(lat), "p50": round(lat[len(lat) // 2], 3),
                    "p95": round(lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0], 3),
                    "max": round(lat[-1], 3)}
        print(json.dumps(out))
    elif a.cmd == "bulk":
        fn = retained if a.retained else bulk_finished
        kw: JSON = {} if a.retained else {"age_jitter_seconds": _age(a.age_jitter)}
        res = fn(kube, count=a.count, namespace=a.namespace, fail_ratio=a.fail_ratio,
                 age_seconds=_age(a.age), pods=a.pods, workers=a.workers,
                 ttl_seconds_after_finished=a.ttl,
                 progress=lambda n, t: print(f"{n}/{t}", file=sys.stderr, flush=True), **kw)
        print(json.dumps({"run": res.run_id, "namespace": res.namespace, "jobs": res.jobs,
                          "pods": res.pods, "seconds": round(res.seconds, 1),
                          "jobs_per_second": round(res.jobs_per_second, 1),
                          "failed": res.failed, "errors": res.errors[:5]}))
        return 1 if res.failed else 0
    elif a.cmd == "running":
        run_id = new_run_id()
        ns = FARGATE_NAMESPACE if a.fargate else a.namespace
        if a.jobs:
            running_jobs(kube, count=a.jobs, namespace=a.namespace, fargate=a.fargate,
                         run_id=run_id)
        if a.pods:
            running_pods(kube, count=a.pods, namespace=ns, run_id=run_id)
        print(json.dumps({"run": run_id, "namespace": ns, "jobs": a.jobs, "pods": a.pods}))
    elif a.cmd == "clean":
        cleanup_run(kube, a.namespace, a.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
