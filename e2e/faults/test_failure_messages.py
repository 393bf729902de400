"""The failures an operator meets on day one, each driven into the real binary: the exact
one-line message (what failed, the cause, what to do), printed once on stderr, and the exit
code (0 ok, 1 a cluster failed, 2 invalid configuration).

Each case runs the CLI twice: with text logs, where the only stderr line about the failure
is the plain `eks-reaper: CLUSTER: MESSAGE` line; and with JSON logs, where it is the one
log line carrying `errorKind`, `cluster` and the same message as `error`, and no plain line.

| Failure | How it is produced |
|---|---|
| no AWS credentials | an environment with none (empty HOME, no keys, no metadata), on a terminal |
| AccessDenied | our own moto with IAM enforced, a user whose policy lacks eks:DescribeCluster |
| cluster not found | the testbed's moto, a cluster name it does not have |
| endpoint unreachable | our own moto, the cluster's endpoint on a closed port |
| 401 | an IAM identity the authenticator knows, without an access entry |
| 403 RBAC | the testbed's authenticated identity without any group |
| 403 on the namespaces list | an identity bound to list/delete on jobs and pods only |
| invalid setting | a duration that does not parse |
"""

from __future__ import annotations

import base64
import json
import os
import pty
import secrets
import subprocess
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from testbed.aws import client
from testbed.ports import free_port

from . import faultlib as fl
from .test_rbac import JOBS_AND_PODS, identity_with

MOTO_ACCOUNT = "123456789012"
CAN_I = "The access entry must put the identity in group eks-reaper, bound to the eks-reaper " \
        "ClusterRole (infra/rbac/eks-reaper-rbac.yaml); check: "


def plain_lines(stderr: str) -> list[str]:
    return [l for l in fl.ANSI.sub("", stderr).splitlines() if l.startswith("eks-reaper: ")]


def lines_with(stderr: str, text: str) -> list[str]:
    return [l for l in fl.ANSI.sub("", stderr).splitlines() if text in l]


def check_once(env, args: list[str], extra: dict, cluster: str, kind: str, message: str,
               rc: int = 1) -> None:
    """Text logs: exactly one plain line, the message, and no other stderr line repeats
    it; JSON logs: one log line with errorKind, cluster and error, no plain line. The
    report's `error` is the same message."""
    text = fl.run_cli(env, args, extra, json_logs=False)
    assert text.rc == rc, text.describe()
    assert plain_lines(text.stderr) == [f"eks-reaper: {cluster}: {message}"], text.describe()
    assert len(lines_with(text.stderr, message)) == 1, text.describe()
    c = text.cluster
    assert (c["status"], c["errorKind"], c["error"]) == ("failed", kind, message), c

    logged = fl.run_cli(env, args, extra, json_logs=True)
    assert logged.rc == rc, logged.describe()
    assert plain_lines(logged.stderr) == [], logged.describe()
    failures = [e for e in logged.logs if (e.get("fields") or {}).get("error") == message]
    assert len(failures) == 1, logged.describe()
    fields = failures[0]["fields"]
    assert (failures[0]["level"], fields["errorKind"], fields["cluster"]) == \
        ("WARN", kind, cluster), failures[0]


# ---- no credentials ------------------------------------------------------------------------

def run_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """The binary with stderr on a pseudo-terminal (as a person runs it), stdout a pipe."""
    main, side = pty.openpty()
    p = subprocess.Popen([str(fl.reaper_binary()), *args], stdout=subprocess.PIPE,
                         stderr=side, stdin=subprocess.DEVNULL, env=env, cwd=str(fl.ROOT))
    os.close(side)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = p.communicate(timeout=120)
    os.close(main)
    return p.returncode, out.decode(), b"".join(chunks).decode().replace("\r\n", "\n")


def test_no_credentials_on_a_terminal_names_the_sources_tried_once(env):
    with tempfile.TemporaryDirectory() as home:
        bare = {k: v for k, v in fl.reaper_env(env, json_logs=False).items()
                if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
        bare.update(HOME=home, AWS_CONFIG_FILE=f"{home}/none", AWS_EC2_METADATA_DISABLED="true",
                    AWS_SHARED_CREDENTIALS_FILE=f"{home}/none")
        rc, out, err = run_on_a_terminal(["run", "--cluster", "etl", "--output", "json"], bare)
    message = (
        "eks:DescribeCluster not sent: no AWS credentials (tried "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile \"default\" in ~/.aws/config and "
        "~/.aws/credentials, a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS "
        "container endpoint and EC2 instance metadata). Provide them: AWS_PROFILE=NAME (and "
        "`aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    assert rc == 1, err
    assert plain_lines(err) == [f"eks-reaper: etl: {message}"], err
    # Said once: not again by a metrics line (the terminal's default sink is none) or a log.
    assert len(lines_with(err, "credentials")) == 1, err
    report = json.loads(out)
    c = report["clusters"][0]
    assert (c["errorKind"], c["error"]) == ("AwsCredentials", message), c
    assert report["metrics"]["sink"] == "none" and report["metrics"]["calls"] == 0, report


# ---- AWS: our own moto ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_moto(env):
    """An in-process moto (IAM enforcement off until a test turns it on), with EKS refusals
    in JSON as AWS sends them (moto 5.2.5 sends XML, which no restJson client reads)."""
    from e2e.deploy.moto_iam import moto_server
    import moto.iam.access_control as ac
    from moto.core.exceptions import JsonRESTError

    class EksAccessDenied(JsonRESTError):
        code = 403

    original = ac.IAMRequest._raise_access_denied

    def raise_access_denied(self):  # type: ignore[no-untyped-def]
        if self._action.startswith("eks:"):
            raise EksAccessDenied("AccessDeniedException", f"User: {self._access_key.arn} is "
                                  f"not authorized to perform: {self._action}")
        original(self)

    ac.IAMRequest._raise_access_denied = raise_access_denied
    try:
        with moto_server() as url:
            yield url
    finally:
        ac.IAMRequest._raise_access_denied = original


def make_cluster(env, url: str, name: str, endpoint: str) -> None:
    from moto.eks.models import eks_backends

    eks = client("eks", url, region=env["AWS_REGION"])
    eks.create_cluster(name=name, version="1.37", resourcesVpcConfig={"subnetIds": []},
                       roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/eks-cluster")
    cluster = eks_backends[MOTO_ACCOUNT][env["AWS_REGION"]].clusters[name]
    cluster.endpoint = endpoint
    cluster.certificate_authority = {
        "data": base64.b64encode(Path(env["TESTBED_CA_FILE"]).read_bytes()).decode()}


def test_access_denied_names_the_action_the_resource_and_the_principal(env, own_moto):
    from e2e.deploy.moto_iam import enforce, user_with_policy

    make_cluster(env, own_moto, "denied", env["TESTBED_APISERVER"])
    user = f"no-describe-{secrets.token_hex(3)}"
    keys = user_with_policy(own_moto, env["AWS_REGION"], user, [
        {"Effect": "Allow", "Action": "ec2:DescribeSubnets", "Resource": "*"}])
    arn = f"arn:aws:iam::{MOTO_ACCOUNT}:user/{user}"
    enforce(own_moto)
    try:
        check_once(
            env, ["run", "--cluster", "denied", "--output", "json", "--metrics-sink", "none"],
            {"AWS_ENDPOINT_URL": own_moto, **keys}, "denied", "AccessDenied",
            f"eks:DescribeCluster denied for {arn} on arn:aws:eks:{env['AWS_REGION']}:"
            f"{MOTO_ACCOUNT}:cluster/denied (AccessDeniedException: User: {arn} is not "
            f"authorized to perform: eks:DescribeCluster). Allow eks:DescribeCluster on that "
            f"resource in the IAM policy of {arn} (and check SCPs and permission boundaries)")
    finally:
        import requests
        requests.post(f"{own_moto}/moto-api/reset-auth", data=b"inf", timeout=5)


def test_endpoint_on_a_closed_port_names_the_endpoint_and_the_vpc_settings(env, own_moto):
    endpoint = f"https://127.0.0.1:{free_port()}"
    make_cluster(env, own_moto, "unreachable", endpoint)
    check_once(
        env, ["run", "--cluster", "unreachable", "--output", "json", "--metrics-sink", "none"],
        {"AWS_ENDPOINT_URL_EKS": own_moto}, "unreachable", "Unreachable",
        f"listing jobs: the API server {endpoint} is unreachable: Connection refused (os error "
        "111). If the cluster endpoint is private, eks-reaper must run in the cluster's VPC "
        "(Lambda VpcConfig: subnets routed to it and a security group the cluster security "
        "group admits on 443); if it is public, check publicAccessCidrs and any proxy")


def test_cluster_not_found_names_cluster_and_region_and_publishes_only_run_health(env):
    name = f"no-such-{secrets.token_hex(3)}"
    region = env["AWS_REGION"]
    try:
        client("eks", env["TESTBED_MOTO_URL"], region=region).describe_cluster(name=name)
        pytest.fail(f"moto has a cluster {name}")
    except ClientError as e:
        cause = f"ResourceNotFoundException: {e.response['Error']['Message']}"
    metrics_ns = f"EKSReaperFailures/{secrets.token_hex(4)}"
    check_once(
        env, ["run", "--cluster", name, "--output", "json", "--metrics-namespace", metrics_ns,
              "--metrics-detail", "full"],
        {}, name, "ClusterNotFound",
        f"eks:DescribeCluster: no cluster \"{name}\" in region {region} ({cause}). Check the "
        f"name, and the region: name it {name}@REGION, or set AWS_REGION, if it lives in "
        "another one")
    # A cluster never reached: its heartbeat (0) and run health, not a zeroed metric set.
    cw = client("cloudwatch", env["TESTBED_MOTO_URL"], region=region)
    names = {m["MetricName"] for m in cw.list_metrics(Namespace=metrics_ns)["Metrics"]}
    assert names == {"RunSucceeded", "RunDuration", "SubnetsRead"}, names


# ---- the API server: the testbed's authenticator and RBAC --------------------------------------

def test_401_names_the_missing_access_entry(env):
    suffix = secrets.token_hex(3)
    key, secret = f"AKIANOENTRY{suffix.upper()}0", secrets.token_urlsafe(30)
    cluster, region = env["TESTBED_CLUSTER"], env["AWS_REGION"]
    endpoint = client("eks", env["TESTBED_MOTO_URL"], region=region).describe_cluster(
        name=cluster)["cluster"]["endpoint"]
    with fl.access_entries(env) as table:
        table["identities"][key] = {
            "secretAccessKey": secret, "userId": f"AROANOENTRY{suffix.upper()}",
            "arn": f"arn:aws:iam::{env['TESTBED_ACCOUNT_ID']}:role/no-entry-{suffix}"}
        fl.commit_access_entries(env, table)
        check_once(
            env, ["run", "--cluster", cluster, "--output", "json", "--metrics-sink", "none"],
            {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}, cluster,
            "Unauthorized",
            f"listing jobs: the API server {endpoint} answered 401 Unauthorized to a fresh "
            f"token: the IAM principal has no access entry on cluster {cluster} (or the token "
            f"names another cluster). Add one: aws eks create-access-entry --cluster-name "
            f"{cluster} --region {region} --principal-arn ARN --kubernetes-groups eks-reaper")


def test_403_names_verb_resource_and_the_can_i_line_that_checks_it(env):
    user = env["TESTBED_NORBAC_USERNAME"]
    can_i = (f"kubectl auth can-i list jobs.batch --all-namespaces --as={user} "
             "--as-group=eks-reaper")
    check_once(
        env, ["run", "--cluster", env["TESTBED_CLUSTER"], "--output", "json",
              "--metrics-sink", "none"],
        {"AWS_ACCESS_KEY_ID": env["TESTBED_NORBAC_ACCESS_KEY_ID"],
         "AWS_SECRET_ACCESS_KEY": env["TESTBED_NORBAC_SECRET_ACCESS_KEY"]},
        env["TESTBED_CLUSTER"], "Forbidden",
        f"listing jobs: RBAC forbids list on jobs.batch for user \"{user}\" (403: jobs.batch "
        f"is forbidden: User \"{user}\" cannot list resource \"jobs\" in API group \"batch\" "
        f"at the cluster scope). {CAN_I}{can_i}")
    # The line the message gives answers the question it asks: with the shipped group, yes.
    out = subprocess.run(can_i.split(), capture_output=True, text=True, timeout=30,
                         env={**os.environ, "KUBECONFIG": env["KUBECONFIG"]})
    assert out.stdout.strip() == "yes", out.stdout + out.stderr


def test_403_on_the_namespaces_list_names_the_permission_and_the_way_out(env, kube, namespace):
    suffix = secrets.token_hex(3)
    user = f"faults-no-namespaces-{suffix}"
    can_i = (f"kubectl auth can-i list namespaces --all-namespaces --as={user} "
             "--as-group=eks-reaper")
    with identity_with(env, kube, "no-namespaces", JOBS_AND_PODS, suffix) as creds:
        check_once(
            env, ["run", "--cluster", env["TESTBED_CLUSTER"], "--namespaces", namespace,
                  "--output", "json", "--metrics-sink", "none"],
            creds, env["TESTBED_CLUSTER"], "Forbidden",
            f"listing namespaces: RBAC forbids list on namespaces for user \"{user}\" (403: "
            f"namespaces is forbidden: User \"{user}\" cannot list resource \"namespaces\" in "
            f"API group \"\" at the cluster scope). {CAN_I}{can_i}; every object was kept "
            "(namespaceAnnotationsUnknown), as a namespace's opt-out could be missed; "
            "REAPER_NAMESPACE_ANNOTATIONS=false prunes by the cluster settings alone")
    # With the shipped group, the line the message gives answers yes.
    out = subprocess.run(can_i.split(), capture_output=True, text=True, timeout=30,
                         env={**os.environ, "KUBECONFIG": env["KUBECONFIG"]})
    assert out.stdout.strip() == "yes", out.stdout + out.stderr


# ---- invalid configuration ------------------------------------------------------------------

def test_invalid_setting_is_printed_once_and_exits_2(env):
    args = ["run", "--cluster", "etl", "--output", "json", "--succeeded-job-ttl", "fortnight"]
    text = fl.run_cli(env, args, json_logs=False)
    assert text.rc == 2, text.describe()
    (line,) = lines_with(text.stderr, "fortnight")
    assert line.startswith("eks-reaper: invalid configuration: REAPER_SUCCEEDED_JOB_TTL"), line
    assert plain_lines(text.stderr) == [line], text.describe()
    logged = fl.run_cli(env, args, json_logs=True)
    assert logged.rc == 2, logged.describe()
    (entry,) = [e for e in logged.logs if "fortnight" in json.dumps(e)]
    assert entry["level"] == "ERROR" and entry["fields"]["errorKind"] == "ConfigError", entry
    assert entry["fields"]["field"].startswith("REAPER_SUCCEEDED_JOB_TTL"), entry
    assert plain_lines(logged.stderr) == [], logged.describe()
