"""The control plane is the official one, reachable with kubectl, and moto points at it."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

from testbed.aws import client
from testbed.workload import job_manifest

GO_MOD = Path(__file__).resolve().parents[1] / "controlplane" / "go.mod"


def kube_version() -> str:
    """The release the testbed was asked for: EKS_REAPER_K8S_VERSION (`scripts/matrix`), or
    the one testbed/controlplane/go.mod requires (what CI runs)."""
    wanted = os.environ.get("EKS_REAPER_K8S_VERSION", "")
    if wanted:
        return wanted if wanted.startswith("v") else f"v{wanted}"
    m = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", GO_MOD.read_text(), re.M)
    assert m, "k8s.io/kubernetes not required in testbed/controlplane/go.mod"
    return m.group(1)


def aws(env, service):
    return client(service, env["AWS_ENDPOINT_URL"], region=env["AWS_REGION"], credentials=env)


def kubectl(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", f"--kubeconfig={env['KUBECONFIG']}", *args],
                          capture_output=True, text=True, timeout=60)


def test_version_is_the_release_asked_for(admin, api, env):
    v = admin.get(f"{api}/version", timeout=10).json()
    assert v["gitVersion"] == kube_version() == env["TESTBED_KUBE_VERSION"]
    assert re.fullmatch(r"v1\.\d+\.\d+", v["gitVersion"]), v
    assert v["minor"] == v["gitVersion"].split(".")[1]
    assert v["gitTreeState"] == "clean"
    # moto's cluster says the same minor, as DescribeCluster does on EKS
    cluster = aws(env, "eks").describe_cluster(name=env["TESTBED_CLUSTER"])["cluster"]
    assert cluster["version"] == ".".join(v["gitVersion"][1:].split(".")[:2])


def test_kubectl_works_with_the_admin_kubeconfig(env):
    out = kubectl(env, "version", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"] == kube_version()
    out = kubectl(env, "get", "namespaces", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert "namespace/default" in out.stdout.split()
    assert f"namespace/{env['TESTBED_FARGATE_NAMESPACE']}" in out.stdout.split()


def test_readyz_and_rbac_mode(admin, api):
    assert admin.get(f"{api}/readyz", timeout=10).status_code == 200
    # RBAC is the authorizer: an authenticated stranger is forbidden, not allowed.
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "nobody", "resourceAttributes": {
                  "verb": "list", "group": "batch", "resource": "jobs"}}}
    r = admin.post(f"{api}/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review, timeout=10)
    assert r.status_code == 201 and r.json()["status"]["allowed"] is False


def test_least_privilege_rbac_manifest_is_applied(env):
    out = kubectl(env, "auth", "can-i", "--list", "--as=someone", "--as-group=eks-reaper")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^jobs\.batch\s+\[\]\s+\[\]\s+\[list delete\]", out.stdout, re.M), out.stdout
    assert re.search(r"^pods\s+\[\]\s+\[\]\s+\[list delete\]", out.stdout, re.M), out.stdout
    assert kubectl(env, "auth", "can-i", "get", "secrets", "--as=someone",
                   "--as-group=eks-reaper").stdout.strip() == "no"


def test_job_controller_and_namespace_controller_run(admin, api):
    # GIVEN a fresh namespace (the serviceaccount controller must create `default` in it)
    ns = f"cp-{uuid.uuid4().hex[:6]}"
    assert admin.post(f"{api}/api/v1/namespaces", json={"metadata": {"name": ns}},
                      timeout=10).status_code == 201
    try:
        deadline = time.monotonic() + 30
        while admin.get(f"{api}/api/v1/namespaces/{ns}/serviceaccounts/default",
                        timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "serviceaccount controller did not create default SA"
            time.sleep(0.2)
        # WHEN a Job is created
        job = job_manifest("probe", ns)
        r = admin.post(f"{api}/apis/batch/v1/namespaces/{ns}/jobs", json=job, timeout=10)
        assert r.status_code == 201, r.text
        uid = r.json()["metadata"]["uid"]
        # THEN the real job controller creates its pod, owned by the Job
        deadline = time.monotonic() + 30
        while True:
            pods = admin.get(f"{api}/api/v1/namespaces/{ns}/pods", timeout=10).json()["items"]
            if pods:
                break
            assert time.monotonic() < deadline, "job controller created no pod"
            time.sleep(0.2)
        assert pods[0]["metadata"]["ownerReferences"][0]["uid"] == uid
    finally:
        # AND the namespace controller finalises the namespace deletion
        admin.delete(f"{api}/api/v1/namespaces/{ns}", timeout=10)
        deadline = time.monotonic() + 90
        while admin.get(f"{api}/api/v1/namespaces/{ns}", timeout=10).status_code != 404:
            assert time.monotonic() < deadline, "namespace stuck in Terminating"
            time.sleep(0.5)


def test_moto_cluster_points_at_the_real_apiserver(env):
    eks = aws(env, "eks")
    c = eks.describe_cluster(name=env["TESTBED_CLUSTER"])["cluster"]
    assert c["endpoint"] == env["TESTBED_APISERVER"]
    ca = base64.b64decode(c["certificateAuthority"]["data"])
    assert ca == Path(env["TESTBED_CA_FILE"]).read_bytes()
    assert c["resourcesVpcConfig"]["subnetIds"] == env["TESTBED_SUBNETS"].split(",")
    fp = eks.describe_fargate_profile(clusterName=env["TESTBED_CLUSTER"],
                                      fargateProfileName=env["TESTBED_FARGATE_PROFILE"])
    fp = fp["fargateProfile"]
    assert fp["subnets"] == env["TESTBED_FARGATE_SUBNETS"].split(",")
    assert fp["selectors"] == [{"namespace": env["TESTBED_FARGATE_NAMESPACE"]}]


def test_subnets_are_small_and_report_free_ips(env):
    ec2 = aws(env, "ec2")
    got = ec2.describe_subnets(SubnetIds=env["TESTBED_SUBNETS"].split(","))["Subnets"]
    assert len({s["AvailabilityZone"] for s in got}) == 3
    for s in got:
        prefix = int(s["CidrBlock"].split("/")[1])
        assert prefix >= 26
        assert s["AvailableIpAddressCount"] <= 2 ** (32 - prefix) - 5
