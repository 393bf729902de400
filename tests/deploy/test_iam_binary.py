"""The real eks-reaper binary, as a principal holding only template.yaml's policy.

GIVEN our own in-process moto (IAM enforcement on, same resources as the testbed's, its
cluster `etl` pointing at the testbed's real kube-apiserver) and an IAM user holding only
the function role's policy read from template.yaml (adapted for moto, see moto_iam.py),
whose access key is the testbed's reaper key so the testbed's token authenticator maps it
to group eks-reaper;
WHEN `eks-reaper run --cluster etl --dry-run` runs with AWS_ENDPOINT_URL at that moto;
THEN it succeeds, and with any one action removed from the policy it reports that call
denied.

Needs the testbed (`scripts/testbed up`) and a built binary (EKS_REAPER_BIN, else
$CARGO_TARGET_DIR/{debug,release}/eks-reaper); skipped with the reason otherwise.
Not enforced by moto, and so checked only statically in test_iam_policy.py: resource
scoping to the cluster ARNs and the cloudwatch:namespace condition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from moto_iam import admin, enforce, for_moto, moto_server
from template_policy import ACCOUNT, REGION, ROOT, actions_of, function_role_statements

STATE = Path(os.environ.get("EKS_REAPER_TESTBED", "/tmp/eks-reaper-testbed"))
CACHE = Path(os.environ.get("EKS_REAPER_CACHE", Path.home() / ".cache" / "eks-reaper"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
USER = "eks-reaper-iam-test"
# The AWS calls of a run and the word the report uses for each failure.
RUN_ACTIONS = [
    "eks:DescribeCluster",
    "eks:ListFargateProfiles",
    "eks:DescribeFargateProfile",
    "ec2:DescribeSubnets",
    "cloudwatch:PutMetricData",
]


def _binary() -> Path | None:
    if os.environ.get("EKS_REAPER_BIN"):
        return Path(os.environ["EKS_REAPER_BIN"])
    found = [p for p in (TARGET / "debug" / "eks-reaper", TARGET / "release" / "eks-reaper") if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _testbed_env() -> dict | None:
    if not (STATE / "ready").exists() or not (STATE / "env.json").exists():
        return None
    return json.loads((STATE / "env.json").read_text())


BIN = _binary()
TESTBED = _testbed_env()
pytestmark = [
    pytest.mark.skipif(BIN is None, reason=f"no eks-reaper binary (EKS_REAPER_BIN or {TARGET}/debug)"),
    pytest.mark.skipif(TESTBED is None, reason=f"no testbed up at {STATE} (scripts/testbed up)"),
]


@pytest.fixture(scope="module")
def bed():
    sys.path.insert(0, str(ROOT / "tests"))
    from testbed import aws as testbed_aws  # the testbed's own resource layout

    with moto_server() as url:
        ca_pem = Path(TESTBED["TESTBED_CA_FILE"]).read_bytes()
        testbed_aws.create_resources(url, TESTBED["TESTBED_APISERVER"], ca_pem)
        iam = admin(url, "iam", REGION)
        iam.create_user(UserName=USER)
        iam.create_access_key(UserName=USER)
        # The testbed's authenticator knows the reaper key; give our user that key so the
        # same credentials sign the AWS calls (checked by moto) and the EKS token.
        from moto.iam.models import iam_backends

        key = iam_backends[ACCOUNT]["aws"].users[USER].access_keys[0]
        key.access_key_id = TESTBED["AWS_ACCESS_KEY_ID"]
        key.secret_access_key = TESTBED["AWS_SECRET_ACCESS_KEY"]
        yield url


def run_with_policy(url: str, statements: list[dict]) -> tuple[int, dict | None, str]:
    """Sets the user's only policy, turns enforcement on, runs the binary."""
    requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=5).raise_for_status()
    doc = {"Version": "2012-10-17", "Statement": for_moto(statements)}
    admin(url, "iam", REGION).put_user_policy(UserName=USER, PolicyName="eks-reaper", PolicyDocument=json.dumps(doc))
    enforce(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REAPER_"))}
    env.update({
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": TESTBED["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": TESTBED["AWS_SECRET_ACCESS_KEY"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "REAPER_METRICS_SINK": "cloudwatch",
        "RUST_LOG": "warn",
    })
    p = subprocess.run([str(BIN), "run", "--cluster", "etl", "--dry-run", "--output", "json"],
                       env=env, capture_output=True, text=True, timeout=120)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        report = None
    return p.returncode, report, p.stderr


def template_statements() -> list[dict]:
    return function_role_statements({"ClusterNames": "etl"})


def without(action: str) -> list[dict]:
    out = []
    for s in template_statements():
        kept = [a for a in actions_of(s) if a != action]
        if kept:
            out.append({**s, "Action": kept})
    return out


def test_binary_runs_with_exactly_the_template_policy(bed):
    code, report, stderr = run_with_policy(bed, template_statements())
    assert code == 0, f"exit {code}\n{stderr[-3000:]}\n{json.dumps(report, indent=1)[:3000]}"
    cluster = report["clusters"][0]
    assert cluster["status"] == "ok", cluster
    assert cluster.get("subnets"), "subnet headroom was read"
    assert "error" not in json.dumps(report.get("metrics") or {}).lower(), report.get("metrics")


@pytest.mark.parametrize("action", RUN_ACTIONS)
def test_binary_reports_the_denied_call_when_one_action_is_missing(bed, action):
    code, report, stderr = run_with_policy(bed, without(action))
    text = stderr + json.dumps(report or {})
    # The failure must be visible (exit status or report) and say what was denied.
    assert code != 0 or "AccessDenied" in text or "not authorized" in text, (
        f"exit {code} with {action} removed, nothing reported\n{stderr[-2000:]}")
    assert "AccessDenied" in text or "not authorized" in text or "403" in text, text[-3000:]
