"""The real eks-reaper binary, as a principal holding only template.yaml's policy.

GIVEN our own in-process moto (IAM enforcement on, same resources as the testbed's, its
cluster `etl` pointing at the testbed's real kube-apiserver) and an IAM user holding only
the function role's policy read from template.yaml (adapted for moto, see moto_iam.py),
whose access key is the testbed's reaper key so the testbed's token authenticator maps it
to group eks-reaper;
WHEN `eks-reaper run --cluster etl --dry-run` runs with AWS_ENDPOINT_URL at that moto;
THEN it succeeds, and with any one action removed from the policy it reports that call
denied.
The same with discovery on (DiscoverTaggedClusters=true): the cluster carries the tag
eks-reaper=enabled (moto's TagResource), the binary runs with the template's
REAPER_CLUSTER_TAG and no cluster named, and finds, describes and prunes it under the
template's discovery policy; without eks:ListClusters the run fails naming that call.

Needs the testbed (`scripts/testbed up`) and a built binary (EKS_REAPER_BIN, else the
newer of $CARGO_TARGET_DIR/{debug,release}/eks-reaper); without either the tests fail,
saying which command provides it (`scripts/test` always has both).
Not enforced by moto, and so checked only statically in test_iam_policy.py: resource
scoping to the cluster ARNs and the cloudwatch:namespace condition.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from moto_iam import CHECKED_ACTIONS, enforce, for_moto, moto_server
from template_policy import ACCOUNT, REGION, Resolver, actions_of, function_role_statements, load_template, resources
from testbed import aws as testbed_aws  # the testbed's own resource layout
from testbed.aws import client

CACHE = Path(os.environ.get("EKS_REAPER_CACHE", Path.home() / ".cache" / "eks-reaper"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
USER = "eks-reaper-iam-test"
# The AWS calls of a run.
RUN_ACTIONS = [
    "eks:DescribeCluster",
    "eks:ListFargateProfiles",
    "eks:DescribeFargateProfile",
    "ec2:DescribeSubnets",
    "cloudwatch:PutMetricData",
]
# With discovery on, first eks:ListClusters (then DescribeCluster reads the tags).
DISCOVERY_ACTIONS = ["eks:ListClusters", *RUN_ACTIONS]
# The template's parameters per mode; discovery names no cluster.
MODES = {
    "named": {"ClusterNames": "etl"},
    "discovery": {"DiscoverTaggedClusters": "true"},
}


@pytest.fixture(scope="module")
def reaper_bin() -> Path:
    if os.environ.get("EKS_REAPER_BIN"):
        path = Path(os.environ["EKS_REAPER_BIN"])
        if not path.exists():
            pytest.fail(f"EKS_REAPER_BIN={path} does not exist")
        return path
    found = [p for p in (TARGET / "debug" / "eks-reaper", TARGET / "release" / "eks-reaper") if p.exists()]
    if not found:
        pytest.fail(f"no eks-reaper binary in {TARGET}/{{debug,release}}: run `cargo build --locked` "
                    "(with the same CARGO_TARGET_DIR) or set EKS_REAPER_BIN")
    return max(found, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def bed(env, reaper_bin):
    """Our own moto with the testbed's resources and IAM enforcement; `env` (the running
    testbed's env.json) fails the test with `run scripts/testbed up` when it is down."""
    with moto_server() as url:
        ca_pem = Path(env["TESTBED_CA_FILE"]).read_bytes()
        testbed_aws.create_resources(url, env["TESTBED_APISERVER"], ca_pem)
        iam = client("iam", url, region=REGION)
        iam.create_user(UserName=USER)
        iam.create_access_key(UserName=USER)
        # The testbed's authenticator knows the reaper key; give our user that key so the
        # same credentials sign the AWS calls (checked by moto) and the EKS token.
        from moto.iam.models import iam_backends

        key = iam_backends[ACCOUNT]["aws"].users[USER].access_keys[0]
        key.access_key_id = env["AWS_ACCESS_KEY_ID"]
        key.secret_access_key = env["AWS_SECRET_ACCESS_KEY"]
        # aws-sdk-cloudwatch speaks rpc-v2-cbor, moto does not: CloudWatch goes through the
        # testbed's bridge, which re-signs the translated request with the same key so
        # moto's IAM check sees this user.
        from testbed.cbor_bridge import start_bridge

        bridge = start_bridge(url, credentials=(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))
        try:
            yield {"url": url, "cloudwatch": f"http://127.0.0.1:{bridge.port}", "env": env,
                   "bin": reaper_bin}
        finally:
            bridge.shutdown()


def function_environment(mode: str) -> dict[str, str]:
    """The REAPER_* variables of template.yaml's function that select the clusters."""
    t = load_template()
    fn = resources(t, Resolver(t, MODES[mode]))["ReaperFunction"]["Properties"]
    env = fn["Environment"]["Variables"]
    return {k: v for k, v in env.items() if k in ("REAPER_CLUSTERS", "REAPER_CLUSTER_TAG", "REAPER_DISCOVERY_REGIONS")}


def run_with_policy(bed: dict, statements: list[dict], mode: str = "named") -> tuple[int, dict | None, str]:
    """Sets the user's only policy, turns enforcement on, runs the binary with the
    template's cluster selection for `mode`."""
    url, testbed = bed["url"], bed["env"]
    requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=5).raise_for_status()
    doc = {"Version": "2012-10-17", "Statement": for_moto(statements)}
    client("iam", url, region=REGION).put_user_policy(UserName=USER, PolicyName="eks-reaper", PolicyDocument=json.dumps(doc))
    enforce(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REAPER_"))}
    env.update({
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": bed["cloudwatch"],
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": testbed["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": testbed["AWS_SECRET_ACCESS_KEY"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "REAPER_METRICS_SINK": "cloudwatch",
        "RUST_LOG": "warn",
        **function_environment(mode),
    })
    p = subprocess.run([str(bed["bin"]), "run", "--dry-run", "--output", "json"],
                       env=env, capture_output=True, text=True, timeout=120)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        report = None
    return p.returncode, report, p.stderr


def template_statements(mode: str = "named") -> list[dict]:
    return function_role_statements(MODES[mode])


def without(action: str, mode: str = "named") -> list[dict]:
    out = []
    for s in template_statements(mode):
        kept = [a for a in actions_of(s) if a != action]
        if kept:
            out.append({**s, "Action": kept})
    return out


# Calls that only feed subnet headroom: a denial is reported, never fatal.
HEADROOM_ACTIONS = {"eks:ListFargateProfiles", "eks:DescribeFargateProfile", "ec2:DescribeSubnets"}


@pytest.fixture(scope="module")
def full_run(bed):
    """One run with exactly the template policy: exit, report, the actions moto checked."""
    code, report, stderr = run_with_policy(bed, template_statements())
    return {"code": code, "report": report, "stderr": stderr, "actions": set(CHECKED_ACTIONS)}


def test_binary_runs_with_exactly_the_template_policy(full_run):
    code, report = full_run["code"], full_run["report"]
    assert code == 0, f"exit {code}\n{full_run['stderr'][-3000:]}\n{json.dumps(report, indent=1)[:3000]}"
    assert [c["status"] for c in report["clusters"]] == ["ok"], report["clusters"]
    assert "eks:DescribeCluster" in full_run["actions"], "moto saw the run (enforcement on)"
    # Nothing denied anywhere, including the metrics section (a metrics failure does not
    # fail the run, so the exit status alone would not show it).
    text = json.dumps(report) + full_run["stderr"]
    assert "AccessDenied" not in text and "not authorized" not in text, text[-3000:]


def test_policy_grants_nothing_the_binary_does_not_use(full_run):
    granted = {a for s in template_statements() for a in actions_of(s)} - {"logs:CreateLogStream", "logs:PutLogEvents"}
    unused = granted - full_run["actions"]
    assert not unused, f"granted but never called: {sorted(unused)}"
    assert full_run["actions"] <= granted


@pytest.mark.parametrize("action", RUN_ACTIONS)
def test_binary_reports_the_denied_call_when_one_action_is_missing(bed, full_run, action):
    # Removing an action the full run never called would prove nothing.
    assert action in full_run["actions"], f"the binary never called {action} with the full policy"
    code, report, stderr = run_with_policy(bed, without(action))
    assert action in CHECKED_ACTIONS
    text = stderr + json.dumps(report or {})
    if action in HEADROOM_ACTIONS:
        # Subnet headroom is best effort: pruning goes on (exit 0) and the report's
        # subnetsError names the failed call.
        cluster = report["clusters"][0]
        assert code == 0 and cluster["status"] == "ok", f"exit {code}\n{stderr[-2000:]}"
        assert cluster["subnets"] is None and action in (cluster.get("subnetsError") or ""), cluster
        if action.startswith("eks:"):
            # moto 5.2.5 answers a denied EKS REST call with a body that is not JSON, which
            # the Rust SDK cannot parse: the denial reason is lost, the failed call is not.
            assert "unexpected token" in cluster["subnetsError"] or "not authorized" in cluster["subnetsError"]
            return
    # Visible (exit status, or the report for a metrics failure that must not abort
    # pruning) and naming the denied action.
    assert code != 0 or "AccessDenied" in json.dumps(report or {}), f"exit {code}, nothing reported\n{stderr[-2000:]}"
    assert f"not authorized to perform: {action.replace('cloudwatch:', 'monitoring:')}" in text, text[-3000:]


# --- discovery on ----------------------------------------------------------------------

TAG_KEY, TAG_VALUE = "eks-reaper", "enabled"  # the tag of the IAM condition, ClusterTagValue's default


@pytest.fixture(scope="module")
def tagged(bed):
    """The cluster carries the opt-in tag while the module's discovery tests run."""
    url = bed["url"]
    eks = client("eks", url, region=REGION)

    def without_enforcement(call):
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=5).raise_for_status()
        return call()

    arn = without_enforcement(lambda: eks.describe_cluster(name="etl")["cluster"]["arn"])
    without_enforcement(lambda: eks.tag_resource(resourceArn=arn, tags={TAG_KEY: TAG_VALUE}))
    yield arn
    without_enforcement(lambda: eks.untag_resource(resourceArn=arn, tagKeys=[TAG_KEY]))


@pytest.fixture(scope="module")
def discovery_run(bed, tagged):
    """One discovery run with exactly the template's discovery policy."""
    code, report, stderr = run_with_policy(bed, template_statements("discovery"), "discovery")
    return {"code": code, "report": report, "stderr": stderr, "actions": set(CHECKED_ACTIONS)}


def test_template_turns_discovery_on_with_the_tag_its_iam_condition_names():
    env = function_environment("discovery")
    assert env == {"REAPER_CLUSTERS": "", "REAPER_CLUSTER_TAG": f"{TAG_KEY}={TAG_VALUE}"}
    (described,) = [s for s in template_statements("discovery") if "eks:DescribeCluster" in actions_of(s)]
    assert described["Condition"]["StringEquals"][f"aws:ResourceTag/{TAG_KEY}"] == TAG_VALUE


def test_binary_discovers_and_prunes_the_tagged_cluster_with_exactly_the_template_policy(discovery_run):
    code, report = discovery_run["code"], discovery_run["report"]
    assert code == 0, f"exit {code}\n{discovery_run['stderr'][-3000:]}\n{json.dumps(report, indent=1)[:3000]}"
    assert report["discovery"]["found"] == [f"etl@{REGION}"], report["discovery"]
    assert (report["discovery"]["denied"], report["discovery"]["errors"]) == ([], []), report["discovery"]
    assert [(c["cluster"], c["discovered"], c["status"]) for c in report["clusters"]] == [("etl", True, "ok")]
    assert report["clusters"][0]["subnets"], "headroom was read for the discovered cluster"
    text = json.dumps(report) + discovery_run["stderr"]
    assert "AccessDenied" not in text and "not authorized" not in text, text[-3000:]


def test_discovery_policy_grants_nothing_the_binary_does_not_use(discovery_run):
    granted = {a for s in template_statements("discovery") for a in actions_of(s)} - {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted == set(DISCOVERY_ACTIONS)
    unused = granted - discovery_run["actions"]
    assert not unused, f"granted but never called: {sorted(unused)}"
    assert discovery_run["actions"] <= granted


@pytest.mark.parametrize("action", DISCOVERY_ACTIONS)
def test_discovery_run_reports_the_denied_call_when_one_action_is_missing(bed, discovery_run, action):
    assert action in discovery_run["actions"], f"the binary never called {action} with the full policy"
    code, report, stderr = run_with_policy(bed, without(action, "discovery"), "discovery")
    text = stderr + json.dumps(report or {})
    if action == "eks:ListClusters":
        # The region cannot be searched: the run fails (DiscoveryFailed), naming the call.
        assert code != 0, f"exit {code}\n{text[-3000:]}"
        (error,) = report["discovery"]["errors"]
        assert error.startswith(f"eks:ListClusters in {REGION}: "), report["discovery"]
        assert f"cluster discovery failed: eks:ListClusters in {REGION}" in stderr, stderr[-3000:]
        # moto's XML refusal (see below) loses the reason, not the failed call.
        assert "unexpected token" in error or "not authorized" in error, error
        assert report["clusters"] == []
        return
    if action == "eks:DescribeCluster":
        # Against AWS a refused DescribeCluster (JSON AccessDeniedException) lists the
        # cluster under discovery.denied. moto 5.2.5 refuses EKS REST calls with an XML
        # body the Rust SDK cannot parse, so the refusal is not recognised as one: the
        # region fails (DiscoveryFailed), naming the call, and nothing is pruned.
        assert code != 0, f"exit {code}\n{text[-3000:]}"
        (error,) = report["discovery"]["errors"]
        assert "eks:DescribeCluster" in error and "unexpected token" in error, report["discovery"]
        assert "not authorized to perform: eks:DescribeCluster" in text
        assert report["discovery"]["found"] == [] and report["clusters"] == []
        return
    cluster = report["clusters"][0]
    assert cluster["discovered"] is True
    if action in HEADROOM_ACTIONS:
        assert code == 0 and cluster["status"] == "ok", f"exit {code}\n{stderr[-2000:]}"
        assert cluster["subnets"] is None and action in (cluster.get("subnetsError") or ""), cluster
        return
    assert "AccessDenied" in json.dumps(report["metrics"]), report["metrics"]
    assert f"not authorized to perform: {action.replace('cloudwatch:', 'monitoring:')}" in text, text[-3000:]
