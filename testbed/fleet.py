"""A fleet of EKS clusters on the testbed: many accounts and Regions in a moto of its own,
every cluster's endpoint a path of the fleet proxy (`fleet_proxy.py`) in front of the one
real apiserver.

`Fleet` (a context manager) starts, in the calling process:

- **moto** (`ThreadedMotoServer`) with the CBOR bridge in front of its CloudWatch, and the
  STS sessions it issues mirrored into a file (`sts_sessions.py`), as the supervisor does;
  the fleet's AWS side is kept out of the shared testbed's moto so that its hundreds of
  clusters, subnets and metrics do not change what other tests read there;
- the **fleet proxy**, with a serving certificate of the testbed CA (`pki.py`);
- the **fleet itself** (`register`): in each account (moto keeps one EKS and EC2 per
  account, chosen by the caller's credentials: here those of a role assumed in that
  account) and Region, each cluster gets two subnets of its own (in one VPC per account and
  Region: moto's CreateVpc is slow enough to matter at 200), so its free-IP figures are its
  own, and an EKS cluster tagged `eks-reaper=enabled` whose endpoint is
  `https://127.0.0.1:PORT/fleet/<account>/<region>/<name>` and whose CA is the testbed's.
  The same names are registered in several accounts (`layout`): a name is not an identity.

Access: the member role `eks-reaper-member` of each account maps to Kubernetes user and
group `eks-reaper`, like the testbed's own cluster's access entry, so the apiserver's RBAC
and admission policy apply to every fleet cluster's deletions. The reaper itself signs its
AWS calls with the testbed's reaper key (moto's default account, `self`).

Fleet objects carry `fleet_proxy.CLUSTER_LABEL` = `cluster.key`: `labels(cluster)`.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed import aws, cbor_bridge, fleet_proxy, pki, sts_sessions

log = logging.getLogger("testbed.fleet")

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
TAG = ("eks-reaper", "enabled")
MEMBER_ROLE = "eks-reaper-member"
#: The role the fleet's own set-up assumes in each account to create its resources there.
SETUP_ROLE = "fleet-setup"


@dataclass(frozen=True)
class FleetCluster:
    account: str
    region: str
    name: str

    @property
    def key(self) -> str:
        """The label value of this cluster's objects."""
        return fleet_proxy.cluster_key(self.account, self.region, self.name)

    @property
    def identity(self) -> str:
        """`account/region/name`: the product's message group and metric identity."""
        return f"{self.account}/{self.region}/{self.name}"

    def endpoint(self, proxy_url: str) -> str:
        return f"{proxy_url}/fleet/{self.account}/{self.region}/{self.name}"


def labels(cluster: FleetCluster) -> dict[str, str]:
    """The label every object of `cluster` carries."""
    return {fleet_proxy.CLUSTER_LABEL: cluster.key}


def layout(per_place: int = 34, shared: int = 10) -> list[FleetCluster]:
    """`per_place` clusters in each account x Region: `shared-NN` (the first `shared`) have
    the same names in every account, the others are unique (`a<account digit>-<i>`)."""
    out = []
    for account in ACCOUNTS:
        for region in REGIONS:
            for i in range(per_place):
                name = f"shared-{i:02d}" if i < shared else f"a{account[0]}-{i:03d}"
                out.append(FleetCluster(account, region, name))
    return out


def member_role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{MEMBER_ROLE}"


def access_table(accounts: tuple[str, ...] = ACCOUNTS) -> dict:
    """The authenticator table of the fleet: each member role -> user/group eks-reaper."""
    return {"maxTokenAgeSeconds": 900, "identities": {},
            "accessEntries": {member_role_arn(a): {"username": "eks-reaper",
                                                   "groups": ["eks-reaper"]}
                              for a in accounts}}


def account_clients(moto_url: str, account: str, region: str) -> dict[str, Any]:
    """EC2 and EKS clients signing as a role assumed in `account` (moto then serves that
    account's backends)."""
    sts = aws.client("sts", moto_url, region=region)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{SETUP_ROLE}",
                            RoleSessionName="fleet-setup")["Credentials"]
    import boto3

    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=region)
    return {s: session.client(s, endpoint_url=moto_url) for s in ("ec2", "eks")}


def register(moto_url: str, clusters: list[FleetCluster], proxy_url: str,
             ca_pem: bytes, untagged: bool = True) -> dict[str, list[str]]:
    """Creates every cluster (two /24 subnets of its own in its account and Region's VPC, a
    tagged EKS cluster pointed at its proxy path); with `untagged`, one untagged `scratch`
    cluster per account and Region that discovery must skip. Returns identity -> subnet
    ids."""
    from moto.eks.models import eks_backends

    places = sorted({(c.account, c.region) for c in clusters})
    subnets: dict[str, list[str]] = {}
    ca = {"data": base64.b64encode(ca_pem).decode()}

    def one_place(place: tuple[str, str]) -> None:
        account, region = place
        c = account_clients(moto_url, account, region)
        here = [x for x in clusters if (x.account, x.region) == place]
        if untagged:
            here.append(FleetCluster(account, region, "scratch"))
        vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        for i, cl in enumerate(here):
            ids = [c["ec2"].create_subnet(VpcId=vpc, CidrBlock=f"10.0.{2 * i + half}.0/24",
                                          AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
                   for half, az in ((0, "a"), (1, "b"))]
            tags = {TAG[0]: TAG[1]} if cl.name != "scratch" else {"team": "scratch"}
            c["eks"].create_cluster(
                name=cl.name, roleArn=f"arn:aws:iam::{account}:role/eks-cluster",
                resourcesVpcConfig={"subnetIds": ids}, tags=tags)
            backend = eks_backends[account][region].clusters[cl.name]
            backend.endpoint = cl.endpoint(proxy_url)
            backend.certificate_authority = ca
            subnets[cl.identity] = ids

    with ThreadPoolExecutor(max_workers=len(places)) as pool:
        list(pool.map(one_place, places))
    return subnets


class Fleet:
    """moto + CBOR bridge + fleet proxy + the registered fleet, for one test or benchmark.

    `env` is the running testbed's env.json; `clusters` what to register. `proxy_process`
    runs the proxy as a child process (`python -m testbed.fleet_proxy`) instead of a thread
    of this one, for benchmarks: then it does not share this process's interpreter lock
    with moto and the caller."""

    def __init__(self, env: dict, clusters: list[FleetCluster], *,
                 proxy_process: bool = False, python: str | None = None):
        self.env = env
        self.clusters = clusters
        self.proxy_process = proxy_process
        self.python = python
        self.dir = Path(tempfile.mkdtemp(prefix="eks-reaper-fleet-"))
        self.deletions = self.dir / "deletions.jsonl"
        self.table = self.dir / "access-entries.json"
        self.sessions = self.dir / "sts-sessions.json"
        self.subnets: dict[str, list[str]] = {}
        self._moto = self._bridge = self._proxy = self._child = None

    def __enter__(self) -> "Fleet":
        import socket
        import subprocess
        import sys
        import time

        self._moto = aws.start_moto(0)
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        # moto's backends are per process: a second fleet in one process starts empty.
        import requests

        requests.post(f"{self.moto_url}/moto-api/reset", timeout=30).raise_for_status()
        sts_sessions.install(self.sessions)
        self._bridge = cbor_bridge.start_bridge(self.moto_url)
        self.cloudwatch_url = self._bridge.url
        self.table.write_text(json.dumps(access_table(), indent=2) + "\n")
        pki_dir = Path(self.env["TESTBED_CA_FILE"]).parent
        cert, key = pki.issue_serving_cert(pki_dir, self.dir, "fleet-proxy")
        upstream = fleet_proxy.Upstream(self.env["TESTBED_APISERVER"],
                                        self.env["TESTBED_CA_FILE"],
                                        self.env["TESTBED_ADMIN_CERT"],
                                        self.env["TESTBED_ADMIN_KEY"])
        if self.proxy_process:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                proxy_port = s.getsockname()[1]
            self._child = subprocess.Popen(
                [self.python or sys.executable, "-m", "testbed.fleet_proxy",
                 "--port", str(proxy_port), "--apiserver", upstream.url, "--ca", upstream.ca,
                 "--admin-cert", upstream.cert, "--admin-key", upstream.key,
                 "--table", str(self.table), "--sessions", str(self.sessions),
                 "--deletions", str(self.deletions), "--tls-cert", str(cert),
                 "--tls-key", str(key)],
                cwd=str(Path(__file__).resolve().parents[1]),
                stdout=(self.dir / "proxy.log").open("w"), stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while socket.socket().connect_ex(("127.0.0.1", proxy_port)) != 0:
                if time.monotonic() > deadline or self._child.poll() is not None:
                    raise RuntimeError(f"fleet proxy did not start: {self.dir}/proxy.log")
                time.sleep(0.1)
        else:
            self._proxy = fleet_proxy.serve(0, upstream, self.table, self.sessions,
                                            self.deletions, cert, key)
            proxy_port = self._proxy.server_address[1]
        self.proxy_url = f"https://127.0.0.1:{proxy_port}"
        ca_pem = Path(self.env["TESTBED_CA_FILE"]).read_bytes()
        self.subnets = register(self.moto_url, self.clusters, self.proxy_url, ca_pem)
        return self

    def aws_env(self) -> dict:
        """The testbed env with the fleet's moto as the AWS endpoints (for faultlib's
        LambdaRie / reaper_env)."""
        return {**self.env, "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ENDPOINT_URL_CLOUDWATCH": self.cloudwatch_url}

    def client(self, service: str, region: str = aws.REGION) -> Any:
        """A boto3 client of the fleet's moto, as the testbed admin (moto's default
        account: the reaper's own)."""
        return aws.client(service, self.moto_url, region=region)

    def deleted(self) -> list[dict]:
        """The proxy's deletions log so far."""
        return fleet_proxy.read_deletions(self.deletions)

    def __exit__(self, *exc) -> None:
        if self._child is not None:
            self._child.terminate()
            self._child.wait(timeout=10)
        if self._proxy is not None:
            self._proxy.shutdown()
            self._proxy.server_close()
        if self._bridge is not None:
            self._bridge.shutdown()
        if self._moto is not None:
            self._moto.stop()
        sts_sessions.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
