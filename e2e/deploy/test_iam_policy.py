"""The function role's policy in template.yaml: exactly what a run needs, enforced by moto.

Static checks read the policy from template.yaml. The moto checks call the AWS APIs that
eks-reaper calls (same operations, same protocols: boto3 here; the binary in
test_iam_binary.py) as a principal holding only that policy, with moto's IAM enforcement
on: every call succeeds, and with any one action removed exactly that call is denied.

What moto cannot enforce, and is therefore only checked statically here:
resource scoping (moto evaluates EKS/EC2/CloudWatch calls against "*"), the
cloudwatch:namespace condition and the aws:ResourceTag/eks-reaper condition (moto ignores
condition keys it has no value for), and the aws:RequestedRegion condition that scopes
discovery to its regions, and the VPC-mode ENI scoping to the function's subnets, security
groups and network interfaces. See moto_iam.py.
"""

from __future__ import annotations

import itertools
import json

import pytest
import requests
from botocore.exceptions import ClientError

from moto_iam import enforce, for_moto, moto_server, user_with_policy
from template_policy import (ACCOUNT, PARTITION, REGION, Resolver, actions_of, function_role_statements, load_template, resources,
                             rule_failures)
from testbed.aws import client

CLUSTER = "etl"
PARAMS = {"ClusterNames": CLUSTER}
RUN_ACTIONS = [
    "cloudwatch:PutMetricData",
    "ec2:DescribeSubnets",
    "eks:DescribeCluster",
    "eks:DescribeFargateProfile",
    "eks:ListFargateProfiles",
]
# DiscoverTaggedClusters=true adds the listing that finds the tagged clusters.
DISCOVERY = {"DiscoverTaggedClusters": "true"}
DISCOVERY_ACTIONS = ["eks:ListClusters", *RUN_ACTIONS]
ACTIONS = {"named": RUN_ACTIONS, "discovery": DISCOVERY_ACTIONS}
_names = itertools.count()


def statements(**params: str) -> list[dict]:
    return function_role_statements({**PARAMS, **params})


def mode_statements(mode: str) -> list[dict]:
    return statements(**(DISCOVERY if mode == "discovery" else {}))


# --- static: read from template.yaml -------------------------------------------------


@pytest.mark.parametrize("mode", ACTIONS)
def test_role_grants_exactly_the_actions_of_a_run_plus_its_own_logs(mode):
    acts = sorted({a for s in mode_statements(mode) for a in actions_of(s)})
    assert acts == sorted(ACTIONS[mode] + ["logs:CreateLogStream", "logs:PutLogEvents"])
    assert all(s["Effect"] == "Allow" for s in mode_statements(mode))
    assert not [a for a in acts if "*" in a], "no wildcard actions"


def test_list_clusters_only_with_discovery_on_all_resources_of_the_discovery_regions():
    assert "eks:ListClusters" not in {a for s in statements() for a in actions_of(s)}
    # It has no resource type: "*", scoped by the requested region.
    for extra, regions in (({}, REGION), ({"DiscoveryRegions": "eu-west-1,us-east-1"}, ["eu-west-1", "us-east-1"])):
        st = [s for s in statements(**DISCOVERY, **extra) if "eks:ListClusters" in actions_of(s)]
        assert [(actions_of(s), s["Resource"], s["Condition"]) for s in st] == [
            (["eks:ListClusters"], "*", {"StringEquals": {"aws:RequestedRegion": regions}})]


def test_discovery_describes_only_clusters_with_the_tag_the_function_looks_for():
    """IAM and discovery agree: REAPER_CLUSTER_TAG is the tag of the condition."""
    for tag_value in ("enabled", "batch-prod"):
        st = statements(**DISCOVERY, ClusterTagValue=tag_value)
        (described,) = [s for s in st if "eks:DescribeCluster" in actions_of(s)]
        assert described["Condition"] == {"StringEquals": {"aws:ResourceTag/eks-reaper": tag_value}}
        t = load_template()
        env = resources(t, Resolver(t, {**PARAMS, **DISCOVERY, "ClusterTagValue": tag_value}))["ReaperFunction"]["Properties"]["Environment"]["Variables"]
        assert env["REAPER_CLUSTER_TAG"] == f"eks-reaper={tag_value}"


def test_eks_actions_are_scoped_to_tagged_clusters_of_this_account_and_region():
    arn = f"arn:{PARTITION}:eks:{REGION}:{ACCOUNT}"
    for tag_value in ("enabled", "batch-prod"):
        st = statements(ClusterNames="etl,batch-prod", ClusterTagValue=tag_value)
        eks = sorted((tuple(sorted(actions_of(s))), s["Resource"], json.dumps(s.get("Condition"), sort_keys=True))
                     for s in st if any(a.startswith("eks:") for a in actions_of(s)))
        assert eks == sorted([
            # Only clusters carrying the opt-in tag with the stack's value.
            (("eks:DescribeCluster", "eks:ListFargateProfiles"), f"{arn}:cluster/*",
             json.dumps({"StringEquals": {"aws:ResourceTag/eks-reaper": tag_value}})),
            # The profiles' own tags are not the cluster's; the names come from the tagged
            # cluster's ListFargateProfiles. Read-only, this account and region only.
            (("eks:DescribeFargateProfile",), f"{arn}:fargateprofile/*", "null"),
        ])


def eks_grants(st: list[dict]) -> list[tuple]:
    return sorted((tuple(sorted(actions_of(s))), s["Resource"], json.dumps(s.get("Condition"), sort_keys=True))
                  for s in st if any(a.startswith("eks:") for a in actions_of(s)))


def regional_eks_grants(describe_regions: list[str], list_regions: list[str] | None) -> list[tuple]:
    """The EKS grants when they reach other regions: any region of the ARN, and
    aws:RequestedRegion naming exactly `describe_regions` (and `list_regions` for ListClusters)."""
    arn = f"arn:{PARTITION}:eks:*:{ACCOUNT}"
    described = {"aws:RequestedRegion": describe_regions}
    grants = [
        (("eks:DescribeCluster", "eks:ListFargateProfiles"), f"{arn}:cluster/*",
         json.dumps({"StringEquals": {"aws:ResourceTag/eks-reaper": "enabled", **described}}, sort_keys=True)),
        (("eks:DescribeFargateProfile",), f"{arn}:fargateprofile/*", json.dumps({"StringEquals": described}, sort_keys=True)),
    ]
    if list_regions is not None:
        grants.append((("eks:ListClusters",), "*", json.dumps({"StringEquals": {"aws:RequestedRegion": list_regions}})))
    return sorted(grants)


def test_eks_actions_cover_exactly_the_discovery_regions_when_given():
    """An ARN per region cannot be built from the list (infra/README.md): the ARNs take any
    region and aws:RequestedRegion names the discovery regions; with named clusters, the
    stack's region too (a named cluster without @region is in it)."""
    regions = ["eu-west-1", "us-west-2"]
    assert eks_grants(statements(**DISCOVERY, ClusterNames="", DiscoveryRegions=",".join(regions))) == \
        regional_eks_grants(regions, regions)
    assert eks_grants(statements(**DISCOVERY, DiscoveryRegions=",".join(regions))) == \
        regional_eks_grants([REGION, *regions], regions)


def test_named_clusters_in_other_regions_are_covered_by_cluster_regions_and_no_more():
    """ClusterNames=etl,far@eu-west-1 needs eu-west-1 in ClusterRegions: the grants cover the
    stack's region and those, still only tagged clusters; no ListClusters without discovery."""
    st = statements(ClusterNames="etl,far@eu-west-1", ClusterRegions="eu-west-1")
    assert eks_grants(st) == regional_eks_grants([REGION, "eu-west-1"], None)
    assert eks_grants(statements(ClusterNames="etl", ClusterRegions="eu-west-1,ap-south-1")) == \
        regional_eks_grants([REGION, "eu-west-1", "ap-south-1"], None)
    # With discovery regions as well: the union; ListClusters still only where discovery searches.
    st = statements(ClusterNames="etl", ClusterRegions="ap-south-1", **DISCOVERY, DiscoveryRegions="eu-west-1")
    assert eks_grants(st) == regional_eks_grants([REGION, "ap-south-1", "eu-west-1"], ["eu-west-1"])


def test_cluster_regions_without_named_clusters_are_refused():
    failures = rule_failures({**DISCOVERY, "ClusterNames": "", "ClusterRegions": "eu-west-1", "AlarmEmail": "oncall@example.com"})
    assert len(failures) == 1 and failures[0].startswith("ClusterRegions is set but ClusterNames is empty"), failures
    assert rule_failures({**PARAMS, "ClusterRegions": "eu-west-1", "AlarmEmail": "oncall@example.com"}) == []


def test_discovery_in_the_stack_region_keeps_the_region_scoped_arns():
    named = [s for s in statements() if s.get("Sid") != "ListClustersToDiscover"]
    assert [s for s in statements(**DISCOVERY) if s.get("Sid") != "ListClustersToDiscover"] == named


def test_no_statement_depends_on_the_cluster_list():
    """Nothing per cluster in the reaper stack: clusters join by tag and onboarding stack."""
    assert statements(ClusterNames="etl") == statements(ClusterNames="etl,batch-prod,a,b,c")
    assert statements(**DISCOVERY, ClusterNames="") == statements(**DISCOVERY, ClusterNames="etl,batch-prod")


def test_only_actions_without_resource_level_permissions_use_star():
    star = sorted(a for s in statements() if s["Resource"] == "*" for a in actions_of(s))
    assert star == ["cloudwatch:PutMetricData", "ec2:DescribeSubnets"]
    star = sorted(a for s in statements(**DISCOVERY) if s["Resource"] == "*" for a in actions_of(s))
    assert star == ["cloudwatch:PutMetricData", "ec2:DescribeSubnets", "eks:ListClusters"]


def test_put_metric_data_is_limited_to_the_namespace():
    st = [s for s in statements(MetricsNamespace="Team/Reaper") if "cloudwatch:PutMetricData" in actions_of(s)]
    assert [s["Condition"] for s in st] == [{"StringEquals": {"cloudwatch:namespace": "Team/Reaper"}}]


def test_emf_sink_needs_no_put_metric_data():
    assert "cloudwatch:PutMetricData" not in {a for s in statements(MetricsSink="emf") for a in actions_of(s)}


def test_assume_role_only_on_the_given_arns():
    assert "sts:AssumeRole" not in {a for s in statements() for a in actions_of(s)}
    arns = "arn:aws:iam::444455556666:role/a,arn:aws:iam::777788889999:role/b"
    st = [s for s in statements(AssumeRoleArns=arns, ClusterRoleArns="x=y") if "sts:AssumeRole" in actions_of(s)]
    assert [s["Resource"] for s in st] == [arns.split(",")]


ENI_ACTIONS = ["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
               "ec2:DescribeNetworkInterfaces", "ec2:UnassignPrivateIpAddresses"]
VPC = {"VpcSubnetIds": "subnet-1,subnet-2", "VpcSecurityGroupIds": "sg-1,sg-2"}
ENIS = f"arn:{PARTITION}:ec2:{REGION}:{ACCOUNT}:network-interface/*"


def test_vpc_eni_permissions_only_in_a_vpc():
    assert not set(ENI_ACTIONS) & {a for s in statements() for a in actions_of(s)}
    acts = sorted({a for s in statements(**VPC) for a in actions_of(s)})
    assert acts == sorted({*RUN_ACTIONS, *ENI_ACTIONS, "logs:CreateLogStream", "logs:PutLogEvents"})


def test_in_a_vpc_only_describe_actions_use_star():
    star = sorted(a for s in statements(**VPC) if s["Resource"] == "*" for a in actions_of(s))
    assert star == ["cloudwatch:PutMetricData", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]


def test_enis_are_created_only_in_the_given_subnets_with_the_given_security_groups():
    (create,) = [s for s in statements(**VPC) if "ec2:CreateNetworkInterface" in actions_of(s)]
    assert actions_of(create) == ["ec2:CreateNetworkInterface"]
    assert sorted(create["Resource"]) == sorted([
        "arn:*:ec2:*:*:subnet/subnet-1", "arn:*:ec2:*:*:subnet/subnet-2",
        "arn:*:ec2:*:*:security-group/sg-1", "arn:*:ec2:*:*:security-group/sg-2", ENIS])
    one = [s for s in statements(VpcSubnetIds="subnet-9", VpcSecurityGroupIds="sg-9") if s.get("Sid") == create["Sid"]]
    assert sorted(one[0]["Resource"]) == sorted(["arn:*:ec2:*:*:subnet/subnet-9", "arn:*:ec2:*:*:security-group/sg-9", ENIS])


def test_eni_changes_are_limited_to_network_interfaces_of_this_account_and_region():
    acts = ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"]
    st = [s for s in statements(**VPC) if set(actions_of(s)) & set(acts)]
    assert [(sorted(actions_of(s)), s["Resource"]) for s in st] == [(acts, ENIS)]


def test_vpc_subnets_without_security_groups_are_refused():
    rules = rule_failures({**PARAMS, "AlarmEmail": "oncall@example.com", "VpcSubnetIds": "subnet-1"})
    assert rules and "VpcSecurityGroupIds" in rules[0]
    assert rule_failures({**PARAMS, "AlarmEmail": "oncall@example.com", **VPC}) == []


# --- moto: the same API calls, IAM enforced ------------------------------------------


@pytest.fixture(scope="module")
def moto():
    """moto with one cluster, one Fargate profile and a subnet; enforcement still off."""
    with moto_server() as url:
        ec2 = client("ec2", url, region=REGION)
        eks = client("eks", url, region=REGION)
        iam = client("iam", url, region=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/28", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
        role = iam.create_role(RoleName="cluster", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        eks.create_cluster(name=CLUSTER, roleArn=role, resourcesVpcConfig={"subnetIds": [subnet]})
        eks.create_fargate_profile(fargateProfileName="etl-fargate", clusterName=CLUSTER, podExecutionRoleArn=role,
                                   subnets=[subnet], selectors=[{"namespace": "etl-fargate"}])
        yield {"url": url, "subnet": subnet}


def run_calls(moto: dict, key: dict, mode: str = "named") -> dict[str, str]:
    """The AWS calls of one eks-reaper run, in order; 'ok' or the error code per action."""
    eks, ec2, cw = (client(s, moto["url"], region=REGION, credentials=key)
                    for s in ("eks", "ec2", "cloudwatch"))
    discovery = {"eks:ListClusters": lambda: eks.list_clusters()} if mode == "discovery" else {}
    calls = {
        **discovery,
        "eks:DescribeCluster": lambda: eks.describe_cluster(name=CLUSTER),
        "eks:ListFargateProfiles": lambda: eks.list_fargate_profiles(clusterName=CLUSTER),
        "eks:DescribeFargateProfile": lambda: eks.describe_fargate_profile(clusterName=CLUSTER, fargateProfileName="etl-fargate"),
        "ec2:DescribeSubnets": lambda: ec2.describe_subnets(SubnetIds=[moto["subnet"]]),
        "cloudwatch:PutMetricData": lambda: cw.put_metric_data(Namespace="EKSReaper", MetricData=[
            {"MetricName": "RunSucceeded", "Value": 1, "Unit": "Count", "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER}]}]),
    }
    out = {}
    for action, call in calls.items():
        try:
            call()
            out[action] = "ok"
        except ClientError as e:
            # moto answers EKS's REST-JSON calls with a query-style XML error body.
            out[action] = "AccessDenied" if "AccessDenied" in str(e) else e.response["Error"]["Code"]
    return out


@pytest.fixture(scope="module")
def principals(moto):
    """Users created while enforcement is off: the full template policy, and one per
    action with that action removed. Then enforcement goes on for the rest of the module."""
    users = {}
    for mode, run_actions in ACTIONS.items():
        full = for_moto(mode_statements(mode))
        users[mode, "full"] = user_with_policy(moto["url"], REGION, f"reaper-full-{next(_names)}", full)
        for action in run_actions:
            reduced = []
            for s in mode_statements(mode):
                kept = [a for a in actions_of(s) if a != action]
                if kept:
                    reduced.append({**s, "Action": kept})
            users[mode, action] = user_with_policy(moto["url"], REGION, f"reaper-minus-{next(_names)}", for_moto(reduced))
    users["nothing"] = user_with_policy(moto["url"], REGION, f"reaper-none-{next(_names)}", [])
    enforce(moto["url"])
    return users


@pytest.mark.parametrize("mode", ACTIONS)
def test_template_policy_allows_every_call_of_a_run(moto, principals, mode):
    result = run_calls(moto, principals[mode, "full"], mode)
    assert result == {a: "ok" for a in ACTIONS[mode]}


@pytest.mark.parametrize("mode, action", [(m, a) for m, acts in ACTIONS.items() for a in acts])
def test_removing_one_action_denies_exactly_that_call(moto, principals, mode, action):
    result = run_calls(moto, principals[mode, action], mode)
    assert result[action] == "AccessDenied", result
    assert {a: r for a, r in result.items() if a != action} == {a: "ok" for a in result if a != action}


def test_enforcement_is_really_on(moto, principals):
    assert set(run_calls(moto, principals["nothing"], "discovery").values()) == {"AccessDenied"}


def test_moto_ignores_the_namespace_condition_and_resource_scoping(moto, principals):
    """Documents moto's limits: if this starts failing, moto learned to enforce them and
    for_moto() should stop widening the policy."""
    url = moto["url"]
    requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=5).raise_for_status()
    try:
        wrong_ns = user_with_policy(url, REGION, f"wrong-ns-{next(_names)}", [{
            "Effect": "Allow", "Action": "monitoring:PutMetricData", "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "SomethingElse"}}}])
        wrong_tag = user_with_policy(url, REGION, f"wrong-tag-{next(_names)}", [{
            "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/eks-reaper": "not-this-cluster"}}}])
        scoped = user_with_policy(url, REGION, f"scoped-{next(_names)}", [{
            "Effect": "Allow", "Action": "ec2:DescribeSubnets",
            "Resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{moto['subnet']}"}])
    finally:
        enforce(url)

    # Allowed although the namespace differs: the condition is not evaluated.
    client("cloudwatch", url, region=REGION, credentials=wrong_ns).put_metric_data(Namespace="EKSReaper", MetricData=[{"MetricName": "X", "Value": 1}])
    # Allowed although the cluster carries no such tag: the tag condition is not evaluated.
    client("eks", url, region=REGION, credentials=wrong_tag).describe_cluster(name=CLUSTER)
    # Denied although the resource is the right one: moto checks against "*".
    with pytest.raises(ClientError, match="AccessDenied"):
        client("ec2", url, region=REGION, credentials=scoped).describe_subnets(SubnetIds=[moto["subnet"]])
