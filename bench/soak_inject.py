"""The soak's load and faults: a workload that keeps creating Jobs and pods of every kind
the policy must tell apart, and a fault injector that picks testbed faults at seeded random
times. Both are driven by `bench/soak.py`; both draw from their own `random.Random` seeded
from `--seed`, so a run is replayed by its seed (the moments follow the real clock, so a
replay offers the same faults and objects in the same order, not at the same instants of
the reaper's runs).

The faults reuse the fault-matrix suites' mechanisms (`e2e/faults/faultlib.py`,
`testbed/control.py`, `testbed/throttle.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import threading
import time
from typing import Callable

from bench.soak_check import CLASS_LABEL
from e2e.faults import faultlib as fl
from testbed.control import freeze_apiserver, freeze_etcd, restart_apiserver
from testbed.fargate.nodes import EC2_NODE
from testbed.kube import ApiError, Kube
from testbed.throttle import throttle_user
from testbed.tokens import token_for
from testbed.workload import EXIT_CODE, RUN_SECONDS, job_manifest, pod_manifest

EC2_NS = "soak-ec2"
OPTOUT_NS = "soak-optout"  # annotated eks-reaper/keep=true
EXCLUDED_NS = "soak-excluded"  # REAPER_EXCLUDE_NAMESPACES
PROTECTED_NS = "kube-system"  # never pruned unless named
KEEP = "eks-reaper/keep"
TTL = "eks-reaper/ttl"
WORKFLOW_CRD = "workflows.argoproj.io"


@dataclasses.dataclass
class Scale:
    """Real seconds per scaled hour; the soak's retentions and load in scaled units."""

    seconds_per_hour: float

    def real(self, minutes: float) -> float:
        return minutes * self.seconds_per_hour / 60.0

    def duration(self, minutes: float) -> str:
        return f"{round(self.real(minutes) * 1000)}ms"


# ---- the cluster's fixed objects --------------------------------------------------------

def prepare(kube: Kube, fargate_ns: str) -> dict:
    """Namespaces, the owners the workload's objects point at, the Workflow CRD. Returns
    the owners (name -> object)."""
    for ns in (EC2_NS, OPTOUT_NS, EXCLUDED_NS):
        kube.ensure_namespace(ns)
    kube.patch("v1", "namespaces", OPTOUT_NS, {"metadata": {"annotations": {KEEP: "true"}}})
    for ns in (EC2_NS, OPTOUT_NS, EXCLUDED_NS, fargate_ns, PROTECTED_NS):
        kube.wait_for_pod_admission(ns)
    owners = {}
    cm = kube.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": f"soak-controller-{time.time_ns()}"}},
                     namespace=EC2_NS)
    owners["configmap"] = {**cm, "apiVersion": "v1", "kind": "ConfigMap"}
    for i in range(2):
        cj = kube.create("batch/v1", "cronjobs", {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": f"soak-cron-{i}-{time.time_ns() % 10**6}"},
            "spec": {"schedule": "0 0 1 1 *", "suspend": True,
                     "jobTemplate": {"spec": job_manifest("x", EC2_NS)["spec"]}}},
            namespace=EC2_NS)
        owners[f"cron{i}"] = {**cj, "apiVersion": "batch/v1", "kind": "CronJob"}
    owners["workflow"] = _workflow(kube, fargate_ns)
    return owners


def _workflow(kube: Kube, ns: str) -> dict:
    """A Workflow object (its CRD registered first), owner of the Argo step pods."""
    ext = "apiextensions.k8s.io/v1"
    if kube.get_or_none(ext, "customresourcedefinitions", WORKFLOW_CRD) is None:
        kube.create(ext, "customresourcedefinitions", {
            "apiVersion": ext, "kind": "CustomResourceDefinition",
            "metadata": {"name": WORKFLOW_CRD},
            "spec": {"group": "argoproj.io", "scope": "Namespaced",
                     "names": {"kind": "Workflow", "plural": "workflows",
                               "singular": "workflow", "listKind": "WorkflowList"},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}]}})
    fl.wait_until(lambda: any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (kube.get(ext, "customresourcedefinitions", WORKFLOW_CRD).get("status") or {})
        .get("conditions") or []), 60, 0.5, "the Workflow CRD established")
    wf = None

    def create() -> bool:
        nonlocal wf
        try:
            wf = kube.create("argoproj.io/v1alpha1", "workflows", {
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": f"soak-wf-{time.time_ns() % 10**6}"}, "spec": {}},
                namespace=ns)
            return True
        except ApiError:
            return False

    fl.wait_until(create, 60, 0.5, "a Workflow created")
    return {**wf, "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow"}


# ---- the workload -----------------------------------------------------------------------

#: (class, weight): how often each kind of object is created.
MIX = [
    ("plain-fargate", 8), ("plain-ec2", 3), ("cron", 3), ("keep", 1), ("ttl", 1),
    ("native-ttl", 1), ("foreign-job", 1), ("protected-ns", 0.5), ("optout-ns", 0.5),
    ("bare-ec2", 1.5), ("bare-fargate", 1.5), ("engine", 1.5), ("argo", 1), ("foreign-pod", 1),
]


class Workload:
    """Creates objects at exponential intervals (`per_hour` per scaled hour on average)."""

    def __init__(self, kube: Kube, scale: Scale, seed: int, fargate_ns: str, owners: dict,
                 per_hour: float, ttl_annotation_minutes: float):
        self.kube, self.scale, self.owners = kube, scale, owners
        self.rng = random.Random(f"{seed}/workload")
        self.fargate_ns = fargate_ns
        self.per_hour = per_hour
        self.ttl_minutes = ttl_annotation_minutes
        self.created: dict[str, int] = {}
        self.create_errors = 0
        self.n = 0
        # Object names carry the soak's start, so no two soaks on one cluster share one.
        self.token = f"{int(time.time()) % 10**6:06d}"

    def loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.rng.expovariate(self.per_hour / self.scale.seconds_per_hour)):
            self.one()

    def one(self) -> None:
        classes, weights = zip(*MIX)
        kind = self.rng.choices(classes, weights)[0]
        self.n += 1
        run_min = self.rng.choice([self.rng.uniform(1, 8)] * 4 + [self.rng.uniform(20, 60)])
        run_s = round(self.scale.real(run_min), 2)
        fails = self.rng.random() < 0.25
        protected = self.rng.random() < 0.15  # refused while the admission fault is on
        try:
            self._create(kind, f"soak-{self.token}-{kind}-{self.n:05d}", run_s, fails, protected)
            self.created[kind] = self.created.get(kind, 0) + 1
        except Exception:  # noqa: BLE001 - the apiserver may be down: a lost creation
            self.create_errors += 1

    def _create(self, kind: str, name: str, run_s: float, fails: bool, protected: bool) -> None:
        cls = {"plain-fargate": "plain", "plain-ec2": "plain", "bare-ec2": "bare",
               "bare-fargate": "bare"}.get(kind, kind)
        labels = {CLASS_LABEL: cls}
        if protected and cls in ("plain", "bare"):
            labels[fl.PROTECTED_LABEL] = "true"
        if kind in ("bare-ec2", "bare-fargate", "engine", "argo", "foreign-pod"):
            self._pod(kind, name, labels, run_s, fails)
            return
        ns = {"plain-fargate": self.fargate_ns, "protected-ns": self.rng.choice(
            [PROTECTED_NS, EXCLUDED_NS]), "optout-ns": OPTOUT_NS}.get(kind, EC2_NS)
        ann = {}
        if kind == "keep":
            ann[KEEP] = "true"
        if kind == "ttl":
            ann[TTL] = self.scale.duration(self.ttl_minutes)
        body = job_manifest(name, ns, run_seconds=run_s, exit_code=1 if fails else 0,
                            labels=labels, annotations=ann,
                            ttl_seconds_after_finished=86400 if kind == "native-ttl" else None)
        owner = {"cron": self.owners[self.rng.choice(["cron0", "cron1"])],
                 "foreign-job": self.owners["configmap"]}.get(kind)
        if owner:
            body["metadata"]["ownerReferences"] = [_ref(owner)]
        self.kube.create("batch/v1", "jobs", body, namespace=ns)

    def _pod(self, kind: str, name: str, labels: dict, run_s: float, fails: bool) -> None:
        ann = {RUN_SECONDS: str(run_s), EXIT_CODE: "1" if fails else "0"}
        ns, node, owner = self.fargate_ns, None, None
        if kind == "bare-ec2":
            ns, node = EC2_NS, EC2_NODE
        elif kind == "foreign-pod":
            ns, node, owner = EC2_NS, EC2_NODE, self.owners["configmap"]
        elif kind == "engine":
            if self.rng.random() < 0.5:  # Airflow KPO, unmarked
                labels |= {"kubernetes_pod_operator": "True", "airflow_kpo_in_cluster": "True",
                           "dag_id": "soak", "task_id": "t", "run_id": "r", "try_number": "1"}
            else:  # Digdag: recognised by its name alone
                name = f"digdag-pod-{self.token}{self.n:05d}-0-{self.rng.getrandbits(64):016x}"
        elif kind == "argo":
            owner = self.owners["workflow"]
            done = self.rng.random() < 0.5
            labels |= {"workflows.argoproj.io/workflow": owner["metadata"]["name"],
                       "workflows.argoproj.io/completed": "true" if done else "false"}
        body = pod_manifest(name, ns, node=node, labels=labels, annotations=ann, owner=owner)
        self.kube.create("v1", "pods", body, namespace=ns)


def _ref(owner: dict) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": False}


# ---- the faults -------------------------------------------------------------------------

AWS_FAULTS = ("eks-down", "eks-hung", "ec2-down", "ec2-hung", "cloudwatch-down",
              "cloudwatch-hung")
FAULTS = ("apiserver-restart", "apiserver-frozen", "etcd-frozen", "429-storm",
          "410-continue", "admission-refusal", "token-expired", *AWS_FAULTS, "overlap")


@dataclasses.dataclass
class Fault:
    kind: str
    start: float  # wall clock
    end: float | None = None
    detail: str = ""
    error: str | None = None  # it could not be injected


class Injector:
    """Picks a fault kind uniformly and a gap of U(0.5, 1.5) × `mean_gap` real seconds
    before each, one fault at a time, from `start` until `stop_at` (monotonic)."""

    def __init__(self, env: dict, kube: Kube, seed: int, endpoints: dict[str, fl.Endpoint],
                 namespaces: list[str], mean_gap: float,
                 run_in_flight: threading.Event, request_overlap: Callable[[], None],
                 function: Callable[[], tuple[int, str, int]], kinds: tuple[str, ...] = FAULTS):
        self.env, self.kube, self.endpoints = env, kube, endpoints
        self.rng = random.Random(f"{seed}/faults")
        self.namespaces = namespaces
        self.mean_gap = mean_gap
        self.in_flight = run_in_flight
        self.request_overlap = request_overlap
        self.function = function  # (pid, log path, log offset) of the invocation in flight
        self.kinds = kinds
        self.log: list[Fault] = []
        self.lock = threading.Lock()

    def loop(self, start: float, stop_at: float, stop: threading.Event) -> None:
        if stop.wait(max(0.0, start - time.monotonic())):
            return
        while True:
            gap = self.rng.uniform(0.5, 1.5) * self.mean_gap
            kind = self.rng.choice(self.kinds)
            hold = self.rng.uniform(4.0, 20.0)
            if stop.wait(gap) or time.monotonic() + hold > stop_at:
                return
            f = Fault(kind, time.time())
            with self.lock:
                self.log.append(f)
            try:
                self.inject(f, hold)
            except Exception as e:  # noqa: BLE001 - recorded: the fault was not offered
                f.error = f"{type(e).__name__}: {e}"[:300]
            f.end = time.time()

    def active(self, t0: float, t1: float, kinds: tuple[str, ...] | None = None) -> list[str]:
        """Kinds of the faults whose window overlaps [t0, t1]."""
        with self.lock:
            return [f.kind for f in self.log if (kinds is None or f.kind in kinds)
                    and f.start <= t1 and (f.end is None or f.end >= t0)]

    def inject(self, f: Fault, hold: float) -> None:
        if f.kind == "apiserver-restart":
            down = round(self.rng.uniform(0.0, 4.0), 1)
            f.detail = f"down {down} s"
            restart_apiserver(self.env, down_seconds=down, wait=False).wait(300)
        elif f.kind in ("apiserver-frozen", "etcd-frozen"):
            hold = min(hold, 12.0)
            f.detail = f"{hold:.1f} s"
            freeze = freeze_apiserver if f.kind == "apiserver-frozen" else freeze_etcd
            with freeze(self.env):
                time.sleep(hold)
        elif f.kind == "429-storm":
            f.detail = f"{hold:.1f} s"
            with throttle_user(self.env, self.env["TESTBED_REAPER_USERNAME"], shares=0):
                self._neighbours(hold)
        elif f.kind == "410-continue":
            f.detail = self._expire_continue()
        elif f.kind == "admission-refusal":
            reason = self.rng.choice(["Forbidden", None])
            f.detail = f"{'403' if reason else '422'} for {hold:.1f} s"
            self._admission(reason, hold)
        elif f.kind == "token-expired":
            f.detail = self._expire_token()
        elif f.kind in AWS_FAULTS:
            service, mode = f.kind.split("-")
            f.detail = f"{hold:.1f} s"
            self.endpoints[service].set(mode)
            try:
                time.sleep(hold)
            finally:
                self.endpoints[service].set("pass")
        elif f.kind == "overlap":
            self.request_overlap()
            f.detail = "a CLI run alongside the next invocation"
        else:
            raise ValueError(f.kind)

    def _pause_in_run(self, within: float = 90.0) -> int | None:
        """Stops (SIGSTOP) the function once a run has found something due on a list page
        (it is then between pages, with deletions in flight), as the fault suite's `paused`
        does; the caller resumes it (SIGCONT). Waits for such a run up to `within` seconds;
        `None` when none came."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.in_flight.wait(max(0.0, deadline - time.monotonic())):
                return None
            pid, log, offset = self.function()
            while self.in_flight.is_set() and time.monotonic() < deadline:
                with open(log) as fh:
                    fh.seek(offset)
                    if "due for deletion" in fh.read():
                        os.kill(pid, signal.SIGSTOP)
                        return pid
                time.sleep(0.005)
            time.sleep(0.05)
        return None

    def _expire_continue(self) -> str:
        """etcd compacted while a run is between two list pages, as in the fault suite: the
        function is paused, the keyspace compacted, and the function goes on once a probe
        continue token taken then answers 410 (at most 15 s), so the next page it asks for
        is past the compaction."""
        pid = self._pause_in_run()
        if pid is None:
            return f"compacted at revision {fl.compact_etcd(self.env)}, no run paused"
        paused = time.monotonic()
        try:
            probe = self.kube.list_page("batch/v1", "jobs", limit=1)["metadata"].get("continue")
            self.kube.create("v1", "configmaps", {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"generateName": "soak-bump-"}}, namespace=EC2_NS)
            rev = fl.compact_etcd(self.env)

            def expired() -> bool:
                try:
                    self.kube.list_page("batch/v1", "jobs", limit=1, continue_=probe)
                    return False
                except ApiError as e:
                    return e.status == 410
            with contextlib.suppress(TimeoutError):
                fl.wait_until(expired, 15, 0.25, "the continue token to expire")
        finally:
            os.kill(pid, signal.SIGCONT)
        return f"compacted at revision {rev}, run paused {time.monotonic() - paused:.1f} s"

    def _expire_token(self) -> str:
        """Tokens accepted for 5 s only, and a run paused for 11.5 s (past its token and the
        apiserver's 10 s cache of it), as in the fault suite: its next request meets a 401."""
        with fl.access_entries(self.env) as table:
            table["maxTokenAgeSeconds"] = 5
            fl.commit_access_entries(self.env, table)
            pid = self._pause_in_run()
            if pid is None:
                return "tokens live 5 s; no run paused"
            try:
                time.sleep(11.5)
            finally:
                os.kill(pid, signal.SIGCONT)
            # the run goes on under the short life until it ends
            fl.wait_until(lambda: not self.in_flight.is_set(), 60, 0.05, "the run to end")
        return "tokens live 5 s; a run paused 11.5 s"

    def _neighbours(self, hold: float, workers: int = 3) -> None:
        """Other clients with the reaper's identity keep its priority level busy (a level
        with no seats admits one request at a time, so a lone sequential client is never
        throttled): the reaper's own requests meet 429s, as they would behind a noisy
        neighbour sharing its IAM role."""
        stop = time.monotonic() + hold
        path = "/apis/batch/v1/jobs"

        def load() -> None:
            client = Kube(self.env["TESTBED_APISERVER"], ca=self.env["TESTBED_CA_FILE"],
                          token=token_for(self.env), retries_429=0, timeout=10)
            try:
                while time.monotonic() < stop:
                    try:
                        client.request("GET", path, params={"limit": 500}).close()
                    except Exception:  # noqa: BLE001 - its own 429s: try again shortly
                        time.sleep(0.01)
            finally:
                client.close()

        threads = [threading.Thread(target=load, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(hold + 30)

    def _admission(self, reason: str | None, hold: float) -> None:
        policy = fl.guard_policy(self.kube, self.env, self.namespaces, reason)
        try:
            time.sleep(hold)
        finally:
            for plural in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
                for _ in range(30):
                    with contextlib.suppress(Exception):
                        self.kube.delete(fl.ADMISSION, plural, policy, missing_ok=True)
                        break
                    time.sleep(1)
