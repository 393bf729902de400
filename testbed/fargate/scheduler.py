"""Binding pods to nodes, as fargate-scheduler and the default scheduler would.

A pod with `fargate-scheduler` gets its profile's ENI and Fargate node (nodes.py) before
it is bound: PodGC deletes pods bound to a missing node. When every profile subnet is
full it stays Pending with `PodScheduled=False/Unschedulable` and a `FailedScheduling`
event, and is retried when an address comes back. A pod with the default scheduler is
bound to the shared EC2 node.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ..kube import STRATEGIC, ApiError, Kube, now_rfc3339
from .nodes import Nodes
from .profiles import FARGATE_SCHEDULER, PROFILE_LABEL, match_profile, profile_named

JSON = dict[str, Any]


class Scheduler:
    def __init__(self, kube: Kube, nodes: Nodes, profiles: list[JSON],
                 log: Callable[[str], None]):
        self.kube = kube
        self.nodes = nodes
        self.profiles = profiles
        self.log = log
        self.lock = threading.Lock()
        self.waiting_for_ip: set[str] = set()
        self.failed_sched_reported: set[str] = set()
        # uid -> node this process bound it to. The informer's copy of a pod can lag
        # behind the binding; this keeps a second pass from binding it twice.
        self.bound: dict[str, str] = {}
        self.scheduled = 0

    def schedule(self, pod: JSON) -> str | None:
        """Binds the pod; returns its node, or None when it is not (yet) bound."""
        md, spec = pod["metadata"], pod.get("spec", {})
        uid, ns, name = md["uid"], md["namespace"], md["name"]
        sched = spec.get("schedulerName") or "default-scheduler"
        if sched == FARGATE_SCHEDULER:
            labels = md.get("labels") or {}
            wanted = labels.get(PROFILE_LABEL)
            prof = profile_named(self.profiles, wanted) \
                or match_profile(self.profiles, ns, labels)
            if not prof:
                self._unschedulable(pod, f"no Fargate profile {wanted!r} matches the pod")
                return None
            alloc = self.nodes.allocs.get(uid) or self.nodes.allocate(pod, prof)
            if not alloc:
                with self.lock:
                    self.waiting_for_ip.add(uid)
                self._unschedulable(pod, f"Fargate: no free IP address in subnets "
                                         f"{prof['subnets']} of profile {prof['name']}")
                return None
            self.nodes.ensure_fargate_node(alloc, prof)
            node = alloc["node"]
        elif sched == "default-scheduler":
            node = self.nodes.ec2_node
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
        self.scheduled += 1
        self.bound[uid] = node
        with self.lock:
            self.waiting_for_ip.discard(uid)
        self.log(f"pod bound pod={ns}/{name} node={node}")
        return node

    def address_freed(self) -> list[str]:
        """An address came back: the pods that could not get one, to be retried (each may
        report FailedScheduling again)."""
        with self.lock:
            waiting = list(self.waiting_for_ip)
            self.failed_sched_reported.difference_update(waiting)
        return waiting

    def forget(self, uid: str) -> None:
        """The pod is gone."""
        with self.lock:
            self.failed_sched_reported.discard(uid)
            self.waiting_for_ip.discard(uid)
        self.bound.pop(uid, None)

    def _unschedulable(self, pod: JSON, message: str) -> None:
        md = pod["metadata"]
        uid = md["uid"]
        with self.lock:
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
