"""Fargate stand-in: the parts of EKS + Fargate that AWS runs and this testbed cannot.

There is no scheduler and no kubelet on the testbed. `FargateStandIn.run()` is both, for
every pod, driven by a pod watch (list-then-watch, re-list on 410) and a small work queue
(one worker at a time per pod, level-triggered: each pass looks at the latest object).

What it does, in the order EKS does it:

1. **Mutation.** EKS injects Fargate pods through a mutating admission webhook
   (`0500-amazon-eks-fargate-mutation.amazonaws.com`). The stand-in serves a real one over
   HTTPS on 127.0.0.1 (its own throw-away CA, passed as `caBundle`) and registers a
   `MutatingWebhookConfiguration` for pod CREATE in the profile namespaces. A pod that
   matches a profile selector (namespace, and labels if the selector has any) and asks for
   the default scheduler gets `schedulerName: fargate-scheduler` and the label
   `eks.amazonaws.com/fargate-profile: <profile>`. The apiserver calls it; nobody else
   sets those fields. `failurePolicy: Fail`, as a missing Fargate webhook on EKS would
   otherwise silently put pods on EC2 nodes.
2. **Scheduling.** An unbound Pending pod with `fargate-scheduler`: one ENI is created in
   moto in the profile subnet with the most free addresses, at the lowest free address
   (moto itself picks random, even duplicate, addresses and never runs out, so the stand-in
   does the IPAM and leaves the pod Pending with a `FailedScheduling` event and a
   `PodScheduled=False` condition when every subnet is full; it retries when an address
   frees up). Then a Node `fargate-ip-10-0-x-y.ec2.internal` labelled
   `eks.amazonaws.com/compute-type=fargate` is created *before* the pod is bound (PodGC
   deletes pods bound to a missing node), then the pod is bound through `pods/binding`.
   Pods with the default scheduler are bound to one shared EC2-like node
   (`ip-10-0-0-10.ec2.internal`), with no ENI.
3. **Kubelet.** Through `pods/status`: Running (podIP = the ENI's address, Ready), then,
   after `testbed.eks-reaper/run-seconds` (default 2; negative = until deleted),
   Succeeded or Failed with a terminated container status carrying
   `testbed.eks-reaper/exit-code` (default 0; reason Completed / Error). A bound pod that
   gets a deletionTimestamp while running is killed (exit 143, Failed) and deleted with
   grace 0, as the kubelet confirms a graceful delete. `testbed.eks-reaper/kubelet: none`
   makes the stand-in leave a pod's status to whoever created it (bulk fixtures).
4. **Teardown.** When a pod object is gone (DELETED event, or missing after a re-list),
   its Fargate node and ENI are deleted and the address is free again in moto's
   `AvailableIpAddressCount`.

State survives a restart: each ENI's description carries the pod uid, each Fargate node a
`testbed.eks-reaper/pod-uid` label; on start the stand-in rebuilds its map from moto and
the nodes, then deletes nodes and ENIs whose pod no longer exists.

One log line per action goes to stdout (or the `log` callable).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import heapq
import http.server
import ipaddress
import json
import os
import secrets
import ssl
import tempfile
import threading
import time
from collections import deque
from typing import Any, Callable

from botocore.exceptions import ClientError

from .kube import STRATEGIC, ApiError, Kube, now_rfc3339, parse_rfc3339

JSON = dict[str, Any]

# Pod annotations read by the stand-in's kubelet (set them on the Job's pod template).
RUN_SECONDS = "testbed.eks-reaper/run-seconds"
EXIT_CODE = "testbed.eks-reaper/exit-code"
START_SECONDS = "testbed.eks-reaper/start-seconds"
KUBELET = "testbed.eks-reaper/kubelet"  # "none": leave this pod's status alone
DEFAULT_RUN_SECONDS = 2.0

FARGATE_SCHEDULER = "fargate-scheduler"
PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"
COMPUTE_TYPE_LABEL = "eks.amazonaws.com/compute-type"
POD_UID_LABEL = "testbed.eks-reaper/pod-uid"
STANDIN_LABEL = "testbed.eks-reaper/stand-in"
ENI_PREFIX = "eks-reaper-testbed fargate pod "
WEBHOOK_NAME = "0500-amazon-eks-fargate-mutation.amazonaws.com"
EC2_NODE = "ip-10-0-0-10.ec2.internal"


def _stdout(line: str) -> None:
    print(line, flush=True)


def _file_logger(path: str) -> Callable[[str], None]:
    lock = threading.Lock()
    fh = open(path, "a", buffering=1)

    def log(line: str) -> None:
        with lock:
            fh.write(f"{dt.datetime.now(dt.timezone.utc).strftime('%H:%M:%S.%f')[:-3]} {line}\n")

    return log


def fargate_node_name(ip: str) -> str:
    return f"fargate-ip-{ip.replace('.', '-')}.ec2.internal"


def normalize_profiles(profile: Any) -> list[JSON]:
    """Accepts EKS `FargateProfile` dicts (as DescribeFargateProfile returns them) or
    the short form {"name", "namespaces" | "selectors", "subnets"}; one or a list."""
    profiles = profile if isinstance(profile, (list, tuple)) else [profile]
    out = []
    for p in profiles:
        name = p.get("fargateProfileName") or p["name"]
        selectors = p.get("selectors") or [{"namespace": ns} for ns in p.get("namespaces", [])]
        out.append({"name": name, "subnets": list(p["subnets"]),
                    "selectors": [{"namespace": s["namespace"], "labels": s.get("labels") or {}}
                                  for s in selectors]})
    return out


def match_profile(profiles: list[JSON], namespace: str, labels: dict[str, str]) -> JSON | None:
    """The first profile with a selector matching the pod (namespace glob + label subset)."""
    for p in profiles:
        for s in p["selectors"]:
            if fnmatch.fnmatchcase(namespace, s["namespace"]) and all(
                    labels.get(k) == v for k, v in s["labels"].items()):
                return p
    return None


class WorkQueue:
    """Keyed work queue: a key is never processed by two workers at once, re-adds while
    processing are coalesced into one more pass, and `add_after` schedules a later pass."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: list[tuple[float, str]] = []
        self._closed = False

    def add(self, key: str) -> None:
        with self._cv:
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cv.notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            return self.add(key)
        with self._cv:
            heapq.heappush(self._timers, (time.monotonic() + delay, key))
            self._cv.notify_all()

    def get(self) -> str | None:
        with self._cv:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, key = heapq.heappop(self._timers)
                    if key in self._processing:
                        self._dirty.add(key)
                    elif key not in self._queued:
                        self._queued.add(key)
                        self._queue.append(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._timers[0][0] - now if self._timers else 1.0
                self._cv.wait(timeout=min(max(wait, 0.005), 1.0))

    def done(self, key: str) -> None:
        with self._cv:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)
                self._queue.append(key)
                self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def __len__(self) -> int:
        with self._cv:
            return len(self._queue) + len(self._timers)


class FargateStandIn:
    """Scheduler + kubelet + Fargate IPAM for the testbed. See the module docstring."""

    def __init__(self, kube: Kube, ec2: Any, profile: Any, *, ec2_node: str = EC2_NODE,
                 webhook: bool = True, webhook_host: str = "127.0.0.1", workers: int = 16,
                 state_dir: str | None = None, log: Callable[[str], None] = _stdout):
        """`kube`: admin Kube client. `ec2`: boto3 EC2 client pointed at moto. `profile`:
        an EKS FargateProfile dict (or a list of them, or the short form of
        `normalize_profiles`). `webhook=False` skips the admission webhook: then only pods
        that already carry schedulerName `fargate-scheduler` go to Fargate."""
        self.kube = kube
        self.ec2 = ec2
        self.profiles = normalize_profiles(profile)
        self.ec2_node = ec2_node
        self.webhook_enabled = webhook
        self.webhook_host = webhook_host
        self.workers = workers
        self.state_dir = state_dir
        self.log = log
        self.region = getattr(getattr(ec2, "meta", None), "region_name", None) or "us-east-1"
        self.queue = WorkQueue()
        self.pods: dict[str, JSON] = {}          # uid -> latest pod (non-terminal or ours)
        self.allocs: dict[str, JSON] = {}        # uid -> {eni, ip, subnet, node, pod}
        self.alloc_lock = threading.Lock()       # serialises IPAM against moto
        self.state_lock = threading.Lock()
        self.waiting_for_ip: set[str] = set()
        self.failed_sched_reported: set[str] = set()
        self.subnets: dict[str, JSON] = {}       # id -> {cidr, az}
        self._ec2_ip_seq = 0
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._prepared = False
        # What this process already did per pod uid. The informer's copy of a pod can lag
        # behind our own writes (a queued MODIFIED from the binding arrives after we set
        # Running); these keep a second pass from binding or starting a pod twice.
        self.bound: dict[str, str] = {}          # uid -> node we bound it to
        self.started_at: dict[str, float] = {}   # uid -> when we set it Running
        self.failures: dict[str, int] = {}       # uid -> consecutive failed passes
        self.finished: set[str] = set()          # uids we set terminal
        self.pod_ips: dict[str, str] = {}        # uid -> pod IP on the EC2 node
        self.running_statuses: dict[str, list] = {}  # uid -> containerStatuses we wrote
        self.synced = threading.Event()          # set after the first full list
        self.stats = {"scheduled": 0, "started": 0, "finished": 0, "freed": 0}

    @classmethod
    def from_env(cls, env: dict[str, str], **kw: Any) -> "FargateStandIn":
        """From the testbed's env.json dict: the admin kubeconfig, moto's EC2, and the
        Fargate profile as moto's EKS describes it. Logs to $TESTBED_LOGS/fargate.log."""
        import boto3

        def aws(service: str) -> Any:
            return boto3.client(service, region_name=env.get("AWS_REGION", "us-east-1"),
                                endpoint_url=env["TESTBED_MOTO_URL"],
                                aws_access_key_id="testbed-admin",
                                aws_secret_access_key="testbed-admin")

        kube = Kube.from_kubeconfig(env["KUBECONFIG"])
        profile = aws("eks").describe_fargate_profile(
            clusterName=env["TESTBED_CLUSTER"],
            fargateProfileName=env["TESTBED_FARGATE_PROFILE"])["fargateProfile"]
        if "log" not in kw and env.get("TESTBED_LOGS"):
            kw["log"] = _file_logger(os.path.join(env["TESTBED_LOGS"], "fargate.log"))
        kw.setdefault("state_dir", os.path.join(env.get("TESTBED_DIR", tempfile.gettempdir()),
                                                "fargate"))
        standin = cls(kube, aws("ec2"), profile, **kw)
        # Register the webhook now, in the caller's thread: the testbed must not report
        # ready while Fargate pods could still slip through unmutated.
        standin.prepare()
        return standin

    def prepare(self) -> None:
        """Everything before the watch: subnets, the EC2 node, state recovered from moto,
        the admission webhook served and registered. Idempotent; `run()` calls it too."""
        if self._prepared:
            return
        self._load_subnets()
        self._ensure_ec2_node()
        self.recover_allocations()
        if self.webhook_enabled:
            self._start_webhook()
        self._prepared = True

    # ---- lifecycle ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Blocks until `stop` is set; then removes the webhook configuration."""
        self.prepare()
        threads = [threading.Thread(target=self._worker, name=f"standin-{i}", daemon=True)
                   for i in range(self.workers)]
        for t in threads:
            t.start()
        watcher = threading.Thread(target=self._watch_pods, args=(stop,), name="standin-watch",
                                   daemon=True)
        watcher.start()
        self.log(f"stand-in: running (profiles {[p['name'] for p in self.profiles]}, "
                 f"{len(self.allocs)} ENIs recovered)")
        stop.wait()
        self.queue.close()
        if self._httpd:
            try:
                self.kube.delete("admissionregistration.k8s.io/v1",
                                 "mutatingwebhookconfigurations", WEBHOOK_NAME, missing_ok=True)
            except Exception as e:  # apiserver may already be gone at shutdown
                self.log(f"stand-in: webhook config not removed: {e}")
            self._httpd.shutdown()
        self.log("stand-in: stopped")

    def _worker(self) -> None:
        while True:
            uid = self.queue.get()
            if uid is None:
                return
            try:
                self._reconcile(uid)
                self.failures.pop(uid, None)
            except Exception as e:  # keep the worker alive; retry the pod with back-off
                n = self.failures[uid] = self.failures.get(uid, 0) + 1
                # In a namespace being deleted, binding is refused (403) and the pod goes
                # with the namespace: nothing to retry.
                terminating = isinstance(e, ApiError) and e.status == 403 and \
                    "being terminated" in e.message
                if not terminating:
                    delay = min(0.5 * 2 ** n, 30.0)
                    self.log(f"stand-in: error pod-uid={uid} attempt={n} retry_in={delay}s: "
                             f"{type(e).__name__}: {e}")
                    self.queue.add_after(uid, delay)
            finally:
                self.queue.done(uid)

    # ---- watch -------------------------------------------------------------------------

    def _watch_pods(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._consume(stop)
            except Exception as e:  # never leave the testbed without a kubelet: re-list
                self.log(f"stand-in: pod watch failed, re-listing: {type(e).__name__}: {e}")
                stop.wait(1.0)

    def _consume(self, stop: threading.Event) -> None:
        for typ, obj in self.kube.informer("v1", "pods", stop=stop):
            if typ == "SYNCED":
                self._after_sync({o["metadata"]["uid"] for o in obj["items"]})
                continue
            md = obj.get("metadata", {})
            uid = md.get("uid")
            if not uid:
                continue
            with self.state_lock:
                if typ == "DELETED":
                    self.pods.pop(uid, None)
                    self.pods[uid] = {"deleted": True, "metadata": md}
                else:
                    if self._is_ours_or_pending(obj):
                        self.pods[uid] = obj
                    else:
                        self.pods.pop(uid, None)
                        if uid not in self.allocs:
                            continue
                        self.pods[uid] = obj
            self.queue.add(uid)

    def _is_ours_or_pending(self, pod: JSON) -> bool:
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
            return False
        node = pod.get("spec", {}).get("nodeName")
        return not node or self._owns_node(node)

    def _owns_node(self, node: str) -> bool:
        return node == self.ec2_node or node.startswith("fargate-ip-")

    def _after_sync(self, live_uids: set[str]) -> None:
        """After each (re-)list: free ENIs and nodes whose pods no longer exist."""
        with self.state_lock:
            stale = [uid for uid in self.allocs if uid not in live_uids]
            for uid in stale:
                self.pods[uid] = {"deleted": True, "metadata": {"uid": uid}}
        for uid in stale:
            self.queue.add(uid)
        try:
            for node in self.kube.list("v1", "nodes", label_selector=f"{STANDIN_LABEL}=fargate"):
                uid = node["metadata"].get("labels", {}).get(POD_UID_LABEL)
                if uid not in live_uids and uid not in self.allocs:
                    self.kube.delete("v1", "nodes", node["metadata"]["name"], missing_ok=True)
                    self.log(f"node deleted node={node['metadata']['name']} reason=orphan")
        except ApiError as e:
            self.log(f"stand-in: orphan node sweep failed: {e}")
        if not self.synced.is_set():
            self.synced.set()
            self.log(f"stand-in: synced ({len(live_uids)} pods)")

    # ---- reconcile ---------------------------------------------------------------------

    def _reconcile(self, uid: str) -> None:
        with self.state_lock:
            pod = self.pods.get(uid)
        if pod is None:
            return
        if pod.get("deleted"):
            self._free(uid)
            with self.state_lock:
                if self.pods.get(uid, {}).get("deleted"):
                    del self.pods[uid]
                self.failed_sched_reported.discard(uid)
                self.waiting_for_ip.discard(uid)
                for memo in (self.bound, self.started_at, self.pod_ips,
                             self.running_statuses, self.failures):
                    memo.pop(uid, None)
                self.finished.discard(uid)
            return
        md, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        ann = md.get("annotations") or {}
        phase = status.get("phase", "Pending")
        node = spec.get("nodeName")
        terminal = phase in ("Succeeded", "Failed")

        node = node or self.bound.get(uid)
        terminal = terminal or uid in self.finished
        if uid in self.started_at and phase == "Pending":
            phase = "Running"  # our own write has not come back through the watch yet

        if md.get("deletionTimestamp"):
            if node and self._owns_node(node) and not terminal and ann.get(KUBELET) != "none":
                spec["nodeName"] = node
                status["phase"] = phase
                self._kill_and_confirm(pod)
            return
        if terminal or ann.get(KUBELET) == "none":
            return
        if not node:
            node = self._schedule(pod)
            if not node:
                return
        spec["nodeName"] = node
        if not self._owns_node(node):
            return
        if phase == "Pending" and not status.get("containerStatuses"):
            delay = _float(ann.get(START_SECONDS), 0.0)
            created = parse_rfc3339(md["creationTimestamp"])
            due = created + delay - time.time()
            if due > 0:
                self.queue.add_after(uid, due)
                return
            if not self._start(pod):
                return
            phase = "Running"
        if phase == "Running":
            run = _float(ann.get(RUN_SECONDS), DEFAULT_RUN_SECONDS)
            if run < 0:
                return
            # startedAt has one-second precision; prefer our own clock when we started it.
            started = self.started_at.get(uid) or _started_at(status)
            left = started + run - time.time()
            if left > 0:
                self.queue.add_after(uid, left)
                return
            code = int(_float(ann.get(EXIT_CODE), 0))
            self._finish(pod, code)

    # ---- scheduling --------------------------------------------------------------------

    def _schedule(self, pod: JSON) -> str | None:
        md, spec = pod["metadata"], pod.get("spec", {})
        uid, ns, name = md["uid"], md["namespace"], md["name"]
        sched = spec.get("schedulerName") or "default-scheduler"
        if sched == FARGATE_SCHEDULER:
            labels = md.get("labels") or {}
            wanted = labels.get(PROFILE_LABEL)
            prof = next((p for p in self.profiles if p["name"] == wanted), None) \
                or match_profile(self.profiles, ns, labels)
            if not prof:
                self._unschedulable(pod, f"no Fargate profile {wanted!r} matches the pod")
                return None
            alloc = self.allocs.get(uid) or self._allocate(pod, prof)
            if not alloc:
                return None
            self._ensure_fargate_node(alloc, prof)
            node = alloc["node"]
        elif sched == "default-scheduler":
            node = self.ec2_node
        else:
            return None  # someone else's scheduler
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            self.kube.create("v1", "pods", body, namespace=ns, name=name, subresource="binding")
        except ApiError as e:
            if e.not_found:
                return None  # pod went away; its DELETED event frees the ENI
            if e.conflict:
                cur = self.kube.get_or_none("v1", "pods", name, ns)
                if cur and cur["metadata"]["uid"] == uid and cur["spec"].get("nodeName"):
                    self.bound[uid] = cur["spec"]["nodeName"]
                    return self.bound[uid]
                return None
            raise
        self.stats["scheduled"] += 1
        self.bound[uid] = node
        self.waiting_for_ip.discard(uid)
        self.log(f"pod bound pod={ns}/{name} node={node}")
        return node

    def _unschedulable(self, pod: JSON, message: str) -> None:
        md = pod["metadata"]
        uid = md["uid"]
        with self.state_lock:
            if uid in self.failed_sched_reported:
                return
            self.failed_sched_reported.add(uid)
        self.log(f"pod unschedulable pod={md['namespace']}/{md['name']} reason={message!r}")
        patch = {"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": now_rfc3339()}]}}
        try:
            self.kube.patch_status("v1", "pods", md["name"], patch, md["namespace"],
                                   patch_type=STRATEGIC)
            now = now_rfc3339()
            self.kube.create("v1", "events", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{md['name']}.", "namespace": md["namespace"]},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": md["name"],
                                   "namespace": md["namespace"], "uid": uid},
                "reason": "FailedScheduling", "message": message, "type": "Warning",
                "source": {"component": FARGATE_SCHEDULER}, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now}, namespace=md["namespace"])
        except ApiError as e:
            if not e.not_found:
                raise

    # ---- IPAM against moto ---------------------------------------------------------------

    def _load_subnets(self) -> None:
        ids = sorted({s for p in self.profiles for s in p["subnets"]})
        if not ids:
            return
        for s in self.ec2.describe_subnets(SubnetIds=ids)["Subnets"]:
            self.subnets[s["SubnetId"]] = {"cidr": s["CidrBlock"], "az": s["AvailabilityZone"]}

    def recover_allocations(self) -> dict[str, JSON]:
        """Rebuild pod uid -> ENI/IP/node from moto (ENI descriptions carry the pod uid)."""
        paginator = self.ec2.get_paginator("describe_network_interfaces")
        for page in paginator.paginate():
            for eni in page["NetworkInterfaces"]:
                desc = eni.get("Description") or ""
                if not desc.startswith(ENI_PREFIX):
                    continue
                uid, _, podref = desc[len(ENI_PREFIX):].partition(" ")
                ip = eni["PrivateIpAddress"]
                self.allocs[uid] = {"eni": eni["NetworkInterfaceId"], "ip": ip,
                                    "subnet": eni["SubnetId"], "node": fargate_node_name(ip),
                                    "pod": podref, "uid": uid}
        return self.allocs

    def _allocate(self, pod: JSON, prof: JSON) -> JSON | None:
        md = pod["metadata"]
        uid, podref = md["uid"], f"{md['namespace']}/{md['name']}"
        with self.alloc_lock:
            if uid in self.allocs:
                return self.allocs[uid]
            subnets = self.ec2.describe_subnets(SubnetIds=prof["subnets"])["Subnets"]
            subnets.sort(key=lambda s: -s["AvailableIpAddressCount"])
            for s in subnets:
                if s["AvailableIpAddressCount"] <= 0:
                    continue
                ip = self._free_ip(s)
                if not ip:
                    continue
                eni = self.ec2.create_network_interface(
                    SubnetId=s["SubnetId"], PrivateIpAddress=ip,
                    Description=f"{ENI_PREFIX}{uid} {podref}",
                    TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
                        {"Key": "eks:fargate-profile", "Value": prof["name"]},
                        {"Key": POD_UID_LABEL, "Value": uid}]}],
                )["NetworkInterface"]
                alloc = {"eni": eni["NetworkInterfaceId"], "ip": ip, "subnet": s["SubnetId"],
                         "node": fargate_node_name(ip), "pod": podref, "uid": uid}
                self.allocs[uid] = alloc
                self.log(f"eni created eni={alloc['eni']} ip={ip} subnet={s['SubnetId']} "
                         f"pod={podref} free_before={s['AvailableIpAddressCount']}")
                return alloc
        with self.state_lock:
            self.waiting_for_ip.add(uid)
        self._unschedulable(pod, f"Fargate: no free IP address in subnets {prof['subnets']} "
                                 f"of profile {prof['name']}")
        return None

    def _free_ip(self, subnet: JSON) -> str | None:
        net = ipaddress.ip_network(subnet["CidrBlock"])
        used = set()
        for page in self.ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": "subnet-id", "Values": [subnet["SubnetId"]]}]):
            for eni in page["NetworkInterfaces"]:
                for a in eni.get("PrivateIpAddresses") or [{"PrivateIpAddress":
                                                            eni.get("PrivateIpAddress")}]:
                    used.add(a.get("PrivateIpAddress"))
        # AWS reserves the first four addresses and the last one of every subnet.
        first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
        for n in range(first, last + 1):
            ip = str(ipaddress.ip_address(n))
            if ip not in used:
                return ip
        return None

    def _ensure_fargate_node(self, alloc: JSON, prof: JSON) -> None:
        name = alloc["node"]
        az = self.subnets.get(alloc["subnet"], {}).get("az", f"{self.region}a")
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                COMPUTE_TYPE_LABEL: "fargate",
                STANDIN_LABEL: "fargate",
                POD_UID_LABEL: alloc["uid"],
                PROFILE_LABEL: prof["name"],
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/region": self.region,
                "topology.kubernetes.io/zone": az,
            }},
            "spec": {"providerID": f"aws:///{az}/{alloc['eni']}/{name}",
                     "taints": [{"key": COMPUTE_TYPE_LABEL, "value": "fargate",
                                 "effect": "NoSchedule"}]},
            "status": _node_status(alloc["ip"], name),
        }
        try:
            self.kube.create("v1", "nodes", body)
            self.log(f"node created node={name} pod={alloc['pod']}")
        except ApiError as e:
            if not e.conflict:
                raise
            cur = self.kube.get_or_none("v1", "nodes", name)
            if cur and cur["metadata"].get("labels", {}).get(POD_UID_LABEL) != alloc["uid"]:
                # A node left over from an earlier pod at the same address: replace it.
                self.kube.delete("v1", "nodes", name, missing_ok=True)
                self.kube.create("v1", "nodes", body)
                self.log(f"node replaced node={name} pod={alloc['pod']}")

    def _ensure_ec2_node(self) -> None:
        ip = "10.0.0.10"
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.ec2_node, "labels": {
                    STANDIN_LABEL: "ec2", "kubernetes.io/hostname": self.ec2_node,
                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "m6i.large",
                    "eks.amazonaws.com/nodegroup": "testbed",
                    "topology.kubernetes.io/region": self.region,
                    "topology.kubernetes.io/zone": f"{self.region}a"}},
                "spec": {"providerID": f"aws:///{self.region}a/i-0testbed00000000"},
                "status": _node_status(ip, self.ec2_node)}
        try:
            self.kube.create("v1", "nodes", body)
            self.log(f"node created node={self.ec2_node} kind=ec2")
        except ApiError as e:
            if not e.conflict:
                raise

    def _free(self, uid: str) -> None:
        alloc = self.allocs.get(uid)
        if not alloc:
            return
        try:
            self.kube.delete("v1", "nodes", alloc["node"], missing_ok=True)
            self.log(f"node deleted node={alloc['node']} pod={alloc['pod']}")
        except ApiError as e:
            raise RuntimeError(f"node delete failed: {e}") from e
        with self.alloc_lock:
            try:
                self.ec2.delete_network_interface(NetworkInterfaceId=alloc["eni"])
            except ClientError as e:
                if "NotFound" not in e.response["Error"]["Code"]:
                    raise
            self.allocs.pop(uid, None)
        self.stats["freed"] += 1
        self.log(f"eni deleted eni={alloc['eni']} ip={alloc['ip']} pod={alloc['pod']}")
        with self.state_lock:
            waiting = list(self.waiting_for_ip)
            self.failed_sched_reported.difference_update(waiting)
        for w in waiting:  # an address came back: retry pods that could not get one
            self.queue.add(w)

    # ---- kubelet -----------------------------------------------------------------------

    def _pod_ip(self, pod: JSON) -> tuple[str, str]:
        node = pod["spec"]["nodeName"]
        alloc = self.allocs.get(pod["metadata"]["uid"])
        if alloc and node == alloc["node"]:
            return alloc["ip"], alloc["ip"]  # a Fargate pod is its own host
        uid = pod["metadata"]["uid"]
        with self.state_lock:
            if uid not in self.pod_ips:
                self._ec2_ip_seq += 1
                n = self._ec2_ip_seq
                self.pod_ips[uid] = f"10.0.{128 + (n // 250) % 64}.{n % 250 + 2}"
            return self.pod_ips[uid], "10.0.0.10"

    def _start(self, pod: JSON) -> bool:
        md, spec = pod["metadata"], pod["spec"]
        now = now_rfc3339()
        pod_ip, host_ip = self._pod_ip(pod)
        statuses = [{
            "name": c["name"], "image": c.get("image", ""),
            "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}",
            "containerID": f"containerd://{secrets.token_hex(32)}",
            "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        } for c in spec.get("containers", [])]
        conds = [_cond("PodReadyToStartContainers", "True", now),
                 _cond("Initialized", "True", now), _cond("ContainersReady", "True", now),
                 _cond("Ready", "True", now)]
        patch = {"status": {"phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": now,
                            "conditions": conds, "containerStatuses": statuses}}
        try:
            new = self.kube.patch_status("v1", "pods", md["name"], patch, md["namespace"],
                                         patch_type=STRATEGIC)
        except ApiError as e:
            if e.not_found:
                return False
            raise
        pod["status"] = new.get("status", patch["status"])
        self.started_at[md["uid"]] = time.time()
        self.running_statuses[md["uid"]] = statuses
        self.stats["started"] += 1
        lat = time.time() - parse_rfc3339(md["creationTimestamp"])
        self.log(f"pod running pod={md['namespace']}/{md['name']} node={spec['nodeName']} "
                 f"ip={pod_ip} since_create={lat:.1f}s")
        return True

    def _terminated_patch(self, pod: JSON, code: int) -> JSON:
        now = now_rfc3339()
        current = pod.get("status", {}).get("containerStatuses") or \
            self.running_statuses.get(pod["metadata"]["uid"]) or []
        old = {c["name"]: c for c in current}
        statuses = []
        for c in pod["spec"].get("containers", []):
            prev = old.get(c["name"], {})
            started = prev.get("state", {}).get("running", {}).get("startedAt", now)
            cid = prev.get("containerID") or f"containerd://{secrets.token_hex(32)}"
            statuses.append({
                "name": c["name"], "image": c.get("image", ""),
                "imageID": prev.get("imageID", ""), "containerID": cid,
                "ready": False, "started": False, "restartCount": 0,
                "state": {"terminated": {"exitCode": code,
                                         "reason": "Completed" if code == 0 else "Error",
                                         "startedAt": started, "finishedAt": now,
                                         "containerID": cid}},
            })
        phase = "Succeeded" if code == 0 else "Failed"
        conds = [_cond("PodReadyToStartContainers", "False", now),
                 _cond("ContainersReady", "False", now, "PodCompleted"),
                 _cond("Ready", "False", now, "PodCompleted")]
        return {"status": {"phase": phase, "conditions": conds, "containerStatuses": statuses}}

    def _finish(self, pod: JSON, code: int) -> None:
        md = pod["metadata"]
        try:
            self.kube.patch_status("v1", "pods", md["name"], self._terminated_patch(pod, code),
                                   md["namespace"], patch_type=STRATEGIC)
        except ApiError as e:
            if e.not_found:
                return
            raise
        self.stats["finished"] += 1
        self.finished.add(md["uid"])
        self.running_statuses.pop(md["uid"], None)
        self.log(f"pod {'succeeded' if code == 0 else 'failed'} pod={md['namespace']}/"
                 f"{md['name']} exit_code={code}")

    def _kill_and_confirm(self, pod: JSON) -> None:
        md = pod["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        try:
            if pod.get("status", {}).get("phase") == "Running":
                self.kube.patch_status("v1", "pods", name, self._terminated_patch(pod, 143), ns,
                                       patch_type=STRATEGIC)
            else:  # never started: the kubelet reports it Failed without containers running
                self.kube.patch_status("v1", "pods", name, {"status": {"phase": "Failed"}}, ns,
                                       patch_type=STRATEGIC)
            self.kube.delete("v1", "pods", name, ns, grace_period_seconds=0, uid=uid)
        except ApiError as e:
            if e.not_found or e.conflict:
                return
            raise
        self.log(f"pod killed pod={ns}/{name} reason=deletionTimestamp exit_code=143")

    # ---- admission webhook -------------------------------------------------------------

    def mutate(self, review: JSON) -> JSON:
        """AdmissionReview v1 request -> response: the EKS Fargate pod mutation."""
        req = review.get("request") or {}
        resp: JSON = {"uid": req.get("uid", ""), "allowed": True}
        pod = req.get("object") or {}
        md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        ns = req.get("namespace") or md.get("namespace") or ""
        labels = md.get("labels") or {}
        wanted = labels.get(PROFILE_LABEL)
        prof = (next((p for p in self.profiles if p["name"] == wanted), None) if wanted
                else match_profile(self.profiles, ns, labels))
        # A pod bound at creation (spec.nodeName) skips scheduling, so it is left alone.
        if prof and not spec.get("nodeName") and spec.get("schedulerName", "default-scheduler") \
                in ("", "default-scheduler"):
            ops: list[JSON] = []
            if "labels" not in md:
                ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            ops.append({"op": "add", "path": "/metadata/labels/" + PROFILE_LABEL.replace(
                "~", "~0").replace("/", "~1"), "value": prof["name"]})
            ops.append({"op": "add", "path": "/spec/schedulerName", "value": FARGATE_SCHEDULER})
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            self.log(f"pod mutated namespace={ns} name={md.get('name') or md.get('generateName')}"
                     f" profile={prof['name']}")
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": resp}

    def _start_webhook(self) -> None:
        d = self.state_dir or tempfile.mkdtemp(prefix="fargate-webhook-")
        os.makedirs(d, exist_ok=True)
        ca_pem, cert_path, key_path = _webhook_pki(d, self.webhook_host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                try:
                    n = int(self.headers.get("Content-Length", "0"))
                    out = json.dumps(standin.mutate(json.loads(self.rfile.read(n)))).encode()
                    self.send_response(200)
                except Exception as e:  # answer something the apiserver can log
                    out = json.dumps({"error": str(e)}).encode()
                    self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer((self.webhook_host, 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="fargate-webhook", daemon=True).start()
        port = httpd.server_address[1]
        namespaces = sorted({s["namespace"] for p in self.profiles for s in p["selectors"]})
        hook: JSON = {
            "name": WEBHOOK_NAME,
            "clientConfig": {"url": f"https://{self.webhook_host}:{port}/mutate-pods",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5,
            "admissionReviewVersions": ["v1"], "reinvocationPolicy": "Never",
        }
        if not any(any(ch in ns for ch in "*?") for ns in namespaces):
            hook["namespaceSelector"] = {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}
        body = {"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": WEBHOOK_NAME, "labels": {STANDIN_LABEL: "fargate"}},
                "webhooks": [hook]}
        api = "admissionregistration.k8s.io/v1"
        cur = self.kube.get_or_none(api, "mutatingwebhookconfigurations", WEBHOOK_NAME)
        if cur:
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.replace(api, "mutatingwebhookconfigurations", WEBHOOK_NAME, body)
        else:
            self.kube.create(api, "mutatingwebhookconfigurations", body)
        self.log(f"webhook registered name={WEBHOOK_NAME} url={hook['clientConfig']['url']} "
                 f"namespaces={namespaces}")


# ---- helpers -----------------------------------------------------------------------------

def _float(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _started_at(status: JSON) -> float:
    for c in status.get("containerStatuses") or []:
        at = c.get("state", {}).get("running", {}).get("startedAt")
        if at:
            return parse_rfc3339(at)
    return parse_rfc3339(status["startTime"]) if status.get("startTime") else time.time()


def _cond(typ: str, status: str, now: str, reason: str | None = None) -> JSON:
    c = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        c["reason"] = reason
    return c


def _node_status(ip: str, name: str) -> JSON:
    now = now_rfc3339()
    return {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name},
                      {"type": "InternalDNS", "address": name}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "testbed stand-in kubelet is posting ready status",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"},
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110",
                        "ephemeral-storage": "20Gi"},
        "nodeInfo": {"kubeletVersion": "v1.37.2-eks-testbed", "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "containerd://2.0.0", "osImage": "testbed",
                     "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
    }


def _webhook_pki(directory: str, host: str) -> tuple[bytes, str, str]:
    """A throw-away CA and a serving cert for `host`; returns (ca_pem, cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testbed-fargate-webhook-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: Any = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fargate-webhook")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    cert_path = os.path.join(directory, "fargate-webhook.crt")
    key_path = os.path.join(directory, "fargate-webhook.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return ca.public_bytes(pem), cert_path, key_path
