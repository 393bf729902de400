"""infra/member-account.yaml, the member account role for a service-managed StackSet, and
the per-cluster CloudFormation of docs/fleets.md.

Static: the template resolved for given parameters (template_policy.Resolver). Deployed:
the stack set and its OU instances created through moto's CloudFormation and
Organizations, as docs/fleets.md's commands do, one role per account of the OU from one
set of parameters. moto neither evaluates trust policies nor scopes resources (moto_iam.py),
so the trust and the grants are asserted from the template.
"""

from __future__ import annotations

import json
import re
import boto3
import pytest
from cfnlint.api import lint_all
from cfnlint.decode import decode_str

from moto_iam import moto_server
from template_policy import ACCOUNT, ONBOARDING, PARTITION, ROOT, Resolver, load_template, resources, rule_failures
from testbed.aws import client

MEMBER = ROOT / "infra" / "member-account.yaml"
FLEETS = ROOT / "docs" / "fleets.md"
REAPER_ACCOUNT = "111122223333"
REAPER = {"ReaperAccountId": REAPER_ACCOUNT, "ReaperRoleName": "eks-reaper-eu-west-1"}
REAPER_ROLE = f"arn:aws:iam::{REAPER_ACCOUNT}:role/eks-reaper-eu-west-1"


def member(**params: str) -> dict:
    t = load_template(MEMBER)
    return resources(t, Resolver(t, {**REAPER, **params}))


def grants(role: dict) -> list[tuple]:
    (policy,) = role["Policies"]
    out = []
    for s in policy["PolicyDocument"]["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        out.append((tuple(sorted(actions)), s["Resource"], json.dumps(s.get("Condition"), sort_keys=True)))
    return sorted(out)


def test_one_role_with_a_fixed_name_and_nothing_per_cluster():
    res = member()
    assert [r["Type"] for r in res.values()] == ["AWS::IAM::Role"]
    assert res["MemberRole"]["Properties"]["RoleName"] == "eks-reaper-member"
    assert member(MemberRoleName="fleet-a-member")["MemberRole"]["Properties"]["RoleName"] == "fleet-a-member"


def test_every_parameter_is_one_value_for_the_whole_organisation():
    """A StackSet's overrides may set only declared parameters, and an account that joins
    an OU later gets none: nothing here may name an account, a Region or a cluster."""
    params = load_template(MEMBER)["Parameters"]
    assert sorted(params) == ["ClusterTagValue", "ExternalId", "MemberRoleName", "ReaperAccountId", "ReaperRoleName"]
    t = load_template(MEMBER)
    assert "Transform" not in t
    assert not any(k.startswith("Fn::ForEach") for k in t["Resources"])


def test_the_role_trusts_only_the_reaper_role_by_arn_with_the_external_id():
    role = member(ExternalId="fleet-42")["MemberRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{REAPER_ACCOUNT}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": REAPER_ROLE},
                      "StringEquals": {"sts:ExternalId": "fleet-42"}}}]
    assert role["MaxSessionDuration"] == 3600


def test_without_an_external_id_the_trust_checks_the_reaper_role_alone():
    (statement,) = member()["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": REAPER_ROLE}}
    assert "role/" not in json.dumps(statement["Principal"])


def test_the_role_may_read_only_what_a_run_needs_of_tagged_clusters():
    arn = f"arn:{PARTITION}:eks:*:{ACCOUNT}"
    tag = json.dumps({"StringEquals": {"aws:ResourceTag/eks-reaper": "enabled"}}, sort_keys=True)
    assert grants(member()["MemberRole"]["Properties"]) == sorted([
        (("eks:DescribeCluster", "eks:ListFargateProfiles"), f"{arn}:cluster/*", tag),
        (("eks:DescribeFargateProfile",), f"{arn}:fargateprofile/*", "null"),
        (("eks:ListClusters",), "*", "null"),
        (("ec2:DescribeSubnets",), "*", "null"),
    ])
    other = grants(member(ClusterTagValue="fleet-a")["MemberRole"]["Properties"])
    assert other[1][2] == json.dumps({"StringEquals": {"aws:ResourceTag/eks-reaper": "fleet-a"}}, sort_keys=True)


def test_role_names_follow_iam_rules():
    params = load_template(MEMBER)["Parameters"]
    for name in ("ReaperRoleName", "MemberRoleName"):
        pattern = re.compile(params[name]["AllowedPattern"])
        assert all(pattern.fullmatch(n) for n in ["eks-reaper-member", "a" * 64, "team+reaper=1,x.y@z_w-v"])
        assert not any(pattern.fullmatch(n) for n in ["", "a" * 65, "eks reaper", "eks/reaper"])
    assert re.fullmatch(params["ReaperAccountId"]["AllowedPattern"], REAPER_ACCOUNT)
    assert not re.fullmatch(params["ReaperAccountId"]["AllowedPattern"], "11112222333")


def test_cluster_onboarding_for_the_member_role_is_the_access_entry_alone():
    """docs/fleets.md: infra/cluster-onboarding.yaml with ReaperRoleArn = the member role of
    the cluster's own account creates no role, only the access entry for that role."""
    t = load_template(ONBOARDING)
    member_role = f"arn:aws:iam::{ACCOUNT}:role/eks-reaper-member"
    res = resources(t, Resolver(t, {"ClusterName": "batch-prod", "ReaperRoleArn": member_role}))
    assert list(res) == ["AccessEntry"]
    assert res["AccessEntry"]["Properties"] == {
        "ClusterName": "batch-prod", "PrincipalArn": member_role, "Type": "STANDARD",
        "KubernetesGroups": ["eks-reaper"]}


def fleets_block(marker: str) -> str:
    """The fenced block of docs/fleets.md that contains `marker`."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", FLEETS.read_text(), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_the_cloudformation_snippet_of_the_fleets_page_lints_clean():
    snippet = fleets_block("AWS::EKS::AccessEntry")
    problems = [m for m in lint_all(snippet) if m.rule.id[0] in "EW"]
    assert problems == []
    t, _ = decode_str(snippet)
    entry = resources(t, Resolver(t, {"ClusterName": "batch-prod"}))["EksReaperAccessEntry"]["Properties"]
    assert entry["PrincipalArn"] == f"arn:aws:iam::{ACCOUNT}:role/eks-reaper-member"
    assert entry["KubernetesGroups"] == ["eks-reaper"] and "AccessPolicies" not in entry


@pytest.fixture
def organisation():
    """moto: an organisation with one OU of two accounts."""
    with moto_server() as url:
        org = client("organizations", url)
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ou = org.create_organizational_unit(ParentId=root, Name="batch")["OrganizationalUnit"]["Id"]
        accounts = []
        for name in ("batch-a", "batch-b"):
            account = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
            org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
            accounts.append(account)
        yield {"url": url, "ou": ou, "accounts": accounts}


def test_one_service_managed_stack_set_gives_every_account_of_the_ou_the_same_role(organisation):
    # GIVEN the stack set of docs/fleets.md: service-managed, auto-deployment, one set of
    # parameters and no override
    url = organisation["url"]
    cfn = client("cloudformation", url)
    cfn.create_stack_set(
        StackSetName="eks-reaper-member", TemplateBody=MEMBER.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {**REAPER, "ExternalId": "fleet-42"}.items()])
    # WHEN its instances target the OU in one Region
    cfn.create_stack_instances(StackSetName="eks-reaper-member",
                               DeploymentTargets={"OrganizationalUnitIds": [organisation["ou"]]},
                               Regions=["us-east-1"])
    # THEN every account of the OU has one instance and the role under its fixed name,
    # trusting the reaper's role, which assumes it by that name
    instances = cfn.list_stack_instances(StackSetName="eks-reaper-member")["Summaries"]
    assert sorted((i["Account"], i["Region"]) for i in instances) == sorted(
        (a, "us-east-1") for a in organisation["accounts"])
    sts = client("sts", url)
    for account in organisation["accounts"]:
        arn = f"arn:aws:iam::{account}:role/eks-reaper-member"
        creds = sts.assume_role(RoleArn=arn, RoleSessionName="eks-reaper", ExternalId="fleet-42")["Credentials"]
        iam = boto3.client("iam", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
        role = iam.get_role(RoleName="eks-reaper-member")["Role"]
        assert role["Arn"] == arn
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Condition"]["ArnEquals"] == {"aws:PrincipalArn": REAPER_ROLE}


def sam_deploys() -> list[dict[str, str]]:
    """The --parameter-overrides of each `sam deploy` in docs/fleets.md, as the SAM CLI reads
    them (Key=Value, the value up to the next space)."""
    text = FLEETS.read_text().replace("\\\n", " ")
    out = []
    for line in re.findall(r"sam deploy --parameter-overrides (.*)", text):
        out.append(dict(pair.split("=", 1) for pair in line.split()))
    return out


def test_the_fleets_page_deploys_pass_the_reaper_stack_rules():
    deploys = sam_deploys()
    assert len(deploys) == 3
    for params in deploys:
        assert rule_failures(params) == [], params
    fan_out, discovered, members = deploys
    assert fan_out["FanOut"] == "true" and fan_out["DiscoverTaggedClusters"] == "true"
    # Member accounts by discovery: ids only, no role ARN per cluster.
    assert discovered["DiscoverTaggedClusters"] == "true"
    assert discovered["DiscoveryAccounts"].split(",") == ["MEMBER_A", "MEMBER_B"]
    assert "ClusterRoleArns" not in discovered and "AssumeRoleArns" not in discovered
    # One member role per account: AssumeRoleArns holds exactly the ARNs of ClusterRoleArns.
    roles = {pair.split("=", 1)[1] for pair in members["ClusterRoleArns"].split(",")}
    assert set(members["AssumeRoleArns"].split(",")) == roles
    names = {n.split("@")[0] for n in members["ClusterNames"].split(",")}
    assert names == {pair.split("=", 1)[0] for pair in members["ClusterRoleArns"].split(",")}
