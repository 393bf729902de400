"""moto side of the testbed: the in-process moto server and the AWS resources of cluster `etl`.

Layout (VPC 10.0.0.0/16, us-east-1; capacity = 2^(32-prefix) - 5 as on AWS):

    subnet        CIDR            AZ          usable  used by
    cluster-a     10.0.0.0/26     us-east-1a  59      cluster (EC2-like nodes)
    fargate-b     10.0.1.0/28     us-east-1b  11      cluster + Fargate profile
    fargate-c     10.0.1.16/28    us-east-1c  11      cluster + Fargate profile

All three are the cluster's `resourcesVpcConfig.subnetIds`; the Fargate profile
`etl-fargate` (namespace `etl-fargate`) uses the last two, so 22 running Fargate pods
exhaust it. `EKS_REAPER_TESTBED_FARGATE_PREFIX` (default 28, 24–28) resizes the Fargate
subnets (e.g. 27 → 27 usable each) for longer runs, and `EKS_REAPER_TESTBED_FARGATE_SUBNETS`
(default 2, 1–4) sets how many there are (`etl-fargate-b`, `-c`, `-d`, `-e` in
us-east-1b…e). They are laid end to end from 10.0.1.0, so the default layout above does
not move; e.g. 3 × /24 is 10.0.1.0/24, 10.0.2.0/24, 10.0.3.0/24 (251 usable each).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3

log = logging.getLogger("testbed.aws")

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "etl"
FARGATE_PROFILE = "etl-fargate"
FARGATE_NAMESPACE = "etl-fargate"
#: Roles the reaper identity may assume (`sts:AssumeRole` through moto): the first has an
#: access entry mapping it to the reaper's group, the second has none.
CROSS_ROLE = "eks-reaper-cross"
NOENTRY_ROLE = "eks-reaper-noentry"


def kube_version() -> str:
    """The Kubernetes release the testbed runs (`TESTBED_KUBE_VERSION`, set by
    `scripts/testbed up`; `v1.37.2` when started otherwise)."""
    return os.environ.get("TESTBED_KUBE_VERSION") or "v1.37.2"


def kube_minor() -> str:
    """`1.32` for `v1.32.13`: the version moto's EKS cluster says it runs."""
    return ".".join(kube_version().lstrip("v").split(".")[:2])


def role_arn(name: str) -> str:
    """The IAM ARN of role `name` in the testbed account."""
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def start_moto(port: int):
    """Starts moto's ThreadedMotoServer on 127.0.0.1:port (0: any free one) in this process."""
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    return srv


#: What the testbed's own AWS calls sign with: moto without IAM enforcement accepts any key.
ADMIN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testbed-admin", "AWS_SECRET_ACCESS_KEY": "testbed-admin"}


def client(service: str, endpoint_url: str, *, region: str = REGION,
           credentials: Mapping[str, str] = ADMIN_CREDENTIALS) -> Any:
    """A boto3 client for moto (or the CBOR bridge) at `endpoint_url`. `credentials` has
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: an env.json dict to sign as the reaper,
    a user's key for a moto that enforces IAM, the testbed admin's by default."""
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url,
                        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"])


def fargate_cidrs(prefix: int, count: int) -> list[str]:
    """The Fargate subnets' CIDRs: `count` blocks of `/prefix` end to end from 10.0.1.0."""
    if not 24 <= prefix <= 28:
        raise ValueError(f"EKS_REAPER_TESTBED_FARGATE_PREFIX={prefix}: must be 24..28")
    if not 1 <= count <= 4:
        raise ValueError(f"EKS_REAPER_TESTBED_FARGATE_SUBNETS={count}: must be 1..4")
    start = int(ipaddress.ip_address("10.0.1.0"))
    size = 2 ** (32 - prefix)
    return [f"{ipaddress.ip_address(start + i * size)}/{prefix}" for i in range(count)]


def create_resources(moto_url: str, apiserver_url: str, ca_pem: bytes, fargate_prefix: int = 28,
                     fargate_subnets_count: int = 2) -> dict:
    """Creates VPC, subnets, cluster and Fargate profile; points the cluster at the apiserver.

    Returns ids for env.json.
    """
    cidrs = fargate_cidrs(fargate_prefix, fargate_subnets_count)
    ec2 = client("ec2", moto_url)
    eks = client("eks", moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "etl"}])
    layout = [("etl-cluster-a", "10.0.0.0/26", "us-east-1a", False)] + [
        (f"etl-fargate-{zone}", cidr, f"us-east-1{zone}", True)
        for zone, cidr in zip("bcde", cidrs)
    ]
    subnets, fargate_subnets, described = [], [], []
    for name, cidr, az, fargate in layout:
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]
        sid = sn["SubnetId"]
        ec2.create_tags(
            Resources=[sid],
            Tags=[
                {"Key": "Name", "Value": name},
                {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "shared"},
                {"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
            ],
        )
        subnets.append(sid)
        if fargate:
            fargate_subnets.append(sid)
        described.append({"id": sid, "name": name, "cidr": cidr, "az": az,
                          "fargate": fargate, "available": sn["AvailableIpAddressCount"]})
        log.info("subnet %s %s %s %s available=%d", name, sid, cidr, az, sn["AvailableIpAddressCount"])

    role = f"arn:aws:iam::{ACCOUNT}:role/eks-cluster-role"
    eks.create_cluster(
        name=CLUSTER, version=kube_minor(), roleArn=role,
        resourcesVpcConfig={"subnetIds": subnets, "endpointPublicAccess": True,
                            "endpointPrivateAccess": True},
    )
    eks.create_fargate_profile(
        fargateProfileName=FARGATE_PROFILE, clusterName=CLUSTER,
        podExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-fargate-pod-execution",
        subnets=fargate_subnets, selectors=[{"namespace": FARGATE_NAMESPACE}],
    )
    point_cluster_at(apiserver_url, ca_pem)
    got = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert got["endpoint"] == apiserver_url, got["endpoint"]
    log.info("cluster %s endpoint=%s", CLUSTER, got["endpoint"])
    return {"vpc": vpc, "subnets": subnets, "fargate_subnets": fargate_subnets, "described": described}


def create_assumable_roles(moto_url: str, trusted_arn: str) -> dict[str, str]:
    """Creates `CROSS_ROLE` and `NOENTRY_ROLE` in moto's IAM, trusting `trusted_arn`;
    returns name -> ARN. moto does not evaluate trust policies (any caller may assume any
    role, existing or not); the roles exist so STS gives their sessions a role id
    (`AROA...:SESSION`), as AWS does."""
    iam = client("iam", moto_url)
    trust = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted_arn},
                       "Action": "sts:AssumeRole"}],
    })
    arns = {}
    for name in (CROSS_ROLE, NOENTRY_ROLE):
        arns[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        assert arns[name] == role_arn(name), arns[name]
        log.info("role %s", arns[name])
    return arns


def point_cluster_at(apiserver_url: str, ca_pem: bytes) -> None:
    """Sets the moto cluster's endpoint and CA to the local apiserver's (in-process)."""
    from moto.eks.models import eks_backends

    cluster = eks_backends[ACCOUNT][REGION].clusters[CLUSTER]
    cluster.endpoint = apiserver_url
    cluster.certificate_authority = {"data": base64.b64encode(ca_pem).decode()}
