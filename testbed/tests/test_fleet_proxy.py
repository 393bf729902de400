"""The fleet proxy (`testbed/fleet_proxy.py`): paths, selectors, and against the running
testbed, a small fleet (`testbed/fleet.py`): each cluster's path authenticates tokens for
its own name only, lists only its own Jobs and Pods, keeps the apiserver's RBAC, and logs
its DELETEs with the label of what it deleted."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from testbed import fleet, fleet_proxy, tokens
from testbed.kube import ApiError, Kube
from testbed.workload import BULK_MANAGER, RUN_LABEL, bulk_finished, job_manifest, new_run_id


def test_a_fleet_path_names_account_region_cluster_and_the_api_path():
    r = fleet_proxy.route("/fleet/111111111111/eu-west-1/prod/apis/batch/v1/jobs?limit=5")
    assert (r.account, r.region, r.name, r.path, r.query) == (
        "111111111111", "eu-west-1", "prod", "/apis/batch/v1/jobs", "limit=5")
    assert fleet_proxy.route("/fleet/111111111111/eu-west-1/prod").path == "/"
    assert fleet_proxy.route("/apis/batch/v1/jobs") is None
    assert fleet_proxy.route("/fleet/111111111111//prod/version") is None


def test_the_same_name_in_two_accounts_is_two_keys():
    a = fleet_proxy.cluster_key("111111111111", "us-east-1", "prod")
    b = fleet_proxy.cluster_key("222222222222", "us-east-1", "prod")
    assert a != b and len(a) == 16


@pytest.mark.parametrize("path", ["/apis/batch/v1/jobs", "/apis/batch/v1/namespaces/x/jobs",
                                  "/api/v1/pods", "/api/v1/namespaces/x/pods"])
def test_job_and_pod_lists_get_the_cluster_term_anded_into_their_selector(path):
    r = fleet_proxy.route(f"/fleet/1/r/c{path}?limit=10&labelSelector=a%3Db&fieldSelector=x")
    q = parse_qs(fleet_proxy.narrowed_query(r, "GET"))
    assert q["labelSelector"] == [f"a=b,{fleet_proxy.CLUSTER_LABEL}={r.key}"]
    assert q["limit"] == ["10"] and q["fieldSelector"] == ["x"]
    bare = fleet_proxy.route(f"/fleet/1/r/c{path}")
    assert parse_qs(fleet_proxy.narrowed_query(bare, "GET"))["labelSelector"] == [
        f"{fleet_proxy.CLUSTER_LABEL}={r.key}"]


@pytest.mark.parametrize("method,path", [("GET", "/apis/batch/v1/namespaces/x/jobs/one"),
                                         ("DELETE", "/apis/batch/v1/namespaces/x/jobs/one"),
                                         ("GET", "/api/v1/namespaces"), ("GET", "/version")])
def test_other_requests_keep_their_query(method, path):
    r = fleet_proxy.route(f"/fleet/1/r/c{path}?limit=3")
    assert fleet_proxy.narrowed_query(r, method) == "limit=3"


@pytest.fixture(scope="module")
def small_fleet(env):
    with fleet.Fleet(env, fleet.layout(per_place=1, shared=1)) as f:
        yield f


def as_cluster(f: fleet.Fleet, env, c: fleet.FleetCluster, signed_for: str | None = None) -> Kube:
    """A client of `c`'s endpoint with a token of `c`'s account's member role, signed for
    `signed_for` (default: `c`'s own name)."""
    creds = f.client("sts").assume_role(RoleArn=fleet.member_role_arn(c.account),
                                        RoleSessionName="self-test")["Credentials"]
    token = tokens.make_token(creds["AccessKeyId"], creds["SecretAccessKey"],
                              signed_for or c.name, c.region,
                              session_token=creds["SessionToken"])
    return Kube(c.endpoint(f.proxy_url), ca=env["TESTBED_CA_FILE"], token=token, retries_429=0)


def labelled_job(kube: Kube, ns: str, c: fleet.FleetCluster, name: str) -> dict:
    body = job_manifest(name, ns, labels=fleet.labels(c), managed_by=BULK_MANAGER)
    body["spec"]["suspend"] = True
    return kube.create("batch/v1", "jobs", body, namespace=ns)


def test_each_cluster_lists_only_its_own_jobs(small_fleet, env, kube, namespace):
    # GIVEN "shared-00" in two accounts, one Job each, and an unlabelled Job
    a, b = [c for c in small_fleet.clusters
            if c.name == "shared-00" and c.region == "us-east-1"][:2]
    assert a.account != b.account
    labelled_job(kube, namespace, a, "of-a")
    labelled_job(kube, namespace, b, "of-b")
    kube.create("batch/v1", "jobs", job_manifest("of-nobody", namespace,
                                                 managed_by=BULK_MANAGER), namespace=namespace)
    ka = as_cluster(small_fleet, env, a)
    # THEN each path lists its own Job, in the namespace and cluster-wide, full or metadata
    for ns in (namespace, None):
        names = [j["metadata"]["name"] for j in ka.list("batch/v1", "jobs", ns)]
        assert names == ["of-a"], names
    meta = ka.session.get(f"{ka.server}/apis/batch/v1/namespaces/{namespace}/jobs", headers={
        "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}).json()
    assert meta["kind"] == "PartialObjectMetadataList", meta
    assert [i["metadata"]["name"] for i in meta["items"]] == ["of-a"], meta
    # AND a selector of the caller's own narrows within the cluster, never beyond it
    got = list(ka.list("batch/v1", "jobs", namespace,
                       label_selector=f"{fleet_proxy.CLUSTER_LABEL}={b.key}"))
    assert got == []
    kb = as_cluster(small_fleet, env, b)
    assert [j["metadata"]["name"] for j in kb.list("batch/v1", "jobs", namespace)] == ["of-b"]


def test_a_token_for_another_cluster_is_refused(small_fleet, env):
    a = small_fleet.clusters[0]
    with pytest.raises(ApiError) as e:
        as_cluster(small_fleet, env, a, signed_for="someone-else").request("GET", "/version")
    assert e.value.status == 401
    assert as_cluster(small_fleet, env, a).request("GET", "/version").json()["gitVersion"]


def test_the_apiserver_rbac_decides_for_the_impersonated_identity(small_fleet, env):
    with pytest.raises(ApiError) as e:
        as_cluster(small_fleet, env, small_fleet.clusters[0]).request("GET", "/api/v1/secrets")
    assert e.value.status == 403 and 'User "eks-reaper"' in e.value.message, e.value.message


def test_a_delete_is_logged_with_its_cluster_and_the_deleted_objects_label(small_fleet, env,
                                                                            kube, namespace):
    a, b = small_fleet.clusters[0], small_fleet.clusters[1]
    run = new_run_id()
    bulk_finished(kube, count=1, namespace=namespace, run_id=run, extra_labels=fleet.labels(b))
    job = next(kube.list("batch/v1", "jobs", namespace, label_selector=f"{RUN_LABEL}={run}"))
    name = job["metadata"]["name"]
    ka = as_cluster(small_fleet, env, a)
    # WHEN cluster a's path deletes (by name) an object of cluster b
    ka.delete("batch/v1", "jobs", name, namespace, propagation_policy="Background")
    # THEN the log names a as the deleter and the uid of b's Job as what was deleted
    mine = [d for d in small_fleet.deleted() if d["path"].endswith(f"/jobs/{name}")]
    assert len(mine) == 1, small_fleet.deleted()
    assert (mine[0]["key"], mine[0]["name"], mine[0]["uid"]) == (a.key, a.name,
                                                                 job["metadata"]["uid"])
    assert mine[0]["status"] == 200, mine
