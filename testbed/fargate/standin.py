"""`FargateStandIn`: the pod watch and the per-pod reconcile that drive the other modules
of this package (see its `__init__` for the whole story)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from typing import Any, Callable

from ..aws import client
from ..kube import ApiError, Kube
from .kubelet import KUBELET, Kubelet
from .nodes import EC2_NODE, Nodes
from .profiles import normalize_profiles
from .scheduler import Scheduler
from .webhook import MutatingWebhook
from .workqueue import WorkQueue

JSON = dict[str, Any]


def _stdout(line: str) -> None:
    print(line, flush=True)


def _file_logger(path: str) -> Callable[[str], None]:
    lock = threading.Lock()
    fh = open(path, "a", buffering=1)

    def log(line: str) -> None:
        with lock:
            fh.write(f"{dt.datetime.now(dt.timezone.utc).strftime('%H:%M:%S.%f')[:-3]} {line}\n")

    return log


class FargateStandIn:
    """Scheduler + kubelet + Fargate IPAM for the testbed. See the package docstring."""

    def __init__(self, kube: Kube, ec2: Any, profile: Any, *, ec2_node: str = EC2_NODE,
                 webhook: bool = True, webhook_host: str = "127.0.0.1", workers: int = 16,
                 state_dir: str | None = None, log: Callable[[str], None] = _stdout):
        """`kube`: admin Kube client. `ec2`: boto3 EC2 client pointed at moto. `profile`:
        an EKS FargateProfile dict (or a list of them, or the short form of
        `normalize_profiles`). `webhook=False` skips the admission webhook: then only pods
        that already carry schedulerName `fargate-scheduler` go to Fargate."""
        self.kube = kube
        self.profiles = normalize_profiles(profile)
        self.log = log
        self.workers = workers
        self.nodes = Nodes(kube, ec2, self.profiles, ec2_node=ec2_node, log=log)
        self.scheduler = Scheduler(kube, self.nodes, self.profiles, log)
        self.kubelet = Kubelet(kube, self.nodes, log)
        self.webhook = MutatingWebhook(kube, self.profiles, host=webhook_host,
                                       state_dir=state_dir, log=log) if webhook else None
        self.queue = WorkQueue()
        self.pods: dict[str, JSON] = {}          # uid -> latest pod (non-terminal or ours)
        self.state_lock = threading.Lock()
        self.failures: dict[str, int] = {}       # uid -> consecutive failed passes
        self.synced = threading.Event()          # set after the first full list
        self._prepared = False

    @classmethod
    def from_env(cls, env: dict[str, str], **kw: Any) -> "FargateStandIn":
        """From the testbed's env.json dict: the admin kubeconfig, moto's EC2, and the
        Fargate profile as moto's EKS describes it. Logs to $TESTBED_LOGS/fargate.log."""

        def aws(service: str) -> Any:
            return client(service, env["TESTBED_MOTO_URL"],
                          region=env.get("AWS_REGION", "us-east-1"))

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

    @property
    def stats(self) -> dict[str, int]:
        return {"scheduled": self.scheduler.scheduled, **self.kubelet.counts,
                "freed": self.nodes.freed}

    def prepare(self) -> None:
        """Everything before the watch: subnets, the EC2 node, state recovered from moto,
        the admission webhook served and registered. Idempotent; `run()` calls it too."""
        if self._prepared:
            return
        self.nodes.load_subnets()
        self.nodes.ensure_ec2_node()
        self.nodes.recover_allocations()
        if self.webhook:
            self.webhook.start()
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
                 f"{len(self.nodes.allocs)} ENIs recovered)")
        stop.wait()
        self.queue.close()
        if self.webhook:
            self.webhook.stop()
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
                        if uid not in self.nodes.allocs:
                            continue
                        self.pods[uid] = obj
            self.queue.add(uid)

    def _is_ours_or_pending(self, pod: JSON) -> bool:
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
            return False
        node = pod.get("spec", {}).get("nodeName")
        return not node or self.nodes.owns(node)

    def _after_sync(self, live_uids: set[str]) -> None:
        """After each (re-)list: free ENIs and nodes whose pods no longer exist."""
        with self.state_lock:
            stale = [uid for uid in self.nodes.allocs if uid not in live_uids]
            for uid in stale:
                self.pods[uid] = {"deleted": True, "metadata": {"uid": uid}}
        for uid in stale:
            self.queue.add(uid)
        self.nodes.delete_orphan_nodes(live_uids)
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
            self._forget(uid)
            return
        md, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        ann = md.get("annotations") or {}
        phase = status.get("phase", "Pending")
        node = spec.get("nodeName")
        terminal = phase in ("Succeeded", "Failed")

        # The informer's copy can lag behind this process's own binding and status writes.
        node = node or self.scheduler.bound.get(uid)
        terminal = terminal or uid in self.kubelet.finished
        if uid in self.kubelet.started_at and phase == "Pending":
            phase = "Running"  # our own write has not come back through the watch yet

        if md.get("deletionTimestamp"):
            if node and self.nodes.owns(node) and not terminal and ann.get(KUBELET) != "none":
                spec["nodeName"] = node
                status["phase"] = phase
                self.kubelet.kill_and_confirm(pod)
            return
        if terminal or ann.get(KUBELET) == "none":
            return
        if not node:
            node = self.scheduler.schedule(pod)
            if not node:
                return
        spec["nodeName"] = node
        if not self.nodes.owns(node):
            return
        again = self.kubelet.sync(pod, phase)
        if again is not None:
            self.queue.add_after(uid, again)

    def _forget(self, uid: str) -> None:
        """The pod object is gone: its node and ENI go, and every memo of it."""
        if self.nodes.free(uid):
            for waiting in self.scheduler.address_freed():  # retry pods that got no address
                self.queue.add(waiting)
        with self.state_lock:
            if self.pods.get(uid, {}).get("deleted"):
                del self.pods[uid]
        self.scheduler.forget(uid)
        self.kubelet.forget(uid)
        self.failures.pop(uid, None)
