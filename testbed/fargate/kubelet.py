"""The kubelet part: a bound pod's status, written through `pods/status`.

Running (podIP = the ENI's address on a Fargate node, a made-up one on the EC2 node;
Ready), then, after `testbed.eks-reaper/run-seconds`, Succeeded or Failed with a
terminated container status carrying `testbed.eks-reaper/exit-code`. A pod deleted while
it runs is killed (exit 143, Failed) and deleted with grace 0, as the kubelet confirms a
graceful delete.

Pod annotations read here (set them on the Job's pod template):
    testbed.eks-reaper/run-seconds    time Running before exiting (default 2; negative =
                                      until deleted)
    testbed.eks-reaper/exit-code      container exit code (default 0)
    testbed.eks-reaper/start-seconds  delay from creation to Running (default 0)
    testbed.eks-reaper/kubelet        "none": leave this pod's status alone
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable

from ..kube import STRATEGIC, ApiError, Kube, now_rfc3339, parse_rfc3339
from .nodes import EC2_NODE_IP, Nodes

JSON = dict[str, Any]

RUN_SECONDS = "testbed.eks-reaper/run-seconds"
EXIT_CODE = "testbed.eks-reaper/exit-code"
START_SECONDS = "testbed.eks-reaper/start-seconds"
KUBELET = "testbed.eks-reaper/kubelet"  # "none": leave this pod's status alone
DEFAULT_RUN_SECONDS = 2.0


class Kubelet:
    def __init__(self, kube: Kube, nodes: Nodes, log: Callable[[str], None]):
        self.kube = kube
        self.nodes = nodes
        self.log = log
        self.lock = threading.Lock()
        # What this process already did per pod uid. The informer's copy of a pod can lag
        # behind our own writes (a queued MODIFIED from the binding arrives after we set
        # Running); these keep a second pass from starting a pod twice.
        self.started_at: dict[str, float] = {}   # uid -> when we set it Running
        self.finished: set[str] = set()          # uids we set terminal
        self.pod_ips: dict[str, str] = {}        # uid -> pod IP on the EC2 node
        self.running_statuses: dict[str, list] = {}  # uid -> containerStatuses we wrote
        self._ec2_ip_seq = 0
        self.counts = {"started": 0, "finished": 0}

    def forget(self, uid: str) -> None:
        """The pod is gone."""
        with self.lock:
            self.pod_ips.pop(uid, None)
        self.started_at.pop(uid, None)
        self.running_statuses.pop(uid, None)
        self.finished.discard(uid)

    def sync(self, pod: JSON, phase: str) -> float | None:
        """One pass over a bound, live pod in `phase`: start it when its start delay is
        over, finish it when its run time is. Returns the seconds until it is due for
        another pass, or None."""
        md, status = pod["metadata"], pod.get("status", {})
        uid, ann = md["uid"], md.get("annotations") or {}
        if phase == "Pending" and not status.get("containerStatuses"):
            delay = _float(ann.get(START_SECONDS), 0.0)
            created = parse_rfc3339(md["creationTimestamp"])
            due = created + delay - time.time()
            if due > 0:
                return due
            if not self._start(pod):
                return None
            phase = "Running"
        if phase == "Running":
            run = _float(ann.get(RUN_SECONDS), DEFAULT_RUN_SECONDS)
            if run < 0:
                return None
            # startedAt has one-second precision; prefer our own clock when we started it.
            started = self.started_at.get(uid) or _started_at(status)
            left = started + run - time.time()
            if left > 0:
                return left
            code = int(_float(ann.get(EXIT_CODE), 0))
            self._finish(pod, code)
        return None

    def _pod_ip(self, pod: JSON) -> tuple[str, str]:
        node = pod["spec"]["nodeName"]
        alloc = self.nodes.allocs.get(pod["metadata"]["uid"])
        if alloc and node == alloc["node"]:
            return alloc["ip"], alloc["ip"]  # a Fargate pod is its own host
        uid = pod["metadata"]["uid"]
        with self.lock:
            if uid not in self.pod_ips:
                self._ec2_ip_seq += 1
                n = self._ec2_ip_seq
                self.pod_ips[uid] = f"10.0.{128 + (n // 250) % 64}.{n % 250 + 2}"
            return self.pod_ips[uid], EC2_NODE_IP

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
        self.counts["started"] += 1
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
        self.counts["finished"] += 1
        self.finished.add(md["uid"])
        self.running_statuses.pop(md["uid"], None)
        self.log(f"pod {'succeeded' if code == 0 else 'failed'} pod={md['namespace']}/"
                 f"{md['name']} exit_code={code}")

    def kill_and_confirm(self, pod: JSON) -> None:
        """A pod deleted while bound to one of our nodes: killed, then the delete confirmed."""
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
