"""Per-pod Fargate node + ENI lifecycle, and the one shared EC2 node.

On Fargate every pod gets its own micro-VM with one ENI in a profile subnet. Here that is
an ENI created in moto at the lowest free address of the profile subnet with the most
free addresses (moto alone picks random, even duplicate, addresses and never runs out, so
this module does the IPAM), and a Node `fargate-ip-10-0-x-y.ec2.internal` labelled like a
Fargate node. Both go when the pod object is gone. The ENI description carries the pod
uid, so the map survives a restart (`recover_allocations`).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..aws import kube_version
from ..kube import ApiError, Kube, now_rfc3339
from .profiles import PROFILE_LABEL

JSON = dict[str, Any]

COMPUTE_TYPE_LABEL = "eks.amazonaws.com/compute-type"
POD_UID_LABEL = "testbed.eks-reaper/pod-uid"
STANDIN_LABEL = "testbed.eks-reaper/stand-in"
ENI_PREFIX = "eks-reaper-testbed fargate pod "
EC2_NODE = "ip-10-0-0-10.ec2.internal"
EC2_NODE_IP = "10.0.0.10"


def fargate_node_name(ip: str) -> str:
    return f"fargate-ip-{ip.replace('.', '-')}.ec2.internal"


class Nodes:
    """The stand-in's nodes and ENIs. `allocs`: pod uid -> {eni, ip, subnet, node, pod, uid}."""

    def __init__(self, kube: Kube, ec2: Any, profiles: list[JSON], *, ec2_node: str,
                 log: Callable[[str], None]):
        self.kube = kube
        self.ec2 = ec2
        self.profiles = profiles
        self.ec2_node = ec2_node
        self.log = log
        self.region = getattr(getattr(ec2, "meta", None), "region_name", None) or "us-east-1"
        self.allocs: dict[str, JSON] = {}
        self.alloc_lock = threading.Lock()       # serialises IPAM against moto
        self.subnets: dict[str, JSON] = {}       # id -> {cidr, az}
        self.freed = 0

    def owns(self, node: str) -> bool:
        """A node this stand-in plays the kubelet of."""
        return node == self.ec2_node or node.startswith("fargate-ip-")

    def load_subnets(self) -> None:
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

    def allocate(self, pod: JSON, prof: JSON) -> JSON | None:
        """The pod's ENI (created now, or the one it already has); None when every subnet
        of the profile is full."""
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

    def ensure_fargate_node(self, alloc: JSON, prof: JSON) -> None:
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

    def ensure_ec2_node(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.ec2_node, "labels": {
                    STANDIN_LABEL: "ec2", "kubernetes.io/hostname": self.ec2_node,
                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "m6i.large",
                    "eks.amazonaws.com/nodegroup": "testbed",
                    "topology.kubernetes.io/region": self.region,
                    "topology.kubernetes.io/zone": f"{self.region}a"}},
                "spec": {"providerID": f"aws:///{self.region}a/i-0testbed00000000"},
                "status": _node_status(EC2_NODE_IP, self.ec2_node)}
        try:
            self.kube.create("v1", "nodes", body)
            self.log(f"node created node={self.ec2_node} kind=ec2")
        except ApiError as e:
            if not e.conflict:
                raise

    def free(self, uid: str) -> bool:
        """Deletes the pod's Fargate node and ENI; False when it had none."""
        alloc = self.allocs.get(uid)
        if not alloc:
            return False
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
        self.freed += 1
        self.log(f"eni deleted eni={alloc['eni']} ip={alloc['ip']} pod={alloc['pod']}")
        return True

    def delete_orphan_nodes(self, live_uids: set[str]) -> None:
        """Fargate nodes whose pod is neither live nor allocated (left by a stand-in that
        was down when the pod went)."""
        try:
            for node in self.kube.list("v1", "nodes", label_selector=f"{STANDIN_LABEL}=fargate"):
                uid = node["metadata"].get("labels", {}).get(POD_UID_LABEL)
                if uid not in live_uids and uid not in self.allocs:
                    self.kube.delete("v1", "nodes", node["metadata"]["name"], missing_ok=True)
                    self.log(f"node deleted node={node['metadata']['name']} reason=orphan")
        except ApiError as e:
            self.log(f"stand-in: orphan node sweep failed: {e}")


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
        "nodeInfo": {"kubeletVersion": f"{kube_version()}-eks-testbed", "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "containerd://2.0.0", "osImage": "testbed",
                     "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
    }
